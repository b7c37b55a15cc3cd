"""Benchmarks as commands: `throughput` (steps/s against the raw environment ceiling) and
`solve` (time to solve, side by side with the notebook's settings and Stable-Baselines3)."""

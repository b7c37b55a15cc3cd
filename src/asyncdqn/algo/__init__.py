"""Pure math: TD targets, losses, exploration schedules, shared optimizers.

Imports only numpy and torch; knows nothing of environments or processes.
"""

"""The `asyncdqn` command line: a thin layer over the Python API. Nothing imports it.

Every user error (bad option, unknown environment, unsupported spaces, corrupt or
mismatched checkpoint, missing run directory) is printed as one line
`asyncdqn: error: ...` with exit code 2; a failed run (worker out of restarts,
non-finite values) exits 1; SIGINT (Ctrl-C) exits 130 and SIGTERM 143, after the
workers are stopped and the final checkpoint written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asyncdqn.errors import AsyncDQNError, TrainingError
from asyncdqn.signals import Terminated, exit_code_for

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line message (its default too, made explicit)."""

    def error(self, message: str) -> typing.NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _none_or(kind: type) -> Any:
    def parse(text: str) -> Any:
        if text.lower() in ("none", "null", "off"):
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__} or 'none', got {text!r}") from None

    parse.__name__ = kind.__name__
    return parse


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per Config field, its help taken from the field's metadata."""
    from asyncdqn.config import FIELD_TYPES, Config

    defaults = Config()
    for f in dataclasses.fields(Config):
        if f.metadata.get("internal"):  # set by the program, not an option
            continue
        flags = ["--" + f.name.replace("_", "-")]
        if f.name == "env_id":
            flags.insert(0, "--env")
        hint = FIELD_TYPES[f.name]
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if optional else hint
        default = getattr(defaults, f.name)
        help_text = f.metadata["help"] + f" (default: {default if not isinstance(default, tuple) else ' '.join(map(str, default))})"
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if base is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(base) is typing.Literal:
            kw["choices"] = list(typing.get_args(base))
        elif typing.get_origin(base) is dict:  # JSON text, parsed and checked by config._coerce
            kw["type"] = str
            kw["metavar"] = "JSON"
        elif typing.get_origin(base) is tuple:
            kw["nargs"] = "+"
            kw["type"] = typing.get_args(base)[0]
            kw["metavar"] = typing.get_args(base)[0].__name__.upper()
        else:
            kw["type"] = _none_or(base) if optional else base
            kw["metavar"] = base.__name__.upper()
        p.add_argument(*flags, **kw)


def _add_train(sub: Any) -> None:
    """`asyncdqn train`: every Config option, plus --json and --resume."""
    t = sub.add_parser("train", help="train an agent; writes a run directory",
                       description="Train an agent. Options not given come from the environment's preset "
                                   "(then --preset), then the defaults shown. Prints the run directory and result.")
    _add_config_options(t)
    t.add_argument("--json", action="store_true", help="print the result as JSON instead of a summary")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its newest valid checkpoint (config.json is kept; only "
                        "stop rules, evaluation and output options may be given, and step/time limits count the "
                        "whole run)")


def _add_evaluate(sub: Any) -> None:
    """`asyncdqn evaluate RUN_DIR`."""
    e = sub.add_parser("evaluate", help="evaluation of a trained run",
                       description="Play episodes with a run's checkpoint on freshly seeded environments, acting as "
                                   "the run's evaluations did (greedy, or with its --eval-epsilon) unless --epsilon "
                                   "is given.")
    from asyncdqn.evaluate import DEFAULT_EPISODES, DEFAULT_SEED

    e.add_argument("run_dir", help="run directory written by `asyncdqn train`")
    e.add_argument("--episodes", type=int, default=DEFAULT_EPISODES,
                   help=f"number of episodes (default: {DEFAULT_EPISODES})")
    e.add_argument("--checkpoint", default="best", help="best, final, latest (newest training checkpoint) or a file name in RUN_DIR/checkpoints "
                        "(default: best)")
    e.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seed of the evaluation episodes (default: {DEFAULT_SEED})")
    e.add_argument("--epsilon", type=float, default=None,
                   help="act epsilon-greedily with this epsilon in [0, 1] (0: greedy; default: the run's "
                        "--eval-epsilon)")
    e.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_plot(sub: Any) -> None:
    """`asyncdqn plot RUN_DIR...`."""
    pl = sub.add_parser("plot", help="learning curves of one or more runs",
                        description="Plot episode returns, their moving average and greedy evaluations against "
                                    "env steps and wall time; several runs are overlaid.")
    pl.add_argument("run_dirs", nargs="+", help="run directories")
    pl.add_argument("--out", help="output PNG (default: RUN_DIR/learning_curve.png for one run, comparison.png for several)")
    pl.add_argument("--window", type=int, default=100, help="moving-average window in episodes (default: 100)")


def _add_render(sub: Any) -> None:
    """`asyncdqn render RUN_DIR`."""
    r = sub.add_parser("render", help="record greedy episodes as a GIF or MP4",
                       description="Play greedy episodes with a run's checkpoint and save the frames, the "
                                   "running return drawn on each, as an animated GIF or (--out NAME.mp4, "
                                   "needs the video extra) an MP4 video.")
    r.add_argument("run_dir", help="run directory written by `asyncdqn train`")
    r.add_argument("--out", default="game.gif", help="output file: NAME.mp4 for a video, else a GIF (default: game.gif)")
    r.add_argument("--episodes", type=int, default=1, help="episodes to record (default: 1)")
    r.add_argument("--checkpoint", default="best", help="best, final, latest (newest training checkpoint) or a file name in RUN_DIR/checkpoints "
                        "(default: best)")
    r.add_argument("--seed", type=int, default=0, help="seed of the recorded episodes (default: 0)")
    r.add_argument("--fps", type=int, default=30, help="frames per second (default: 30)")
    r.add_argument("--max-steps", type=int, default=1000, help="cap on steps per episode (default: 1000)")


def _add_compare(sub: Any) -> None:
    """`asyncdqn compare RUN_DIR...`."""
    c = sub.add_parser("compare", help="compare runs (e.g. async vs replay DQN): figure + summary table",
                       description="Group runs by label (config label, else algo and env), plot the greedy "
                                   "evaluation mean against env steps and wall time (mean and min-max band over "
                                   "runs) and write a Markdown table: runs, solved n/N, median time- and "
                                   "steps-to-solve, final greedy mean ± std.")
    c.add_argument("run_dirs", nargs="+", help="run directories")
    c.add_argument("--out", default="compare", help="output prefix: writes PREFIX.png and PREFIX.md (default: compare)")


def _add_seed_options(p: argparse.ArgumentParser, default_list: list[int] | None = None,
                      list_help: str = "explicit seeds (overrides --seeds)") -> None:
    """--seeds S (0..S-1) and --seed-list; with a default list, --seed-list alone. Read back by `_seeds`."""
    if default_list is None:
        p.add_argument("--seeds", type=int, default=5, help="number of seeds, 0..S-1 (default: 5)")
    p.add_argument("--seed-list", type=int, nargs="+", default=default_list, help=list_help)


def _add_parallel_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--parallel", type=int, default=1, help=f"{help} (default: 1)")


def _add_set_option(p: argparse.ArgumentParser, help: str) -> None:
    """--set FIELD=VALUE, repeatable: Config options over a preset. Read back by `_parse_sets`."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help=f"{help} (repeatable)")


def _add_bench_throughput(bsub: Any) -> None:
    """`asyncdqn bench throughput`."""
    bt = bsub.add_parser("throughput", help="trainer steps/s as a fraction of the raw environment ceiling")
    bt.add_argument("--env", dest="env_id", default="LunarLander-v3", help="environment id (default: LunarLander-v3)")
    bt.add_argument("--algos", nargs="+", default=None, help="algorithms to measure (default: all three)")
    bt.add_argument("--max-workers", type=int, default=None, help="measure 1..N workers (default: CPU cores)")
    bt.add_argument("--envs-per-worker", type=int, default=None, help="override the preset's envs per worker")
    bt.add_argument("--backend", dest="backends", nargs="+", choices=["process", "serial", "ray"],
                    default=["process"], help="backend(s) measured, each beside the same ceiling (default: process)")
    bt.add_argument("--ray-nodes", type=int, nargs="+", default=[1],
                    help="--backend ray: measure on each of these node counts; N > 1 simulates an N-node cluster "
                         "on this machine (ray.cluster_utils), the workers' CPUs split between the nodes (default: 1)")
    bt.add_argument("--seconds", type=float, default=10.0, help="measurement window per row (default: 10)")
    bt.add_argument("--vector", dest="vectors", nargs="+", choices=["gymnasium", "envpool"], default=None,
                    help="vector steppers to measure, each with its own ceiling (default: gymnasium, and envpool "
                         "when installed)")
    _add_set_option(bt, "option over the preset of every measured row, e.g. --set ray_sync_seconds=1.0 "
                        "(recorded in the report)")
    bt.add_argument("--out", default="throughput.json", help="JSON report (default: throughput.json)")


def _add_bench_solve(bsub: Any) -> None:
    """`asyncdqn bench solve`."""
    bs = bsub.add_parser(
        "solve", help="time-to-solve against the notebook's settings and Stable-Baselines3 DQN",
        description="Time-to-solve over several seeds for each contender (asyncdqn's default preset, the same "
                    "stepping EnvPool's environments, the seed "
                    "notebook's settings, Stable-Baselines3 DQN with RL-Zoo's hyper-parameters), all under "
                    "one protocol: the same greedy solve criterion, checked at the same wall-clock cadence, "
                    "within the same budget. Writes one JSON per run, summary.json, summary.md and "
                    "solve_curves.png to --out; runs already in --out are not repeated.")
    from asyncdqn.bench.solve import Protocol

    d = Protocol()
    bs.add_argument("--env", dest="env_id", default=d.env_id, help=f"environment id (default: {d.env_id})")
    bs.add_argument("--contenders", nargs="+", default=None,
                    help="any of asyncdqn asyncdqn-envpool asyncdqn-ray asyncdqn-ray-cluster seed-compat sb3-dqn "
                         "(default: all but the ray ones; asyncdqn-envpool only with the envpool extra installed)")
    _add_seed_options(bs)
    bs.add_argument("--budget", type=float, default=d.budget_s,
                    help=f"wall-clock budget per run in seconds (default: {d.budget_s:g})")
    bs.add_argument("--check-every", type=float, default=d.check_every_s,
                    help=f"seconds between greedy checks, counted from the end of the previous one "
                         f"(default: {d.check_every_s:g})")
    bs.add_argument("--score", type=float, default=d.solve_score, help=f"solve score (default: {d.solve_score:g})")
    bs.add_argument("--eval-episodes", type=int, default=d.eval_episodes,
                    help=f"episodes of the solving evaluation (default: {d.eval_episodes})")
    bs.add_argument("--screen-episodes", type=int, default=d.screen_episodes,
                    help=f"episodes of the screen before it (default: {d.screen_episodes})")
    _add_parallel_option(bs, "run this many single-process (sb3-dqn) runs side by side, sharing the cores "
                             "(1: every run alone, SB3 with one torch thread per core)")
    _add_set_option(bs, "option over the asyncdqn contender's preset, e.g. --set target_update_steps=1000 "
                        "(for preset searches: give each variant its own --out)")
    bs.add_argument("--out", default="bench-solve", help="output directory (default: bench-solve)")


def _add_bench_presets(bsub: Any) -> None:
    """`asyncdqn bench presets`."""
    from asyncdqn.bench.preset_check import REEVAL_EPISODES

    bp = bsub.add_parser(
        "presets", help="verify the presets: solved n/N per (env, algo) over several seeds",
        description="Train each (environment, algorithm) preset exactly as `asyncdqn train --env E --algo A` "
                    "resolves it (solve score, evaluation cadence, budget) over several seeds, one subprocess per "
                    "run, and judge the policy each run returns (its best checkpoint, via load_policy) on fresh "
                    "episodes. Writes one JSON per run, summary.json and summary.md (solved n/N, median time and "
                    "steps to solve, returned-policy score, RL-Zoo's published figure) to --out; runs already "
                    "in --out are not repeated.")
    bp.add_argument("--envs", nargs="+", default=None,
                    help="environments (default: CartPole-v1 Acrobot-v1 MountainCar-v0 LunarLander-v3)")
    bp.add_argument("--algos", nargs="+", default=None,
                    help="algorithms: any of n-step-q one-step-q one-step-sarsa dqn (default: n-step-q dqn)")
    _add_seed_options(bp)
    bp.add_argument("--budget-scale", type=float, default=1.0,
                    help="multiply each preset's --max-seconds budget (e.g. 2 on a loaded machine; recorded)")
    _add_parallel_option(bp, "runs side by side (more share the cores: times inflate, steps and solved counts of "
                             "step-budget presets do not)")
    bp.add_argument("--summary-only", action="store_true",
                    help="run nothing: summarize the runs already in --out (e.g. after benchmarks run separately)")
    bp.add_argument("--reeval-episodes", type=int, default=REEVAL_EPISODES,
                    help=f"fresh episodes replayed by the returned policy (default: {REEVAL_EPISODES})")
    _add_set_option(bp, "option over every row's preset (for preset searches: give each its own --out)")
    bp.add_argument("--out", default="bench-presets", help="output directory (default: bench-presets)")


def _add_tune(sub: Any) -> None:
    """`asyncdqn tune`."""
    tu = sub.add_parser(
        "tune", help="hyper-parameter search with Optuna (needs the tune extra)",
        description="Search an algorithm's hyper-parameters on an environment with Optuna: each trial trains "
                    "the preset with sampled options in a subprocess, greedy evaluations are reported to the "
                    "median pruner, the study is kept in OUT/study.db (SQLite; rerun the command to resume). "
                    "Writes OUT/trials.md (a table of trials), OUT/best_preset.py (a dict literal for presets.py) "
                    "and OUT/tune.json.")
    tu.add_argument("--env", dest="env_id", default="CartPole-v1", help="environment id (default: CartPole-v1)")
    tu.add_argument("--algo", default="n-step-q", help="n-step-q, one-step-q, one-step-sarsa or dqn (default: n-step-q)")
    tu.add_argument("--objective", choices=["time", "steps", "auc"], default="time",
                    help="time: seconds to solve, steps: env steps to solve (unsolved = budget; minimised), auc: "
                         "area under the greedy curve over the step budget (maximised) (default: time)")
    tu.add_argument("--trials", type=int, default=20, help="finished trials the study should hold (default: 20)")
    tu.add_argument("--jobs", type=int, default=1, help="trials run in parallel, at most the CPU cores (default: 1)")
    _add_seed_options(tu, default_list=[100], list_help="seeds every trial trains (objective averaged; pruning "
                                                        "watches the first) (default: 100)")
    tu.add_argument("--max-seconds", type=float, default=None, help="time budget per run (default: the preset's)")
    tu.add_argument("--max-steps", type=int, default=None, help="step budget per run (default: the preset's)")
    tu.add_argument("--eval-every-steps", type=int, default=None,
                    help="greedy evaluation cadence, the pruning grid (default: the preset's)")
    tu.add_argument("--startup-trials", type=int, default=4,
                    help="trials that always finish before the pruner compares (default: 4)")
    tu.add_argument("--no-pruning", action="store_true", help="let every trial run to its end")
    _add_set_option(tu, "fixed option over the preset, not searched")
    tu.add_argument("--out", default=None, help="study directory (default: runs/tune-ENV-ALGO-OBJECTIVE)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="asyncdqn",
        description="Asynchronous (Hogwild) deep Q-learning on Gymnasium environments with discrete actions.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_train, _add_evaluate, _add_plot, _add_render, _add_compare):
        add(sub)
    b = sub.add_parser("bench", help="benchmarks (throughput against the raw environment ceiling)",
                       description="Benchmarks. `bench throughput` measures the raw environment ceiling "
                                   "(random actions, same processes and envs per worker, no learning) and the "
                                   "trainer's env steps/s while learning, for each algorithm and 1..N workers.")
    bsub = b.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    for add_bench in (_add_bench_throughput, _add_bench_solve, _add_bench_presets):
        add_bench(bsub)
    _add_tune(sub)
    return parser


def cmd_tune(args: argparse.Namespace) -> int:
    from asyncdqn.tune import Tuner, TuneSpec

    for name in ("trials", "jobs", "startup_trials"):
        _positive(name.replace("_", "-"), getattr(args, name))
    spec = TuneSpec(env_id=args.env_id, algo=args.algo, objective=args.objective, trials=args.trials, jobs=args.jobs,
                    seeds=tuple(_seeds(args)), max_seconds=args.max_seconds, max_steps=args.max_steps,
                    eval_every_steps=args.eval_every_steps, fixed=_parse_sets(args.overrides),
                    pruning=not args.no_pruning, startup_trials=args.startup_trials)
    out = Path(args.out or Path("runs") / f"tune-{spec.study_name().replace('/', '_')}")
    report = Tuner(spec, out, log=lambda m: print(m, file=sys.stderr, flush=True)).run()
    print(report["table"])
    print()
    print(report["preset_snippet"] or "no trial completed: no preset to suggest")
    print(f"study: {report['storage']}; wrote trials.md, best_preset.py and tune.json in {out}")
    return 0


def _seeds(args: argparse.Namespace) -> list[int]:
    """The seeds of `_add_seed_options`: --seed-list (each >= 0), else 0..--seeds-1."""
    if args.seed_list is not None:
        if any(s < 0 for s in args.seed_list):
            raise AsyncDQNError(f"--seed-list: seeds must be >= 0, got {args.seed_list}")
        return list(args.seed_list)
    _positive("seeds", args.seeds)
    return list(range(args.seeds))


def _parse_sets(items: list[str]) -> dict[str, Any]:
    """--set FIELD=VALUE pairs; values are JSON when they parse as JSON (numbers, true, null, lists)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise AsyncDQNError(f"--set: expected FIELD=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip().replace("-", "_")] = value
    return out


def cmd_bench_solve(args: argparse.Namespace) -> int:
    from asyncdqn.bench.solve import RAY_CONTENDERS, Protocol, default_contenders, run_solve

    seeds = _seeds(args)
    for name in ("parallel", "eval_episodes", "screen_episodes"):
        _positive(name.replace("_", "-"), getattr(args, name))
    for name in ("budget", "check_every"):
        if not args.__dict__[name] > 0:
            raise AsyncDQNError(f"--{name.replace('_', '-')}: must be > 0, got {args.__dict__[name]}")
    from asyncdqn.envs import inspect_env

    inspect_env(args.env_id, None)  # unknown env / unsupported spaces: one clear line, before any run
    overrides = _parse_sets(args.overrides)
    from asyncdqn.config import resolve_config

    resolve_config({"env_id": args.env_id, **overrides})  # unknown or invalid options: fail before any run
    p = Protocol(env_id=args.env_id, solve_score=args.score, eval_episodes=args.eval_episodes,
                 screen_episodes=args.screen_episodes, check_every_s=args.check_every, budget_s=args.budget)
    contenders = tuple(args.contenders or default_contenders())
    if "asyncdqn-envpool" in contenders:
        from asyncdqn.envs.vector import check_envpool_env

        check_envpool_env(args.env_id)  # not installed / no EnvPool counterpart: one line, before any run
    if any(c in RAY_CONTENDERS for c in contenders):
        from asyncdqn.backends.ray import import_ray

        import_ray()  # the ray extra missing: one line, before any run
    out = run_solve(Path(args.out), contenders, seeds, p, parallel=args.parallel,
                    overrides=overrides)
    print(out["table"])
    print(f"wrote {Path(args.out) / 'summary.json'}, summary.md and solve_curves.png")
    return 0


def cmd_bench_presets(args: argparse.Namespace) -> int:
    from asyncdqn.bench.preset_check import DEFAULT_ALGOS, ENVS, plan, run_presets
    from asyncdqn.envs import inspect_env

    seeds = _seeds(args)
    _positive("reeval-episodes", args.reeval_episodes)
    _positive("parallel", args.parallel)
    if not args.budget_scale > 0:
        raise AsyncDQNError(f"--budget-scale: must be > 0, got {args.budget_scale}")
    envs, algos = tuple(args.envs or ENVS), tuple(args.algos or DEFAULT_ALGOS)
    for env_id in envs:
        inspect_env(env_id, None)  # unknown env / unsupported spaces: one clear line, before any run
    overrides = _parse_sets(args.overrides)
    plan(envs, algos, overrides)  # unknown algorithms or invalid options: fail before any run
    out = run_presets(Path(args.out), envs, algos, seeds, args.budget_scale, overrides, args.reeval_episodes,
                      log=lambda m: print(m, file=sys.stderr, flush=True), parallel=args.parallel,
                      run=not args.summary_only)
    print(out["table"])
    print(f"wrote {Path(args.out) / 'summary.json'} and summary.md")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench == "solve":
        return cmd_bench_solve(args)
    if args.bench == "presets":
        return cmd_bench_presets(args)
    from asyncdqn.bench.throughput import format_table, run_throughput
    from asyncdqn.config import ASYNC_ALGOS, resolve_config
    from asyncdqn.rundir.fileio import atomic_write_json

    algos = tuple(args.algos or ASYNC_ALGOS)
    for a in algos:
        if a not in ASYNC_ALGOS:
            raise AsyncDQNError(f"--algos: unknown algorithm {a!r}; known: {', '.join(ASYNC_ALGOS)}")
    if args.max_workers is not None:
        _positive("max-workers", args.max_workers)
    if args.envs_per_worker is not None:
        _positive("envs-per-worker", args.envs_per_worker)
    if not args.seconds > 0:
        raise AsyncDQNError(f"--seconds must be > 0, got {args.seconds}")
    for n in args.ray_nodes:
        _positive("ray-nodes", n)
    overrides = _parse_sets(args.overrides)
    owned = sorted(set(overrides) & {"env_id", "algo", "backend", "workers", "vector", "max_steps", "progress"})
    if owned:
        raise AsyncDQNError(f"--set: {', '.join(owned)} set by the bench itself (use --env, --algos, --backend, "
                            "--max-workers, --vector)")
    if args.envs_per_worker is not None:
        overrides["envs_per_worker"] = args.envs_per_worker
    # a bad --set: one line, before any measurement (the bench gives every row a step budget of its own)
    resolve_config({"env_id": args.env_id, "max_steps": 10**12, **overrides})
    from asyncdqn.bench.throughput import available_vectors
    from asyncdqn.envs import inspect_env
    from asyncdqn.envs.vector import ENVPOOL_IDS, check_envpool_env

    inspect_env(args.env_id, None)
    if args.vectors is None:  # both when possible; envpool only for the envs it stands in for
        vectors = tuple(v for v in available_vectors() if v == "gymnasium" or args.env_id in ENVPOOL_IDS)
    else:
        vectors = tuple(dict.fromkeys(args.vectors))
        if "envpool" in vectors:
            check_envpool_env(args.env_id)  # not installed / no counterpart: one line, exit 2
    report = run_throughput(args.env_id, algos, args.max_workers, args.seconds, overrides,
                            log=lambda m: print(m, file=sys.stderr), backends=tuple(dict.fromkeys(args.backends)),
                            ray_nodes=tuple(dict.fromkeys(args.ray_nodes)), vectors=vectors)
    atomic_write_json(args.out, report)
    print(format_table(report))
    print(f"report: {args.out}")
    return 0


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise AsyncDQNError(f"--{name} must be >= 1, got {value}")


def _non_negative(name: str, value: int) -> None:
    if value < 0:
        raise AsyncDQNError(f"--{name} must be >= 0, got {value}")


def cmd_train(args: argparse.Namespace) -> int:
    from asyncdqn.config import FIELDS, resolve_config
    from asyncdqn.evaluate import summary

    overrides = {k: v for k, v in vars(args).items() if k in FIELDS}
    if not args.resume:  # bad options and runs this machine cannot hold: refused before torch is even imported
        from asyncdqn.envs import inspect_env
        from asyncdqn.presets import preset_algo_note
        from asyncdqn.resources import check_resources

        resolved = resolve_config(overrides)
        if (note := preset_algo_note(resolved.env_id, overrides)) is not None:
            print(f"asyncdqn: {note}", file=sys.stderr)
        spec = inspect_env(resolved.env_id, resolved.max_episode_steps, resolved.env_kwargs)
        check_resources(resolved, spec.obs_dim, spec.n_actions, obs_shape=spec.shape)
    from asyncdqn.trainer import Trainer

    trainer = Trainer.resume(args.resume, overrides) if args.resume else Trainer(resolve_config(overrides))
    cfg = trainer.cfg
    result = trainer.run()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    fe = result.final_eval
    print(f"run directory: {result.run_dir}")
    print(f"stopped: {result.stop_reason} after {result.total_steps:,} env steps in {result.wall_time_s:.1f} s "
          f"({result.steps_per_second:,.0f} steps/s)")
    if result.solved:
        se = result.solve_eval or {}
        print(f"SOLVED in {result.time_to_solve_s:.1f} s, {result.steps_to_solve:,} env steps: greedy mean "
              f"{se.get('mean', float('nan')):.1f} ± {se.get('std', float('nan')):.1f} over {se.get('episodes')} episodes "
              f">= {cfg.solve_score}")
    elif cfg.solve_score is not None:
        print(f"not solved (target {cfg.solve_score})")
    if result.best_eval:
        b = result.best_eval
        print(f"best evaluation: {summary(b)} at step {b['step']:,}")
    which = "final weights" if cfg.average_steps is None else "final averaged weights (--average-steps)"
    print(f"{which}, {_acting(cfg.eval_epsilon)}: {summary(fe)}")
    if result.worker_restarts:
        print(f"worker restarts: {len(result.worker_restarts)} (see eval.json)")
    return 0


def _acting(eval_epsilon: float) -> str:
    """How evaluations act: 'greedy', or 'epsilon 0.05' (--eval-epsilon)."""
    return "greedy" if eval_epsilon == 0.0 else f"epsilon {eval_epsilon:g}"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from asyncdqn.evaluate import summary
    from asyncdqn.policy import load_policy

    _positive("episodes", args.episodes)
    _non_negative("seed", args.seed)
    if args.epsilon is not None and not 0.0 <= args.epsilon <= 1.0:
        raise AsyncDQNError(f"--epsilon must be in [0, 1], got {args.epsilon}")
    policy = load_policy(args.run_dir, args.checkpoint)
    eps = policy.config.eval_epsilon if args.epsilon is None else args.epsilon
    res = policy.evaluate(args.episodes, args.seed, epsilon=eps)
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
    elif not res.complete:
        print(f"{policy.env_id} [{args.checkpoint}] {_acting(eps)}: {summary(res.to_dict())}")
    else:
        print(f"{policy.env_id} [{args.checkpoint}] {_acting(eps)} over {res.episodes} episodes: "
              f"mean {res.mean:.2f} ± {res.std:.2f} (min {min(res.returns):.1f}, max {max(res.returns):.1f})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from asyncdqn.report.plotting import plot_runs
    from asyncdqn.rundir.layout import CURVE

    _positive("window", args.window)
    out = args.out or (str(Path(args.run_dirs[0]) / CURVE) if len(args.run_dirs) == 1 else "comparison.png")
    try:
        path = plot_runs(args.run_dirs, out, window=args.window)
    except (FileNotFoundError, ValueError) as exc:
        raise AsyncDQNError(str(exc)) from None
    print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from asyncdqn.report.compare import compare

    png, md, _ = compare(args.run_dirs, args.out)
    print(md.read_text(), end="")
    print(f"figure: {png}\ntable: {md}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from asyncdqn.policy import load_policy
    from asyncdqn.report.render import render_video

    for name in ("episodes", "fps", "max_steps"):
        _positive(name.replace("_", "-"), getattr(args, name))
    _non_negative("seed", args.seed)
    policy = load_policy(args.run_dir, args.checkpoint)
    path, returns = render_video(policy, policy.env_id, args.out, episodes=args.episodes, seed=args.seed,
                               fps=args.fps, max_steps=args.max_steps,
                               env_kwargs=policy.config.env_kwargs)
    print(f"{path}: {len(returns)} episode(s), returns " + ", ".join(f"{r:.1f}" for r in returns))
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "plot": cmd_plot, "render": cmd_render,
            "bench": cmd_bench, "compare": cmd_compare, "tune": cmd_tune}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TrainingError as exc:  # the run itself failed (dead worker, divergence)
        print(f"asyncdqn: training failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except AsyncDQNError as exc:  # bad input
        print(f"asyncdqn: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # unwritable output, full disk, ...
        where = exc.filename2 or exc.filename
        print(f"asyncdqn: error: {exc.strerror or exc}" + (f": {where}" if where else ""), file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, Terminated) as exc:  # 130 for SIGINT, 143 for SIGTERM
        print(f"asyncdqn: interrupted ({'SIGINT' if isinstance(exc, KeyboardInterrupt) else exc})", file=sys.stderr)
        return exit_code_for(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""`asyncdqn tune`: hyper-parameter search with Optuna (the optional `tune` extra).

    asyncdqn tune --env MountainCar-v0 --algo dqn --trials 20 --jobs 2 --max-steps 150000

* Search space: one per algorithm family (`SPACES`: the asynchronous learners and the
  replay `dqn`), over the options a preset sets.
* Each trial trains what `asyncdqn train --env E --algo A` resolves to, with the sampled
  options and the fixed ones (--set) on top, in a subprocess of its own (its run
  directory in OUT/trials/), for every seed of --seed-list (default 100: choose
  settings on seeds the benchmark does not use, which are 0-4).
* Objective: `time` (seconds to solve; unsolved = the time budget), `steps` (env steps
  to solve; unsolved = the step budget) - both minimised - or `auc` (area under the
  greedy-evaluation curve: the mean over the evaluation grid of the latest greedy
  mean, a solved run keeping its solving score; maximised). Averaged over seeds.
* Pruning: every greedy evaluation the first seed's run writes to metrics.csv is
  reported to the trial (as the greedy mean, negated for the minimised objectives, at
  the index of its evaluation-grid point); a trial the median pruner stops gets
  SIGTERM (the run writes its final checkpoint) and counts as pruned.
* Parallel trials: --jobs (at most the CPU cores); each asynchronous trial gets
  cores // jobs workers unless --set workers=N.
* Resumable: the study lives in OUT/study.db (SQLite); running the same command again
  continues until --trials trials have finished. Trials of a killed tuner are marked
  failed by Optuna's heartbeat once stale.
* Output: OUT/trials.md (a table of trials), OUT/best_preset.py (the best trial's
  options as a Python dict literal ready for presets.py) and OUT/tune.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asyncdqn.errors import AsyncDQNError, ConfigError
from asyncdqn.rundir.fileio import atomic_write_json

OBJECTIVES = ("time", "steps", "auc")
STUDY_DB = "study.db"


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise AsyncDQNError("asyncdqn tune needs Optuna; install the tune extra: pip install 'asyncdqn[tune]'") \
            from None
    return optuna


# ------------------------------------------------------------ search spaces
# Each entry: name -> ("log", low, high) | ("int-log", low, high) | ("cat", [choices]).
# Categorical values are strings or numbers (Optuna's rule); "AxB" widths become hidden_sizes,
# "a/b/c" epsilon sets become final_epsilons (with FINAL_EPS_PROBS).
ASYNC_SPACE: dict[str, tuple[Any, ...]] = {
    "lr": ("log", 1e-4, 4e-3),
    "gamma": ("cat", [0.98, 0.99, 0.995]),
    "t_max": ("cat", [5, 10, 20]),
    "target_update_steps": ("cat", [500, 1000, 2000, 4000, 8000]),
    "eps_anneal_steps": ("int-log", 10_000, 300_000),
    "final_epsilons": ("cat", ["0.1/0.01/0.5", "0.05/0.01/0.1", "0.07/0.01/0.1"]),
    "hidden_sizes": ("cat", ["64x64", "128x128", "256x256"]),
    "envs_per_worker": ("cat", [1, 4, 8, 16]),
    "grad_clip": ("cat", [1.0, 10.0]),
}
DQN_SPACE: dict[str, tuple[Any, ...]] = {
    "lr": ("log", 1e-4, 5e-3),
    "gamma": ("cat", [0.98, 0.99, 0.995]),
    "batch_size": ("cat", [32, 64, 128]),
    "buffer_size": ("cat", [10_000, 50_000, 100_000]),
    "target_update_steps": ("cat", [250, 600, 1000, 2000, 4000]),
    "train_freq": ("cat", [1, 4, 16]),
    "gradient_steps": ("cat", [1, 2, 8]),
    "n_step": ("cat", [1, 3]),
    "final_epsilons": ("cat", ["0.01", "0.05", "0.07", "0.1"]),
    "eps_anneal_steps": ("int-log", 5_000, 100_000),
    "hidden_sizes": ("cat", ["64x64", "128x128", "256x256"]),
    "learning_starts": ("cat", [1_000, 5_000]),
    "double_q": ("cat", [True, False]),
}
SPACES = {"n-step-q": ASYNC_SPACE, "one-step-q": {**ASYNC_SPACE, "t_max": ("cat", [1, 5, 10])},
          "one-step-sarsa": {**ASYNC_SPACE, "t_max": ("cat", [1, 5, 10])}, "dqn": DQN_SPACE}
FINAL_EPS_PROBS = {1: (1.0,), 3: (0.4, 0.3, 0.3)}


def sample(trial: Any, algo: str, fixed: Sequence[str] = ()) -> dict[str, Any]:
    """Options for one trial, drawn from the algorithm's space (as Config values); `fixed` options are not searched."""
    out: dict[str, Any] = {}
    for name, spec in SPACES[algo].items():
        if name in fixed or (name == "final_epsilons" and "final_epsilon_probs" in fixed):
            continue
        kind = spec[0]
        if kind == "log":
            out[name] = trial.suggest_float(name, spec[1], spec[2], log=True)
        elif kind == "int-log":
            out[name] = trial.suggest_int(name, spec[1], spec[2], log=True)
        else:
            out[name] = trial.suggest_categorical(name, spec[1])
    return to_config_values(out)


def to_config_values(params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's flat values -> Config values (widths and epsilon sets decoded)."""
    out = dict(params)
    if isinstance(out.get("hidden_sizes"), str):
        out["hidden_sizes"] = [int(w) for w in out["hidden_sizes"].split("x")]
    if isinstance(out.get("final_epsilons"), str):
        eps = [float(e) for e in out["final_epsilons"].split("/")]
        out["final_epsilons"] = eps
        out["final_epsilon_probs"] = list(FINAL_EPS_PROBS[len(eps)])
    return out


# ------------------------------------------------------------ objective math
@dataclass
class RunOutcome:
    solved: bool
    time_to_solve_s: float | None
    steps_to_solve: int | None
    wall_time_s: float
    total_steps: int
    evals: list[tuple[int, float]] = field(default_factory=list)  # (env step, greedy mean)
    stop_reason: str = ""


def auc(evals: Sequence[tuple[int, float]], every: int, points: int) -> float:
    """Area under the greedy curve, as a mean over the evaluation grid 1..`points` (grid point k =
    env step k x `every`): at each point the latest greedy mean evaluated in or before that grid
    interval (step // every <= k). Before the first evaluation the run's worst evaluation counts;
    a run that stopped early (solved) keeps its last value for the rest of the grid."""
    if points < 1 or every < 1:
        raise ValueError("empty evaluation grid")
    if not evals:
        raise ValueError("no greedy evaluation to integrate")
    ordered = sorted(evals)
    total, i, last = 0.0, 0, min(m for _, m in ordered)
    for k in range(1, points + 1):
        while i < len(ordered) and ordered[i][0] // every <= k:
            last = ordered[i][1]
            i += 1
        total += last
    return total / points


def objective_value(kind: str, outcome: RunOutcome, budget_s: float | None, budget_steps: int | None,
                    every: int | None = None) -> float:
    """One run's objective (unsolved time/steps count as the budget)."""
    if kind == "time":
        if outcome.solved and outcome.time_to_solve_s is not None:
            return float(outcome.time_to_solve_s)
        return float(budget_s if budget_s is not None else outcome.wall_time_s)
    if kind == "steps":
        if outcome.solved and outcome.steps_to_solve is not None:
            return float(outcome.steps_to_solve)
        return float(budget_steps if budget_steps is not None else outcome.total_steps)
    if every is None or budget_steps is None:
        raise ValueError("the auc objective needs an evaluation grid and a step budget")
    return auc(outcome.evals, every, budget_steps // every)


def eval_rows(metrics: Path, start: int = 0) -> tuple[list[tuple[int, float]], int]:
    """Greedy evaluations in metrics.csv from byte offset `start`: ([(step, mean)], new offset).

    Only complete lines are read (the trainer may be writing the file)."""
    try:
        with open(metrics, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return [], start
    end = data.rfind(b"\n") + 1
    rows = []
    for line in data[:end].decode().splitlines():
        if line.startswith("eval,"):
            rec = next(csv.reader([line]))
            rows.append((int(rec[1]), float(rec[7])))
    return rows, start + end


# ------------------------------------------------------------------ the study
@dataclass(frozen=True)
class TuneSpec:
    env_id: str
    algo: str
    objective: str = "time"
    trials: int = 20
    jobs: int = 1
    seeds: tuple[int, ...] = (100,)
    max_seconds: float | None = None  # None: the preset's
    max_steps: int | None = None  # None: the preset's
    eval_every_steps: int | None = None  # None: the preset's
    fixed: dict[str, Any] = field(default_factory=dict)  # --set options over the preset, not searched
    pruning: bool = True
    startup_trials: int = 4  # trials the pruner lets finish before it compares

    def study_name(self) -> str:
        return f"{self.env_id}-{self.algo}-{self.objective}"


def base_options(spec: TuneSpec) -> dict[str, Any]:
    """The resolved preset with the tuner's budget and fixed options (validated)."""
    from asyncdqn.config import resolve_config

    over: dict[str, Any] = {"env_id": spec.env_id, "algo": spec.algo, **spec.fixed}
    for key in ("max_seconds", "max_steps", "eval_every_steps"):
        if getattr(spec, key) is not None:
            over[key] = getattr(spec, key)
    cfg = resolve_config(over)
    if cfg.solve_score is None and spec.objective != "auc":
        raise ConfigError(f"solve_score: {spec.env_id} has no solve score; give --set solve_score=X or --objective auc")
    if spec.objective == "auc" and (cfg.max_steps is None or cfg.eval_every_steps is None):
        raise ConfigError("objective auc needs --max-steps and an --eval-every-steps grid")
    if cfg.eval_every_steps is None and spec.pruning:
        raise ConfigError("pruning needs periodic evaluations: set --eval-every-steps (or --no-pruning)")
    return cfg.to_dict()


def trial_workers(spec: TuneSpec, cores: int) -> int:
    return max(1, cores // max(1, spec.jobs))


class Tuner:
    def __init__(self, spec: TuneSpec, out: Path, log: Callable[[str], None] = print) -> None:
        if spec.algo not in SPACES:
            raise ConfigError(f"algo: no search space for {spec.algo!r}; known: {', '.join(SPACES)}")
        if spec.objective not in OBJECTIVES:
            raise ConfigError(f"objective: {spec.objective!r} is not one of {', '.join(OBJECTIVES)}")
        cores = os.cpu_count() or 1
        if spec.jobs > cores:
            raise ConfigError(f"jobs: {spec.jobs} parallel trials exceed the {cores} CPU cores")
        self.spec, self.out, self.log = spec, out, log
        self.base = base_options(spec)
        self.workers = trial_workers(spec, cores)
        self.optuna = _optuna()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "trials").mkdir(exist_ok=True)
        o = self.optuna
        o.logging.set_verbosity(o.logging.WARNING)
        warnings.filterwarnings("ignore", category=o.exceptions.ExperimentalWarning)  # the heartbeat's
        storage = o.storages.RDBStorage(f"sqlite:///{(self.out / STUDY_DB).resolve()}", heartbeat_interval=10,
                                        grace_period=30, engine_kwargs={"connect_args": {"timeout": 60}})
        pruner = (o.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=1)
                  if spec.pruning else o.pruners.NopPruner())
        direction = "maximize" if spec.objective == "auc" else "minimize"
        self.study = o.create_study(storage=storage, study_name=spec.study_name(), direction=direction,
                                    load_if_exists=True, pruner=pruner,
                                    sampler=o.samplers.TPESampler(seed=0))
        # a resumed study draws new points: the sampler's seed advances with the trials already there
        self.study.sampler = o.samplers.TPESampler(seed=len(self.study.get_trials(deepcopy=False)))
        self.study.set_user_attr("spec", {**asdict(self.spec), "seeds": list(self.spec.seeds)})
        self._lock = threading.Lock()

    # ------------------------------------------------------------ one trial
    def objective(self, trial: Any) -> float:
        params = sample(trial, self.spec.algo, tuple(self.spec.fixed))
        values = []
        for k, seed in enumerate(self.spec.seeds):
            outcome = self._run(trial, params, seed, report=(k == 0))
            if outcome is None:  # pruned
                raise self.optuna.TrialPruned()
            v = objective_value(self.spec.objective, outcome, self.base["max_seconds"], self.base["max_steps"],
                                self.base["eval_every_steps"])
            trial.set_user_attr(f"seed{seed}", {**asdict(outcome), "value": v})
            values.append(v)
        return float(sum(values) / len(values))

    def _run(self, trial: Any, params: dict[str, Any], seed: int, report: bool) -> RunOutcome | None:
        run_dir = self.out / "trials" / f"trial{trial.number:04d}-seed{seed}"
        opts = {**self.base, **params, "seed": seed, "run_dir": str(run_dir), "progress": False,
                "label": f"trial {trial.number} seed {seed}", "checkpoint_every": None}
        if self.spec.algo != "dqn" and "workers" not in self.spec.fixed:
            opts["workers"] = self.workers
        result_file = run_dir.with_suffix(".json")
        cmd = [sys.executable, "-m", "asyncdqn.tune", "--child", json.dumps(opts), str(result_file)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        err_lines: list[str] = []
        reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr or []), daemon=True)
        reader.start()
        offset, every, pruned = 0, self.base["eval_every_steps"], False
        evals: list[tuple[int, float]] = []
        while proc.poll() is None:
            time.sleep(0.5)
            rows, offset = eval_rows(run_dir / "metrics.csv", offset)
            evals += rows
            if report and every:
                for step, mean in rows:
                    value = mean if self.spec.objective == "auc" else -mean
                    trial.report(value, step // every)
                if rows and trial.should_prune():
                    pruned = True
                    proc.send_signal(signal.SIGTERM)  # the run stops cleanly (final checkpoint, exit 143)
                    try:
                        proc.wait(60)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                    break
        reader.join(5)
        if pruned:
            with self._lock:
                self.log(f"trial {trial.number} seed {seed}: pruned at {evals[-1][0]:,} steps "
                         f"(greedy {evals[-1][1]:.1f})")
            return None
        if proc.returncode != 0 or not result_file.exists():
            tail = " | ".join(line.strip() for line in err_lines[-3:])
            raise AsyncDQNError(f"trial {trial.number} seed {seed} failed (exit {proc.returncode}): {tail}")
        r = json.loads(result_file.read_text())
        outcome = RunOutcome(r["solved"], r["time_to_solve_s"], r["steps_to_solve"], r["wall_time_s"],
                             r["total_steps"], [(int(s), float(m)) for s, m in r["evals"]], r["stop_reason"])
        with self._lock:
            what = (f"solved in {outcome.time_to_solve_s:.1f} s / {outcome.steps_to_solve:,} steps" if outcome.solved
                    else f"not solved ({outcome.stop_reason}, {outcome.total_steps:,} steps)")
            self.log(f"trial {trial.number} seed {seed}: {what}")
        return outcome

    # ----------------------------------------------------------------- driver
    def finished(self) -> int:
        states = self.optuna.trial.TrialState
        return sum(t.state in (states.COMPLETE, states.PRUNED) for t in self.study.get_trials(deepcopy=False))

    def run(self) -> dict[str, Any]:
        todo = self.spec.trials - self.finished()
        if todo > 0:
            self.log(f"study {self.spec.study_name()} in {self.out / STUDY_DB}: {self.finished()} trial(s) done, "
                     f"running {todo} ({self.spec.jobs} at a time, {self.workers} worker(s) each for async)")
            states = self.optuna.trial.TrialState
            stop = self.spec.trials

            def enough(study: Any, _: Any) -> None:  # with parallel jobs, stop once the total is reached
                if sum(t.state in (states.COMPLETE, states.PRUNED) for t in study.get_trials(deepcopy=False)) >= stop:
                    study.stop()

            self.study.optimize(self.objective, n_trials=todo, n_jobs=self.spec.jobs, callbacks=[enough],
                                catch=(AsyncDQNError,))
        return self.report()

    def report(self) -> dict[str, Any]:
        trials = self.study.get_trials(deepcopy=False)
        rows = [{"number": t.number, "state": t.state.name, "value": t.value, "params": to_config_values(t.params),
                 "last_step": t.last_step} for t in trials]
        complete = [t for t in trials if t.state.name == "COMPLETE"]
        best = self.study.best_trial if complete else None
        snippet = preset_snippet(self.spec, to_config_values(best.params), best.value) if best else ""
        out = {"study": self.spec.study_name(), "storage": str(self.out / STUDY_DB), "objective": self.spec.objective,
               "spec": {**asdict(self.spec), "seeds": list(self.spec.seeds)}, "trials": rows,
               "best": None if best is None else {"number": best.number, "value": best.value,
                                                  "params": to_config_values(best.params)},
               "preset_snippet": snippet}
        atomic_write_json(self.out / "tune.json", out)
        table = trials_table(rows, self.spec.objective)
        (self.out / "trials.md").write_text(table + "\n")
        (self.out / "best_preset.py").write_text(snippet + "\n")
        out["table"] = table
        return out


def trials_table(rows: list[dict[str, Any]], objective: str) -> str:
    keys = sorted({k for r in rows for k in r["params"]})
    unit = {"time": "s to solve", "steps": "steps to solve", "auc": "greedy AUC"}[objective]
    lines = [f"| trial | state | {unit} | " + " | ".join(keys) + " |", "|---|---|---|" + "---|" * len(keys)]
    for r in rows:
        v = "—" if r["value"] is None else f"{r['value']:,.1f}"
        cells = [_fmt(r["params"].get(k)) for k in keys]
        lines.append(f"| {r['number']} | {r['state'].lower()} | {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list):
        return " ".join(_fmt(x) for x in v)
    return str(v)


def preset_snippet(spec: TuneSpec, params: dict[str, Any], value: float | None) -> str:
    """The best trial's options as a dict entry for presets.py (tuples for the tuple fields)."""
    from asyncdqn.rundir.resume import RESUMABLE

    key = f"({spec.env_id!r}, {spec.algo!r})" if spec.algo == "dqn" else repr(spec.env_id)
    where = "ALGO_PRESETS" if spec.algo == "dqn" else "ENV_PRESETS (or ALGO_PRESETS with the algo)"
    lines = [f"# {where}: found by `asyncdqn tune` ({spec.objective} objective, best value "
             f"{'n/a' if value is None else format(value, '.4g')}, seeds {list(spec.seeds)})",
             f"{key}: {{"]
    merged = {k: v for k, v in {**spec.fixed, **params}.items() if k not in RESUMABLE and k not in _NOT_PRESET}
    for k in sorted(merged):
        v = merged[k]
        if isinstance(v, list):
            v = tuple(v)
        elif isinstance(v, float):
            v = float(f"{v:.3g}")
        lines.append(f"    {k!r}: {v!r},")
    lines.append("},")
    return "\n".join(lines)


# Options that describe where or how a run executes, not how it learns: never part of a preset.
_NOT_PRESET = ("backend", "workers", "run_dir", "runs_root", "seed", "label", "progress", "ray_address",
               "ray_pipeline", "start_timeout", "max_restarts")


def _child(options_json: str, result_file: str) -> int:
    """Train one trial's run and write its outcome (used by Tuner through a subprocess)."""
    from asyncdqn.rundir.fileio import atomic_write_json as write
    from asyncdqn.trainer import train

    opts = json.loads(options_json)
    r = train(opts)
    rows, _ = eval_rows(Path(opts["run_dir"]) / "metrics.csv")
    write(result_file, {"solved": r.solved, "time_to_solve_s": r.time_to_solve_s, "steps_to_solve": r.steps_to_solve,
                        "wall_time_s": r.wall_time_s, "total_steps": r.total_steps, "stop_reason": r.stop_reason,
                        "evals": rows})
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m asyncdqn.tune")
    ap.add_argument("--child", nargs=2, metavar=("OPTIONS_JSON", "RESULT_FILE"), required=True)
    a = ap.parse_args()
    sys.exit(_child(*a.child))

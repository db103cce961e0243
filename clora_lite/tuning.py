"""Tuning on the validation split: every point of a grid of settings, on one or more tuning seeds, scored by its
mean validation Last-Acc; then, optionally, the chosen settings on fresh test seeds.

    python -m clora_lite tune --method clora --benchmark synthetic_inverted --grid lr=3e-4,1e-3,3e-3 \\
        --grid first_lr_scale=1,10 --tune-seeds 0 --val-fraction 0.2 --test-seeds 1,2,3 --out runs/tune

OUT/trials/<setting>/seed<S>/   one run folder per trial (a rerun reads finished trials back, never retrains them)
OUT/trials.csv                  one row per trial: the settings, seed, validation Last-Acc, seconds
OUT/best.json                   the chosen settings, a file `run --config OUT/best.json` accepts
OUT/tuning.json                 the choice: grid, tuning seeds, every setting's mean score, winner and runner-up
OUT/test/seed<S>/               with --test-seeds: the chosen settings on seeds never used for tuning
Test accuracy plays no part in the choice. Ties go to the first setting in the grid's order.

Trials run one after another in this process, or, with workers > 1, in that many worker processes that take
trials from an Optuna study (pip install optuna): its storage queues every (setting, seed) pair and hands each
to one worker, through a journal file (OUT/optuna.log) or any Optuna storage URL. On a machine with GPUs worker
k uses cuda:(k mod GPUs); on a cluster, run the same command on each node with one --storage URL they all
reach (e.g. a PostgreSQL database) and they share the trials. The choice is then made here, from the trials' run folders, exactly as
without workers. We picked Optuna over Ray Tune because its storage is all that several processes or machines
need to share a grid: no cluster to start, one light package.
"""
import csv
import dataclasses
import itertools
from pathlib import Path
import statistics

from .continual.config import Config
from .continual.loop import run
from .env import atomic_write, write_json
from .errors import ConfigError


def parse_grid(items: list) -> dict:
    """["lr=1e-3,3e-4", "rank=4,8"] -> {"lr": [0.001, 0.0003], "rank": [4, 8]}, each value of the field's type."""
    kinds = {f.name: f.metadata["kind"] or type(f.default) for f in dataclasses.fields(Config)}
    grid = {}
    for item in items:
        name, _, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if name not in kinds or not values:
            raise ConfigError(f"grid={item!r} is not allowed: use NAME=V1,V2,... with NAME a run setting "
                              "(e.g. lr=1e-3,3e-4)")
        if name in ("seed", "val_fraction"):
            raise ConfigError(f"grid={item!r} is not allowed: seeds come from --tune-seeds, and the validation "
                              "split is fixed while tuning")
        kind = kinds[name]
        try:
            if kind is bool:
                grid[name] = [{"true": True, "false": False}[v.strip().lower()] for v in values.split(",")]
            else:
                grid[name] = [kind(v.strip()) for v in values.split(",")]
        except (ValueError, KeyError):
            raise ConfigError(f"grid={item!r} is not allowed: its values must be of {name}'s type "
                              f"({getattr(kind, '__name__', kind)})") from None
    if not grid:
        raise ConfigError("grid is empty: give at least one --grid NAME=V1,V2,...")
    return grid


def grid_points(grid: dict) -> list:
    """Every combination of the grid's values, in order (the first name varies slowest)."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def setting_name(point: dict) -> str:
    """{"lr": 0.001, "rank": 4} -> "lr=0.001_rank=4"; "default" for the empty point (a grid of one setting)."""
    return "_".join(f"{k}={v}" for k, v in point.items()).replace("/", "-") or "default"


def trial_folder(out: Path, point: dict, seed: int) -> Path:
    return out / "trials" / setting_name(point) / f"seed{seed}"


def run_with_workers(configs: list, folders: list, workers: int, storage: str) -> None:
    """Run every config into its folder in `workers` processes that take trials from one Optuna study."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(f"workers={workers} is not allowed here: it needs Optuna (pip install optuna); "
                          "or use workers=1") from None
    import multiprocessing
    study = optuna.create_study(study_name="clora_lite_tune", storage=_storage(storage), load_if_exists=True)
    done = {t.params.get("trial") for t in study.trials if t.state.name in ("COMPLETE", "WAITING", "RUNNING")}
    for i in range(len(configs)):   # a queue of every trial: the storage hands each one to exactly one worker
        if i not in done:
            study.enqueue_trial({"trial": i})
    context = multiprocessing.get_context("spawn")   # fresh processes: no fork of a torch runtime
    jobs = [context.Process(target=_worker, args=(k, configs, folders, storage, study.study_name))
            for k in range(workers)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    failed = [job.exitcode for job in jobs if job.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} of {workers} tuning workers failed (exit codes {failed})")


def _storage(url: str):
    import optuna
    if "://" in url:
        return url
    from optuna.storages.journal import JournalFileBackend
    return optuna.storages.JournalStorage(JournalFileBackend(url))


def _worker(k: int, configs: list, folders: list, storage: str, name: str) -> None:
    import optuna
    import torch
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if torch.cuda.is_available():
        configs = [dataclasses.replace(c, device=f"cuda:{k % torch.cuda.device_count()}") for c in configs]
    else:
        torch.set_num_threads(1)   # workers share the cores
    study = optuna.load_study(study_name=name, storage=_storage(storage))
    while True:
        trial = study.ask()
        queued = trial.storage.get_trial_system_attrs(trial._trial_id).get("fixed_params")   # Optuna's record
        if queued is None:   # the queue is empty: every trial has been handed out
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return
        i = trial.suggest_categorical("trial", list(range(len(configs))))
        study.tell(trial, run(configs[i], folders[i], progress=False, log=lambda s: None)["val_last_acc"])


def tune(base: Config, grid: dict, out, tune_seeds=(0,), test_seeds=(), progress=False, log=print,
         workers: int = 1, storage: str | None = None) -> dict:
    """Train every grid point on every tuning seed (validation split: base.val_fraction > 0), choose the best mean
    validation Last-Acc, write trials.csv, best.json and tuning.json into out; then run the choice on test_seeds.
    workers > 1: the trials run in that many processes first, through Optuna (see the module docstring).
    Returns tuning.json's contents."""
    if base.val_fraction <= 0:
        raise ConfigError("val_fraction=0 is not allowed for tune: hold out a validation split, e.g. 0.2")
    if set(tune_seeds) & set(test_seeds):
        raise ConfigError(f"test_seeds={','.join(map(str, test_seeds))} is not allowed: they overlap the tuning "
                          f"seeds {','.join(map(str, tune_seeds))}; test on seeds never used for tuning")
    out = Path(out)
    points = grid_points(grid)
    configs = [[dataclasses.replace(base, **p, seed=s) for s in tune_seeds] for p in points]   # checked up front
    for row in configs:
        for c in row:
            Config.from_dict(c.to_dict())
    out.mkdir(parents=True, exist_ok=True)
    if workers > 1:
        flat = [(p, c) for p, row in zip(points, configs) for c in row]
        run_with_workers([c for _, c in flat], [trial_folder(out, p, c.seed) for p, c in flat], workers,
                         storage or str(out / "optuna.log"))
    rows, scores = [], []
    for point, row in zip(points, configs):
        vals = []
        for cfg in row:
            r = run(cfg, trial_folder(out, point, cfg.seed), progress=progress, log=lambda s: None)
            vals.append(r["val_last_acc"])
            rows.append({**point, "seed": cfg.seed, "val_last_acc": r["val_last_acc"],
                         "seconds": round(sum(r["task_seconds"]), 1)})
            log(f"{setting_name(point)} seed {cfg.seed}: validation Last-Acc {r['val_last_acc']:.2f} %")
        scores.append(statistics.fmean(vals))
    _write_csv(out / "trials.csv", rows)
    order = sorted(range(len(points)), key=lambda i: (-scores[i], i))   # ties: the first in the grid
    best = points[order[0]]
    chosen = dataclasses.replace(base, **best)
    write_json(out / "best.json", {k: v for k, v in chosen.to_dict().items() if k != "seed"})
    summary = {"method": base.method, "benchmark": base.benchmark, "grid": grid, "tune_seeds": list(tune_seeds),
               "scores": [{"settings": p, "val_last_acc": s} for p, s in zip(points, scores)],
               "best": {"settings": best, "val_last_acc": scores[order[0]]},
               "runner_up": None if len(order) < 2 else {"settings": points[order[1]],
                                                         "val_last_acc": scores[order[1]]}}
    log(f"best: {setting_name(best)}, validation Last-Acc {scores[order[0]]:.2f} % (mean over seeds "
        f"{','.join(map(str, tune_seeds))})" + ("" if len(order) < 2 else
        f"; runner-up {setting_name(points[order[1]])}: {scores[order[1]]:.2f} %"))
    if test_seeds:
        tests = [run(dataclasses.replace(chosen, seed=s), out / "test" / f"seed{s}", progress=progress,
                     log=lambda s: None)["last_acc"] for s in test_seeds]
        spread = statistics.stdev(tests) if len(tests) > 1 else 0.0
        summary["test"] = {"seeds": list(test_seeds), "last_acc": tests, "mean": statistics.fmean(tests),
                           "std": spread}
        log(f"test Last-Acc on seeds {','.join(map(str, test_seeds))}: {statistics.fmean(tests):.1f} ± "
            f"{spread:.1f} %")
    write_json(out / "tuning.json", summary)
    return summary


def _write_csv(path: Path, rows: list) -> None:
    def write(p):
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    atomic_write(path, write)

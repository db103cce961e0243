"""Tuning on the validation split: every point of a grid of settings, on one or more tuning seeds, scored by its
mean validation Last-Acc; then, optionally, the chosen settings on fresh test seeds.

    python -m clora_lite tune --method clora --benchmark synthetic_inverted --grid lr=3e-4,1e-3,3e-3 \\
        --grid first_lr_scale=1,10 --tune-seeds 0 --val-fraction 0.2 --test-seeds 1,2,3 --out runs/tune

OUT/trials/<setting>/seed<S>/   one run folder per trial (a rerun reads finished trials back, never retrains them)
OUT/trials.csv                  one row per trial: the settings, seed, validation Last-Acc, seconds
OUT/best.json                   the chosen settings, a file `run --config OUT/best.json` accepts
OUT/tuning.json                 the choice: grid, tuning seeds, every setting's mean score, winner and runner-up
OUT/test/seed<S>/               with --test-seeds: the chosen settings on seeds never used for tuning
Test accuracy plays no part in the choice. Ties go to the first setting in the grid's order. Trials run one after
another in this process.
"""
import csv
import dataclasses
import itertools
import json
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
    return "_".join(f"{k}={v}" for k, v in point.items()).replace("/", "-")


def tune(base: Config, grid: dict, out, tune_seeds=(0,), test_seeds=(), progress=False, log=print) -> dict:
    """Train every grid point on every tuning seed (validation split: base.val_fraction > 0), choose the best mean
    validation Last-Acc, write trials.csv, best.json and tuning.json into out; then run the choice on test_seeds.
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
    rows, scores = [], []
    for point, row in zip(points, configs):
        vals = []
        for cfg in row:
            r = run(cfg, out / "trials" / setting_name(point) / f"seed{cfg.seed}", progress=progress,
                    log=lambda s: None)
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

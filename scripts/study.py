"""The headroom study: every method on five protocols where adapting pays, tuned on validation, tested on 3 seeds.

    OMP_NUM_THREADS=2 python scripts/study.py --benches domains    # one protocol: tune, test, table
    python scripts/study.py --table-only                          # rebuild the table from runs/study
    python scripts/study.py --benches domains --ship              # and merge it into data/headroom_study.json

Each row of the table is one call of `clora_lite.tuning.tune` (the `tune` command) into runs/study/<bench>/<label>/:
every setting of the row's grid is trained on the validation split of the tuning seeds (default 0), the best mean
validation Last-Acc is chosen (ties: the first in the grid), and the choice runs on the test seeds (default 1, 2,
3: never a tuning seed, since a setting that won on seed 0's validation split tends to be lucky on seed 0's test
split too). Test accuracy plays no part in any choice. Ablation rows are not tuned: they borrow the choices of
other rows (a one-point grid). Everything is resumable: tune reads finished run folders back, never reruns them.
With --workers N the trials of each row run in N processes through tune's Optuna engine (pip install optuna).

Then runs/study/table.md and runs/study/summary.json: per protocol and row, test Last-Acc, forgetting and
validation Last-Acc as mean +- std over the test seeds, the chosen settings, and the share of the joint - frozen gap
recovered, (row - frozen) / (joint - frozen), paired on the same seeds.

Every method has the same budget per protocol (BENCHES: images, epochs, batch) and the kit's head alignment.
Cost on 2 CPU cores (vit_tiny, 32 px): 5 to 60 s per run; the four older protocols are about 470 runs, about 3 hours
(fashion_1k alone about 1.6 hours); domains is about 75 runs.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clora_lite import Config  # noqa: E402
from clora_lite.tuning import tune  # noqa: E402

BENCHES = {
    # 5 tasks x 2 classes of Fashion-MNIST (Debian's dataset-fashion-mnist): 200 training images per class, of
    # which 20 % are validation, 200 test images per class, 10 epochs per task
    "fashion": dict(benchmark="split_fashion_mnist", tasks=5, train_per_class=200, test_per_class=200, epochs=10,
                    batch=64, val_fraction=0.2),
    # the same images in the literature's "B-m Inc-n" protocol (e.g. CIFAR-100 B50 Inc10): a first task of 4
    # classes, then 3 tasks of 2. Added AFTER the 200-image 5 x 2 protocol above showed no gain for any method, so
    # it is reported as a second protocol beside that one, never in its place
    "fashion_b4": dict(benchmark="split_fashion_mnist", tasks=4, task_sizes=(4, 2, 2, 2), train_per_class=200,
                       test_per_class=200, epochs=10, batch=64, val_fraction=0.2),
    # 5 x 2 again with 5 times the images per class (1000, 20 % validation): 250 optimiser steps per task instead of
    # 50. Added AFTER the 200-image 5 x 2 showed no gain, to test why (docs/headroom_study.md): 50 steps of a 2-class
    # task leave little to learn, while joint training earns its 9 points over 250 steps of all 10 classes
    "fashion_1k": dict(benchmark="split_fashion_mnist", tasks=5, train_per_class=1000, test_per_class=200, epochs=10,
                       batch=64, val_fraction=0.2),
    # 5 tasks x 10 classes of the inverted synthetic images (far from vit_tiny's pre-training)
    "inverted": dict(benchmark="synthetic_inverted", tasks=5, classes=50, train_per_class=64, test_per_class=40,
                     epochs=3, batch=64, val_fraction=0.2),
    # 5 tasks x 10 classes, each task in its own domain (solarised, negative, ...): every task needs adapting,
    # and adapting to one must not undo the others. Added after the four above, where one shift is shared by all
    # tasks and later tasks barely move
    "domains": dict(benchmark="synthetic_domains", tasks=5, classes=50, train_per_class=64, test_per_class=40,
                    epochs=3, batch=64, val_fraction=0.2),
}

LRS = {"lr": [3e-4, 1e-3, 3e-3]}   # every adapting method gets the same learning-rate grid
WARM_DRIFT = {"lr": [1e-3, 3e-4], "first_lr_scale": [1.0, 3.0, 10.0, 30.0, 100.0], "drift_ridge": [0.1, 1.0, 10.0]}
# domains: 3 times the runs of inverted per setting, so a smaller grid for the two options
WARM_DRIFT_DOMAINS = {"lr": [3e-4, 1e-3], "first_lr_scale": [1.0, 10.0], "drift_ridge": [1.0, 10.0]}


def tuned_rows(bench: str) -> dict:
    """label -> (method, grid) of the rows tuned on validation for protocol `bench`."""
    warm_drift = WARM_DRIFT_DOMAINS if bench == "domains" else WARM_DRIFT
    rows = {"frozen": ("frozen", {}), "joint": ("joint", LRS), "seq_lora": ("seq_lora", LRS),
            "lora_per_task": ("lora_per_task", LRS), "inflora": ("inflora", LRS), "sdlora": ("sdlora", LRS),
            "clora": ("clora", LRS),   # the paper's method, as the kit reads it
            # ours: the paper's C-LoRA + first-task warm start + drift-compensated head alignment
            "clora_warm_drift": ("clora", warm_drift),
            # the same two additions on one shared LoRA, tuned on the same grid: does C-LoRA itself add anything?
            "seq_lora_warm_drift": ("seq_lora", warm_drift)}
    if bench == "domains":   # the literature's strongest simple baselines (run on this protocol only, so far)
        rows.update(first_session=("first_session", LRS), ncm=("ncm", {}))
    return rows


OPTIONS = ("first_lr_scale", "drift_ridge")
# label -> (method, chosen settings -> this row's settings): ablation rows, never tuned themselves. Not run on
# domains (its cost; domains tests the options on C-LoRA and one shared LoRA only).
ABLATIONS = {
    "clora_warm": ("clora", lambda ch: {k: v for k, v in ch["clora_warm_drift"].items() if k != "drift_ridge"}),
    "clora_drift": ("clora", lambda ch: {k: v for k, v in ch["clora_warm_drift"].items() if k != "first_lr_scale"}),
    # the same two additions on the peers (their own chosen lr, clora_warm_drift's warm start and ridge)
    **{f"{m}_warm_drift": (m, (lambda m: lambda ch: {**ch[m], **{k: ch["clora_warm_drift"][k] for k in OPTIONS}})(m))
       for m in ("inflora", "sdlora")},
}


def rows_of(bench: str) -> list:
    return list(tuned_rows(bench)) + ([] if bench == "domains" else list(ABLATIONS))


def base_config(bench: str, method: str, settings: dict | None = None) -> Config:
    return Config.from_dict({**BENCHES[bench], "method": method, **(settings or {})})


def read_json(path: Path, default=None):
    return json.loads(path.read_text()) if path.exists() else default


def run_rows(bench: str, out: Path, labels: list, tune_seeds, test_seeds, workers=1) -> None:
    """Tune and test each row of `labels` (tuned rows first: the ablations borrow their choices)."""
    rows = tuned_rows(bench)
    needed = [m for m in rows if m in labels or (m in ("clora_warm_drift", "inflora", "sdlora")
                                                 and set(labels) & set(ABLATIONS))]
    chosen = {}
    for label in needed:
        method, grid = rows[label]
        r = tune(base_config(bench, method), grid, out / bench / label, tune_seeds, test_seeds if label in labels
                 else (), log=lambda s, label=label: print(f"{bench} {label}: {s}", flush=True), workers=workers)
        chosen[label] = r["best"]["settings"]
    for label in (m for m in labels if m in ABLATIONS):
        method, make = ABLATIONS[label]
        tune(base_config(bench, method, make(chosen)), {}, out / bench / label, tune_seeds, test_seeds,
             log=lambda s, label=label: print(f"{bench} {label}: {s}", flush=True))


def _ms(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)   # no spread from 1 seed


def summarize(out: Path) -> dict:
    """Read every runs/study/<bench>/<label>/tuning.json and its test runs; write summary.json and table.md."""
    summary = {}
    for bdir in sorted(p for p in out.iterdir() if p.is_dir() and p.name in BENCHES):
        rows, chosen, tune_seeds = {}, {}, set()
        for tj in sorted(bdir.glob("*/tuning.json")):
            t, label = read_json(tj), tj.parent.name
            if "test" not in t:
                continue
            rows[label] = [read_json(tj.parent / "test" / f"seed{s}" / "results.json") for s in t["test"]["seeds"]]
            if t["grid"]:   # a tuned row (an ablation has an empty grid)
                chosen[label] = t["best"]["settings"]
            tune_seeds |= set(t["tune_seeds"])
        if not rows:
            continue
        by_seed = {label: {r["seed"]: r["last_acc"] for r in rs} for label, rs in rows.items()}
        stats = {}
        for label, rs in rows.items():
            t, ts = _ms([r["last_acc"] for r in rs])
            f, fs = _ms([r.get("forgetting") for r in rs])
            v, vs = _ms([r.get("val_last_acc") for r in rs])
            cfg = rs[0]["config"]
            s = {"test_last_mean": t, "test_last_std": ts, "forgetting_mean": f, "forgetting_std": fs,
                 "val_last_mean": v, "val_last_std": vs, "seeds": sorted(r["seed"] for r in rs),
                 "test_last_by_seed": [by_seed[label][x] for x in sorted(by_seed[label])],
                 "method": cfg["method"], "settings": {k: cfg[k] for k in ("lr", "first_lr_scale", "drift_ridge")},
                 "tuned_on_validation": label in chosen, "gap_fraction": None}
            # paired: frozen and joint averaged over the same seeds as this row
            seeds = [x for x in s["seeds"] if x in by_seed.get("frozen", {}) and x in by_seed.get("joint", {})]
            if seeds:
                f0 = statistics.mean(by_seed["frozen"][x] for x in seeds)
                g = statistics.mean(by_seed["joint"][x] for x in seeds) - f0
                if g:
                    s["gap_fraction"] = (statistics.mean(by_seed[label][x] for x in seeds) - f0) / g
            stats[label] = s
        fr, jo = stats.get("frozen"), stats.get("joint")
        order = rows_of(bdir.name)
        summary[bdir.name] = {"sizes": BENCHES[bdir.name],
                              "joint_minus_frozen": None if not (fr and jo) else jo["test_last_mean"] - fr["test_last_mean"],
                              "chosen": chosen, "tune_seeds": sorted(tune_seeds),
                              "methods": {k: stats[k] for k in order + sorted(set(stats) - set(order)) if k in stats}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    table = table_text(summary)
    (out / "table.md").write_text(table)
    print(table)
    return summary


def table_text(summary: dict) -> str:
    """table.md: one markdown table per protocol."""
    def f1(x, s=None):
        return "-" if x is None else (f"{x:.1f}" if s is None else f"{x:.1f} ± {s:.1f}")
    lines = ["# Headroom study (test Last-Acc, mean ± std over the test seeds; settings chosen on the mean "
             "validation Last-Acc of the tuning seeds)", ""]
    for b, d in summary.items():
        lines += [f"## {b}: joint − frozen = {f1(d['joint_minus_frozen'])} points "
                  f"(tuned on seed{'s' * (len(d['tune_seeds']) > 1)} {', '.join(map(str, d['tune_seeds']))})", "",
                  "| method | settings | seeds | test Last-Acc | forgetting | val Last-Acc | gap recovered |",
                  "|---|---|---|---|---|---|---|"]
        for label, s in d["methods"].items():
            st = "–" if s["method"] in ("frozen", "ncm") else ", ".join(
                f"{k} {v:g}" for k, v in s["settings"].items() if v is not None and not (k == "first_lr_scale" and v == 1))
            gf = "-" if s["gap_fraction"] is None else f"{s['gap_fraction']:+.2f}"
            lines.append(f"| {label} | {st} | {len(s['seeds'])} | {f1(s['test_last_mean'], s['test_last_std'])} | "
                         f"{f1(s['forgetting_mean'], s['forgetting_std'])} | {f1(s['val_last_mean'], s['val_last_std'])} | {gf} |")
        lines.append("")
    return "\n".join(lines)


def ship(summary: dict) -> None:
    """Merge these protocols into data/headroom_study.json (others keep their shipped rows) and rewrite the .md."""
    path = ROOT / "data" / "headroom_study.json"
    shipped = {**read_json(path, {}), **summary}
    shipped = {b: shipped[b] for b in BENCHES if b in shipped}
    path.write_text(json.dumps(shipped, indent=1))
    (ROOT / "data" / "headroom_study.md").write_text(table_text(shipped))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benches", default=",".join(BENCHES), help="comma-separated from: " + ", ".join(BENCHES))
    p.add_argument("--seeds", default="1,2,3", help="test seeds (never a tuning seed)")
    p.add_argument("--tune-seeds", default="0",
                   help="tuning seeds: each setting is scored by its mean validation Last-Acc over them")
    p.add_argument("--methods", default=None, help="comma-separated rows (default: every row of each protocol)")
    p.add_argument("--workers", type=int, default=1, help="trials of a row in this many processes (needs optuna)")
    p.add_argument("--out", default=str(ROOT / "runs" / "study"))
    p.add_argument("--table-only", action="store_true", help="only rebuild table.md and summary.json")
    p.add_argument("--ship", action="store_true",
                   help="also merge the protocols found into data/headroom_study.json and .md (the copy the notebooks "
                        "and docs use; then python scripts/make_docs.py rewrites docs/headroom_study.md's table)")
    a = p.parse_args(argv)
    out = Path(a.out)
    benches = a.benches.split(",")
    bad = [b for b in benches if b not in BENCHES]
    if bad:
        p.error(f"--benches {','.join(bad)} is not allowed: use some of {', '.join(BENCHES)}")
    seeds, tune_seeds = ([int(x) for x in v.split(",")] for v in (a.seeds, a.tune_seeds))
    if set(seeds) & set(tune_seeds):
        p.error(f"--seeds {a.seeds} and --tune-seeds {a.tune_seeds} share a seed: test on seeds you did not tune on")
    if not a.table_only:
        for b in benches:
            labels = rows_of(b) if a.methods is None else [m.strip() for m in a.methods.split(",") if m.strip()]
            bad = [m for m in labels if m not in rows_of(b)]
            if bad:
                p.error(f"--methods {','.join(bad)} is not allowed for {b}: use some of {', '.join(rows_of(b))}")
            run_rows(b, out, labels, tune_seeds, seeds, a.workers)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(out)
    if a.ship:
        ship({b: summary[b] for b in benches if b in summary})


if __name__ == "__main__":
    main()

"""Several methods over the same task stream, one run folder each (OUT/<name>/), plus OUT/summary.json,
OUT/summary.csv, the comparison table and the figures."""
import csv
from pathlib import Path

from .continual import metrics
from .continual.config import Config, load_benchmark
from .continual.loop import run
from .continual.presets import preset_config
from .env import atomic_write, write_json
from .errors import ConfigError

SUMMARY_KEYS = ("last_acc", "inc_acc", "forgetting", "bwt", "task_il_acc", "trainable_params", "total_params")


def parse_methods(text: str) -> list:
    """"a,b,c" -> ["a", "b", "c"]; a one-line ConfigError for an empty list."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods:
        raise ConfigError("methods='' is not allowed: give a comma-separated list, e.g. frozen,seq_lora,clora")
    return methods


def compare(methods: list, base: Config, out: Path | str, progress=True, figures=True) -> list:
    """Run each method or preset into out/<name>/; write summary.json, summary.csv and the figures into out.
    Every name is checked before any work starts (an unknown one is a one-line ConfigError)."""
    out = Path(out)
    configs = [(m, preset_config(m, base)) for m in methods]
    all_results = []
    for name, cfg in configs:
        r = run(cfg, out / name, progress=progress, log=lambda s: None)
        r["label"] = name
        all_results.append(r)
        print(f"{name:<20} Last {r['last_acc']:5.1f} %   Inc {r['inc_acc']:5.1f} %   ({sum(r['task_seconds']):.0f} s)",
              flush=True)
    summary = [{"method": r["label"], **{k: r[k] for k in SUMMARY_KEYS}, "seconds": sum(r["task_seconds"]),
                "train_images_per_second": r["train_images_per_second"]} for r in all_results]
    write_json(out / "summary.json", summary)

    def write_csv(p):
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(summary[0]))
            w.writeheader()
            w.writerows(summary)
    atomic_write(out / "summary.csv", write_csv)
    print()
    print(metrics.report_table([{**r, "method": r["label"]} for r in all_results]))
    if figures:
        write_figures(all_results, {name: out / name for name, _ in configs}, out, configs[0][1])
    return all_results


def write_figures(all_results: list, run_dirs: dict, out: Path, cfg: Config) -> None:
    """The static PNGs of a run or a comparison: accuracy curves, forgetting and accuracy matrices for every
    method; overlap, routing, interference and stored parameters for the methods with adapters."""
    from .inside import figures, plots
    paths = plots.save_figures(all_results, out)
    paths += figures.save_inside_figures(run_dirs, out, bench=load_benchmark(cfg))
    for p in paths:
        print(f"figure: {p}")

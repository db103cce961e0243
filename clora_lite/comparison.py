"""Several methods over the same task stream, one run folder each (OUT/<name>/), plus OUT/summary.json,
OUT/summary.csv, the comparison table and the figures."""
import csv
import hashlib
import json
from pathlib import Path

from .continual import metrics
from .continual.config import Config, load_benchmark
from .continual.loop import run
from .continual.presets import PRESET_NOTES, preset_config
from .env import atomic_write, resolve_device, write_json
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
    for m in methods:
        if m in PRESET_NOTES:
            print(f"{m}: {PRESET_NOTES[m]}", flush=True)
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


def write_figures(all_results: list, run_dirs: dict, out: Path, cfg: Config) -> list:
    """The static PNGs of a run or a comparison: accuracy curves, forgetting and accuracy matrices for every
    method; overlap, routing, interference and stored parameters for the methods with adapters (computed on the
    run's device). Skipped when out/figures.json records the same results and the PNGs are there, so that
    rerunning a finished comparison takes a moment. Returns the paths (written or found)."""
    from .inside import figures, plots
    out = Path(out)
    key = hashlib.sha256(json.dumps([[r.get("label", r["method"]), r["acc_matrix"], r["config"]]
                                     for r in all_results], sort_keys=True).encode()).hexdigest()[:16]
    record = out / "figures.json"
    if record.exists():
        done = json.loads(record.read_text())
        if done.get("results") == key and all((out / f).exists() for f in done.get("files", [])):
            print(f"figures: up to date in {out} ({', '.join(done['files'])})")
            return [out / f for f in done["files"]]
    paths = plots.save_figures(all_results, out)
    paths += figures.save_inside_figures(run_dirs, out, bench=load_benchmark(cfg), device=resolve_device(cfg.device))
    for p in paths:
        print(f"figure: {p}")
    write_json(record, {"results": key, "files": [Path(p).name for p in paths]})
    return paths

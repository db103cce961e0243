"""Command line: demo, run, compare, bench, pretrain. Bad input: one line on stderr, exit status 2."""
import argparse
import csv
import dataclasses
import json
import os
from pathlib import Path
import sys
import time

from .config import Config, ConfigError, check

# Named variants accepted by --methods beside the plain method names: the design's ablations.
VARIANTS = {"clora_no_orth": {"method": "clora", "lambda_orth": 0.0},
            "clora_no_stopgrad": {"method": "clora", "detach_old": False},
            "clora_left": {"method": "clora", "orth_side": "left"}}
ALL_METHODS = ("frozen", "finetune", "seq_lora", "lora_per_task", "clora", "joint")

# The demo: every method on the synthetic 10-task benchmark with the shipped small ViT, sized to finish
# in about 3 minutes on 2 CPU cores.
DEMO = dict(benchmark="synthetic", tasks=10, classes=100, train_per_class=64, test_per_class=40,
            backbone="vit_tiny", epochs=3, batch=64)
DEMO_METHODS = ALL_METHODS + ("clora_no_orth",)


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message over several lines; we want one
        raise UsageError(message)


def bool_flag(p, name, help):
    p.add_argument(f"--{name}", dest=name.replace("-", "_"), action=argparse.BooleanOptionalAction, default=None,
                   help=help)


def add_run_options(p):
    p.add_argument("--method", help="frozen | finetune | seq_lora | lora_per_task | clora | joint")
    p.add_argument("--benchmark", help="synthetic | synthetic_inverted | split_cifar100 | split_cifar10 | imagefolder:PATH")
    for name, kind in [("tasks", int), ("epochs", int), ("rank", int), ("seed", int), ("batch", int),
                       ("classes", int), ("train-per-class", int), ("test-per-class", int), ("eval-batch", int),
                       ("lr", float), ("routing-lr", float), ("head-lr", float), ("backbone-lr", float), ("alpha", float), ("lambda-orth", float),
                       ("orth-energy", float), ("align-steps", int)]:
        p.add_argument(f"--{name}", type=kind, dest=name.replace("-", "_"))
    p.add_argument("--backbone", help="vit_tiny | vit_b16 | vit_b16_in21k")
    p.add_argument("--targets", help="comma-separated: q,k,v,proj,fc1,fc2")
    p.add_argument("--orth-side", dest="orth_side", help="both | left | right")
    p.add_argument("--order", help="class order of real benchmarks: seed1993 | label")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--amp", help="auto | bf16 | off")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--config", help="a JSON file of settings (flags given here override it)")
    bool_flag(p, "detach-old", "stop-gradient on the old route (--no-detach-old for the ablation)")
    bool_flag(p, "pretrained", "start from pre-trained backbone weights")
    bool_flag(p, "compile", "torch.compile the backbone")
    bool_flag(p, "align-head", "after each task, retrain the head on sampled class statistics (our choice)")
    p.add_argument("--head", help="linear | cosine")
    p.add_argument("--out", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def config_from(args, base: dict | None = None) -> Config:
    d = dict(base or {})
    if getattr(args, "config", None):
        d.update(Config.from_json(args.config).to_dict())
    names = {f.name for f in dataclasses.fields(Config)}
    d.update({k: v for k, v in vars(args).items() if k in names and v is not None})
    return Config.from_dict(d)


def cmd_run(args):
    from .train import run
    cfg = config_from(args)
    out = Path(args.out or f"runs/{cfg.method}")
    results = run(cfg, out, progress=not args.quiet)
    print_table([results])
    print(f"results in {out}/results.json")


def variant_config(name: str, base: Config) -> Config:
    if name in VARIANTS:
        return check(dataclasses.replace(base, **VARIANTS[name]))
    if name in ALL_METHODS:
        return check(dataclasses.replace(base, method=name))
    raise ConfigError(f"method {name!r} is not allowed: use one of {', '.join(ALL_METHODS + tuple(VARIANTS))}")


def compare(methods: list, base: Config, out: Path, progress=True) -> list:
    """Run each method into out/<method>/; write summary.json, summary.csv and figures into out."""
    from . import metrics, viz
    from .train import atomic_write, run, write_json
    configs = [(m, variant_config(m, base)) for m in methods]   # every name checked before any work
    all_results = []
    for name, cfg in configs:
        r = run(cfg, out / name, progress=progress, log=lambda s: None)
        r["label"] = name
        all_results.append(r)
        print(f"{name:<20} Last {r['last_acc']:5.1f} %   Inc {r['inc_acc']:5.1f} %   ({sum(r['task_seconds']):.0f} s)",
              flush=True)
    keys = ["last_acc", "inc_acc", "forgetting", "bwt", "task_il_acc", "trainable_params", "total_params"]
    summary = [{"method": r["label"], **{k: r[k] for k in keys}, "seconds": sum(r["task_seconds"]),
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
    for p in viz.save_figures(all_results, out):
        print(f"figure: {p}")
    return all_results


def parse_methods(text: str) -> list:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods:
        raise ConfigError("methods='' is not allowed: give a comma-separated list, e.g. frozen,seq_lora,clora")
    return methods


def cmd_compare(args):
    base = config_from(args)
    out = Path(args.out or "runs/compare")
    compare(parse_methods(args.methods), base, out, progress=not args.quiet)


def cmd_demo(args):
    t0 = time.time()
    base = config_from(args, DEMO)
    out = Path(args.out or "runs/demo")
    methods = parse_methods(args.methods) if args.methods else list(DEMO_METHODS)
    print(f"clora_lite demo: {len(methods)} methods on the synthetic {base.tasks}-task benchmark "
          f"({base.classes} classes) with the shipped pre-trained {base.backbone}; results in {out}/", flush=True)
    compare(methods, base, out, progress=not args.quiet)
    print(f"demo finished in {time.time() - t0:.0f} s")


def cmd_bench(args):
    from .bench import bench
    bench(args.backbone, args.batch, args.steps, args.method, args.rank, args.device, args.amp, args.compile,
          args.peak_tflops)


def cmd_pretrain(args):
    from .pretrain import pretrain
    from .vit import DATA_DIR, TINY_WEIGHTS
    out = Path(args.out or DATA_DIR / TINY_WEIGHTS)
    if out.exists() and not args.force:
        raise ConfigError(f"out={str(out)!r} exists: pass --force to replace it, or choose another --out")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise ConfigError(f"out={str(out)!r} is not writable: its folder does not exist or is read-only")
    if args.steps < 1:
        raise ConfigError(f"steps={args.steps} is not allowed: use a whole number >= 1")
    meta = pretrain(steps=args.steps, seed=args.seed, out=out, device=args.device or "cpu")
    print(json.dumps(meta))


def build_parser() -> Parser:
    p = Parser(prog="python -m clora_lite", description="C-LoRA teaching kit: runs, comparisons, benchmarks")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    s = sub.add_parser("demo", help="offline: every method on the synthetic benchmark, report + plots")
    add_run_options(s)
    s.add_argument("--methods", help="comma-separated subset (default: all, plus clora_no_orth)")
    s.set_defaults(func=cmd_demo)
    s = sub.add_parser("run", help="one method over a task stream")
    add_run_options(s)
    s.set_defaults(func=cmd_run)
    s = sub.add_parser("compare", help="several methods, one folder each, plus summary.json/csv and plots")
    add_run_options(s)
    s.add_argument("--methods", default=",".join(ALL_METHODS),
                   help=f"comma-separated; also {', '.join(VARIANTS)}")
    s.set_defaults(func=cmd_compare)
    s = sub.add_parser("bench", help="training throughput with synthetic inputs (no downloads)")
    s.add_argument("--backbone", default=None, help="default: vit_b16 on CUDA, vit_tiny on CPU")
    s.add_argument("--batch", type=int, default=128)
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--method", default="clora", help="clora | seq_lora | frozen | finetune")
    s.add_argument("--rank", type=int, default=8)
    s.add_argument("--device", default="auto")
    s.add_argument("--amp", default="auto")
    s.add_argument("--compile", action="store_true")
    s.add_argument("--peak-tflops", type=float, default=None, dest="peak_tflops",
                   help="the device's peak, to print the fraction achieved (H200 bf16 dense: 989)")
    s.set_defaults(func=cmd_bench)
    s = sub.add_parser("pretrain", help="regenerate the small pre-trained ViT shipped in data/")
    s.add_argument("--steps", type=int, default=3000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default=None)
    s.add_argument("--out", default=None)
    s.add_argument("--force", action="store_true", help="replace an existing weights file")
    s.set_defaults(func=cmd_pretrain)
    return p


def print_table(results):
    from . import metrics
    print(metrics.report_table(results))


def main(argv=None) -> int:
    from .data import DatasetMissing
    from .vit import WeightsUnavailable
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except (UsageError, ConfigError, DatasetMissing, WeightsUnavailable) as e:
        print(f"clora_lite: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clora_lite: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0

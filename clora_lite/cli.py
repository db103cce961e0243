"""Command line: demo, run, compare, bench, pretrain. Bad input: one line on stderr, exit status 2.

Every run option is a Config field: the flags, their types and their help texts are built from the fields
(continual/config.py), so there is no second list to keep in step."""
import argparse
import dataclasses
import json
import os
from pathlib import Path
import sys
import time

from .continual.config import Config, read_json
from .continual.presets import COMPARE_METHODS, DEMO, DEMO_METHODS, names
from .errors import USER_ERRORS, ConfigError


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message over several lines; we want one
        raise UsageError(message)


def add_run_options(p, defaults: dict) -> None:
    """Every Config field as a flag. Flags default to None so that only what the user typed overrides the
    command's defaults and a --config file; --help shows the command's default for each."""
    for f in dataclasses.fields(Config):
        flag, default, text = f"--{f.name.replace('_', '-')}", defaults[f.name], f.metadata["help"]
        if isinstance(f.default, bool):
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                           help=f"{text} (default: {'on' if default else 'off'})")
            continue
        if isinstance(default, (tuple, list)):
            default = ",".join(map(str, default))
        p.add_argument(flag, dest=f.name, type=f.metadata["kind"] or type(f.default),
                       help=f"{text} (default: {default})")
    p.add_argument("--config", metavar="FILE.json",
                   help="a JSON object of settings; precedence: the command's defaults < this file < flags "
                        "(default: none)")
    p.add_argument("--out", help="output folder; the same folder again resumes (default: runs/<command or method>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (default: off)")
    p.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True,
                   help="write the PNG figures after the runs (default: on; --no-figures skips them)")


def config_from(args, base: dict | None = None) -> Config:
    """Precedence: Config's defaults < the command's own (`base`) < --config file < flags; checked once."""
    d = dict(base or {})
    if getattr(args, "config", None):
        d.update(read_json(args.config))
    fields = {f.name for f in dataclasses.fields(Config)}
    d.update({k: v for k, v in vars(args).items() if k in fields and v is not None})
    return Config.from_dict(d)


def cmd_run(args):
    from .comparison import write_figures
    from .continual import metrics
    from .continual.loop import run
    cfg = config_from(args)
    out = Path(args.out or f"runs/{cfg.method}")
    results = run(cfg, out, progress=not args.quiet)
    print(metrics.report_table([results]))
    if args.figures:
        write_figures([results], {cfg.method: out}, out, cfg)
    print(f"results in {out}/results.json")


def cmd_compare(args):
    from .comparison import compare, parse_methods
    compare(parse_methods(args.methods), config_from(args), Path(args.out or "runs/compare"), progress=not args.quiet,
            figures=args.figures)


def cmd_demo(args):
    from .comparison import compare, parse_methods
    t0 = time.time()
    base = config_from(args, DEMO)
    out = Path(args.out or "runs/demo")
    methods = parse_methods(args.methods) if args.methods else list(DEMO_METHODS)
    print(f"clora_lite demo: {len(methods)} methods on the synthetic {base.tasks}-task benchmark "
          f"({base.classes} classes) with the shipped pre-trained {base.backbone}; results in {out}/", flush=True)
    compare(methods, base, out, progress=not args.quiet, figures=args.figures)
    print(f"demo finished in {time.time() - t0:.0f} s")


def seeds(text: str, name: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 0:
        raise ConfigError(f"{name}={text!r} is not allowed: give comma-separated whole numbers >= 0, e.g. 1,2,3")
    return values


def cmd_tune(args):
    from .tuning import parse_grid, tune
    grid = parse_grid(args.grid or [])
    test_seeds = seeds(args.test_seeds, "test_seeds") if args.test_seeds else ()
    base = config_from(args, {"val_fraction": 0.2})
    if args.workers < 1:
        raise ConfigError(f"workers={args.workers} is not allowed: use a whole number >= 1")
    tune(base, grid, Path(args.out or f"runs/tune_{base.method}"), seeds(args.tune_seeds, "tune_seeds"), test_seeds,
         progress=not args.quiet and args.workers == 1, workers=args.workers, storage=args.storage)


def cmd_bench(args):
    from .throughput import measure_throughput
    measure_throughput(args.backbone, args.batch, args.steps, args.method, args.rank, args.device, args.amp,
                       args.compile, args.peak_tflops)


def cmd_pretrain(args):
    from .backbone.pretrain import pretrain
    from .backbone.vit import TINY_WEIGHTS
    from .env import shipped_file
    out = Path(args.out or shipped_file(TINY_WEIGHTS))
    if out.exists() and not args.force:
        raise ConfigError(f"out={str(out)!r} exists: pass --force to replace it, or choose another --out")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise ConfigError(f"out={str(out)!r} is not writable: its folder does not exist or is read-only")
    if args.steps < 1:
        raise ConfigError(f"steps={args.steps} is not allowed: use a whole number >= 1")
    meta = pretrain(steps=args.steps, seed=args.seed, out=out, device=args.device)
    print(json.dumps(meta))


def build_parser() -> Parser:
    p = Parser(prog="python -m clora_lite", description="C-LoRA teaching kit: runs, comparisons, benchmarks")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    config_defaults = Config().to_dict()
    method_names = ", ".join(names())
    s = sub.add_parser("demo", help="offline: every method on the synthetic benchmark, report + plots")
    add_run_options(s, {**config_defaults, **DEMO})
    s.add_argument("--methods", help=f"comma-separated, from: {method_names} (default: {','.join(DEMO_METHODS)})")
    s.set_defaults(func=cmd_demo)
    s = sub.add_parser("run", help="one method over a task stream")
    add_run_options(s, config_defaults)
    s.set_defaults(func=cmd_run)
    s = sub.add_parser("compare", help="several methods, one folder each, plus summary.json/csv and plots")
    add_run_options(s, config_defaults)
    s.add_argument("--methods", default=",".join(COMPARE_METHODS),
                   help=f"comma-separated, from: {method_names} (default: %(default)s)")
    s.set_defaults(func=cmd_compare)
    s = sub.add_parser("tune", help="choose settings on the validation split: a grid, tuning seeds, then test seeds")
    add_run_options(s, {**config_defaults, "val_fraction": 0.2})
    s.add_argument("--grid", action="append", metavar="NAME=V1,V2,...",
                   help="a run setting and the values to try (repeat for several; every combination runs) "
                        "(default: none)")
    s.add_argument("--tune-seeds", default="0", help="seeds the settings are scored on, by mean validation "
                                                     "Last-Acc (default: %(default)s)")
    s.add_argument("--test-seeds", default=None, help="seeds never used for tuning, to report the chosen "
                                                      "settings' test Last-Acc on (default: none)")
    s.add_argument("--workers", type=int, default=1, help="trials at once, in worker processes through Optuna "
                                                          "(pip install optuna); one per GPU (default: %(default)s)")
    s.add_argument("--storage", default=None, help="an Optuna storage URL the workers share, e.g. on a cluster "
                                                   "(default: the journal file OUT/optuna.log)")
    s.set_defaults(func=cmd_tune)
    s = sub.add_parser("bench", help="training throughput with synthetic inputs (no downloads)")
    s.add_argument("--backbone", default=None, help="vit_tiny | vit_b16 (default: vit_b16 on CUDA, vit_tiny elsewhere)")
    s.add_argument("--batch", type=int, default=128, help="images per step (default: %(default)s)")
    s.add_argument("--steps", type=int, default=20, help="timed steps, after a few warm-up steps (default: %(default)s)")
    s.add_argument("--method", default="clora", help="clora | seq_lora | frozen | finetune (default: %(default)s)")
    s.add_argument("--rank", type=int, default=8, help="adapter rank (default: %(default)s)")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    s.add_argument("--amp", default="auto", help="auto (bf16 on cuda; fp16 on a T4 or V100) | bf16 | fp16 | off (default: %(default)s)")
    s.add_argument("--compile", action="store_true", help="torch.compile the backbone (default: off)")
    s.add_argument("--peak-tflops", type=float, default=None, dest="peak_tflops",
                   help="the device's peak TFLOP/s, to print the share achieved; H200 bf16 dense: 989 (default: none)")
    s.set_defaults(func=cmd_bench)
    s = sub.add_parser("pretrain", help="regenerate the small pre-trained ViT shipped in data/")
    s.add_argument("--steps", type=int, default=3000, help="AdamW steps at batch 256 (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    s.add_argument("--device", default="cpu", help="cpu | cuda (default: %(default)s)")
    s.add_argument("--out", default=None, help="weights file to write (default: the shipped file, data/vit_tiny_synthetic.pt)")
    s.add_argument("--force", action="store_true", help="replace an existing weights file (default: off)")
    s.set_defaults(func=cmd_pretrain)
    return p


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except (UsageError, *USER_ERRORS) as e:
        print(f"clora_lite: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clora_lite: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0

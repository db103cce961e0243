"""One flat dataclass holds every setting of a run; `check` turns a bad value into a one-line ConfigError."""
from dataclasses import dataclass, asdict, fields
import json

from .methods import METHODS
from .vit import CONFIGS, ViT

BACKBONES = tuple(CONFIGS)


class ConfigError(ValueError):
    """A bad setting: the message names the value and what is allowed, on one line."""


@dataclass
class Config:
    method: str = "clora"
    benchmark: str = "synthetic"        # synthetic | synthetic_inverted | split_fashion_mnist | split_cifar100 | split_cifar10 | imagefolder:PATH
    tasks: int = 10
    task_sizes: tuple | None = None      # classes per task, e.g. (50, 10, 10, 10, 10, 10); None: equal tasks
    classes: int = 100                   # synthetic only
    train_per_class: int = 300           # synthetic, and a seeded subset of split_fashion_mnist
    test_per_class: int = 50             # synthetic, and a seeded subset of split_fashion_mnist
    val_fraction: float = 0.0            # share of each class's training images held out for tuning
    order: str = "seed1993"              # class order of real benchmarks: seed1993 | label
    backbone: str = "vit_tiny"
    pretrained: bool = True
    epochs: int = 3
    batch: int = 128
    lr: float = 1e-3                     # adapters
    head: str = "linear"                 # linear | cosine (unit-norm rows and features, times head_scale)
    head_scale: float = 16.0
    align_head: bool = True              # after each task, retrain the head on sampled class statistics
    align_steps: int = 100
    drift_ridge: float | None = None     # ours: move old classes' statistics along the fitted feature drift (None: off)
    routing_lr: float | None = None      # C-LoRA's R_delta; None: the same as lr
    head_lr: float = 1e-2                # the linear head (it starts from zero knowledge every task)
    backbone_lr: float = 3e-4            # full fine-tuning (finetune, joint with adapter="full")
    rank: int = 8
    alpha: float | None = None           # None: alpha = rank, scale 1
    targets: tuple = ("q", "k", "v")
    lambda_orth: float = 100.0
    detach_old: bool = True
    orth_energy: float = 0.95
    orth_side: str = "both"
    lambda_in: float = 100.0             # clora_inp (ours): weight of ||R_delta A M_old||^2 (old tasks' inputs)
    design_a: bool = False               # clora_inp (ours): re-aim A's free rows at the task's new input directions
    first_lr_scale: float = 1.0          # ours: on the first task, everything but the head trains at lr * this (not joint)
    seed: int = 0
    device: str = "auto"                 # auto: cuda if available
    amp: str = "auto"                    # auto: bf16 autocast on cuda (fp16 before compute capability 8) | bf16 | fp16 | off
    compile: bool = False
    eval_batch: int = 500
    data_dir: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["targets"] = list(self.targets)
        d["task_sizes"] = None if self.task_sizes is None else list(self.task_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """A checked Config from a dict holding any subset of the fields (the rest keep their defaults)."""
        d = dict(unknown_keys_refused(d))
        for key in ("targets", "task_sizes"):   # lists in JSON, comma-separated text on the command line
            if isinstance(d.get(key), str):
                d[key] = d[key].split(",")
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        if d.get("task_sizes"):
            try:
                d["task_sizes"] = tuple(int(v) for v in d["task_sizes"])
            except ValueError:
                raise ConfigError(f"task_sizes={d['task_sizes']!r} is not allowed: use whole numbers") from None
        return check(cls(**d))


def unknown_keys_refused(d: dict) -> dict:
    names = {f.name for f in fields(Config)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r}: allowed keys are {', '.join(sorted(names))}")
    return d


def read_json(path) -> dict:
    """The settings a JSON file holds, as written (no defaults filled in, so that merging keeps the precedence
    command defaults < file < flags). Unknown keys and unreadable files: one-line ConfigError."""
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {str(path)!r} cannot be read as JSON ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a JSON object of settings, not {type(d).__name__}")
    return unknown_keys_refused(d)


def _need(ok: bool, msg: str):
    if not ok:
        raise ConfigError(msg)


def check(c: Config) -> Config:
    """Validate every field; return c unchanged or raise ConfigError (one line)."""
    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)
    is_num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    _need(c.method in METHODS, f"method={c.method!r} is not allowed: use one of {', '.join(METHODS)}")
    _need(c.backbone in BACKBONES, f"backbone={c.backbone!r} is not allowed: use one of {', '.join(BACKBONES)}")
    _need(c.benchmark in ("synthetic", "synthetic_inverted", "split_fashion_mnist", "split_cifar100", "split_cifar10")
          or c.benchmark.startswith("imagefolder:"),
          f"benchmark={c.benchmark!r} is not allowed: use synthetic, synthetic_inverted, split_fashion_mnist, "
          "split_cifar100, split_cifar10 or imagefolder:PATH")
    for name in ("align_steps", "tasks", "classes", "train_per_class", "test_per_class", "batch", "eval_batch", "rank"):
        v = getattr(c, name)
        _need(is_int(v) and v >= 1, f"{name}={v!r} is not allowed: use a whole number >= 1")
    dim = CONFIGS[c.backbone].dim
    _need(c.rank <= dim, f"rank={c.rank} is not allowed for {c.backbone}: use 1 to {dim} (its width)")
    _need(c.targets and set(c.targets) <= set(ViT.adapter_targets()),
          f"targets={','.join(c.targets)!r} is not allowed: choose from {','.join(ViT.adapter_targets())}")
    _need(is_int(c.epochs) and c.epochs >= 0, f"epochs={c.epochs!r} is not allowed: use a whole number >= 0")
    _need(is_int(c.seed) and c.seed >= 0, f"seed={c.seed!r} is not allowed: use a whole number >= 0")
    for name in ("lr", "head_lr", "backbone_lr", "first_lr_scale"):
        v = getattr(c, name)
        _need(is_num(v) and v > 0, f"{name}={v!r} is not allowed: use a number > 0")
    _need(c.routing_lr is None or (is_num(c.routing_lr) and c.routing_lr > 0),
          f"routing_lr={c.routing_lr!r} is not allowed: use a number > 0")
    _need(c.drift_ridge is None or (is_num(c.drift_ridge) and c.drift_ridge > 0),
          f"drift_ridge={c.drift_ridge!r} is not allowed: use a number > 0, or leave it unset (off)")
    _need(c.drift_ridge is None or c.align_head,
          f"drift_ridge={c.drift_ridge!r} is not allowed without align_head: it moves the class statistics that head "
          "alignment uses (turn align_head on, or leave drift_ridge unset)")
    _need(c.alpha is None or (is_num(c.alpha) and c.alpha > 0), f"alpha={c.alpha!r} is not allowed: use a number > 0")
    _need(is_num(c.lambda_orth) and c.lambda_orth >= 0,
          f"lambda_orth={c.lambda_orth!r} is not allowed: use a number >= 0")
    _need(is_num(c.lambda_in) and c.lambda_in >= 0, f"lambda_in={c.lambda_in!r} is not allowed: use a number >= 0")
    _need(isinstance(c.design_a, bool), f"design_a={c.design_a!r} is not allowed: use true or false")
    _need(is_num(c.orth_energy) and 0 < c.orth_energy <= 1,
          f"orth_energy={c.orth_energy!r} is not allowed: use a number in (0, 1]")
    _need(is_num(c.val_fraction) and 0 <= c.val_fraction < 1,
          f"val_fraction={c.val_fraction!r} is not allowed: use a number in [0, 1)")
    _need(c.orth_side in ("both", "left", "right"), f"orth_side={c.orth_side!r} is not allowed: use both, left or right")
    _need(c.order in ("seed1993", "label"), f"order={c.order!r} is not allowed: use seed1993 or label")
    _need(c.head in ("linear", "cosine"), f"head={c.head!r} is not allowed: use linear or cosine")
    _need(is_num(c.head_scale) and c.head_scale > 0, f"head_scale={c.head_scale!r} is not allowed: use a number > 0")
    _need(c.amp in ("auto", "bf16", "fp16", "off"), f"amp={c.amp!r} is not allowed: use auto, bf16, fp16 or off")
    _need(c.device == "auto" or c.device == "cpu" or c.device.startswith("cuda") or c.device == "mps",
          f"device={c.device!r} is not allowed: use auto, cpu, cuda, cuda:N or mps")
    if c.task_sizes is not None:
        _need(len(c.task_sizes) == c.tasks and all(is_int(k) and k >= 1 for k in c.task_sizes),
              f"task_sizes={','.join(map(str, c.task_sizes))} is not allowed: give tasks={c.tasks} whole numbers >= 1")
    n = {"synthetic": c.classes, "synthetic_inverted": c.classes, "split_fashion_mnist": 10, "split_cifar100": 100,
         "split_cifar10": 10}.get(c.benchmark)
    if c.benchmark.startswith("synthetic"):
        _need(c.classes <= 144, f"classes={c.classes} is not allowed for synthetic: use 1 to 144")
    if n is not None and c.task_sizes is not None:
        _need(sum(c.task_sizes) == n, f"task_sizes={','.join(map(str, c.task_sizes))} is not allowed: "
                                      f"they must add up to the {n} classes of {c.benchmark}")
    elif n is not None:
        _need(n % c.tasks == 0, f"tasks={c.tasks} is not allowed: it must divide the {n} classes of {c.benchmark} "
                                "(or give --task-sizes)")
    return c

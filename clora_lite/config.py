"""One flat dataclass holds every setting of a run; `check` turns a bad value into a one-line ConfigError."""
from dataclasses import dataclass, asdict, fields
import json

from .vit import CONFIGS, ViT

METHODS = ("frozen", "finetune", "seq_lora", "lora_per_task", "clora", "joint")
BACKBONES = ("vit_tiny", "vit_b16", "vit_b16_in21k")


class ConfigError(ValueError):
    """A bad setting: the message names the value and what is allowed, on one line."""


@dataclass
class Config:
    method: str = "clora"
    benchmark: str = "synthetic"        # synthetic | synthetic_inverted | split_cifar100 | split_cifar10 | imagefolder:PATH
    tasks: int = 10
    classes: int = 100                   # synthetic only
    train_per_class: int = 300           # synthetic only
    test_per_class: int = 50             # synthetic only
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
    seed: int = 0
    device: str = "auto"                 # auto: cuda if available
    amp: str = "auto"                    # auto: bf16 autocast on cuda | bf16 | off
    compile: bool = False
    eval_batch: int = 500
    data_dir: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["targets"] = list(self.targets)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown config key {unknown[0]!r}: allowed keys are {', '.join(sorted(names))}")
        d = dict(d)
        if "targets" in d:
            d["targets"] = tuple(d["targets"].split(",") if isinstance(d["targets"], str) else d["targets"])
        return check(cls(**d))

    @classmethod
    def from_json(cls, path) -> "Config":
        try:
            with open(path) as f:
                return cls.from_dict(json.load(f))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"config file {path!r} cannot be read as JSON ({type(e).__name__}: {e})") from None


def _need(ok: bool, msg: str):
    if not ok:
        raise ConfigError(msg)


def check(c: Config) -> Config:
    """Validate every field; return c unchanged or raise ConfigError (one line)."""
    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)
    is_num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    _need(c.method in METHODS, f"method={c.method!r} is not allowed: use one of {', '.join(METHODS)}")
    _need(c.backbone in BACKBONES, f"backbone={c.backbone!r} is not allowed: use one of {', '.join(BACKBONES)}")
    _need(c.benchmark in ("synthetic", "synthetic_inverted", "split_cifar100", "split_cifar10") or c.benchmark.startswith("imagefolder:"),
          f"benchmark={c.benchmark!r} is not allowed: use synthetic, synthetic_inverted, split_cifar100, split_cifar10 or imagefolder:PATH")
    for name in ("align_steps", "tasks", "classes", "train_per_class", "test_per_class", "batch", "eval_batch", "rank"):
        v = getattr(c, name)
        _need(is_int(v) and v >= 1, f"{name}={v!r} is not allowed: use a whole number >= 1")
    dim = CONFIGS[c.backbone].dim
    _need(c.rank <= dim, f"rank={c.rank} is not allowed for {c.backbone}: use 1 to {dim} (its width)")
    _need(c.targets and set(c.targets) <= set(ViT.adapter_targets()),
          f"targets={','.join(c.targets)!r} is not allowed: choose from {','.join(ViT.adapter_targets())}")
    _need(is_int(c.epochs) and c.epochs >= 0, f"epochs={c.epochs!r} is not allowed: use a whole number >= 0")
    _need(is_int(c.seed) and c.seed >= 0, f"seed={c.seed!r} is not allowed: use a whole number >= 0")
    for name in ("lr", "head_lr", "backbone_lr"):
        v = getattr(c, name)
        _need(is_num(v) and v > 0, f"{name}={v!r} is not allowed: use a number > 0")
    _need(c.routing_lr is None or (is_num(c.routing_lr) and c.routing_lr > 0),
          f"routing_lr={c.routing_lr!r} is not allowed: use a number > 0")
    _need(c.alpha is None or (is_num(c.alpha) and c.alpha > 0), f"alpha={c.alpha!r} is not allowed: use a number > 0")
    _need(is_num(c.lambda_orth) and c.lambda_orth >= 0,
          f"lambda_orth={c.lambda_orth!r} is not allowed: use a number >= 0")
    _need(is_num(c.orth_energy) and 0 < c.orth_energy <= 1,
          f"orth_energy={c.orth_energy!r} is not allowed: use a number in (0, 1]")
    _need(c.orth_side in ("both", "left", "right"), f"orth_side={c.orth_side!r} is not allowed: use both, left or right")
    _need(c.order in ("seed1993", "label"), f"order={c.order!r} is not allowed: use seed1993 or label")
    _need(c.head in ("linear", "cosine"), f"head={c.head!r} is not allowed: use linear or cosine")
    _need(is_num(c.head_scale) and c.head_scale > 0, f"head_scale={c.head_scale!r} is not allowed: use a number > 0")
    _need(c.amp in ("auto", "bf16", "off"), f"amp={c.amp!r} is not allowed: use auto, bf16 or off")
    _need(c.device == "auto" or c.device == "cpu" or c.device.startswith("cuda") or c.device == "mps",
          f"device={c.device!r} is not allowed: use auto, cpu, cuda, cuda:N or mps")
    if c.benchmark.startswith("synthetic"):
        _need(c.classes <= 144, f"classes={c.classes} is not allowed for synthetic: use 1 to 144")
        _need(c.classes % c.tasks == 0, f"tasks={c.tasks} is not allowed: it must divide the {c.classes} classes")
    if c.benchmark.startswith("split_cifar"):
        n = int(c.benchmark[len("split_cifar"):])
        _need(n % c.tasks == 0, f"tasks={c.tasks} is not allowed: it must divide the {n} classes of {c.benchmark}")
    return c

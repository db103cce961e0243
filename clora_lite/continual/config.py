"""Every setting of a run in one flat dataclass. Each field carries its help text (the command line builds its
options from these, so there is no second list); `check` turns a bad value into a one-line ConfigError, using the
names and limits each layer of the kit declares (methods, backbones, benchmarks, adapter options)."""
from dataclasses import MISSING, asdict, dataclass, field, fields
import json

from .. import benchmarks
from ..adapters.clora import ORTH_SIDES
from ..backbone.vit import CONFIGS, ViT
from ..errors import ConfigError
from ..methods import METHODS

BACKBONES = tuple(CONFIGS)
AMP_MODES = ("auto", "bf16", "fp16", "off")
# Settings that earlier versions of the kit wrote into config.json and that no longer exist (they served the
# retired clora_inp method); a saved config holding them at their old defaults still resumes.
RETIRED = {"lambda_in": 100.0, "design_a": False}


def setting(default, help: str, kind=None):
    """A Config field with its help text; `kind` is the command-line type where the default does not show it."""
    return field(default=default, metadata={"help": help, "kind": kind})


@dataclass
class Config:
    method: str = setting("clora", "frozen | finetune | seq_lora | lora_per_task | clora | joint | inflora | sdlora | "
                                   "first_session | ncm")
    benchmark: str = setting("synthetic", "synthetic | synthetic_inverted | synthetic_domains | "
                                          "split_fashion_mnist | split_cifar100 | split_cifar10 | imagefolder:PATH")
    tasks: int = setting(10, "number of tasks the classes are split into")
    task_sizes: tuple | None = setting(None, "classes per task, comma-separated (e.g. 50,10,10,10,10,10); "
                                             "default: equal tasks", str)
    classes: int = setting(100, "number of classes (synthetic benchmarks only)")
    train_per_class: int = setting(300, "training images per class (synthetic; a seeded subset of "
                                        "split_fashion_mnist)")
    test_per_class: int = setting(50, "test images per class (synthetic; a seeded subset of split_fashion_mnist)")
    val_fraction: float = setting(0.0, "share of each class's training images held out as a validation split "
                                       "(tune on it, never on test accuracy)")
    order: str = setting("seed1993", "class order of real benchmarks: seed1993 (PyCIL's shuffle) | label")
    backbone: str = setting("vit_tiny", "vit_tiny (32 px, shipped weights) | vit_b16 (torchvision ImageNet-1k) | "
                                        "vit_b16_in21k (timm ImageNet-21k)")
    pretrained: bool = setting(True, "start from pre-trained backbone weights")
    epochs: int = setting(3, "epochs per task")
    batch: int = setting(128, "training batch size")
    lr: float = setting(1e-3, "learning rate of the adapters (AdamW, cosine decay per task)")
    head: str = setting("linear", "linear | cosine (unit-norm rows and features, times head_scale)")
    head_scale: float = setting(16.0, "logit scale of the cosine head")
    align_head: bool = setting(True, "after each task, retrain the head on sampled class statistics (ours)")
    align_steps: int = setting(100, "head-alignment steps after each task")
    drift_ridge: float | None = setting(None, "ours: before head alignment, move old classes' stored statistics "
                                              "along the feature drift fitted (ridge, this strength) on the task's "
                                              "images before and after it; unset: off", float)
    routing_lr: float | None = setting(None, "C-LoRA's R_delta learning rate; default: the same as lr", float)
    head_lr: float = setting(1e-2, "learning rate of the linear head")
    backbone_lr: float = setting(3e-4, "learning rate of full fine-tuning (finetune)")
    rank: int = setting(8, "adapter rank r")
    alpha: float | None = setting(None, "adapter scale numerator, s = alpha / r; default: alpha = rank (s = 1)",
                                  float)
    targets: tuple = setting(("q", "k", "v"), "comma-separated Linear layers to adapt: q,k,v,proj,fc1,fc2", str)
    lambda_orth: float = setting(100.0, "weight of C-LoRA's orthogonality penalty")
    detach_old: bool = setting(True, "stop-gradient on C-LoRA's old route (--no-detach-old for the ablation)")
    orth_energy: float = setting(0.95, "share of R_old's energy whose singular directions the penalty protects")
    orth_side: str = setting("both", "both | left | right: which sides of R_delta the penalty constrains")
    first_lr_scale: float = setting(1.0, "ours, any continual method: on the first task the backbone's trainable "
                                         "weights train at lr times this (a warm start; joint is not scaled)")
    seed: int = setting(0, "random seed (data, initialisation, order of batches)")
    device: str = setting("auto", "auto (cuda if present) | cpu | cuda | cuda:N | mps")
    amp: str = setting("auto", "auto (bf16 autocast on cuda; fp16 before compute capability 8, e.g. T4) | bf16 | "
                               "fp16 | off")
    compile: bool = setting(False, "torch.compile the backbone")
    eval_batch: int = setting(500, "evaluation batch size (results do not depend on it)")
    data_dir: str | None = setting(None, "where downloads land; default: $CLORA_DATA or ~/.cache/clora_lite", str)

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

    @classmethod
    def from_saved(cls, d: dict) -> "Config":
        """The Config a run folder's config.json holds, also one written by an earlier version of the kit."""
        return cls.from_dict(without_retired(d))


def defaults() -> dict:
    return {f.name: f.default for f in fields(Config) if f.default is not MISSING}


def without_retired(d: dict) -> dict:
    """d less the RETIRED settings; one that was set away from its old default is refused in one line."""
    for key, old in RETIRED.items():
        if key in d and d[key] != old:
            raise ConfigError(f"{key}={d[key]!r} belongs to the retired clora_inp method: this version of the kit "
                              "cannot resume or read that run")
    return {k: v for k, v in d.items() if k not in RETIRED}


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
    _need(c.align_head or not METHODS[c.method].needs_class_stats,
          f"method={c.method!r} is not allowed with align_head off: it classifies with the class statistics that "
          "head alignment stores (turn align_head on)")
    _need(c.backbone in BACKBONES, f"backbone={c.backbone!r} is not allowed: use one of {', '.join(BACKBONES)}")
    benchmarks.check_name(c.benchmark)
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
    _need(is_num(c.orth_energy) and 0 < c.orth_energy <= 1,
          f"orth_energy={c.orth_energy!r} is not allowed: use a number in (0, 1]")
    _need(is_num(c.val_fraction) and 0 <= c.val_fraction < 1,
          f"val_fraction={c.val_fraction!r} is not allowed: use a number in [0, 1)")
    _need(c.orth_side in ORTH_SIDES, f"orth_side={c.orth_side!r} is not allowed: use {', '.join(ORTH_SIDES)}")
    _need(c.order in ("seed1993", "label"), f"order={c.order!r} is not allowed: use seed1993 or label")
    _need(c.head in ("linear", "cosine"), f"head={c.head!r} is not allowed: use linear or cosine")
    _need(is_num(c.head_scale) and c.head_scale > 0, f"head_scale={c.head_scale!r} is not allowed: use a number > 0")
    _need(c.amp in AMP_MODES, f"amp={c.amp!r} is not allowed: use {', '.join(AMP_MODES)}")
    _need(c.device == "auto" or c.device == "cpu" or c.device.startswith("cuda") or c.device == "mps",
          f"device={c.device!r} is not allowed: use auto, cpu, cuda, cuda:N or mps")
    if c.task_sizes is not None:
        _need(len(c.task_sizes) == c.tasks and all(is_int(k) and k >= 1 for k in c.task_sizes),
              f"task_sizes={','.join(map(str, c.task_sizes))} is not allowed: give tasks={c.tasks} whole numbers >= 1")
    if c.benchmark.startswith("synthetic"):
        _need(c.classes <= benchmarks.SYNTHETIC_CLASSES,
              f"classes={c.classes} is not allowed for synthetic: use 1 to {benchmarks.SYNTHETIC_CLASSES}")
    n = benchmarks.class_count(c.benchmark, c.classes)
    if n is not None and c.task_sizes is not None:
        _need(sum(c.task_sizes) == n, f"task_sizes={','.join(map(str, c.task_sizes))} is not allowed: "
                                      f"they must add up to the {n} classes of {c.benchmark}")
    elif n is not None:
        _need(n % c.tasks == 0, f"tasks={c.tasks} is not allowed: it must divide the {n} classes of {c.benchmark} "
                                "(or give --task-sizes)")
    return c


def load_benchmark(cfg: Config):
    """The benchmark a config names, with its validation split held out: the one way a run loads its data."""
    sizes = {}
    if cfg.benchmark.startswith("synthetic"):
        sizes = dict(num_classes=cfg.classes, train_per_class=cfg.train_per_class, test_per_class=cfg.test_per_class)
    elif cfg.benchmark == "split_fashion_mnist":
        sizes = dict(train_per_class=cfg.train_per_class, test_per_class=cfg.test_per_class)
    bench = benchmarks.by_name(cfg.benchmark, cfg.tasks, seed=cfg.seed, order=cfg.order, data_dir=cfg.data_dir,
                               task_sizes=cfg.task_sizes, **sizes)
    return bench.hold_out(cfg.val_fraction, cfg.seed)

"""Named presets: data, not code. A preset is a dict of Config settings that `--methods` accepts beside the
plain method names; the demo is a dict of sizes."""
import dataclasses

from ..errors import ConfigError
from ..methods import METHODS
from .config import Config, check

PRESETS = {
    # the design's ablations of the paper's C-LoRA
    "clora_no_orth": {"method": "clora", "lambda_orth": 0.0},
    "clora_no_stopgrad": {"method": "clora", "detach_old": False},
    "clora_left": {"method": "clora", "orth_side": "left"},
    # ours: the paper's C-LoRA with the kit's two options on, a first-task warm start (task 1 at first_lr_scale x
    # lr) and drift-compensated head alignment. Structure, not tuned numbers: the learning rate is the run's own
    # (--lr, default 1e-3) and the two settings below are starting points (PRESET_NOTES says where they come from)
    "clora_warm_drift": {"method": "clora", "first_lr_scale": 10.0, "drift_ridge": 1.0},
    # ours, its control: one shared LoRA with the same two options, so the two differ only in C-LoRA's routing
    "seq_lora_warm_drift": {"method": "seq_lora", "first_lr_scale": 10.0, "drift_ridge": 1.0},
}
# Where a preset's numbers come from: printed whenever the preset is used.
PRESET_NOTES = {
    "clora_warm_drift": "first_lr_scale 10 and drift_ridge 1 are what validation chose for it on split_fashion_mnist "
                        "(5 x 2 classes, 1000 images per class, seed 0, at lr 3e-4; docs/headroom_study.md); on the "
                        "study's other protocols it chose 30 or 100 and 0.1 to 10. Not tuned for your data: tune "
                        "them and lr with `python -m clora_lite tune` on a validation split",
    "seq_lora_warm_drift": "the same first_lr_scale 10 and drift_ridge 1 as clora_warm_drift (see its note): tune "
                           "them on your data",
}
COMPARE_METHODS = ("frozen", "finetune", "seq_lora", "lora_per_task", "clora", "joint")

# The demo: every method on the synthetic 10-task benchmark with the shipped small ViT, sized to finish
# in about 3 minutes on 2 CPU cores.
DEMO = dict(benchmark="synthetic", tasks=10, classes=100, train_per_class=64, test_per_class=40,
            backbone="vit_tiny", epochs=3, batch=64)
DEMO_METHODS = COMPARE_METHODS + ("clora_no_orth",)


def names() -> tuple:
    """Every name `--methods` accepts: the methods, then the presets."""
    return tuple(METHODS) + tuple(PRESETS)


def preset_config(name: str, base: Config) -> Config:
    """base with the preset `name` applied (or just its method, for a plain method name); a one-line
    ConfigError for an unknown name."""
    if name in PRESETS:
        return check(dataclasses.replace(base, **PRESETS[name]))
    if name in METHODS:
        return check(dataclasses.replace(base, method=name))
    raise ConfigError(f"method {name!r} is not allowed: use one of {', '.join(names())}")

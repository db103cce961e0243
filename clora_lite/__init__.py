"""clora_lite: a small teaching kit and reference implementation of C-LoRA
("C-LoRA: Continual Low-Rank Adaptation for Pre-trained Models", Zhang, Bai, Yang, Liang, 2025).

The layers, each importing only those listed before it:
    errors, env, notebook    bottom: errors, paths / device / autocast, the notebooks' toggles
    adapters/                the paper: LoRA, C-LoRA, add / merge / remove (open this folder first)
    benchmarks/              task streams: synthetic, Fashion-MNIST, CIFAR, your own images
    backbone/                the ViT, its input pipeline, pre-training of the small ViT
    methods/                 the continual learners: baselines, C-LoRA, InfLoRA, SD-LoRA
    continual/               settings and presets, the loop, run folders (checkpoints, resume), metrics
    inside/                  looking inside a run: analysis, figures, explorers
    comparison, tuning,      top: several methods at once, settings chosen on validation,
    throughput, cli          the throughput benchmark, the command line
"""
from .env import __version__
from .adapters import (CLoRALinear, LoRALinear, add_adapters, adapters_of, consolidate, from_loras,
                       merge_adapters, orthogonality_loss, remove_adapters, snapshot)
from .backbone import vit   # clora_lite.vit.build(...) after a plain `import clora_lite`
from .continual import Config, load_benchmark, load_learner, run
from .comparison import compare

__all__ = ["LoRALinear", "CLoRALinear", "from_loras", "add_adapters", "adapters_of", "consolidate",
           "merge_adapters", "orthogonality_loss", "remove_adapters", "snapshot", "vit", "Config", "run",
           "compare", "load_benchmark", "load_learner"]

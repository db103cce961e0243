"""clora_lite: a small teaching kit and reference implementation of C-LoRA
("C-LoRA: Continual Low-Rank Adaptation for Pre-trained Models", Zhang, Bai, Yang, Liang, 2025)."""
from .lora import LoRALinear
from .clora import CLoRALinear, from_loras
from .adapters import add_adapters, adapters_of, consolidate, merge_adapters, orthogonality_loss, remove_adapters
from . import vit  # clora_lite.vit.build(...) after a plain `import clora_lite`
from . import methods  # first, so that methods.py (which registers peers.py's learners) loads before peers.py

__version__ = "0.1.0"
__all__ = ["LoRALinear", "CLoRALinear", "from_loras", "add_adapters", "adapters_of", "consolidate",
           "merge_adapters", "orthogonality_loss", "remove_adapters"]

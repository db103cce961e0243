"""The paper: LoRA (lora.py), C-LoRA's shared adapter with a routing matrix (clora.py), and putting adapters into
a model and taking them out (inject.py). The folder to open first."""
from .lora import LoRALinear
from .clora import CLoRALinear, energy_basis, from_loras
from .inject import (add_adapters, adapters_of, consolidate, is_adapter, merge_adapters, named_adapters,
                     orthogonality_loss, remove_adapters, snapshot)

"""Putting adapters into a model, and the model-level operations on all of them at once."""
from torch import nn
import torch

from .clora import CLoRALinear
from .lora import LoRALinear

ADAPTER_KINDS = {"lora": LoRALinear, "clora": CLoRALinear}


def add_adapters(model: nn.Module, kind: str = "clora", rank: int = 8, targets=("q", "k", "v"),
                 **kw) -> list[nn.Module]:
    """Freeze every parameter of `model`, then wrap each nn.Linear whose name ends in one of `targets`
    (e.g. "blocks.3.attn.q" matches "q") in a LoRALinear (kind="lora") or CLoRALinear (kind="clora"), or in
    kind(linear, rank, **kw) when kind is a class.
    Returns the adapters, in model order; only their own A, B (and R_delta) are trainable."""
    if isinstance(kind, type):   # a LoRALinear subclass of a peer method (peers.py)
        make = kind
    elif kind in ADAPTER_KINDS:
        make = ADAPTER_KINDS[kind]
    else:
        raise ValueError(f"kind={kind!r} is not allowed: use one of {', '.join(ADAPTER_KINDS)}")
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    model.requires_grad_(False)
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in targets]
    if not found:
        raise ValueError(f"targets={targets!r} matched no nn.Linear in the model")
    adapters = []
    for name, linear in found:
        adapter = make(linear, rank, **kw)
        _set_submodule(model, name, adapter)
        adapters.append(adapter)
    return adapters


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def adapters_of(model: nn.Module, kind=(LoRALinear, CLoRALinear)) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def orthogonality_loss(model: nn.Module) -> torch.Tensor:
    """Sum of `orthogonality_loss()` over the model's C-LoRA adapters (a scalar tensor)."""
    losses = [m.orthogonality_loss() for m in adapters_of(model, CLoRALinear)]
    return torch.stack(losses).sum() if losses else torch.zeros(())


def consolidate(model: nn.Module) -> None:
    """End of a task: every C-LoRA adapter folds R_delta into R_old."""
    for m in adapters_of(model, CLoRALinear):
        m.consolidate()


def remove_adapters(model: nn.Module) -> nn.Module:
    """Unwrap every adapter back to its frozen base nn.Linear, dropping the update, in place; returns the model.
    (add / merge / remove: the three ways in and out, as in minLoRA.)"""
    for name, m in list(model.named_modules()):
        if isinstance(m, (LoRALinear, CLoRALinear)):
            _set_submodule(model, name, m.base)
    return model


def merge_adapters(model: nn.Module) -> nn.Module:
    """Replace every adapter by its merged nn.Linear, in place; returns the model."""
    for name, m in list(model.named_modules()):
        if isinstance(m, (LoRALinear, CLoRALinear)):
            _set_submodule(model, name, m.merged())
    return model

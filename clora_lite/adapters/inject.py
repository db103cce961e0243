"""Putting adapters into a model and taking them out (add / merge / remove, as in minLoRA), the model-level
C-LoRA operations, and the snapshot of every adapter's tensors that the analysis reads."""
import torch
from torch import nn

from .clora import CLoRALinear
from .lora import LoRALinear

ADAPTER_KINDS = {"lora": LoRALinear, "clora": CLoRALinear}


def is_adapter(m: nn.Module) -> bool:
    """An adapter layer: any module that declares the tensors defining its update (LoRALinear, CLoRALinear and
    the peers' subclasses)."""
    return hasattr(type(m), "adapter_tensor_names") and hasattr(m, "base")


def add_adapters(model: nn.Module, kind="clora", rank: int = 8, targets=("q", "k", "v"), **kw) -> list[nn.Module]:
    """Freeze every parameter of `model`, then wrap each nn.Linear whose name ends in one of `targets`
    (e.g. "blocks.3.attn.q" matches "q") in a LoRALinear (kind="lora") or CLoRALinear (kind="clora"), or in
    kind(linear, rank, **kw) when kind is an adapter class.
    Returns the adapters, in model order; only their own A, B (and R_delta) are trainable."""
    if isinstance(kind, type):
        make = kind
    elif kind in ADAPTER_KINDS:
        make = ADAPTER_KINDS[kind]
    else:
        raise ValueError(f"kind={kind!r} is not allowed: use one of {', '.join(ADAPTER_KINDS)}, or an adapter class")
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


def adapters_of(model: nn.Module, kind=None) -> list[nn.Module]:
    """The adapter layers of `model` in model order (only those of class `kind`, if given)."""
    return [m for m in model.modules() if is_adapter(m) and (kind is None or isinstance(m, kind))]


def named_adapters(model: nn.Module) -> dict:
    """{name inside model: adapter layer}, in model order."""
    return {n: m for n, m in model.named_modules() if is_adapter(m)}


def snapshot(model: nn.Module) -> dict:
    """A flat dict {"<layer>.<tensor>": CPU copy} of every adapter's declared tensors, plus "<layer>.scale":
    what OUT/adapters/task_XX.pt holds and what the analysis reads (weights_only-loadable). Take it after training
    a task and before end_task, so that C-LoRA's R_delta still holds the task's routing."""
    out = {}
    for name, m in named_adapters(model).items():
        for key, t in m.adapter_tensors().items():
            out[f"{name}.{key}"] = t.detach().cpu().clone()
        out[f"{name}.scale"] = torch.tensor(float(m.scale), dtype=torch.float64)
    return out


def orthogonality_loss(model: nn.Module) -> torch.Tensor:
    """Sum of `orthogonality_loss()` over the model's C-LoRA adapters (a scalar tensor)."""
    losses = [m.orthogonality_loss() for m in adapters_of(model, CLoRALinear)]
    return torch.stack(losses).sum() if losses else torch.zeros(())


def consolidate(model: nn.Module) -> None:
    """End of a task: every C-LoRA adapter folds R_delta into R_old."""
    for m in adapters_of(model, CLoRALinear):
        m.consolidate()


def remove_adapters(model: nn.Module) -> nn.Module:
    """Unwrap every adapter back to its frozen base nn.Linear, dropping the update, in place; returns the model."""
    for name, m in named_adapters(model).items():
        _set_submodule(model, name, m.base)
    return model


def merge_adapters(model: nn.Module) -> nn.Module:
    """Replace every adapter by its merged nn.Linear, in place; returns the model."""
    for name, m in named_adapters(model).items():
        _set_submodule(model, name, m.merged())
    return model

"""Plain LoRA: a frozen linear map plus a trainable low-rank update.

    y = W0 x + b + s * B A x,        s = alpha / r
    A: (r, d_in)  "lora_A", the down-projection, Kaiming-uniform init
    B: (d_out, r) "lora_B", the up-projection, zero init  -> the update is exactly 0 at the start

The scale follows the LoRA paper and PEFT: s = alpha / r. The kit's default alpha = r gives s = 1 at every
rank. Neither keeps the size of the update fixed when r changes: after one Adam step from the zero start,
||s B A|| grows like s * sqrt(r) (like sqrt(r) at the default, like 1/sqrt(r) for a fixed alpha); alpha
proportional to sqrt(r) (rsLoRA, Kalajdzievski 2023) keeps it about steady. A learning rate tuned at one
rank therefore does not carry over to another: retune it, or pass alpha. (Notebook 01 measures this.)
"""
import math

import torch
from torch import nn
import torch.nn.functional as F


def check_rank(base: nn.Linear, rank: int) -> None:
    """Raise a one-line ValueError unless 1 <= rank <= min(d_in, d_out)."""
    if not isinstance(base, nn.Linear):
        raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
    limit = min(base.in_features, base.out_features)
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= limit:
        raise ValueError(f"rank={rank!r} is not allowed: use an integer from 1 to {limit} "
                         f"(min of in_features={base.in_features}, out_features={base.out_features})")


def freeze(base: nn.Linear) -> nn.Linear:
    for p in base.parameters():
        p.requires_grad_(False)
    return base


def linear_like(base: nn.Linear, weight: torch.Tensor) -> nn.Linear:
    """A new nn.Linear with `weight` (d_out, d_in) and a copy of base's bias."""
    out = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                    device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        out.weight.copy_(weight)
        if base.bias is not None:
            out.bias.copy_(base.bias)
    return out


class LoRALinear(nn.Module):
    """`base` (frozen) plus `scale * lora_B @ lora_A`. Input (..., d_in) -> output (..., d_out)."""
    # The tensors that define the update (PEFT's adapter_layer_names): what a snapshot keeps, and what
    # `update_from` reads back. Every adapter layer class declares both, so nothing else needs a table of them.
    adapter_tensor_names = ("lora_A", "lora_B")

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None):
        super().__init__()
        check_rank(base, rank)
        self.base = freeze(base)
        self.rank = rank
        self.scale = (rank if alpha is None else alpha) / rank
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's own rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * F.linear(F.linear(x, self.lora_A), self.lora_B)

    @staticmethod
    def update_from(tensors: dict, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The update that `tensors` ({name: tensor} for adapter_tensor_names) define, as factors
        (L (d_out, m), R (m, d_in)) with dW = L @ R."""
        return scale * tensors["lora_B"], tensors["lora_A"]

    def adapter_tensors(self) -> dict:
        """{name: tensor} for adapter_tensor_names (live tensors, not copies)."""
        return {name: getattr(self, name) for name in self.adapter_tensor_names}

    def delta_weight(self) -> torch.Tensor:
        """The update as a dense matrix, (d_out, d_in)."""
        L, R = self.update_from(self.adapter_tensors(), self.scale)
        return L @ R

    @torch.no_grad()
    def fold_into_base(self, reinit_A: bool = True) -> None:
        """W0 += the update; then a fresh adapter: B = 0 (and A re-drawn, Kaiming-uniform, if reinit_A). The
        function does not change. A stack of frozen per-task adapters summed at inference is the same function
        and the same gradients as this (lora_per_task, InfLoRA)."""
        self.base.weight += self.delta_weight()
        if reinit_A:
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_B.zero_()

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain nn.Linear computing the same function: W0 + scale * B A folded in."""
        return linear_like(self.base, self.base.weight + self.delta_weight())

    def extra_repr(self) -> str:
        return f"rank={self.rank}, scale={self.scale:g}"

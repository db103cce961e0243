"""C-LoRA: one shared low-rank adapter whose routing matrix R grows a little with every task.

    y = W0 x + b + s * B (R_old + R_delta) A x,      s = alpha / r
    A       (r, d_in)   "lora_A", shared by all tasks, trainable
    B       (d_out, r)  "lora_B", shared by all tasks, trainable
    R_old   (r, r)      buffer: the routing learned by earlier tasks, frozen during a task
    R_delta (r, r)      Parameter: the routing being learned for the current task

Plain LoRA is R = I; a set of per-task LoRAs is a block-diagonal R (see `from_loras`).

Our reading of the paper, with the choices that are ours marked:
- stop-gradient on the old route (`detach_old`, paper's Theorem 3.1): B R_old A x is computed with A and B
  detached, so A and B are trained only through R_delta;
- (choice) A and B random, R_old = R_delta = 0: the update is exactly 0, yet dL/dR_delta = s B^T G A^T != 0;
- (choice) L_orth = ||U_old^T R_delta||_F^2 + ||R_delta V_old||_F^2 with U_old, V_old the leading singular
  vectors of R_old holding `orth_energy` of its energy. Both sides together keep B R_old A exactly unchanged
  under gradient steps on A and B (every step on B has the form M R_delta^T, on A the form R_delta^T N);
- `consolidate()` after each task: R_old <- R_old + R_delta, R_delta <- 0. The function does not change.
"""
import math

import torch
from torch import nn
import torch.nn.functional as F

from .lora import check_rank, freeze, linear_like

ORTH_SIDES = ("both", "left", "right")


def energy_basis(R: torch.Tensor, energy: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal bases (U_k, V_k), each (r, k), of the leading singular subspaces of R (r, r) that hold
    a fraction `energy` of sum(sigma^2). k = 0 (empty bases) when R is zero."""
    U, S, Vh = torch.linalg.svd(R)
    total = (S ** 2).sum()
    if total <= 0:
        return U[:, :0], Vh.T[:, :0]
    cumulative = torch.cumsum(S ** 2, 0) / total
    k = int((cumulative < energy - 1e-12).sum()) + 1
    return U[:, :k], Vh.T[:, :k]


class CLoRALinear(nn.Module):
    """`base` (frozen) plus `scale * lora_B @ (R_old + R_delta) @ lora_A`. (..., d_in) -> (..., d_out)."""
    adapter_tensor_names = ("lora_A", "lora_B", "R_old", "R_delta")   # see LoRALinear

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None, detach_old: bool = True,
                 orth_energy: float = 0.95, orth_side: str = "both"):
        super().__init__()
        check_rank(base, rank)
        if orth_side not in ORTH_SIDES:
            raise ValueError(f"orth_side={orth_side!r} is not allowed: use one of {', '.join(ORTH_SIDES)}")
        if not 0 < orth_energy <= 1:
            raise ValueError(f"orth_energy={orth_energy!r} is not allowed: use a number in (0, 1]")
        self.base = freeze(base)
        self.rank, self.detach_old = rank, detach_old
        self.orth_energy, self.orth_side = orth_energy, orth_side
        self.scale = (rank if alpha is None else alpha) / rank
        kw = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, **kw))
        self.lora_B = nn.Parameter(torch.empty(base.out_features, rank, **kw))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.lora_B, a=math.sqrt(5))
        self.R_delta = nn.Parameter(torch.zeros(rank, rank, **kw))
        self.register_buffer("R_old", torch.zeros(rank, rank, **kw))
        # Projectors U U^T and V V^T onto R_old's kept subspaces: fixed (r, r) shapes, saved with the state.
        self.register_buffer("P_left", torch.zeros(rank, rank, **kw))
        self.register_buffer("P_right", torch.zeros(rank, rank, **kw))
        # What the projectors were computed from: the R_old tensor, its in-place version counter and orth_energy.
        # Every in-place write (copy_, +=, load_state_dict) bumps the counter and assignment replaces the tensor,
        # so orthogonality_loss() notices a hand-set R_old for the price of two compares (no SVD, no GPU sync).
        self._projected = (self.R_old, self.R_old._version, orth_energy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        A, B = self.lora_A, self.lora_B
        if self.detach_old:
            # Both routes as one rank-2r adapter [B, B'] blockdiag(R_delta, R_old) [A; A'] with A' = A.detach(),
            # B' = B.detach(): x is read once, x still gets the old route's gradient, A and B only the new one's.
            A, B = torch.cat([A, A.detach()]), torch.cat([B, B.detach()], 1)
            R = torch.block_diag(self.R_delta, self.R_old)
        else:
            R = self.R_old + self.R_delta
        return self.base(x) + self.scale * F.linear(F.linear(F.linear(x, A), R), B)

    def routing(self) -> torch.Tensor:
        """R = R_old + R_delta, (r, r)."""
        return self.R_old + self.R_delta

    @staticmethod
    def update_from(tensors: dict, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The update as factors (L (d_out, r), R (r, d_in)), dW = L @ R = s B (R_old + R_delta) A."""
        return scale * tensors["lora_B"] @ (tensors["R_old"] + tensors["R_delta"]), tensors["lora_A"]

    def adapter_tensors(self) -> dict:
        return {name: getattr(self, name) for name in self.adapter_tensor_names}

    def delta_weight(self) -> torch.Tensor:
        """The whole update as a dense matrix, (d_out, d_in)."""
        L, R = self.update_from(self.adapter_tensors(), self.scale)
        return L @ R

    def orthogonality_loss(self) -> torch.Tensor:
        """||U_old^T R_delta||_F^2 (left) + ||R_delta V_old||_F^2 (right); a scalar, 0 while R_old = 0.
        Always reads R_old as it is now, also when it was set by hand (in place or by assignment)."""
        seen, version, energy = self._projected
        if seen is not self.R_old or version != self.R_old._version or energy != self.orth_energy:
            self.refresh_projectors()
        loss = self.R_delta.new_zeros(())
        if self.orth_side in ("both", "left"):
            loss = loss + (self.P_left @ self.R_delta).pow(2).sum()
        if self.orth_side in ("both", "right"):
            loss = loss + (self.R_delta @ self.P_right).pow(2).sum()
        return loss

    @torch.no_grad()
    def refresh_projectors(self) -> None:
        """Recompute P_left, P_right from R_old. orthogonality_loss() calls it whenever R_old has changed."""
        U, V = energy_basis(self.R_old.double(), self.orth_energy)  # (r, r): cheap, so exact
        self.P_left.copy_(U @ U.T)
        self.P_right.copy_(V @ V.T)
        self._projected = (self.R_old, self.R_old._version, self.orth_energy)

    @torch.no_grad()
    def consolidate(self) -> None:
        """End of a task: R_old += R_delta, R_delta = 0. Outputs are unchanged."""
        self.R_old += self.R_delta
        self.R_delta.zero_()
        self.refresh_projectors()

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain nn.Linear with W0 + s B R A folded in: no overhead and no task id at inference."""
        return linear_like(self.base, self.base.weight + self.delta_weight())

    def extra_repr(self) -> str:
        return (f"rank={self.rank}, scale={self.scale:g}, detach_old={self.detach_old}, "
                f"orth_energy={self.orth_energy}, orth_side={self.orth_side!r}")


@torch.no_grad()
def from_loras(base: nn.Linear, loras: list[tuple[torch.Tensor, torch.Tensor]],
               weights: list[float]) -> CLoRALinear:
    """A CLoRALinear equal to W0 + sum_t w_t B_t A_t (fold any LoRA scale into B_t first).

    loras: [(A_t (r_t, d_in), B_t (d_out, r_t)), ...]. The A_t are stacked as row blocks, the B_t as column
    blocks, and R_old = blockdiag(w_t I_{r_t}), so B R A = sum_t w_t B_t A_t: a stack of adapters is one
    C-LoRA adapter with a block-diagonal routing matrix. Scale is 1; R_delta = 0.
    """
    if len(loras) != len(weights) or not loras:
        raise ValueError(f"from_loras needs one weight per LoRA, got {len(loras)} LoRAs and {len(weights)} weights")
    A = torch.cat([a for a, _ in loras], 0)
    B = torch.cat([b for _, b in loras], 1)
    rank = A.shape[0]
    layer = CLoRALinear(base, rank, alpha=rank)
    layer.lora_A.copy_(A)
    layer.lora_B.copy_(B)
    layer.R_old.copy_(torch.block_diag(*[w * torch.eye(a.shape[0], dtype=A.dtype) for (a, _), w in zip(loras, weights)]))
    layer.refresh_projectors()
    return layer

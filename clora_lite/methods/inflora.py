"""InfLoRA (Liang & Li, CVPR 2024), read from the official code (liangyanshuo/InfLoRA, methods/inflora.py,
models/vit_inflora.py). What the kit changes, and why:
- one LoRALinear per target, and "a new branch per task" is run as: merge the previous branch into W0, then
  design a fresh A and zero B. Summing frozen old branches is the same function and the same gradients
  (as lora_per_task does); the protected basis is kept per adapted layer (k and v read the same input, so
  their bases are equal; the official code keeps one per block).
- the input covariance is measured on the task's images without augmentation (the official code reuses the
  augmented training loader); A is designed once from that, B trained from 0, exactly as there.
- the optimiser, learning rate, epochs and batch are the kit's (AdamW with a cosine schedule, the same budget
  for every method), and the head is the kit's: one head with the current task's logits only (the official
  per-task heads concatenated are the same thing), with the kit's head alignment on for every method alike
  (the official base method has none; its `inflora_ca` variant has one).
- targets k and v as in the official code (cfg.targets, which other methods use, is ignored); scale 1, A's rows
  orthonormal / sqrt(3) as there.
- the protected basis is stored zero-padded to (d_in, d_in) in the buffer `input_basis` (fixed shape, so it is
  saved in checkpoints and resumes), not as the official list of numpy bases with a DualGPM complement.

What a layer reads (from the same official code, rewritten for this kit):
- `input_covariances`: for each adapted layer, the uncentred covariance C = (1/n) sum_x x x^T over every token
  x (d_in,) that reaches the layer while the model sees a task's images (forward hooks). InfLoRA collects it
  at the attention block's input after norm1: the same tensor k and v read, so it is the same C for both.
- `grow_basis`: the protected basis M (d_in, k), orthonormal columns, holding a fraction `threshold` of the
  inputs' energy, extended after each task (gradient-projection-memory style). As in the official code the
  "energy" of a direction is the square of C's singular value along it (C itself stands in for the
  representation matrix; with C = X X^T / n that is the 4th power of X's singular values).
- `threshold_at(t, T)`: 0.95 at the first task rising linearly towards 1.0 (0.95 + 0.05 t / T), as the
  official CIFAR-100 config does.
Not carried over: the official "DualGPM" storage of the complement when M would exceed d/2 (the same
projection, stored the other way round to save memory); here M is kept zero-padded to (d_in, d_in).
"""
import functools

import torch
from torch import nn

from ..adapters import LoRALinear
from ..errors import NeedsTaskData
from .base import Learner


def one_thread(fn):
    """Run fn with one CPU thread. The decompositions here are small (d x d); with several threads on a busy
    2-core machine they were 40x slower (measured: 128 x 128 eigh 0.67 s with 2 threads, 0.016 s with 1)."""
    @functools.wraps(fn)
    def wrapper(*args, **kw):
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kw)
        finally:
            torch.set_num_threads(n)
    return wrapper


@torch.no_grad()
def input_covariances(model: nn.Module, layers: dict, batches) -> dict:
    """Uncentred input covariance of each layer over all tokens of all batches.

    layers: {name: module}; each module's first forward argument is its input (..., d_in).
    batches: an iterable of model inputs (e.g. prepared images (N, 3, H, W)); model(batch) is called for each.
    Returns {name: C (d_in, d_in) float64, C = (1/n) sum x x^T over the n tokens seen}. The model is left as it was.
    """
    sums, counts, hooks = {}, {}, []

    def hook_for(name):
        def hook(module, args, output):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()   # (tokens, d_in)
            xtx = (x.T @ x).double()       # float32 product, float64 sum: exact enough, fast on any device
            sums[name] = sums[name] + xtx if name in sums else xtx
            counts[name] = counts.get(name, 0) + x.shape[0]
        return hook

    was_training = model.training
    model.eval()
    try:
        for name, module in layers.items():
            hooks.append(module.register_forward_hook(hook_for(name)))
        for batch in batches:
            model(batch)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not counts:
        raise ValueError("input_covariances saw no input: `batches` was empty or the layers were never called")
    return {name: sums[name] / counts[name] for name in sums}


def threshold_at(t: int, num_tasks: int, start: float = 0.95, end: float = 1.0) -> float:
    """Energy threshold after task t (0-based) of num_tasks: start + (end - start) * t / num_tasks."""
    return start + (end - start) * t / max(num_tasks, 1)


def basis_of(padded: torch.Tensor) -> torch.Tensor:
    """The orthonormal columns M (d, k) kept in a fixed-shape (d, d) buffer whose other columns are zero."""
    return padded[:, padded.norm(dim=0) > 0.5]


def padded(M: torch.Tensor, d: int) -> torch.Tensor:
    """M (d, k) -> (d, d) with zero columns after the k basis vectors (a fixed shape: saved and resumed as is).
    The padded matrix Z still has Z Z^T = M M^T, so it can stand in for M in every projection."""
    return torch.cat([M, M.new_zeros(d, d - M.shape[1])], 1)


def project_off(C: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """(I - M M^T) C: C (d, d) with its columns' components inside span(M) (d, k) removed."""
    return C - M @ (M.T @ C)


@torch.no_grad()
@one_thread
def grow_basis(M: torch.Tensor, C: torch.Tensor, threshold: float) -> torch.Tensor:
    """Extend the protected basis M (d, k) with a task's input covariance C (d, d) -> M' (d, k'), k' >= k.

    Energies are squared singular values of C (as in the official code). First task (k = 0): keep the leading
    directions while their cumulative share of the energy stays below `threshold` (at least one). Later tasks:
    the share already inside span(M) is (|C|_F^2 - |(I - M M^T) C|_F^2) / |C|_F^2; add the leading left singular
    vectors of (I - M M^T) C one by one, each adding its squared singular value / |C|_F^2, until the share
    reaches `threshold`. New columns are orthogonal to M by construction (they lie in the range of I - M M^T).
    """
    C = C.double()
    M = M.double()
    total = (torch.linalg.svdvals(C) ** 2).sum()
    if total <= 0:
        return M
    if M.shape[1] == 0:
        U, S, _ = torch.linalg.svd(C)
        k = max(int((torch.cumsum(S ** 2, 0) / total < threshold).sum()), 1)
        return U[:, :k]
    U, S, _ = torch.linalg.svd(project_off(C, M))
    share = (total - (S ** 2).sum()) / total     # energy of this task's inputs already protected
    k = 0
    while k < len(S) and share < threshold and M.shape[1] + k < C.shape[0]:
        share = share + S[k] ** 2 / total
        k += 1
    new = U[:, :k]
    new = project_off(new, M)                    # remove round-off leaking into span(M), then re-orthonormalise
    new = torch.linalg.qr(new).Q if k else new
    return torch.cat([M, new], 1)


@one_thread
def design_down_projection(C: torch.Tensor, M: torch.Tensor, rank: int) -> torch.Tensor:
    """InfLoRA's designed A (rank, d): the top-`rank` left singular vectors of (I - M M^T) C, as rows, / sqrt(3).

    Rows are orthonormal (times 1/sqrt(3), the official scale) and orthogonal to span(M): the new branch reads
    only what earlier tasks' inputs did not hold, so on old inputs it adds (almost) nothing."""
    U, _, _ = torch.linalg.svd(project_off(C.double(), M.double()))
    return U[:, :rank].T / 3 ** 0.5


def _add_protected_buffer(m: nn.Module) -> None:
    """m.input_basis (d_in, d_in): the protected input basis M in its first columns, zeros after (fixed shape)."""
    d = m.base.in_features
    m.register_buffer("input_basis", torch.zeros(d, d, device=m.base.weight.device, dtype=m.base.weight.dtype))


def _grow_protected(layers: dict, covs: dict, threshold: float) -> None:
    """For each layer: M <- grow_basis(M, C, threshold), stored zero-padded in its `input_basis` buffer."""
    for name, m in layers.items():
        M = grow_basis(basis_of(m.input_basis).double(), covs[name], threshold)
        m.input_basis.copy_(padded(M, m.input_basis.shape[0]).to(m.input_basis.dtype))


class InfLoRA(Learner):
    """InfLoRA: per task a k/v branch whose A is designed from the task's inputs off the protected subspace and
    frozen; only B (from 0) and the head train. Old branches are folded into W0."""
    layer, targets, folds_into_base = LoRALinear, ("k", "v"), True

    def __init__(self, backbone, num_classes, cfg):
        super().__init__(backbone, num_classes, cfg)
        for m in self.adapters.values():
            m.lora_A.requires_grad_(False)   # designed, never trained
            _add_protected_buffer(m)
        self.batches = None

    def layer_options(self, cfg):
        return dict(alpha=cfg.rank)   # scale 1, as there

    def begin_task(self, t, labels):
        super().begin_task(t, labels)
        self.batches = None
        if t == 0:
            return
        for m in self.adapters.values():   # the previous branch joins W0; the new one starts at B = 0
            m.fold_into_base(reinit_A=False)   # A is designed in prepare_task

    @torch.no_grad()
    def prepare_task(self, batches):
        """Design A for every adapted layer from this task's inputs (the model as it is: B = 0)."""
        self.batches = batches
        covs = input_covariances(self.backbone, self.adapters, batches())
        for name, m in self.adapters.items():
            A = design_down_projection(covs[name], basis_of(m.input_basis), m.rank)
            m.lora_A.copy_(A.to(m.lora_A.dtype))
            m.lora_B.zero_()

    def param_groups(self):
        if self.batches is None:
            raise NeedsTaskData("inflora needs the task's images before training: call learner.prepare_task(batches) after begin_task")
        return [{"params": list(self.head.parameters()), "lr": self.cfg.head_lr},
                {"params": [m.lora_B for m in self.adapters.values()], "lr": self.cfg.lr}]

    @torch.no_grad()
    def end_task(self):
        """Grow each layer's protected basis by the trained model's inputs on this task (threshold 0.95 -> 1)."""
        covs = input_covariances(self.backbone, self.adapters, self.batches())
        _grow_protected(self.adapters, covs, threshold_at(self.t, self.cfg.tasks))

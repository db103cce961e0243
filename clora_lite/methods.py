"""The continual methods behind one small interface.

A Learner is a backbone (images -> features (N, D)) plus one pre-allocated linear head over all classes.
    begin_task(t, labels)   set up for task t (labels: the contiguous class ids it introduces)
    loss(images, labels)    cross-entropy on the current task's logits only (old rows of the head stay untouched)
                            + the method's regulariser
    param_groups()          what the optimiser trains during this task (a fresh optimiser per task)
    end_task()              after task t (C-LoRA consolidates here)
Evaluation is the argmax over every class seen so far: class-incremental, no task id.
With cfg.align_head (our addition, default on), train.py then calls record_class_stats and align_head, which
retrain the head over all seen classes on features sampled from each class's stored Gaussian; with
cfg.drift_ridge (ours) it first calls compensate_drift, which moves the old classes' Gaussians along the feature
drift measured on the current task's images.
"""
import math

import torch
from torch import nn
import torch.nn.functional as F

from . import adapters as ad
from .lora import LoRALinear


class Learner(nn.Module):
    adapter = None   # None | "lora" | "clora"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg):
        super().__init__()
        self.backbone, self.cfg = backbone, cfg
        self.head = nn.Linear(backbone.dim, num_classes)
        self.t, self.lo, self.hi = 0, 0, num_classes   # the current task and its label range
        if cfg.align_head:  # per-class feature mean (C, D) and covariance (C, D, D), for `align_head`
            D = backbone.dim
            self.register_buffer("class_mean", torch.zeros(num_classes, D))
            self.register_buffer("class_cov", torch.zeros(num_classes, D, D))
        self.backbone.requires_grad_(False)
        if self.adapter:
            kw = {} if self.adapter == "lora" else dict(detach_old=cfg.detach_old, orth_energy=cfg.orth_energy,
                                                         orth_side=cfg.orth_side)
            ad.add_adapters(self.backbone, self.adapter, cfg.rank, cfg.targets, alpha=cfg.alpha, **kw)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> logits (N, num_classes)."""
        return self.logits(self.backbone(images))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """features (N, D) -> logits (N, num_classes)."""
        if self.cfg.head == "cosine":  # every class row has norm 1: no class wins by a larger weight norm
            return self.cfg.head_scale * F.linear(F.normalize(features, dim=-1), F.normalize(self.head.weight, dim=-1))
        return self.head(features)

    def begin_task(self, t: int, labels: list) -> None:
        self.t, self.lo, self.hi = t, min(labels), max(labels) + 1

    def loss(self, images, labels) -> torch.Tensor:
        logits = self(images)[:, self.lo:self.hi]
        return F.cross_entropy(logits.float(), labels - self.lo) + self.regularizer()

    def regularizer(self) -> torch.Tensor | float:
        return 0.0

    def prepare_task(self, batches) -> None:
        """Called by train.py after begin_task: batches() yields the task's training images prepared for the
        backbone ((N, 3, H, W) floats, no augmentation). Learners that read a task's inputs (peers.py) use it."""

    def param_groups(self) -> list:
        trainable = [p for p in self.backbone.parameters() if p.requires_grad]
        groups = [{"params": list(self.head.parameters()), "lr": self.cfg.head_lr}]
        return groups + ([{"params": trainable, "lr": self.cfg.lr}] if trainable else [])

    def end_task(self) -> None:
        pass

    @torch.no_grad()
    def record_class_stats(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """features (N, D) of the current task's training images, labels (N,): store mean and covariance."""
        for c in labels.unique().tolist():
            f = features[labels == c].float()
            self.class_mean[c] = f.mean(0)
            self.class_cov[c] = torch.cov(f.T) if len(f) > 1 else 0.0

    @torch.no_grad()
    def compensate_drift(self, before: torch.Tensor, after: torch.Tensor, n_old: int, ridge: float = 1.0) -> None:
        """Move the stored statistics of classes 0..n_old-1 along the feature drift of the task just trained.

        before, after (N, D): the current task's training images through the backbone as it was before the task
        and as it is after. A linear drift  f_after ~ f_before + (f_before - m) M + d  is fitted by ridge
        regression on them (M (D, D) shrunk toward 0, i.e. the map toward the identity; ridge scales with the
        inputs' mean variance), and applied to each old class:  mean <- mean + (mean - m) M + d,
        cov <- (I + M)^T cov (I + M). A frozen backbone has no drift, so nothing moves. Our addition (drift
        compensation in the spirit of SDC, Yu et al. 2020, with a linear map as in LDC, Gomez-Villa et al. 2024)."""
        if n_old == 0:
            return
        X, Y = before.double(), after.double()
        m, d = X.mean(0), Y.mean(0) - X.mean(0)
        Xc = X - m
        delta = (Y - Y.mean(0)) - Xc                                            # (N, D) drift around the means
        D = X.shape[1]
        lam = ridge * Xc.pow(2).sum() / D                                       # scale-free shrinkage
        M = torch.linalg.solve(Xc.T @ Xc + lam * torch.eye(D, dtype=X.dtype, device=X.device), Xc.T @ delta)
        T = torch.eye(D, dtype=X.dtype, device=X.device) + M                    # (D, D)
        mean, cov = self.class_mean[:n_old].double(), self.class_cov[:n_old].double()
        self.class_mean[:n_old] = ((mean - m) @ T + m + d).to(self.class_mean.dtype)
        self.class_cov[:n_old] = (T.T @ cov @ T).to(self.class_cov.dtype)

    def align_head(self, n_seen: int, steps: int, generator=None, batch_per_class: int = 32) -> None:
        """Retrain the head rows of all n_seen classes against each other on features sampled from each
        class's Gaussian N(mean, cov + shrink I): the exemplar-free cure for the masked head never having
        compared classes of different tasks. (Classifier alignment as in SLCA, Zhang et al. 2023: our choice.)"""
        D = self.class_mean.shape[1]
        cov = self.class_cov[:n_seen]
        shrink = 1e-3 + cov.diagonal(dim1=1, dim2=2).mean(1)[:, None, None] * 0.1
        L = torch.linalg.cholesky(cov + shrink * torch.eye(D, device=cov.device))   # (C, D, D)
        opt = torch.optim.Adam(self.head.parameters(), lr=self.cfg.head_lr)
        labels = torch.arange(n_seen, device=cov.device).repeat_interleave(batch_per_class)
        for _ in range(steps):
            z = torch.randn(n_seen, batch_per_class, D, device=cov.device, generator=generator)
            feats = (self.class_mean[:n_seen, None] + z @ L.transpose(1, 2)).reshape(-1, D)
            loss = F.cross_entropy(self.logits(feats)[:, :n_seen], labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def total_params(self) -> int:
        """Parameters a deployment must keep: the backbone as merged plus the head (adapters fold in)."""
        return sum(p.numel() for n, p in self.named_parameters() if not _is_adapter_param(n))

    def trainable_params(self) -> int:
        return sum(p.numel() for g in self.param_groups() for p in g["params"])


def _is_adapter_param(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in ("lora_A", "lora_B", "R_delta", "magnitudes")


class Frozen(Learner):
    """The pre-trained backbone as it is; only the head learns."""


class Finetune(Learner):
    """Every backbone weight trains, task after task (lr = backbone_lr)."""

    def __init__(self, backbone, num_classes, cfg):
        super().__init__(backbone, num_classes, cfg)
        self.backbone.requires_grad_(True)

    def param_groups(self):
        return [{"params": list(self.head.parameters()), "lr": self.cfg.head_lr},
                {"params": list(self.backbone.parameters()), "lr": self.cfg.backbone_lr}]


class SeqLoRA(Learner):
    """One LoRA on the targets, trained on task after task with nothing to protect old tasks."""
    adapter = "lora"


class LoRAPerTask(SeqLoRA):
    """A new LoRA per task, old ones frozen, all summed at inference: the stack of adapters.

    Summing frozen old LoRAs is the same function and the same gradients as folding them into W0, so at the
    start of each task the previous LoRA is merged into W0 and a fresh one (B = 0) begins. Storage still grows
    with the number of tasks for anyone who keeps the adapters apart: `total_params` counts them."""

    def begin_task(self, t, labels):
        super().begin_task(t, labels)
        if t == 0:
            return
        with torch.no_grad():
            for m in ad.adapters_of(self.backbone, LoRALinear):
                m.base.weight += m.delta_weight()
                nn.init.kaiming_uniform_(m.lora_A, a=math.sqrt(5))
                m.lora_B.zero_()

    def total_params(self):
        per_task = sum(p.numel() for n, p in self.named_parameters() if _is_adapter_param(n))
        return super().total_params() + per_task * (self.t + 1)


class CLoRA(Learner):
    """One shared C-LoRA adapter per target: B (R_old + R_delta) A, orthogonality penalty, consolidation."""
    adapter = "clora"

    def param_groups(self):
        routing = [p for n, p in self.backbone.named_parameters() if n.endswith("R_delta")]
        factors = [p for n, p in self.backbone.named_parameters() if p.requires_grad and not n.endswith("R_delta")]
        return [{"params": list(self.head.parameters()), "lr": self.cfg.head_lr},
                {"params": factors, "lr": self.cfg.lr},
                {"params": routing, "lr": self.cfg.routing_lr or self.cfg.lr}]

    def regularizer(self):
        return self.cfg.lambda_orth * ad.orthogonality_loss(self.backbone) if self.cfg.lambda_orth else 0.0

    def end_task(self):
        ad.consolidate(self.backbone)


class Joint(SeqLoRA):
    """The upper bound: the same LoRA as seq_lora, trained on all tasks' data at once (train.py runs it as a
    single task holding every class)."""


METHODS = {"frozen": Frozen, "finetune": Finetune, "seq_lora": SeqLoRA, "lora_per_task": LoRAPerTask,
           "clora": CLoRA, "joint": Joint}


# The published peers and the kit's input-protecting C-LoRA subclass the learners above (see peers.py).
from .peers import PEERS  # noqa: E402
METHODS.update(PEERS)


def make_learner(backbone: nn.Module, num_classes: int, cfg) -> Learner:
    return METHODS[cfg.method](backbone, num_classes, cfg)

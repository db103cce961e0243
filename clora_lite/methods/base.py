"""The interface every continual method implements, and what they share: the class-incremental head.

A Learner is a backbone (images -> features (N, D)) plus one pre-allocated linear head over all classes.
    begin_task(t, labels)   set up for task t (labels: the contiguous class ids it introduces)
    prepare_task(batches)   read the task's un-augmented inputs before training (InfLoRA; a no-op otherwise)
    loss(images, labels)    cross-entropy on the current task's logits only (old rows of the head stay untouched)
                            + the method's regulariser
    param_groups()          what the optimiser trains during this task (a fresh optimiser per task)
    end_task()              after task t (C-LoRA consolidates here)
Evaluation is the argmax over every class seen so far: class-incremental, no task id.
With cfg.align_head (our addition, default on), the loop then calls record_class_stats and align_head, which
retrain the head over all seen classes on features sampled from each class's stored Gaussian; with
cfg.drift_ridge (ours) it first calls compensate_drift, which moves the old classes' Gaussians along the feature
drift measured on the current task's images.
"""
import torch
from torch import nn
import torch.nn.functional as F

from .. import adapters as ad

CLASS_STATS = ("class_mean", "class_cov")   # buffers kept out of the state dict (see Learner.__init__)


class Learner(nn.Module):
    # What a method puts into the backbone, declared here so that the loop, checkpoints and the analysis need no
    # per-method tables: the adapter layer class (None: none), the Linear layers it wraps (None: cfg.targets), and
    # whether each task's adapter is folded into W0 when the next task begins (then each task's snapshot holds
    # only that task's update, and the updates add up).
    layer = None
    targets = None
    folds_into_base = False
    needs_class_stats = False   # True: classifies with the class statistics, so it needs cfg.align_head

    def __init__(self, backbone: nn.Module, num_classes: int, cfg):
        super().__init__()
        self.backbone, self.cfg = backbone, cfg
        self.head = nn.Linear(backbone.dim, num_classes)
        self.t, self.lo, self.hi = 0, 0, num_classes   # the current task and its label range
        if cfg.align_head:  # per-class feature mean (C, D) and covariance (C, D, D), for `align_head`
            # They grow with the classes (ViT-B/16, 100 classes: 236 MB), so they are not part of the state dict
            # that checkpoints save: a run folder keeps each task's statistics in a file of its own, written once.
            D = backbone.dim
            self.register_buffer("class_mean", torch.zeros(num_classes, D), persistent=False)
            self.register_buffer("class_cov", torch.zeros(num_classes, D, D), persistent=False)
        self.backbone.requires_grad_(False)
        if self.layer is not None:
            ad.add_adapters(self.backbone, self.layer, cfg.rank, self.targets or cfg.targets, **self.layer_options(cfg))
        self.adapters = ad.named_adapters(self.backbone)   # {name in backbone: adapter layer}

    def layer_options(self, cfg) -> dict:
        """Keyword arguments of the adapter layer class, from the run's settings."""
        return dict(alpha=cfg.alpha)

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
        """Called by the loop after begin_task: batches() yields the task's training images prepared for the
        backbone ((N, 3, H, W) floats, no augmentation). Learners that read a task's inputs (InfLoRA) use it."""

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
    def compensate_drift(self, before: torch.Tensor, after: torch.Tensor, n_old: int, ridge: float = 1.0) -> dict:
        """Move the stored statistics of classes 0..n_old-1 along the feature drift of the task just trained;
        returns the drift applied ({"T", "m", "d", "n_old"}, float64), so that it can be applied again on resume.

        before, after (N, D): the current task's training images through the backbone as it was before the task
        and as it is after. A linear drift  f_after ~ f_before + (f_before - m) M + d  is fitted by ridge
        regression on them (M (D, D) shrunk toward 0, i.e. the map toward the identity; ridge scales with the
        inputs' mean variance), and applied to each old class:  mean <- mean + (mean - m) M + d,
        cov <- (I + M)^T cov (I + M). A frozen backbone has no drift, so nothing moves. Our addition (drift
        compensation in the spirit of SDC, Yu et al. 2020, with a linear map as in LDC, Gomez-Villa et al. 2024)."""
        X, Y = before.double(), after.double()
        m, d = X.mean(0), Y.mean(0) - X.mean(0)
        Xc = X - m
        delta = (Y - Y.mean(0)) - Xc                                            # (N, D) drift around the means
        D = X.shape[1]
        lam = ridge * Xc.pow(2).sum() / D                                       # scale-free shrinkage
        M = torch.linalg.solve(Xc.T @ Xc + lam * torch.eye(D, dtype=X.dtype, device=X.device), Xc.T @ delta)
        drift = {"T": torch.eye(D, dtype=X.dtype, device=X.device) + M, "m": m, "d": d, "n_old": n_old}
        self.apply_drift(drift)
        return drift

    @torch.no_grad()
    def apply_drift(self, drift: dict) -> None:
        """mean <- (mean - m) T + m + d and cov <- T^T cov T for classes 0..n_old-1 (compensate_drift's map)."""
        n_old = drift["n_old"]
        if n_old == 0:
            return
        T, m, d = (drift[k].to(self.class_mean.device) for k in ("T", "m", "d"))
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

    def adapter_numel(self) -> int:
        """Numbers in the adapters' trainable tensors, once (a parameter shared by layers counts once)."""
        seen = {id(p): p.numel() for m in self.adapters.values() for p in m.adapter_tensors().values()
                if isinstance(p, nn.Parameter)}
        return sum(seen.values())

    def stored_params(self) -> int:
        """Parameters a deployment keeps to serve every task seen so far: the backbone as merged plus the head
        (a single adapter folds into W0). Methods that must keep per-task adapters apart add them."""
        return sum(p.numel() for p in self.parameters()) - self.adapter_numel()

    def trainable_params(self) -> int:
        return sum(p.numel() for g in self.param_groups() for p in g["params"])

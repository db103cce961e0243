"""The C-LoRA learner: one shared CLoRALinear per target (adapters/clora.py), trained on each task with
cross-entropy + lambda_orth * L_orth, consolidated after it (R_old <- R_old + R_delta, R_delta <- 0)."""
from .. import adapters as ad
from ..adapters import CLoRALinear
from .base import Learner


class CLoRA(Learner):
    """One shared C-LoRA adapter per target: B (R_old + R_delta) A, orthogonality penalty, consolidation."""
    layer = CLoRALinear

    def layer_options(self, cfg):
        return dict(alpha=cfg.alpha, detach_old=cfg.detach_old, orth_energy=cfg.orth_energy, orth_side=cfg.orth_side)

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

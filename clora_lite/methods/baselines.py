"""The baselines every comparison runs beside C-LoRA: the frozen backbone, full fine-tuning, one LoRA trained
task after task, a new LoRA per task (the stack of adapters), and the joint upper bound; and two of the
literature's strongest simple baselines: first-session adaptation and a nearest-class-mean classifier."""
import torch
import torch.nn.functional as F

from ..adapters import LoRALinear
from .base import Learner


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
    layer = LoRALinear


class LoRAPerTask(SeqLoRA):
    """A new LoRA per task, old ones frozen, all summed at inference: the stack of adapters.

    Summing frozen old LoRAs is the same function and the same gradients as folding them into W0, so at the
    start of each task the previous LoRA is folded into W0 and a fresh one (new A, B = 0) begins. Its
    `stored_params` is therefore the merged backbone and the head, counted as for InfLoRA, which folds its old
    branches the same way: a stack summed with fixed weights needs nothing kept apart to serve every task. It
    grows by one A, B per layer per task only for anyone who keeps the adapters apart (to reweight or drop one,
    as SD-LoRA reweights): `inside.analysis.stored_adapter_params` counts that."""
    folds_into_base = True

    def begin_task(self, t, labels):
        super().begin_task(t, labels)
        if t > 0:
            for m in self.adapters.values():
                m.fold_into_base(reinit_A=True)


class Joint(SeqLoRA):
    """The upper bound: the same LoRA as seq_lora, trained on all tasks' data at once (the loop runs it as a
    single task holding every class: see `continual.loop.task_stream`)."""


class FirstSession(SeqLoRA):
    """First-session adaptation: one LoRA trained on the first task only, then frozen; later tasks train the head
    alone (with head alignment, as every method). The simple baseline of APER (Zhou et al., "Revisiting
    class-incremental learning with pre-trained models", IJCV 2024, whose adapter is tuned on the first session
    only); here with the kit's LoRA as the adapter."""

    def param_groups(self):
        groups = super().param_groups()
        return groups if self.t == 0 else groups[:1]


class NCM(Frozen):
    """Nearest class mean on the frozen pre-trained features: a class's score is the cosine similarity between an
    image's feature and the class's mean feature (the prototype classifier of SimpleShot, Wang et al. 2019, and of
    APER's frozen-backbone baseline). Nothing is trained; the class means are the statistics head alignment stores,
    so it needs align_head on (the alignment itself is skipped)."""
    needs_class_stats = True

    def param_groups(self):
        return []

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(features, dim=-1), F.normalize(self.class_mean, dim=-1))

    def align_head(self, n_seen: int, steps: int, generator=None, batch_per_class: int = 32) -> None:
        pass

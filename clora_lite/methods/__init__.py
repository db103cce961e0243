"""The continual methods, each a Learner (base.py) in its own file, and the registry the command line uses."""
from .base import Learner
from .baselines import NCM, Finetune, FirstSession, Frozen, Joint, LoRAPerTask, SeqLoRA
from .clora import CLoRA
from .inflora import InfLoRA
from .sdlora import SDLoRA, SDLoRALinear

METHODS = {"frozen": Frozen, "finetune": Finetune, "seq_lora": SeqLoRA, "lora_per_task": LoRAPerTask,
           "clora": CLoRA, "joint": Joint, "inflora": InfLoRA, "sdlora": SDLoRA, "first_session": FirstSession,
           "ncm": NCM}


def make_learner(backbone, num_classes: int, cfg) -> Learner:
    """The learner cfg.method names, around `backbone`, with a head over `num_classes` classes."""
    return METHODS[cfg.method](backbone, num_classes, cfg)

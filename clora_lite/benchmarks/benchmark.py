"""The Benchmark type: a list of tasks (class ids) plus train / validation / test tensors.

All images are kept as uint8 (N, 3, H, W) on the training device (`ViT.prepare` turns a batch into model
inputs there). Labels are remapped to the incremental order: task t owns a contiguous block of labels
(`tasks[t]`; equal blocks unless `task_sizes` says otherwise), and `class_order[i]` is the original id of label i.
"""
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError


@dataclass
class Benchmark:
    name: str
    train_x: torch.Tensor   # (N, 3, H, W) uint8
    train_y: torch.Tensor   # (N,) int64, incremental labels
    test_x: torch.Tensor
    test_y: torch.Tensor
    tasks: list             # tasks[t] = list of the labels task t introduces
    class_names: list       # in incremental order
    class_order: list       # original class ids in incremental order
    hflip: bool = True      # whether a horizontal flip keeps the class (not for the synthetic set)
    info: dict = field(default_factory=dict)
    val_x: torch.Tensor | None = None   # filled by hold_out()
    val_y: torch.Tensor | None = None

    def __post_init__(self):
        if self.val_x is None:
            self.hold_out(0.0)

    @property
    def num_classes(self) -> int:
        return sum(len(t) for t in self.tasks)

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def split(self, t: int | list, part: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """Images (n, 3, H, W) uint8 and labels (n,) of task t (or of a list of tasks); part: train | val | test."""
        labels = [c for i in ([t] if isinstance(t, int) else t) for c in self.tasks[i]]
        x, y = getattr(self, f"{part}_x"), getattr(self, f"{part}_y")
        keep = torch.isin(y, torch.tensor(labels, device=y.device))
        return x[keep], y[keep]

    def task_of(self) -> torch.Tensor:
        """(num_classes,) int64: the task that introduces each label."""
        return task_of_label(self.tasks)

    def hold_out(self, fraction: float, seed: int = 0) -> "Benchmark":
        """Move a seeded `fraction` of every class's training images into a validation split (val_x, val_y),
        in place: settings are tuned on it, never on the test split. fraction 0 leaves an empty split."""
        g = torch.Generator().manual_seed(10_000 + seed)
        val = torch.zeros(len(self.train_y), dtype=torch.bool)
        if fraction > 0:
            for c in self.train_y.unique().tolist():
                idx = (self.train_y == c).nonzero().flatten().cpu()
                k = min(len(idx) - 1, max(1, round(fraction * len(idx))))
                val[idx[torch.randperm(len(idx), generator=g)[:k]]] = True
        val = val.to(self.train_y.device)
        self.val_x, self.val_y = self.train_x[val], self.train_y[val]
        self.train_x, self.train_y = self.train_x[~val], self.train_y[~val]
        return self

    def to(self, device) -> "Benchmark":
        for k in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
            setattr(self, k, getattr(self, k).to(device))
        return self


def make_tasks(num_classes: int, num_tasks: int, sizes=None) -> list:
    """Contiguous blocks of labels, one per task: equal blocks, or the block sizes given in `sizes`."""
    if sizes:
        sizes = list(sizes)
        if len(sizes) != num_tasks or sum(sizes) != num_classes or min(sizes) < 1:
            raise ConfigError(f"task_sizes={','.join(map(str, sizes))} is not allowed: give {num_tasks} positive "
                              f"sizes that add up to the {num_classes} classes")
    elif not isinstance(num_tasks, int) or num_tasks < 1 or num_classes % num_tasks:
        raise ConfigError(f"tasks={num_tasks!r} is not allowed: it must divide the {num_classes} classes "
                          f"(e.g. {', '.join(str(d) for d in range(1, num_classes + 1) if num_classes % d == 0)}), "
                          "or give --task-sizes")
    else:
        sizes = [num_classes // num_tasks] * num_tasks
    starts = [sum(sizes[:t]) for t in range(num_tasks)]
    return [list(range(a, a + k)) for a, k in zip(starts, sizes)]


def pycil_order(num_classes: int, seed: int = 1993) -> list:
    """The class order of PyCIL and most ViT continual-learning papers: a numpy shuffle with seed 1993."""
    rng = np.random.RandomState(seed)  # np.random.seed(1993); np.random.permutation(n), as PyCIL does it
    return rng.permutation(num_classes).tolist()


def relabel(x, y, order: list):
    """Map original ids to positions in `order` (the incremental labels)."""
    lookup = torch.empty(max(order) + 1, dtype=torch.long)
    lookup[torch.tensor(order)] = torch.arange(len(order))
    return x, lookup[y]



def task_of_label(tasks: list) -> torch.Tensor:
    """(num_classes,) int64: entry c is the task that introduces label c (tasks[t]: its contiguous labels)."""
    return torch.tensor([t for t, labels in enumerate(tasks) for _ in labels])

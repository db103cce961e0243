"""Benchmarks: a list of tasks (class ids) plus train/test tensors.

All images are kept as uint8 (N, 3, H, W) on the training device (`ViT.prepare` turns a batch into model
inputs there). Labels are remapped to the incremental order: task t owns a contiguous block of labels
(`tasks[t]`; equal blocks unless `task_sizes` says otherwise), and `class_order[i]` is the original id of label i.

Benchmarks: "synthetic" (offline, generated), "synthetic_inverted" (the same as photographic negatives: a
domain shift pre-training never saw), "split_cifar100", "split_cifar10" (torchvision download),
"imagefolder:PATH" (PATH/train/<class>/*, PATH/test/<class>/*).
"""
from dataclasses import dataclass, field
import colorsys
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import ConfigError
from .env import data_dir as default_data_dir


class DatasetMissing(RuntimeError):
    """A dataset is not on disk and cannot be downloaded here. The message is one line saying how to get it."""


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
        return torch.tensor([t for t, labels in enumerate(self.tasks) for _ in labels])

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


# ---------------------------------------------------------------- the synthetic benchmark

SHAPES = ["disc", "square", "triangle", "ring", "cross", "diamond", "bar", "L"]
TEXTURES = ["flat", "h-stripes", "v-stripes", "checker", "dots", "diagonal"]
HUES = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"]
PRETRAIN_SHAPES, PRETRAIN_TEXTURES = range(6), range(5)   # pre-training never sees "bar", "L", "diagonal"


def synthetic_classes(pretrain: bool) -> list:
    """(shape, texture, hue) index triples. Continual classes each hold a shape or texture that pre-training
    never saw; pre-training classes are all combinations of the rest. The two sets are disjoint."""
    combos = [(s, t, h) for s in range(len(SHAPES)) for t in range(len(TEXTURES)) for h in range(len(HUES))]
    seen = lambda c: c[0] in PRETRAIN_SHAPES and c[1] in PRETRAIN_TEXTURES
    return [c for c in combos if seen(c) == pretrain]


def _shape_mask(shape: int, u, v):
    r = torch.sqrt(u ** 2 + v ** 2)
    return [r < 1,
            torch.maximum(u.abs(), v.abs()) < 0.85,
            (v < 0.8) & (u.abs() < (v + 1.0) * 0.55),
            (r < 1) & (r > 0.55),
            ((u.abs() < 0.3) & (v.abs() < 0.95)) | ((v.abs() < 0.3) & (u.abs() < 0.95)),
            u.abs() + v.abs() < 1.05,
            (u.abs() < 1.0) & (v.abs() < 0.38),
            ((u > -0.9) & (u < -0.3) & (v.abs() < 0.95)) | ((u > -0.9) & (u < 0.9) & (v > 0.35) & (v < 0.95)),
            ][shape]


def _texture(texture: int, u, v, freq):
    k = math.pi * freq
    wave = [torch.ones_like(u), torch.sin(k * v), torch.sin(k * u),
            torch.sin(k * u) * torch.sin(k * v), None, torch.sin(k * (u + v) / 1.4)][texture]
    if texture == 4:  # dots: bright spots on a dim field
        return 0.35 + 0.65 * ((torch.cos(k * u) * torch.cos(k * v)) > 0.4).float()
    return 0.35 + 0.65 * (wave > 0).float() if texture else wave


def render_class(cls: tuple, n: int, g: torch.Generator, size: int = 32) -> torch.Tensor:
    """n images (n, 3, size, size) uint8 of one (shape, texture, hue) class, with per-image position, scale,
    texture frequency, colour and background jitter and pixel noise."""
    shape, texture, hue = cls
    U = lambda lo, hi, *s: lo + (hi - lo) * torch.rand(*(s or (n, 1, 1)), generator=g)
    axis = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    scale = U(0.45, 0.75)
    u, v = (xx - U(-0.3, 0.3)) / scale, (yy - U(-0.3, 0.3)) / scale
    mask = _shape_mask(shape, u, v).float()
    tex = _texture(texture, u, v, U(2.5, 3.5))
    h = (hue / len(HUES) + U(-0.025, 0.025, n)).remainder(1.0)
    fg = torch.tensor([colorsys.hsv_to_rgb(float(a), 0.85, 0.95) for a in h]).view(n, 3, 1, 1)
    # a smooth random background: 4x4 random colours upsampled, kept dull so the object stands out
    bg = F.interpolate(U(0.05, 0.45, n, 3, 4, 4), size=size, mode="bicubic", align_corners=False)
    img = bg * (1 - mask[:, None]) + fg * (tex * mask)[:, None] + 0.06 * torch.randn(n, 3, size, size, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def synthetic(num_tasks: int = 10, num_classes: int = 100, train_per_class: int = 300, test_per_class: int = 50,
              seed: int = 0, pretrain: bool = False, inverted: bool = False, task_sizes=None) -> Benchmark:
    """A procedurally generated stand-in for Split-CIFAR-100, made in seconds with no files.

    Each class is a (shape, texture, hue) triple: 8 shapes x 6 textures x 8 hues. Classes share low-level
    structure (edges, stripes, colours), so features learned on some classes transfer to others; a class is a
    conjunction of three factors, so telling 100 of them apart needs all three. Pre-training (`pretrain=True`)
    uses the 240 combinations of 6 shapes and 5 textures; the continual classes are drawn (seeded) from the 144
    combinations holding the other 2 shapes or the sixth texture. Measured: the shipped pre-trained vit_tiny's
    frozen features give a 100-class linear probe of 83.8 % (random weights: 24.0 %), so pre-training transfers
    well; adapting the backbone has little headroom left (in the demo, jointly trained LoRA 84.9 % vs a frozen
    backbone with an aligned head 83.6 %), while sequential fine-tuning forgets badly (17.8 %). Position, scale,
    stripe frequency, hue, background and noise vary per image; flips are not label-preserving ("L", diagonal
    stripes), so `hflip=False`.
    """
    pool = synthetic_classes(pretrain)
    if not 1 <= num_classes <= len(pool):
        raise ConfigError(f"classes={num_classes} is not allowed for synthetic: use 1 to {len(pool)}")
    tasks = make_tasks(num_classes, num_tasks, task_sizes)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(pool), generator=g)[:num_classes].tolist()
    classes = [pool[i] for i in pick]
    xs, ys = [], []
    for label, cls in enumerate(classes):
        xs.append(render_class(cls, train_per_class + test_per_class, g))
        ys.append(torch.full((train_per_class + test_per_class,), label))
    x, y = torch.stack(xs), torch.stack(ys)   # (C, n, 3, H, W), (C, n)
    if inverted:   # a domain shift: the same classes as photographic negatives, which pre-training never saw
        x = 255 - x
    train, test = slice(0, train_per_class), slice(train_per_class, None)
    flat = lambda t: t.flatten(0, 1)
    names = [f"{HUES[h]} {TEXTURES[t]} {SHAPES[s]}" for s, t, h in classes]
    name = "synthetic" + ("-pretrain" if pretrain else "") + ("-inverted" if inverted else "")
    return Benchmark(name, flat(x[:, train]), flat(y[:, train]), flat(x[:, test]), flat(y[:, test]), tasks, names,
                     pick, hflip=False,
                     info={"seed": seed, "train_per_class": train_per_class, "test_per_class": test_per_class})


# ---------------------------------------------------------------- real data

def split_cifar(num_classes: int = 100, num_tasks: int = 10, order: str = "seed1993",
                data_dir: Path | str | None = None, download: bool = True, task_sizes=None) -> Benchmark:
    """Split-CIFAR-100 (or -10) via torchvision, downloaded once into data_dir (default: env.data_dir())."""
    import torchvision
    cls = {100: torchvision.datasets.CIFAR100, 10: torchvision.datasets.CIFAR10}[num_classes]
    name = f"split_cifar{num_classes}"
    tasks = make_tasks(num_classes, num_tasks, task_sizes)
    data_dir = Path(data_dir or default_data_dir())
    try:
        sets = [cls(str(data_dir), train=tr, download=download) for tr in (True, False)]
    except OSError as e:   # no network (URLError), no disk space, unwritable folder; a bug elsewhere stays loud
        raise DatasetMissing(f"{name}: CIFAR-{num_classes} is not in {data_dir} and could not be downloaded "
                             f"({type(e).__name__}); run once with internet, or copy the torchvision "
                             f"'cifar-{num_classes}-python' folder there") from None
    if order not in ("seed1993", "label"):
        raise ConfigError(f"class order={order!r} is not allowed: use seed1993 or label")
    class_order = pycil_order(num_classes) if order == "seed1993" else list(range(num_classes))
    tensors = [relabel(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(s.targets),
                       class_order) for s in sets]
    names = [sets[0].classes[c] for c in class_order]
    return Benchmark(name, *tensors[0], *tensors[1], tasks, names, class_order, hflip=True,
                     info={"order": order})


def imagefolder(path: str, num_tasks: int, image_size: int = 32, task_sizes=None) -> Benchmark:
    """PATH/train/<class>/*.png|jpg and PATH/test/<class>/*: classes in sorted order, resized to image_size."""
    from PIL import Image
    root = Path(path)
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise DatasetMissing(f"imagefolder:{path}: needs the folders {root}/train/<class>/ and {root}/test/<class>/")
    names = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
    tasks = make_tasks(len(names), num_tasks, task_sizes)

    def load(split):
        xs, ys = [], []
        for label, name in enumerate(names):
            for f in sorted((root / split / name).glob("*")):
                if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
                    img = Image.open(f).convert("RGB").resize((image_size, image_size), Image.BILINEAR)
                    xs.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
                    ys.append(label)
        if not xs:
            raise DatasetMissing(f"imagefolder:{path}: no images found under {root / split}")
        return torch.stack(xs), torch.tensor(ys)

    return Benchmark(f"imagefolder:{path}", *load("train"), *load("test"), tasks, names,
                     list(range(len(names))), hflip=True)


BENCHMARKS = ("synthetic", "synthetic_inverted", "split_fashion_mnist", "split_cifar100", "split_cifar10",
              "imagefolder:PATH")


def load_benchmark(name: str, num_tasks: int = 10, seed: int = 0, data_dir=None, order: str = "seed1993",
                   task_sizes=None, **synthetic_kw) -> Benchmark:
    """By name: "synthetic", "synthetic_inverted", "split_fashion_mnist", "split_cifar100", "split_cifar10" or
    "imagefolder:PATH". synthetic_kw: classes/train/test sizes (split_fashion_mnist takes the two per-class sizes)."""
    if name in ("synthetic", "synthetic_inverted"):
        return synthetic(num_tasks, seed=seed, inverted=name == "synthetic_inverted", task_sizes=task_sizes,
                         **synthetic_kw)
    if name == "split_fashion_mnist":
        from .realdata import split_fashion_mnist   # realdata imports this module: imported here, not on top
        return split_fashion_mnist(num_tasks, order, data_dir, seed=seed, task_sizes=task_sizes,
                                   train_per_class=synthetic_kw.get("train_per_class"),
                                   test_per_class=synthetic_kw.get("test_per_class"))
    if name in ("split_cifar100", "split_cifar10"):
        return split_cifar(int(name[len("split_cifar"):]), num_tasks, order, data_dir, task_sizes=task_sizes)
    if name.startswith("imagefolder:"):
        return imagefolder(name[len("imagefolder:"):], num_tasks, task_sizes=task_sizes)
    raise ConfigError(f"benchmark={name!r} is not allowed: use one of {', '.join(BENCHMARKS)}")

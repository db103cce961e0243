"""Benchmarks: a list of tasks (class ids) plus train/test tensors, and batched on-device augmentation.

All images are kept as uint8 (N, 3, H, W) on the training device; `prepare` turns a batch into normalised
floats at the model's resolution with one affine_grid + grid_sample (random-resized-crop and flip, per sample),
so a 2-core machine never feeds a GPU image by image. Labels are remapped to the incremental order: task t
owns the contiguous labels [t * k, (t + 1) * k), and `class_order[i]` is the original id of label i.

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
from .vit import DATA_DIR


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

    @property
    def num_classes(self) -> int:
        return sum(len(t) for t in self.tasks)

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def split(self, t: int | list, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels of task t (or of a list of tasks)."""
        labels = [c for i in ([t] if isinstance(t, int) else t) for c in self.tasks[i]]
        x, y = (self.train_x, self.train_y) if train else (self.test_x, self.test_y)
        keep = torch.isin(y, torch.tensor(labels, device=y.device))
        return x[keep], y[keep]

    def to(self, device) -> "Benchmark":
        for k in ("train_x", "train_y", "test_x", "test_y"):
            setattr(self, k, getattr(self, k).to(device))
        return self


def make_tasks(num_classes: int, num_tasks: int) -> list:
    if not isinstance(num_tasks, int) or num_tasks < 1 or num_classes % num_tasks:
        raise ConfigError(f"tasks={num_tasks!r} is not allowed: it must divide the {num_classes} classes "
                         f"(e.g. {', '.join(str(d) for d in range(1, num_classes + 1) if num_classes % d == 0)})")
    k = num_classes // num_tasks
    return [list(range(t * k, (t + 1) * k)) for t in range(num_tasks)]


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
              seed: int = 0, pretrain: bool = False, inverted: bool = False) -> Benchmark:
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
    tasks = make_tasks(num_classes, num_tasks)
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
                data_dir: Path | str = DATA_DIR, download: bool = True) -> Benchmark:
    """Split-CIFAR-100 (or -10) via torchvision, downloaded into data_dir once."""
    import torchvision
    cls = {100: torchvision.datasets.CIFAR100, 10: torchvision.datasets.CIFAR10}[num_classes]
    name = f"split_cifar{num_classes}"
    tasks = make_tasks(num_classes, num_tasks)
    try:
        sets = [cls(str(data_dir), train=tr, download=download) for tr in (True, False)]
    except Exception as e:
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


def imagefolder(path: str, num_tasks: int, image_size: int = 32) -> Benchmark:
    """PATH/train/<class>/*.png|jpg and PATH/test/<class>/*: classes in sorted order, resized to image_size."""
    from PIL import Image
    root = Path(path)
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise DatasetMissing(f"imagefolder:{path}: needs the folders {root}/train/<class>/ and {root}/test/<class>/")
    names = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
    tasks = make_tasks(len(names), num_tasks)

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


BENCHMARKS = ("synthetic", "synthetic_inverted", "split_cifar100", "split_cifar10", "imagefolder:PATH")


def load_benchmark(name: str, num_tasks: int = 10, seed: int = 0, data_dir=DATA_DIR, order: str = "seed1993",
                   **synthetic_kw) -> Benchmark:
    """By name: "synthetic", "synthetic_inverted", "split_cifar100", "split_cifar10" or "imagefolder:PATH"."""
    if name in ("synthetic", "synthetic_inverted"):
        return synthetic(num_tasks, seed=seed, inverted=name == "synthetic_inverted", **synthetic_kw)
    if name in ("split_cifar100", "split_cifar10"):
        return split_cifar(int(name[len("split_cifar"):]), num_tasks, order, data_dir)
    if name.startswith("imagefolder:"):
        return imagefolder(name[len("imagefolder:"):], num_tasks)
    raise ConfigError(f"benchmark={name!r} is not allowed: use one of {', '.join(BENCHMARKS)}")


# ---------------------------------------------------------------- batched augmentation

def prepare(x: torch.Tensor, size: int, mean, std, train: bool = False, hflip: bool = True,
            crop_scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3), generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> normalised float (N, 3, size, size) on x's device.

    train: a per-sample random-resized crop (area fraction in crop_scale, aspect in ratio) and, if hflip,
    a random horizontal flip, all as one affine_grid + grid_sample. Eval: a plain resize."""
    x = x.float().div_(255)
    N = len(x)
    if train:
        rand = lambda: torch.rand(N, device=x.device, generator=generator)
        area = crop_scale[0] + (crop_scale[1] - crop_scale[0]) * rand()
        aspect = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * rand())
        w, h = (area * aspect).sqrt().clamp(max=1), (area / aspect).sqrt().clamp(max=1)
        tx, ty = (1 - w) * (2 * rand() - 1), (1 - h) * (2 * rand() - 1)
        flip = torch.where(rand() < 0.5, -1.0, 1.0) if hflip else torch.ones_like(w)
        theta = torch.zeros(N, 2, 3, device=x.device)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * flip, tx, h, ty
        grid = F.affine_grid(theta, (N, 3, size, size), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    elif x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    mean = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std

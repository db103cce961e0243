"""The synthetic benchmark: coloured shapes and textures generated from a seed in seconds, with no files.
"synthetic_inverted" is the same as photographic negatives: a domain shift pre-training never saw.
"synthetic_domains" renders each task under its own shift (DOMAIN_SHIFTS), so every task needs adapting."""
import colorsys
import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .benchmark import Benchmark, make_tasks


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


def _blur(x):
    return F.avg_pool2d(x.float(), 5, stride=1, padding=2, count_include_pad=False).round().to(torch.uint8)


# A new domain per task: pixel-level changes that pre-training never saw, each keeping the classes apart (no shift
# drops colour, and only one turns the image, so a class never becomes another task's class). uint8 (n, 3, H, W)
# -> uint8, deterministic. The first five are the ones the shipped vit_tiny's frozen features handle worst
# (measured: a frozen backbone's accuracy on a task just learned, in percent: 10 tasks x 10 classes, 64 training
# images per class, seed 0), so a 5-task
# stream brings a far domain with every task; the last five are milder.
DOMAIN_SHIFTS = {
    "solarised": lambda x: torch.where(x >= 128, 255 - x, x),           # 65: bright parts inverted
    "negative": lambda x: 255 - x,                                      # 85
    "channels_solarised": lambda x: torch.where(x >= 128, 255 - x, x)[:, [1, 2, 0]],   # 41
    "faded": lambda x: (x.to(torch.int16) // 3 + 150).to(torch.uint8),  # 78: low contrast, washed out
    "posterised_negative": lambda x: 255 - ((x & 0xC0) + 32),           # 63: 2 bits per channel, negative
    "negative_blurred": lambda x: 255 - _blur(x),                       # 73
    "posterised": lambda x: (x & 0xC0) + 32,                            # 88
    "blurred": _blur,                                                   # 95: 5 x 5 box blur
    "rotated": lambda x: x.rot90(1, dims=(2, 3)),                       # 97
    "channels": lambda x: x[:, [2, 0, 1]],                              # 97: RGB -> BRG, every hue moves
}


def synthetic(num_tasks: int = 10, num_classes: int = 100, train_per_class: int = 300, test_per_class: int = 50,
              seed: int = 0, pretrain: bool = False, inverted: bool = False, task_sizes=None,
              domains: bool = False) -> Benchmark:
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

    domains=True: task t's classes (train and test alike) are rendered under DOMAIN_SHIFTS' t-th shift (in order,
    wrapping after 10), so each task arrives in a domain pre-training never saw and that no earlier task had: a
    class-incremental stream where every task needs the backbone to adapt while old tasks must not move.
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
    shifts = list(DOMAIN_SHIFTS)
    if domains:
        for t, labels in enumerate(tasks):
            shift = DOMAIN_SHIFTS[shifts[t % len(shifts)]]
            x[labels] = shift(x[labels].flatten(0, 1)).view_as(x[labels])
    train, test = slice(0, train_per_class), slice(train_per_class, None)
    flat = lambda t: t.flatten(0, 1)
    names = [f"{HUES[h]} {TEXTURES[t]} {SHAPES[s]}" for s, t, h in classes]
    if domains:
        names = [f"{n} ({shifts[t % len(shifts)]})" for t, labels in enumerate(tasks) for n in
                 (names[c] for c in labels)]
    name = ("synthetic" + ("-pretrain" if pretrain else "") + ("-inverted" if inverted else "")
            + ("-domains" if domains else ""))
    return Benchmark(name, flat(x[:, train]), flat(y[:, train]), flat(x[:, test]), flat(y[:, test]), tasks, names,
                     pick, hflip=False,
                     info={"seed": seed, "train_per_class": train_per_class, "test_per_class": test_per_class,
                           **({"domains": [shifts[t % len(shifts)] for t in range(len(tasks))]} if domains else {})})

"""Split Fashion-MNIST: a real-image benchmark that installs offline from a package registry.

Fashion-MNIST (Xiao, Rasul, Vollgraf 2017; 60,000 train + 10,000 test grayscale 28x28 photos of clothing,
10 classes, MIT licence) is far from what the shipped vit_tiny was pre-trained on (coloured synthetic shapes and
textures), so adapting the backbone has headroom. Where the files are looked for, in this order:

    DATA_DIR/FashionMNIST/raw/         torchvision's layout (`torchvision.datasets.FashionMNIST(DATA_DIR, download=True)`);
                                       DATA_DIR: --data-dir, else $CLORA_DATA, else ~/.cache/clora_lite
    /usr/share/datasets/fashion-mnist/ Debian's package `dataset-fashion-mnist` (apt-get install dataset-fashion-mnist)

Each is a folder of the four original IDX files (gzipped or not). With `download=True` and internet (e.g. on
Colab) torchvision fetches them into DATA_DIR; offline and absent, a one-line DatasetMissing says how to get them.

Images: 28x28 -> zero-padded to 32x32 (the kit's resolution; no resampling of the pixels), repeated to 3
channels, uint8 (N, 3, 32, 32). Labels are remapped so task t owns contiguous labels (see benchmark.relabel).
"""
import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..env import data_dir as default_data_dir
from ..errors import ConfigError, DatasetMissing
from .benchmark import Benchmark, make_tasks, pycil_order, relabel

FASHION_NAMES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                 "ankle boot"]
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
INSTALL_HINT = ("install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or run once with "
                "internet to let torchvision download it into {data_dir}")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format; gzipped if the name ends in .gz) -> uint8 array of its shape."""
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:   # 0x08: unsigned byte data
        raise DatasetMissing(f"{path} is not an IDX file of unsigned bytes: delete it and fetch it again")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DatasetMissing(f"{path} is truncated ({data.size} bytes for shape {shape}): delete it and fetch it again")
    return data.reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_fashion_mnist(data_dir: Path | str | None = None) -> Path | None:
    """The first folder that holds all four Fashion-MNIST IDX files, or None."""
    data_dir = default_data_dir() if data_dir is None else data_dir
    for folder in (Path(data_dir) / "FashionMNIST" / "raw", DEBIAN_FASHION_DIR):
        if all(_find(folder, stem) for pair in FASHION_FILES.values() for stem in pair):
            return folder
    return None


def _subsample(y: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Indices of `per_class` images of each class (all if None), a seeded choice, in file order."""
    if per_class is None:
        return np.arange(len(y))
    rng = np.random.RandomState(seed)
    keep = [np.sort(rng.permutation(np.flatnonzero(y == c))[:per_class]) for c in range(int(y.max()) + 1)]
    return np.sort(np.concatenate(keep))


def to_rgb32(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> uint8 (N, 3, 32, 32): zero-padded by 2 (Fashion-MNIST's background is 0), grey to RGB."""
    x = torch.from_numpy(images.copy())[:, None]                  # (N, 1, 28, 28)
    x = F.pad(x, (2, 2, 2, 2))                                    # (N, 1, 32, 32)
    return x.expand(-1, 3, -1, -1).contiguous()


def split_fashion_mnist(num_tasks: int = 5, order: str = "seed1993", data_dir: Path | str | None = None,
                        train_per_class: int | None = None, test_per_class: int | None = None, seed: int = 0,
                        download: bool = False, task_sizes=None) -> Benchmark:
    """Split Fashion-MNIST into `num_tasks` tasks of 10 / num_tasks classes each.

    order: "seed1993" (PyCIL's shuffle of the 10 classes) or "label". train_per_class / test_per_class: keep a
    seeded random subset of that many images per class (None: all 6,000 / 1,000), so a CPU run stays small.
    task_sizes: classes per task (default: equal tasks).
    Returns a Benchmark with uint8 (N, 3, 32, 32) images; hflip=True (a mirrored garment is the same garment).
    """
    name = "split_fashion_mnist"
    data_dir = default_data_dir() if data_dir is None else Path(data_dir)
    if order not in ("seed1993", "label"):
        raise ConfigError(f"class order={order!r} is not allowed: use seed1993 or label")
    for key, v in (("train_per_class", train_per_class), ("test_per_class", test_per_class)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ConfigError(f"{key}={v!r} is not allowed for {name}: use a whole number >= 1, or None for all")
    tasks = make_tasks(10, num_tasks, task_sizes)
    folder = find_fashion_mnist(data_dir)
    if folder is None and download:
        try:
            import torchvision
            torchvision.datasets.FashionMNIST(str(data_dir), train=True, download=True)
            torchvision.datasets.FashionMNIST(str(data_dir), train=False, download=True)
        except Exception:
            pass   # reported just below, in one line
        folder = find_fashion_mnist(data_dir)
    if folder is None:
        raise DatasetMissing(f"{name}: Fashion-MNIST is not in {Path(data_dir) / 'FashionMNIST' / 'raw'} nor in "
                             f"{DEBIAN_FASHION_DIR}: " + INSTALL_HINT.format(data_dir=data_dir))
    class_order = pycil_order(10) if order == "seed1993" else list(range(10))
    tensors = []
    for split, per_class, salt in (("train", train_per_class, 0), ("test", test_per_class, 1)):
        images, labels = (read_idx(_find(folder, stem)) for stem in FASHION_FILES[split])
        keep = _subsample(labels, per_class, seed * 2 + salt)
        x, y = relabel(to_rgb32(images[keep]), torch.from_numpy(labels[keep].astype(np.int64)), class_order)
        tensors += [x, y]
    return Benchmark(name, *tensors, tasks, [FASHION_NAMES[c] for c in class_order], class_order, hflip=True,
                     info={"order": order, "folder": str(folder), "train_per_class": train_per_class,
                           "test_per_class": test_per_class, "seed": seed})

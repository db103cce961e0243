"""Split-CIFAR-100 and Split-CIFAR-10 through torchvision (downloaded once), and your own images
(imagefolder:PATH)."""
from pathlib import Path

import numpy as np
import torch

from ..env import data_dir as default_data_dir
from ..errors import ConfigError, DatasetMissing
from .benchmark import Benchmark, make_tasks, pycil_order, relabel


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

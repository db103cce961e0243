"""Benchmarks: class-incremental task streams of uint8 images (benchmark.py holds the Benchmark type).

    synthetic, synthetic_inverted   generated offline in seconds (synthetic.py)
    synthetic_domains               the same, each task under its own domain shift (synthetic.py)
    split_fashion_mnist             real photos, offline from Debian's dataset-fashion-mnist (fashion_mnist.py)
    split_cifar100, split_cifar10   torchvision download (torchvision_sets.py)
    imagefolder:PATH                PATH/train/<class>/*, PATH/test/<class>/* (torchvision_sets.py)
"""
from ..errors import ConfigError
from .benchmark import Benchmark, make_tasks, pycil_order, relabel, task_of_label
from .fashion_mnist import split_fashion_mnist
from .synthetic import DOMAIN_SHIFTS, synthetic, synthetic_classes
from .torchvision_sets import imagefolder, split_cifar

BENCHMARKS = ("synthetic", "synthetic_inverted", "synthetic_domains", "split_fashion_mnist", "split_cifar100",
              "split_cifar10", "imagefolder:PATH")
SYNTHETIC_CLASSES = len(synthetic_classes(pretrain=False))   # 144 continual classes to draw from


def check_name(name: str) -> None:
    """A one-line ConfigError unless `name` is a benchmark this kit can load."""
    if not (name in BENCHMARKS[:-1] or (isinstance(name, str) and name.startswith("imagefolder:"))):
        raise ConfigError(f"benchmark={name!r} is not allowed: use one of {', '.join(BENCHMARKS)}")


def class_count(name: str, classes: int) -> int | None:
    """How many classes benchmark `name` has (`classes` for the synthetic ones); None if only the files know."""
    if name.startswith("synthetic"):
        return classes
    return {"split_fashion_mnist": 10, "split_cifar100": 100, "split_cifar10": 10}.get(name)


def by_name(name: str, num_tasks: int = 10, seed: int = 0, data_dir=None, order: str = "seed1993",
            task_sizes=None, **sizes) -> Benchmark:
    """A benchmark by its name (see BENCHMARKS). sizes: num_classes / train_per_class / test_per_class for the
    synthetic ones; split_fashion_mnist takes the two per-class sizes (a seeded subset)."""
    check_name(name)
    if name in ("synthetic", "synthetic_inverted", "synthetic_domains"):
        return synthetic(num_tasks, seed=seed, inverted=name == "synthetic_inverted", task_sizes=task_sizes,
                         domains=name == "synthetic_domains", **sizes)
    if name == "split_fashion_mnist":
        return split_fashion_mnist(num_tasks, order, data_dir, seed=seed, task_sizes=task_sizes,
                                   train_per_class=sizes.get("train_per_class"),
                                   test_per_class=sizes.get("test_per_class"))
    if name in ("split_cifar100", "split_cifar10"):
        return split_cifar(int(name[len("split_cifar"):]), num_tasks, order, data_dir, task_sizes=task_sizes)
    return imagefolder(name[len("imagefolder:"):], num_tasks, task_sizes=task_sizes)

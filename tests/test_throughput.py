"""throughput.estimate_seconds and image_counts: each benchmark counted with its own sizes."""
import pytest

from clora_lite import Config
from clora_lite.throughput import estimate_seconds, image_counts


def test_cifar10_and_cifar100_both_hold_50000_training_images():
    """CIFAR-10 has 5,000 training and 1,000 test images per class, CIFAR-100 500 and 100: one per-class count
    for both (the old estimate's) is 10x off for CIFAR-10."""
    c10 = image_counts(Config(benchmark="split_cifar10", tasks=5))
    c100 = image_counts(Config(benchmark="split_cifar100", tasks=10))
    assert c10["task_sizes"] == [2] * 5 and c10["train_per_class"] == 5000 and c10["test_per_class"] == 1000
    assert c100["task_sizes"] == [10] * 10 and c100["train_per_class"] == 500 and c100["test_per_class"] == 100
    assert c10["train_images"] == c100["train_images"] == 50_000
    assert c10["test_images"] == c100["test_images"] == 10_000


def test_synthetic_sizes_task_sizes_and_the_validation_split_come_from_the_config():
    n = image_counts(Config(benchmark="synthetic", tasks=3, task_sizes=(4, 1, 1), classes=6, train_per_class=10,
                            test_per_class=5, val_fraction=0.2))
    assert n == {"task_sizes": [4, 1, 1], "train_per_class": 8, "val_per_class": 2, "test_per_class": 5,
                 "train_images": 48, "test_images": 30}


def test_frozen_training_time_is_one_pass_over_the_training_images_per_epoch():
    """frozen costs 1x forward per training image (half a C-LoRA training image): CIFAR-10 and CIFAR-100 have the
    same 50,000 images, so at the same batch their training seconds match."""
    ips = 1000.0
    est = {b: estimate_seconds(Config(benchmark=b, tasks=5, epochs=2, batch=100), ["frozen"], ips, figures=False)
           for b in ("split_cifar10", "split_cifar100")}
    # training: 50,000 images x 2 epochs at half the cost of a C-LoRA image; then evaluation after each task over
    # the seen test images (1 + 2 + ... + 5 tasks' worth) and one statistics pass, as forward passes (2 x ips)
    c10_eval = sum(2 * (t + 1) for t in range(5)) * 1000 + 50_000
    c100_eval = sum(20 * (t + 1) for t in range(5)) * 100 + 50_000
    assert est["split_cifar10"]["frozen"] == pytest.approx(50_000 * 2 / (2 * ips) + c10_eval / (2 * ips))
    assert est["split_cifar100"]["frozen"] == pytest.approx(50_000 * 2 / (2 * ips) + c100_eval / (2 * ips))

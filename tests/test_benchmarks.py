"""The benchmarks: the Benchmark type and its task blocks, the synthetic set, own images (imagefolder), Split
Fashion-MNIST, and benchmarks.by_name."""
import importlib

import numpy as np
import pytest
import torch

from clora_lite import benchmarks
from clora_lite.benchmarks import fashion_mnist
from clora_lite.continual import Config, run
from clora_lite.errors import ConfigError, DatasetMissing

# benchmarks.synthetic is the function (re-exported by the package); the module is reached through sys.modules
synthetic_module = importlib.import_module("clora_lite.benchmarks.synthetic")


def test_synthetic_is_deterministic_and_well_formed():
    a = benchmarks.synthetic(num_tasks=5, num_classes=10, train_per_class=6, test_per_class=3, seed=3)
    b = benchmarks.synthetic(num_tasks=5, num_classes=10, train_per_class=6, test_per_class=3, seed=3)
    c = benchmarks.synthetic(num_tasks=5, num_classes=10, train_per_class=6, test_per_class=3, seed=4)
    assert torch.equal(a.train_x, b.train_x) and not torch.equal(a.train_x, c.train_x)
    assert a.train_x.shape == (60, 3, 32, 32) and a.train_x.dtype == torch.uint8
    assert a.test_x.shape == (30, 3, 32, 32)
    assert a.tasks == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert sorted(a.train_y.unique().tolist()) == list(range(10))
    x, y = a.split(2, "test")
    assert sorted(y.unique().tolist()) == [4, 5] and len(x) == 6


def test_pretraining_classes_are_disjoint_from_continual_ones():
    pre, cont = set(benchmarks.synthetic_classes(True)), set(benchmarks.synthetic_classes(False))
    assert not pre & cont and len(cont) >= 100
    # every continual class holds a shape or texture that pre-training never shows
    assert all(s not in synthetic_module.PRETRAIN_SHAPES or t not in synthetic_module.PRETRAIN_TEXTURES for s, t, _ in cont)


def test_tasks_must_divide_classes():
    with pytest.raises(ConfigError, match="tasks=3 is not allowed: it must divide the 10 classes"):
        benchmarks.make_tasks(10, 3)


def test_pycil_order():
    order = benchmarks.pycil_order(100)
    assert sorted(order) == list(range(100))
    assert order[:5] == [68, 56, 78, 8, 23]   # the order the ViT continual-learning literature uses


def test_imagefolder(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog", "eel", "fox"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (40, 20, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    b = benchmarks.by_name(f"imagefolder:{tmp_path}", num_tasks=2)
    assert b.class_names == ["cat", "dog", "eel", "fox"] and b.tasks == [[0, 1], [2, 3]]
    assert b.train_x.shape == (12, 3, 32, 32) and b.test_x.shape == (8, 3, 32, 32)
    assert b.train_y.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    with pytest.raises(ConfigError, match="tasks=3"):
        benchmarks.by_name(f"imagefolder:{tmp_path}", num_tasks=3)
    with pytest.raises(DatasetMissing, match="needs the folders"):
        benchmarks.by_name(f"imagefolder:{tmp_path}/nope", num_tasks=2)


def test_inverted_variant_is_the_negative_of_the_plain_set():
    plain = benchmarks.by_name("synthetic", 2, seed=5, num_classes=4, train_per_class=3, test_per_class=2)
    neg = benchmarks.by_name("synthetic_inverted", 2, seed=5, num_classes=4, train_per_class=3, test_per_class=2)
    assert torch.equal(neg.train_x, 255 - plain.train_x) and torch.equal(neg.test_y, plain.test_y)
    assert neg.name == "synthetic-inverted"


def test_domains_variant_renders_each_task_under_its_own_shift():
    sizes = dict(num_classes=12, train_per_class=3, test_per_class=2)
    plain = benchmarks.by_name("synthetic", 12, seed=5, **sizes)
    dom = benchmarks.by_name("synthetic_domains", 12, seed=5, **sizes)   # 12 tasks: the shifts wrap after 10
    shifts = list(benchmarks.DOMAIN_SHIFTS.values())
    assert dom.info["domains"][:2] == ["solarised", "negative"] and dom.info["domains"][10] == "solarised"
    for t in range(12):
        for part in ("train", "test"):
            x, y = dom.split(t, part)
            x0, y0 = plain.split(t, part)
            assert torch.equal(y, y0) and torch.equal(x, shifts[t % 10](x0)), (t, part)
    # every shift changes the images, and no two shifts give the same images
    x0 = plain.train_x
    outs = [f(x0) for f in shifts]
    assert all(o.dtype == torch.uint8 and o.shape == x0.shape and not torch.equal(o, x0) for o in outs)
    assert all(not torch.equal(a, b) for i, a in enumerate(outs) for b in outs[i + 1:])
    assert dom.name == "synthetic-domains" and dom.class_names[0].endswith("(solarised)")


def test_by_name_refuses_an_unknown_benchmark_in_one_line():
    with pytest.raises(ConfigError, match="benchmark='mnist' is not allowed: use one of synthetic, ") as e:
        benchmarks.by_name("mnist")
    assert "\n" not in str(e.value)


def test_task_blocks_equal_or_given_sizes_and_the_task_of_each_label():
    assert benchmarks.make_tasks(6, 3) == [[0, 1], [2, 3], [4, 5]]
    tasks = benchmarks.make_tasks(6, 3, (3, 1, 2))
    assert tasks == [[0, 1, 2], [3], [4, 5]]
    assert benchmarks.task_of_label(tasks).tolist() == [0, 0, 0, 1, 2, 2]
    with pytest.raises(ConfigError, match="task_sizes=3,1,1 is not allowed"):
        benchmarks.make_tasks(6, 3, (3, 1, 1))
    x, y = benchmarks.relabel(torch.zeros(3), torch.tensor([7, 2, 5]), [5, 7, 2])
    assert y.tolist() == [1, 2, 0]


# ---------- Split Fashion-MNIST (benchmarks/fashion_mnist.py) ----------

def test_fashion_mnist_real_path():
    if fashion_mnist.find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    b = benchmarks.split_fashion_mnist(5, train_per_class=20, test_per_class=10, seed=1)
    assert b.train_x.shape == (200, 3, 32, 32) and b.train_x.dtype == torch.uint8
    assert b.test_x.shape == (100, 3, 32, 32)
    assert b.tasks == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert torch.equal(b.train_x[:, 0], b.train_x[:, 2])              # grey repeated to 3 channels
    assert b.train_x[:, :, :2].max() == 0                             # zero padding around the 28x28 image
    assert b.train_x.float().mean() > 10                              # real images, not blank
    assert (b.train_y.bincount() == 20).all()
    assert b.class_names[0] == fashion_mnist.FASHION_NAMES[b.class_order[0]]
    x, y = b.split(1, "test")
    assert set(y.tolist()) == {2, 3}


def test_fashion_mnist_missing_is_one_line_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FASHION_DIR", tmp_path / "nowhere")
    with pytest.raises(DatasetMissing) as e:
        benchmarks.split_fashion_mnist(5, data_dir=tmp_path)
    assert "apt-get install dataset-fashion-mnist" in str(e.value) and "\n" not in str(e.value)


def test_read_idx_rejects_a_truncated_file(tmp_path):
    p = tmp_path / "bad-idx3-ubyte"
    p.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(3))
    with pytest.raises(DatasetMissing, match="truncated"):
        fashion_mnist.read_idx(p)


def test_fashion_mnist_through_config_and_loop():
    if fashion_mnist.find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    cfg = Config(method="frozen", benchmark="split_fashion_mnist", tasks=5, train_per_class=4, test_per_class=2,
                 epochs=0, batch=4, align_head=False, device="cpu")   # the loading path, not training: fast
    res = run(cfg, out=None, progress=False, log=lambda *a: None)
    assert res["benchmark"] == "split_fashion_mnist" and len(res["acc_matrix"]) == 5
    with pytest.raises(ConfigError, match="tasks=3 is not allowed"):
        Config.from_dict({"benchmark": "split_fashion_mnist", "tasks": 3})

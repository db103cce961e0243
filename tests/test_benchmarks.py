import numpy as np
import pytest
import torch

from clora_lite import augment, data
from clora_lite.config import ConfigError


def test_synthetic_is_deterministic_and_well_formed():
    a = data.synthetic(num_tasks=5, num_classes=10, train_per_class=6, test_per_class=3, seed=3)
    b = data.synthetic(num_tasks=5, num_classes=10, train_per_class=6, test_per_class=3, seed=3)
    c = data.synthetic(num_tasks=5, num_classes=10, train_per_class=6, test_per_class=3, seed=4)
    assert torch.equal(a.train_x, b.train_x) and not torch.equal(a.train_x, c.train_x)
    assert a.train_x.shape == (60, 3, 32, 32) and a.train_x.dtype == torch.uint8
    assert a.test_x.shape == (30, 3, 32, 32)
    assert a.tasks == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert sorted(a.train_y.unique().tolist()) == list(range(10))
    x, y = a.split(2, "test")
    assert sorted(y.unique().tolist()) == [4, 5] and len(x) == 6


def test_pretraining_classes_are_disjoint_from_continual_ones():
    pre, cont = set(data.synthetic_classes(True)), set(data.synthetic_classes(False))
    assert not pre & cont and len(cont) >= 100
    # every continual class holds a shape or texture that pre-training never shows
    assert all(s not in data.PRETRAIN_SHAPES or t not in data.PRETRAIN_TEXTURES for s, t, _ in cont)


def test_tasks_must_divide_classes():
    with pytest.raises(ConfigError, match="tasks=3 is not allowed: it must divide the 10 classes"):
        data.make_tasks(10, 3)


def test_pycil_order():
    order = data.pycil_order(100)
    assert sorted(order) == list(range(100))
    assert order[:5] == [68, 56, 78, 8, 23]   # the order the ViT continual-learning literature uses


def test_prepare_eval_and_identity_crop():
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    ev = augment.prepare(x, 32, (0.5,) * 3, (0.5,) * 3)
    torch.testing.assert_close(ev, x.float() / 127.5 - 1)
    same = augment.prepare(x, 32, (0.5,) * 3, (0.5,) * 3, train=True, hflip=False, crop_scale=(1.0, 1.0),
                        ratio=(1.0, 1.0))
    torch.testing.assert_close(same, ev, atol=1e-5, rtol=0)   # a full-area square crop is the identity
    flipped = augment.prepare(x, 32, (0.5,) * 3, (0.5,) * 3, train=True, hflip=True, crop_scale=(1.0, 1.0),
                           ratio=(1.0, 1.0), generator=torch.Generator().manual_seed(1))
    for f, e in zip(flipped, ev):
        assert torch.allclose(f, e, atol=1e-5) or torch.allclose(f, e.flip(-1), atol=1e-5)
    assert augment.prepare(x, 64, (0.5,) * 3, (0.5,) * 3).shape == (5, 3, 64, 64)


def test_prepare_flip_and_crop_vary_per_sample():
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8).expand(64, -1, -1, -1)
    g = torch.Generator().manual_seed(0)
    out = augment.prepare(x, 32, (0,) * 3, (1,) * 3, train=True, hflip=True, generator=g)
    assert out.shape == (64, 3, 32, 32)
    assert len({round(v, 4) for v in out.mean((1, 2, 3)).tolist()}) > 32   # different crops per sample


def test_imagefolder(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog", "eel", "fox"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (40, 20, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    b = data.load_benchmark(f"imagefolder:{tmp_path}", num_tasks=2)
    assert b.class_names == ["cat", "dog", "eel", "fox"] and b.tasks == [[0, 1], [2, 3]]
    assert b.train_x.shape == (12, 3, 32, 32) and b.test_x.shape == (8, 3, 32, 32)
    assert b.train_y.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    with pytest.raises(ConfigError, match="tasks=3"):
        data.load_benchmark(f"imagefolder:{tmp_path}", num_tasks=3)
    with pytest.raises(data.DatasetMissing, match="needs the folders"):
        data.load_benchmark(f"imagefolder:{tmp_path}/nope", num_tasks=2)


def test_inverted_variant_is_the_negative_of_the_plain_set():
    plain = data.load_benchmark("synthetic", 2, seed=5, num_classes=4, train_per_class=3, test_per_class=2)
    neg = data.load_benchmark("synthetic_inverted", 2, seed=5, num_classes=4, train_per_class=3, test_per_class=2)
    assert torch.equal(neg.train_x, 255 - plain.train_x) and torch.equal(neg.test_y, plain.test_y)
    assert neg.name == "synthetic-inverted"

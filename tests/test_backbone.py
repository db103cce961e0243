"""The backbone: our ViT against torchvision's, with the same random weights (no download), adapters inside it,
and its on-device input pipeline (backbone/pipeline.py)."""
import pytest
import torch
import torchvision

import clora_lite
from clora_lite import env
from clora_lite.backbone import pipeline, vit


def test_parity_with_torchvision_vit_b16():
    torch.manual_seed(0)
    tv = torchvision.models.vit_b_16(weights=None).eval()
    tv.heads = torch.nn.Identity()
    ours = vit.ViT.from_torchvision(tv).eval()
    assert ours.config == vit.CONFIGS["vit_b16"]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), atol=1e-4, rtol=1e-4)


def test_parity_with_a_small_torchvision_vit():
    torch.manual_seed(1)
    tv = torchvision.models.VisionTransformer(image_size=32, patch_size=4, num_layers=2, num_heads=2,
                                              hidden_dim=64, mlp_dim=128, num_classes=10).eval()
    with torch.no_grad():  # torchvision zero-initialises these; random values make the test bite
        for p in tv.parameters():
            p.add_(0.02 * torch.randn_like(p))
    tv.heads = torch.nn.Identity()
    ours = vit.ViT.from_torchvision(tv).double().eval()
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv.double()(x))


@pytest.mark.parametrize("name", ["vit_tiny", "vit_b16"])
def test_adapters_in_qkv_only_they_train(name):
    model = vit.build(name)
    adapters = clora_lite.add_adapters(model, kind="clora", rank=4)
    assert len(adapters) == 3 * model.config.depth
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".attn." in n and n.rsplit(".", 1)[-1] in ("lora_A", "lora_B", "R_delta")
                             for n in trainable)
    if name == "vit_tiny":
        x = torch.randn(2, 3, 32, 32)
        model(x).sum().backward()
        assert all(p.grad is not None for n, p in model.named_parameters() if n.endswith("R_delta"))


def test_build_errors_are_one_line():
    with pytest.raises(ValueError, match="backbone='vit_h14' is not allowed"):
        vit.build("vit_h14")


def test_shipped_tiny_weights_load(tmp_path):
    model = vit.build("vit_tiny", pretrained=True)   # data/vit_tiny_synthetic.pt, weights_only=True
    blob = torch.load(env.shipped_file(vit.TINY_WEIGHTS), weights_only=True)
    assert blob["meta"]["test_acc"] > 50
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, model.dim)


def test_flops_per_image_matches_a_count():
    c = vit.CONFIGS["vit_b16"]
    assert 33e9 < vit.flops_per_image(c) < 36e9   # ViT-B/16 at 224 px: ~17.5 GMACs


def test_timm_vit_b16_if_installed():
    timm = pytest.importorskip("timm")
    tm = timm.create_model("vit_base_patch16_224.augreg_in21k", pretrained=False, num_classes=0).eval()
    ours = vit.ViT.from_timm(tm).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tm(x), atol=1e-4, rtol=1e-4)


def test_public_names_reachable_from_the_package():
    import subprocess
    import sys
    code = ("import clora_lite; clora_lite.vit.build('vit_tiny'); clora_lite.vit.ViT.from_torchvision; "
            "from clora_lite.backbone import vit; assert clora_lite.vit is vit; "
            "from clora_lite import LoRALinear, CLoRALinear, from_loras, add_adapters, orthogonality_loss, "
            "consolidate, merge_adapters, remove_adapters, snapshot, adapters_of, Config, run, compare, "
            "load_benchmark, load_learner; assert callable(compare) and callable(run)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---------- the input pipeline ----------

def test_prepare_eval_and_identity_crop():
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    ev = pipeline.prepare(x, 32, (0.5,) * 3, (0.5,) * 3)
    torch.testing.assert_close(ev, x.float() / 127.5 - 1)
    same = pipeline.prepare(x, 32, (0.5,) * 3, (0.5,) * 3, train=True, hflip=False, crop_scale=(1.0, 1.0),
                            ratio=(1.0, 1.0))
    torch.testing.assert_close(same, ev, atol=1e-5, rtol=0)   # a full-area square crop is the identity
    flipped = pipeline.prepare(x, 32, (0.5,) * 3, (0.5,) * 3, train=True, hflip=True, crop_scale=(1.0, 1.0),
                               ratio=(1.0, 1.0), generator=torch.Generator().manual_seed(1))
    for f, e in zip(flipped, ev):
        assert torch.allclose(f, e, atol=1e-5) or torch.allclose(f, e.flip(-1), atol=1e-5)
    assert not torch.allclose(flipped, ev, atol=1e-5)          # with 5 images, some were flipped
    assert pipeline.prepare(x, 64, (0.5,) * 3, (0.5,) * 3).shape == (5, 3, 64, 64)


def test_prepare_flip_and_crop_vary_per_sample():
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8).expand(64, -1, -1, -1)
    g = torch.Generator().manual_seed(0)
    out = pipeline.prepare(x, 32, (0,) * 3, (1,) * 3, train=True, hflip=True, generator=g)
    assert out.shape == (64, 3, 32, 32)
    assert len({round(v, 4) for v in out.mean((1, 2, 3)).tolist()}) > 32   # different crops per sample


def test_vit_prepare_uses_its_own_normalisation():
    model = vit.build("vit_b16")
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    c = model.config
    torch.testing.assert_close(model.prepare(x), pipeline.prepare(x, 224, c.mean, c.std))
    assert model.prepare(x).shape == (2, 3, 224, 224)

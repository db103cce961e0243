"""One readable Vision Transformer, the same network as torchvision's vit_b_16 (pre-norm blocks, class token,
learned position embedding, LayerNorm eps 1e-6, exact GELU), written with separate q / k / v / proj / fc1 / fc2
nn.Linear layers so adapters can be put on any of them by name, and F.scaled_dot_product_attention.

    images (N, 3, H, W), normalised floats -> features (N, dim): the final LayerNorm of the class token

Configs: "vit_b16" (224 px, patch 16, ViT-B/16; loads torchvision's ImageNet weights) and "vit_tiny"
(32 px, patch 8, width 128, depth 4, for CPUs; its weights, pre-trained by `python -m clora_lite pretrain`, ship in data/).
"""
from dataclasses import dataclass, asdict
from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F

from ..env import atomic_write, shipped_file
from ..errors import WeightsUnavailable
from .pipeline import prepare

TINY_WEIGHTS = "vit_tiny_synthetic.pt"
TIMM_IN21K = "vit_base_patch16_224.augreg_in21k"


@dataclass(frozen=True)
class ViTConfig:
    image_size: int
    patch: int
    dim: int
    depth: int
    heads: int
    mlp_dim: int
    mean: tuple = (0.5, 0.5, 0.5)   # the normalisation the weights were trained with
    std: tuple = (0.5, 0.5, 0.5)

    @property
    def tokens(self) -> int:
        return (self.image_size // self.patch) ** 2 + 1


CONFIGS = {
    "vit_b16": ViTConfig(224, 16, 768, 12, 12, 3072, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    # patch 8 (16 tokens) keeps a CPU training step at ~0.07 s for batch 128 on 2 cores (patch 4: ~0.24 s)
    "vit_b16_in21k": ViTConfig(224, 16, 768, 12, 12, 3072),  # timm's ImageNet-21k weights, mean = std = 0.5
    "vit_tiny": ViTConfig(32, 8, 128, 4, 4, 256),
}


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # (N, T, D) -> (N, T, D)
        N, T, D = x.shape
        split = lambda t: t.view(N, T, self.heads, D // self.heads).transpose(1, 2)  # (N, heads, T, D/heads)
        out = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return self.proj(out.transpose(1, 2).reshape(N, T, D))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.fc1, self.fc2 = nn.Linear(dim, mlp_dim), nn.Linear(mlp_dim, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        c = self.config = config
        self.patch_embed = nn.Conv2d(3, c.dim, c.patch, c.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.pos_embed = nn.Parameter(torch.randn(1, c.tokens, c.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(c.dim, c.heads, c.mlp_dim) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.dim = c.dim

    def prepare(self, images: torch.Tensor, train: bool = False, hflip: bool = True,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 images (N, 3, h, w) -> this network's input (N, 3, image_size, image_size), normalised as its
        weights expect; train adds a random-resized crop (and a flip if hflip), per sample, on the device."""
        c = self.config
        return prepare(images, c.image_size, c.mean, c.std, train=train, hflip=hflip, generator=generator)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) -> features (N, dim)."""
        x = self.patch_embed(images).flatten(2).transpose(1, 2)          # (N, T-1, D)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, 0])

    @staticmethod
    def adapter_targets() -> tuple[str, ...]:
        """Names of the nn.Linear layers adapters can wrap (matched on the last name component)."""
        return ("q", "k", "v", "proj", "fc1", "fc2")

    @classmethod
    @torch.no_grad()
    def from_torchvision(cls, tv_model) -> "ViT":
        """A ViT with the weights of a torchvision VisionTransformer (e.g. vit_b_16); heads are dropped."""
        D = tv_model.hidden_dim
        layers = list(tv_model.encoder.layers)
        mlp_dim = layers[0].mlp[0].out_features
        imagenet = CONFIGS["vit_b16"]  # torchvision's ViT weights all expect ImageNet normalisation
        config = ViTConfig(tv_model.image_size, tv_model.patch_size, D, len(layers),
                           layers[0].self_attention.num_heads, mlp_dim, mean=imagenet.mean, std=imagenet.std)
        model = cls(config)
        model.load_state_dict(torchvision_to_ours(tv_model.state_dict(), len(layers)))
        return model

    @classmethod
    @torch.no_grad()
    def from_timm(cls, timm_model) -> "ViT":
        """A ViT with the weights of a timm VisionTransformer with a class token (e.g.
        "vit_base_patch16_224.augreg_in21k", which expects mean = std = 0.5)."""
        blocks = list(timm_model.blocks)
        D, depth = timm_model.embed_dim, len(blocks)
        p = timm_model.patch_embed.patch_size[0]
        config = ViTConfig(timm_model.patch_embed.img_size[0], p, D, depth, blocks[0].attn.num_heads,
                           blocks[0].mlp.fc1.out_features, mean=(0.5,) * 3, std=(0.5,) * 3)
        sd = timm_model.state_dict()
        out = {"patch_embed.weight": sd["patch_embed.proj.weight"], "patch_embed.bias": sd["patch_embed.proj.bias"],
               "cls_token": sd["cls_token"], "pos_embed": sd["pos_embed"],
               "norm.weight": sd["norm.weight"], "norm.bias": sd["norm.bias"]}
        for i in range(depth):
            for name in ("norm1", "norm2", "attn.proj"):
                for t in ("weight", "bias"):
                    out[f"blocks.{i}.{name}.{t}"] = sd[f"blocks.{i}.{name}.{t}"]
            for t in ("weight", "bias"):
                out[f"blocks.{i}.fc1.{t}"], out[f"blocks.{i}.fc2.{t}"] = (sd[f"blocks.{i}.mlp.fc1.{t}"],
                                                                      sd[f"blocks.{i}.mlp.fc2.{t}"])
                for name, w in zip("qkv", sd[f"blocks.{i}.attn.qkv.{t}"].chunk(3)):
                    out[f"blocks.{i}.attn.{name}.{t}"] = w
        model = cls(config)
        model.load_state_dict(out)
        return model


def torchvision_to_ours(sd: dict, depth: int) -> dict:
    """Map a torchvision VisionTransformer state dict to this ViT's names (the fused in_proj is split in 3)."""
    out = {"patch_embed.weight": sd["conv_proj.weight"], "patch_embed.bias": sd["conv_proj.bias"],
           "cls_token": sd["class_token"], "pos_embed": sd["encoder.pos_embedding"],
           "norm.weight": sd["encoder.ln.weight"], "norm.bias": sd["encoder.ln.bias"]}
    for i in range(depth):
        src, dst = f"encoder.layers.encoder_layer_{i}.", f"blocks.{i}."
        for a, b in [("ln_1", "norm1"), ("ln_2", "norm2"), ("mlp.0", "fc1"), ("mlp.3", "fc2"),
                     ("self_attention.out_proj", "attn.proj")]:
            out[dst + b + ".weight"], out[dst + b + ".bias"] = sd[src + a + ".weight"], sd[src + a + ".bias"]
        for name, w, b in zip("qkv", sd[src + "self_attention.in_proj_weight"].chunk(3),
                              sd[src + "self_attention.in_proj_bias"].chunk(3)):
            out[f"{dst}attn.{name}.weight"], out[f"{dst}attn.{name}.bias"] = w, b
    return out


def build(name: str, pretrained: bool = False) -> ViT:
    """ViT by config name ("vit_b16" | "vit_tiny"), optionally with pre-trained weights."""
    if name not in CONFIGS:
        raise ValueError(f"backbone={name!r} is not allowed: use one of {', '.join(CONFIGS)}")
    if not pretrained:
        return ViT(CONFIGS[name])
    if name == "vit_b16_in21k":  # needs timm; weights from the Hugging Face hub
        try:
            import timm
        except ImportError:
            raise WeightsUnavailable("vit_b16_in21k needs timm: pip install timm") from None
        try:
            tm = timm.create_model(TIMM_IN21K, pretrained=True, num_classes=0)
        except OSError as e:   # hub errors (no network, no cache) are OSErrors; a mapping bug below stays loud
            raise WeightsUnavailable(f"vit_b16_in21k: could not load timm's {TIMM_IN21K} ({type(e).__name__}); "
                                     "it needs internet once") from None
        return ViT.from_timm(tm)
    if name == "vit_b16":
        import torchvision
        try:
            tv = torchvision.models.vit_b_16(weights=torchvision.models.ViT_B_16_Weights.IMAGENET1K_V1)
        except OSError as e:  # no internet (URLError), no disk: torchvision's download fails with a long traceback
            raise WeightsUnavailable(
                f"vit_b16: could not get torchvision's ViT_B_16_Weights.IMAGENET1K_V1 ({type(e).__name__}); "
                "it downloads once (~330 MB) to the torch hub cache on a machine with internet") from None
        return ViT.from_torchvision(tv)
    path = shipped_file(TINY_WEIGHTS)
    if not path.exists():
        raise WeightsUnavailable(f"vit_tiny: {path} not found; regenerate it with `python -m clora_lite pretrain`")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = ViT(ViTConfig(**blob["config"]))
    model.load_state_dict(blob["state_dict"])
    return model


def save_tiny(model: ViT, path: Path, meta: dict) -> None:
    """Save backbone weights + config + provenance in a weights_only-loadable file."""
    blob = {"config": asdict(model.config), "state_dict": model.state_dict(), "meta": meta}
    atomic_write(Path(path), lambda p: torch.save(blob, p))


def flops_per_image(config: ViTConfig) -> float:
    """Forward FLOPs of one image (2 per multiply-add): the Linear layers, patch embedding and attention
    matmuls; norms, softmax and GELU are left out (a few per cent)."""
    T, D, M = config.tokens, config.dim, config.mlp_dim
    per_block = 2 * T * (4 * D * D + 2 * D * M) + 2 * 2 * T * T * D
    patch = 2 * (T - 1) * 3 * config.patch ** 2 * D
    return config.depth * per_block + patch

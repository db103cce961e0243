"""Batched on-device input pipeline: uint8 images -> normalised floats at the model's resolution.

Training crops and flips happen per sample inside one affine_grid + grid_sample, so a 2-core machine never
feeds a GPU image by image. The backbone owns its settings: call `ViT.prepare(images, train=...)`.
"""
import functools
import math

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=16)
def _constant(values: tuple, device: torch.device) -> torch.Tensor:
    """(1, 3, 1, 1) on `device`, made once: building it from a list every batch is a blocking host-to-device copy."""
    return torch.tensor(values, device=device).view(1, 3, 1, 1)


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
    return (x - _constant(tuple(mean), x.device)) / _constant(tuple(std), x.device)

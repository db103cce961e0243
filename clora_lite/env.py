"""Where things live and what runs them: the shipped weights, the download folder, the device, autocast.

The bottom of the kit's import graph: it imports nothing else from clora_lite.
"""
import os
from pathlib import Path

import torch

PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_file(name: str) -> Path:
    """A file the kit ships (the small pre-trained ViT). In a source checkout it sits in the repository's data/;
    an installed wheel carries the same folder as clora_lite/shipped/ (pyproject.toml maps one to the other)."""
    for folder in (PACKAGE_DIR / "shipped", PACKAGE_DIR.parent / "data"):
        if (folder / name).exists():
            return folder / name
    return PACKAGE_DIR / "shipped" / name


def data_dir() -> Path:
    """Where downloads (CIFAR) land: $CLORA_DATA, else ~/.cache/clora_lite. Never inside the installed package."""
    return Path(os.environ.get("CLORA_DATA") or Path.home() / ".cache" / "clora_lite").expanduser()


class DeviceUnavailable(ValueError):
    """The device asked for is not on this machine. The message is one line."""


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda if there is one, else cpu; "cuda", "cuda:N", "mps" and "cpu" are checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device={name!r} is not available here: use cpu (no CUDA device found)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailable(f"device={name!r} is not available here: use cpu")
    return torch.device(name)


def use_bf16(amp: str, device: torch.device) -> bool:
    """amp "auto" means bf16 autocast on CUDA and float32 elsewhere; "bf16" forces it; "off" never."""
    return amp == "bf16" or (amp == "auto" and device.type == "cuda")


def autocast(device: torch.device, bf16: bool):
    """The autocast context for a forward pass (a no-op when bf16 is False)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

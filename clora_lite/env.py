"""Where things live and what runs them: the shipped weights, the download folder, atomic writes, the device,
autocast.

The bottom of the kit's import graph, with errors.py.
"""
import json
import os
from pathlib import Path

import torch

from .errors import DeviceUnavailable

__version__ = "0.1.0"
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


def atomic_write(path: Path, write) -> None:
    """write(tmp_path) then rename: a reader never sees half a file, a crash never leaves one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=1)))


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda if there is one, else cpu; "cuda", "cuda:N", "mps" and "cpu" are checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device={name!r} is not available here: use cpu (no CUDA device found)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailable(f"device={name!r} is not available here: use cpu")
    return torch.device(name)


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, None for float32. amp "auto": bf16 on a CUDA GPU with bf16 tensor cores (compute
    capability 8.0 and up: A100, L4, H100), fp16 on those with fp16 tensor cores only (7.x: T4, Colab's free GPU,
    and V100), where bf16 runs without tensor cores; float32 on older GPUs (6.x and below run fp16 slowly or not
    at all) and off CUDA. "bf16" and "fp16" force one; "off" is float32."""
    if amp in ("bf16", "fp16"):
        return torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "auto" and device.type == "cuda":
        major = torch.cuda.get_device_capability(device)[0]
        return torch.bfloat16 if major >= 8 else torch.float16 if major == 7 else None
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """The autocast context for a forward pass (a no-op when dtype is None)."""
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """fp16 needs its loss scaled so that small gradients do not flush to zero; bf16 and float32 do not (the
    scaler is then a pass-through)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

"""The two check scripts in scripts/: their cheap paths only (no ViT-B step, no GPU work in CI)."""
from pathlib import Path
import os
import shutil
import subprocess
import sys

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
GPU_CHECK = ROOT / "scripts" / "gpu_check.sh"
BENCH_PEERS = ROOT / "scripts" / "bench_peers.py"
needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run(cmd, tmp_path, **env):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHON": sys.executable, **env})


@needs_bash
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the path where no CUDA device exists")
def test_gpu_check_without_cuda_exits_2_in_one_line(tmp_path):
    r = run(["bash", str(GPU_CHECK), str(tmp_path / "out")], tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no GPU to check:"), r.stderr
    assert "GPU_CHECK_DEVICE=cpu" in lines[0]      # says what to do instead
    assert r.stdout == ""                           # nothing ran before the check
    assert (tmp_path / "out" / "gpu_check.log").read_text().strip() == lines[0]


@needs_bash
def test_gpu_check_refuses_an_unknown_device(tmp_path):
    r = run(["bash", str(GPU_CHECK), str(tmp_path / "out")], tmp_path, GPU_CHECK_DEVICE="tpu")
    assert r.returncode == 2
    assert r.stderr.strip() == "gpu_check: GPU_CHECK_DEVICE=tpu is not allowed: use cuda, cuda:N or cpu (a dry run)"


def test_bench_peers_help_and_bad_rows(tmp_path):
    # --help and argument errors come before peft / timm are imported and before any model is built
    r = run([sys.executable, str(BENCH_PEERS), "--help"], tmp_path)
    assert r.returncode == 0 and "--rows" in r.stdout and "--precisions" in r.stdout
    r = run([sys.executable, str(BENCH_PEERS), "--rows", "kit-clora,nope"], tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("--rows: 'nope' is not allowed")

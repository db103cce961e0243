"""The continual loop: determinism, batch-size-free evaluation, runs on disk, resume after kill -9."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from clora_lite import train
from clora_lite.config import Config, ConfigError

SMALL = dict(benchmark="synthetic", tasks=3, classes=6, train_per_class=32, test_per_class=10,
             backbone="vit_tiny", pretrained=False, epochs=1, batch=16, device="cpu", rank=4)


def small(**kw):
    return Config(**{**SMALL, **kw})


def strip_timing(r):
    return {k: v for k, v in r.items() if k not in ("task_seconds", "train_images_per_second")}


def test_deterministic_on_cpu():
    a = train.run(small(), progress=False, log=lambda s: None)
    b = train.run(small(), progress=False, log=lambda s: None)
    assert a["acc_matrix"] == b["acc_matrix"] and len(a["acc_matrix"]) == 3
    assert [len(r) for r in a["acc_matrix"]] == [1, 2, 3]


def test_evaluation_does_not_depend_on_batch_size():
    a = train.run(small(eval_batch=7), progress=False, log=lambda s: None)
    b = train.run(small(eval_batch=1000), progress=False, log=lambda s: None)
    assert a["acc_matrix"] == b["acc_matrix"] and a["task_il_matrix"] == b["task_il_matrix"]


@pytest.mark.parametrize("method", ["frozen", "finetune", "seq_lora", "lora_per_task", "clora", "joint"])
def test_every_method_runs(method):
    r = train.run(small(method=method), progress=False, log=lambda s: None)
    assert 0 <= r["last_acc"] <= 100 and r["trainable_params"] > 0
    if method == "joint":
        assert len(r["acc_matrix"]) == 1 and len(r["acc_matrix"][0]) == 3
    if method == "frozen":   # only the head trains
        assert r["trainable_params"] == 6 * 128 + 6


def test_frozen_backbone_and_old_head_rows_do_not_move():
    from clora_lite import data, vit
    from clora_lite.methods import make_learner
    cfg = small(method="clora")
    learner = make_learner(vit.build("vit_tiny"), 6, cfg)
    frozen_before = {n: p.clone() for n, p in learner.named_parameters() if not p.requires_grad}
    learner.begin_task(1, [2, 3])
    opt = torch.optim.AdamW(learner.param_groups(), weight_decay=0.0)
    head_before = learner.head.weight.detach().clone()
    for _ in range(3):
        loss = learner.loss(torch.randn(4, 3, 32, 32), torch.tensor([2, 3, 2, 3]))
        opt.zero_grad(); loss.backward(); opt.step()
    for n, p in learner.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), n
    assert torch.equal(learner.head.weight[[0, 1, 4, 5]], head_before[[0, 1, 4, 5]])
    assert not torch.equal(learner.head.weight[2:4], head_before[2:4])


def test_results_on_disk_and_refusal_of_another_config(tmp_path):
    out = tmp_path / "run"
    r = train.run(small(), out, progress=False, log=lambda s: None)
    on_disk = json.loads((out / "results.json").read_text())
    for key in ("method", "benchmark", "seed", "class_order", "acc_matrix", "last_acc", "inc_acc", "forgetting",
                "bwt", "task_il_acc", "trainable_params", "total_params", "task_seconds",
                "train_images_per_second", "versions"):
        assert key in on_disk
    assert on_disk["acc_matrix"] == r["acc_matrix"]
    assert json.loads((out / "config.json").read_text()) == small().to_dict()
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["task_02.pt"]
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="holds a run with another config .*rank"):
        train.run(small(rank=2), out, progress=False, log=lambda s: None)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def cli_run(out, *extra):
    return [sys.executable, "-m", "clora_lite", "run", "--method", "clora", "--benchmark", "synthetic",
            "--tasks", "4", "--classes", "8", "--train-per-class", "96", "--test-per-class", "10",
            "--no-pretrained", "--epochs", "2", "--batch", "16", "--rank", "4", "--device", "cpu",
            "--quiet", "--out", str(out), *extra]


def test_resume_after_kill_9_gives_the_same_results(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole"
    subprocess.run(cli_run(whole), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cli_run(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((killed / "checkpoints").glob("task_00.pt")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "results.json").exists(), "the run finished before it could be killed"
    done = subprocess.run(cli_run(killed), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    a = json.loads((whole / "results.json").read_text())
    b = json.loads((killed / "results.json").read_text())
    assert strip_timing(a) == strip_timing(b)


def test_gpu_fast_path_settings_run_on_cpu():
    """bf16 autocast (the GPU default) runs on the CPU too, and learns about as well as float32."""
    fp32 = train.run(small(epochs=2), progress=False, log=lambda s: None)
    bf16 = train.run(small(epochs=2, amp="bf16"), progress=False, log=lambda s: None)
    assert abs(bf16["last_acc"] - fp32["last_acc"]) <= 25
    assert len(bf16["acc_matrix"]) == 3


def test_compiled_backbone_matches_eager():
    pytest.importorskip("torch._inductor")
    from clora_lite import vit
    torch.manual_seed(0)
    model = vit.build("vit_tiny")
    x = torch.randn(4, 3, 32, 32)
    eager = model(x)
    model.compile()
    torch.testing.assert_close(model(x), eager, atol=1e-4, rtol=1e-4)
    assert set(model.state_dict()) == set(vit.build("vit_tiny").state_dict())   # checkpoints stay portable


def test_routing_lr_reaches_the_optimizer():
    from clora_lite import vit
    from clora_lite.methods import make_learner
    learner = make_learner(vit.build("vit_tiny"), 6, small(method="clora", routing_lr=0.05, lr=0.001))
    groups = learner.param_groups()
    by_lr = {g["lr"]: sum(p.numel() for p in g["params"]) for g in groups}
    assert by_lr[0.05] == 4 * 3 * 4 * 4   # depth 4, q/k/v, one 4x4 R_delta each
    assert by_lr[0.001] == 4 * 3 * 2 * 4 * 128

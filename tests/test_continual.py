"""The continual loop: determinism, batch-size-free evaluation, runs on disk, resume after kill -9."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from clora_lite import benchmarks
from clora_lite.backbone import vit
from clora_lite.continual import loop, run_folder
from clora_lite.continual.config import Config
from clora_lite.errors import ConfigError
from clora_lite.methods import make_learner
from helpers import Stop, assert_same_checkpoints, stop_after, strip_timing

SMALL = dict(benchmark="synthetic", tasks=3, classes=6, train_per_class=32, test_per_class=10,
             backbone="vit_tiny", pretrained=False, epochs=1, batch=16, device="cpu", rank=4)


def small(**kw):
    return Config(**{**SMALL, **kw})


def test_deterministic_on_cpu():
    a = loop.run(small(), progress=False, log=lambda s: None)
    b = loop.run(small(), progress=False, log=lambda s: None)
    assert a["acc_matrix"] == b["acc_matrix"] and len(a["acc_matrix"]) == 3
    assert [len(r) for r in a["acc_matrix"]] == [1, 2, 3]


def test_evaluation_does_not_depend_on_batch_size():
    a = loop.run(small(eval_batch=7), progress=False, log=lambda s: None)
    b = loop.run(small(eval_batch=1000), progress=False, log=lambda s: None)
    assert a["acc_matrix"] == b["acc_matrix"] and a["task_il_matrix"] == b["task_il_matrix"]


@pytest.mark.parametrize("method", ["frozen", "finetune", "seq_lora", "lora_per_task", "clora", "joint"])
def test_every_method_runs_and_learns(method):
    r = loop.run(small(method=method, pretrained=True), progress=False, log=lambda s: None)
    # 6 classes: chance is 16.7 %. With the pre-trained backbone and head alignment every method is far above it
    # on the last task, and all but full fine-tuning keep most of the old tasks.
    assert r["acc_matrix"][-1][-1] > 50 and r["trainable_params"] > 0
    assert r["last_acc"] > (30 if method == "finetune" else 50)
    if method == "joint":
        assert len(r["acc_matrix"]) == 1 and len(r["acc_matrix"][0]) == 3
    if method == "frozen":   # only the head trains
        assert r["trainable_params"] == 6 * 128 + 6


def test_frozen_backbone_and_old_head_rows_do_not_move():
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
    r = loop.run(small(), out, progress=False, log=lambda s: None)
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
        loop.run(small(rank=2), out, progress=False, log=lambda s: None)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


stop_after_task_1 = stop_after(2)   # 1-based in the log: the second task, task_01.pt


@pytest.mark.parametrize("method", ["clora", "finetune", "lora_per_task", "inflora", "sdlora"])
def test_checkpoints_keep_only_what_training_changed_and_resume_exactly(tmp_path, method):
    """A checkpoint leaves out the frozen backbone weights (rebuilt from the same weights and seed on resume),
    keeps every weight finetune trains, and a run resumed from it ends exactly where an uninterrupted one does,
    for the learners that add branches per task (lora_per_task, InfLoRA, SD-LoRA) too."""
    cfg = small(method=method, pretrained=True)
    whole = loop.run(cfg, tmp_path / "whole", progress=False, log=lambda s: None)
    with pytest.raises(Stop):
        loop.run(cfg, tmp_path / "cut", progress=False, log=stop_after_task_1)
    blob = torch.load(tmp_path / "cut" / "checkpoints" / "task_01.pt", weights_only=True)
    frozen_weight = "backbone.blocks.0.fc1.weight"
    assert (frozen_weight in blob["state"]) == (method == "finetune")
    assert (frozen_weight in blob["unchanged"]) == (method != "finetune")
    assert "head.weight" in blob["state"] and "class_mean" not in blob["state"]   # statistics: stats/task_XX.pt
    assert sorted(p.name for p in (tmp_path / "cut" / "stats").iterdir()) == ["task_00.pt", "task_01.pt"]
    resumed = loop.run(cfg, tmp_path / "cut", progress=False, log=lambda s: None)
    assert resumed["acc_matrix"] == whole["acc_matrix"]
    # bit for bit: the last checkpoint of both runs, and the learner load_learner rebuilds from it
    a, b = (torch.load(tmp_path / d / "checkpoints" / "task_02.pt", weights_only=True) for d in ("whole", "cut"))
    assert_same_checkpoints(a, b)
    rebuilt, live = run_folder.load_learner(tmp_path / "cut", 6), run_folder.load_learner(tmp_path / "whole", 6)
    assert all(torch.equal(rebuilt.state_dict()[k], b["state"][k]) for k in b["state"])
    assert torch.equal(rebuilt.class_cov, live.class_cov) and rebuilt.class_cov.abs().sum() > 0


def test_resume_refuses_a_backbone_that_is_not_the_one_trained_from(tmp_path):
    """The frozen weights are rebuilt, not saved: if they changed since (other shipped weights, another torch's
    initialisation), resuming would silently mix old adapters with a new backbone. The fingerprints refuse it."""
    cfg = small(method="clora", pretrained=True)
    with pytest.raises(Stop):
        loop.run(cfg, tmp_path / "cut", progress=False, log=stop_after_task_1)
    ckpt = tmp_path / "cut" / "checkpoints" / "task_01.pt"
    blob = torch.load(ckpt, weights_only=True)
    blob["unchanged"]["backbone.blocks.0.fc1.weight"] = "0" * 16   # as if the shipped weights had been retrained
    torch.save(blob, ckpt)
    before = ckpt.read_bytes()
    with pytest.raises(ConfigError, match="task_01.pt does not fit this run .*blocks.0.fc1.weight is not the tensor"):
        loop.run(cfg, tmp_path / "cut", progress=False, log=lambda s: None)
    assert ckpt.read_bytes() == before


def test_a_full_checkpoint_from_before_still_resumes(tmp_path):
    """Checkpoints written before they left the frozen weights out hold the whole state dict and no "unchanged"."""
    cfg = small(method="clora", pretrained=True)
    whole = loop.run(cfg, tmp_path / "whole", progress=False, log=lambda s: None)
    with pytest.raises(Stop):
        loop.run(cfg, tmp_path / "cut", progress=False, log=stop_after_task_1)
    ckpt = tmp_path / "cut" / "checkpoints" / "task_01.pt"
    blob = torch.load(ckpt, weights_only=True)
    learner = run_folder.build_learner(cfg, 6)
    run_folder.restore(learner, blob)
    torch.save({**{k: v for k, v in blob.items() if k != "unchanged"}, "state": learner.state_dict()}, ckpt)
    assert loop.run(cfg, tmp_path / "cut", progress=False, log=lambda s: None)["acc_matrix"] == whole["acc_matrix"]


def cli_run(out, *extra):
    return [sys.executable, "-m", "clora_lite", "run", "--method", "clora", "--benchmark", "synthetic",
            "--tasks", "4", "--classes", "8", "--train-per-class", "96", "--test-per-class", "10",
            "--no-pretrained", "--epochs", "2", "--batch", "16", "--rank", "4", "--device", "cpu",
            "--quiet", "--out", str(out), *extra]


KILL_AFTER_TASK_1 = """
import os, signal, sys
from clora_lite.continual.loop import run
from clora_lite.cli import build_parser, config_from
args = build_parser().parse_args(sys.argv[1:])
def log(line):   # called right after task 1's checkpoint is on disk: die there, as kill -9 would
    if line.startswith("clora task 2/") and line.endswith("saved"):
        os.kill(os.getpid(), signal.SIGKILL)
run(config_from(args), args.out, progress=False, log=log)
"""


def test_resume_after_kill_9_gives_the_same_results_and_files(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole"
    subprocess.run(cli_run(whole), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_TASK_1] + cli_run(killed)[3:], env=env,
                          capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in (killed / "checkpoints").iterdir()] == ["task_01.pt"]
    assert not (killed / "results.json").exists()
    done = subprocess.run(cli_run(killed), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    a = json.loads((whole / "results.json").read_text())
    b = json.loads((killed / "results.json").read_text())
    assert strip_timing(a) == strip_timing(b)
    snaps = sorted(p.name for p in (whole / "adapters").iterdir())
    assert snaps == [f"task_{t:02d}.pt" for t in range(4)] == sorted(p.name for p in (killed / "adapters").iterdir())
    for name in snaps:
        x = torch.load(whole / "adapters" / name, weights_only=True)
        y = torch.load(killed / "adapters" / name, weights_only=True)
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_fp16_scales_the_loss_with_one_scaler_for_the_whole_run(monkeypatch):
    """fp16 training goes through a GradScaler (scale, step, update at every step), and every task uses the
    run's one scaler, so a task does not start again at the initial scale."""
    from clora_lite import env
    made, calls = [], []
    real = env.grad_scaler

    def spy(device, dtype):
        s = real(device, dtype)
        made.append(s)
        for name in ("scale", "step", "update"):
            f = getattr(s, name)
            setattr(s, name, (lambda f, name: lambda *a, **k: (calls.append(name), f(*a, **k))[1])(f, name))
        return s
    monkeypatch.setattr(env, "grad_scaler", spy)
    cfg = small(amp="fp16", epochs=1, method="clora")
    loop.run(cfg, progress=False, log=lambda s: None)
    assert len(made) == 1 and made[0].is_enabled()
    steps = calls.count("step")
    assert steps > 0 and calls.count("scale") == calls.count("update") == steps


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_autocast_learns_as_well_as_float32(amp):
    """bf16 autocast (the default on recent GPUs) and fp16 with loss scaling (the default on a T4) run on the CPU
    too and give about the same accuracy as float32."""
    cfg = dict(pretrained=True, epochs=2, test_per_class=50, method="clora")
    fp32 = loop.run(small(**cfg), progress=False, log=lambda s: None)
    low = loop.run(small(amp=amp, **cfg), progress=False, log=lambda s: None)
    assert fp32["last_acc"] > 60   # it learned something (chance: 16.7 %)
    assert abs(low["last_acc"] - fp32["last_acc"]) <= 5


def test_amp_auto_picks_bf16_only_where_the_gpu_has_bf16_tensor_cores(monkeypatch):
    from clora_lite import env
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert env.amp_dtype("auto", cpu) is None and env.amp_dtype("off", cuda) is None
    assert env.amp_dtype("bf16", cpu) is torch.bfloat16 and env.amp_dtype("fp16", cpu) is torch.float16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))   # T4
    assert env.amp_dtype("auto", cuda) is torch.float16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))   # H100 / H200
    assert env.amp_dtype("auto", cuda) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (6, 1))   # P40: no tensor cores
    assert env.amp_dtype("auto", cuda) is None
    # only fp16 scales the loss
    assert [env.grad_scaler(cpu, d).is_enabled() for d in (None, torch.bfloat16, torch.float16)] == [False, False, True]


def test_compiled_backbone_matches_eager():
    pytest.importorskip("torch._inductor")
    torch.manual_seed(0)
    model = vit.build("vit_tiny")
    x = torch.randn(4, 3, 32, 32)
    eager = model(x)
    model.compile()
    torch.testing.assert_close(model(x), eager, atol=1e-4, rtol=1e-4)
    assert set(model.state_dict()) == set(vit.build("vit_tiny").state_dict())   # checkpoints stay portable


def test_routing_lr_reaches_the_optimizer():
    learner = make_learner(vit.build("vit_tiny"), 6, small(method="clora", routing_lr=0.05, lr=0.001))
    groups = learner.param_groups()
    by_lr = {g["lr"]: sum(p.numel() for p in g["params"]) for g in groups}
    assert by_lr[0.05] == 4 * 3 * 4 * 4   # depth 4, q/k/v, one 4x4 R_delta each
    assert by_lr[0.001] == 4 * 3 * 2 * 4 * 128


def test_predictions_class_il_and_task_il_with_unequal_tasks():
    tasks = [[0, 1, 2], [3], [4, 5]]
    logits = torch.tensor([[0., 5., 1., 9., 0., 0.],    # label 1: class-IL says 3, within task 0 it is 1
                           [9., 0., 0., 1., 0., 0.],    # label 3: task 1 has one class, so task-IL is always right
                           [0., 0., 0., 0., 1., 2.],    # label 4: both say 5
                           [0., 0., 0., 0., 3., 2.]])   # label 4: both right
    labels = torch.tensor([1, 3, 4, 4])
    cil, til = loop.predictions(logits, labels, tasks)
    assert cil.tolist() == [3, 0, 5, 4]
    assert til.tolist() == [1, 3, 5, 4]


def test_unequal_tasks_run_end_to_end():
    r = loop.run(small(task_sizes=(3, 1, 2)), progress=False, log=lambda s: None)
    assert r["tasks"] == [[0, 1, 2], [3], [4, 5]]
    assert [len(row) for row in r["acc_matrix"]] == [1, 2, 3]
    assert r["task_il_matrix"][-1][1] == 100.0   # a one-class task cannot be wrong within its own classes


def test_validation_split_is_held_out_and_reported():
    b = benchmarks.synthetic(2, 4, train_per_class=20, test_per_class=5, seed=0).hold_out(0.25, seed=0)
    assert len(b.val_y) == 4 * 5 and len(b.train_y) == 4 * 15
    assert not set(map(bytes, b.val_x.flatten(1).numpy())) & set(map(bytes, b.train_x.flatten(1).numpy()))
    r = loop.run(small(val_fraction=0.25, pretrained=True), progress=False, log=lambda s: None)
    assert [len(row) for row in r["val_acc_matrix"]] == [1, 2, 3]
    # 8 of each class's 32 training images are held out (48 in all): the accuracy counts exactly those
    n_val = 6 * 8
    assert r["val_last_acc"] * n_val / 100 == pytest.approx(round(r["val_last_acc"] * n_val / 100), abs=1e-6)
    assert r["val_last_acc"] == pytest.approx(sum(r["val_acc_matrix"][-1]) / 3)        # equal tasks
    assert r["val_inc_acc"] == pytest.approx(sum(sum(row) / len(row) for row in r["val_acc_matrix"]) / 3)
    assert r["val_last_acc"] > 50   # the pre-trained backbone: far above chance (16.7 %) on held-out images too


def test_lora_per_task_merges_then_starts_fresh_with_the_same_function():
    torch.manual_seed(0)
    learner = make_learner(vit.build("vit_tiny"), 6, small(method="lora_per_task")).eval()
    learner.begin_task(0, [0, 1])
    with torch.no_grad():
        for n, p in learner.named_parameters():
            if n.endswith("lora_B"):
                p.normal_(0, 0.05)   # as if task 0 had trained
    x = torch.randn(3, 3, 32, 32)
    before = learner.backbone(x)
    learner.begin_task(1, [2, 3])
    torch.testing.assert_close(learner.backbone(x), before, atol=1e-5, rtol=1e-5)
    assert all(p.abs().sum() == 0 for n, p in learner.named_parameters() if n.endswith("lora_B"))


@pytest.mark.parametrize("method", ["lora_per_task", "inflora"])
def test_methods_that_fold_into_W0_store_what_the_frozen_backbone_stores(method):
    """lora_per_task and InfLoRA both fold each finished adapter into W0, so serving every task needs the merged
    backbone and the head only: both are counted alike, as the frozen backbone, however many tasks have passed."""
    frozen = make_learner(vit.build("vit_tiny"), 6, small(method="frozen")).stored_params()
    learner = make_learner(vit.build("vit_tiny"), 6, small(method=method))
    assert learner.folds_into_base
    for t in range(3):
        learner.begin_task(t, [2 * t, 2 * t + 1])
        assert learner.stored_params() == frozen, (method, t)


def test_align_head_separates_classes_the_masked_head_never_compared():
    """Two tasks whose classes were each learned against their own task only: alignment on the stored Gaussians
    must make the head tell all four apart."""
    torch.manual_seed(0)
    learner = make_learner(vit.build("vit_tiny"), 4, small(method="frozen"))
    D = learner.backbone.dim
    means = torch.eye(D)[:4] * 4.0
    for c in range(4):
        f = means[c] + 0.3 * torch.randn(200, D)
        learner.record_class_stats(f, torch.full((200,), c))
    with torch.no_grad():   # a head biased toward task 1: what the masked loss leaves behind
        learner.head.weight.zero_()
        learner.head.bias.copy_(torch.tensor([0.0, 0.0, 5.0, 5.0]))
    test = torch.cat([means[c] + 0.3 * torch.randn(50, D) for c in range(4)])
    labels = torch.arange(4).repeat_interleave(50)
    acc = lambda: (learner.logits(test).argmax(1) == labels).float().mean().item()
    assert acc() <= 0.5
    learner.align_head(4, steps=100, generator=torch.Generator().manual_seed(0))
    assert acc() > 0.95


def test_damaged_checkpoint_is_one_line_and_kept(tmp_path, capsys):
    from clora_lite.cli import main
    out = tmp_path / "run"
    args = cli_run(out)[3:]
    assert main(args) == 0
    (out / "results.json").unlink()   # the run looks unfinished, and its checkpoint is cut short
    ckpt = out / "checkpoints" / "task_03.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "task_03.pt is damaged" in err and "move it out" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    ckpt.write_bytes(b"garbage")
    assert main(args) == 2 and "task_03.pt is damaged" in capsys.readouterr().err


# ---------------------------------------------------------------- drift compensation and the warm start (ours)

def _learner_with_stats(n_classes=4):
    learner = make_learner(vit.build("vit_tiny"), n_classes, small(method="frozen", classes=n_classes, tasks=2))
    g = torch.Generator().manual_seed(0)
    D = learner.class_mean.shape[1]
    learner.class_mean.copy_(torch.randn(n_classes, D, generator=g))
    a = torch.randn(n_classes, D, D, generator=g) / D ** 0.5
    learner.class_cov.copy_(a @ a.transpose(1, 2))
    return learner, g


def test_drift_compensation_follows_an_exact_linear_drift():
    """If every feature moved by f -> f T + c, the old classes' means and covariances move the same way."""
    learner, g = _learner_with_stats()
    D = learner.class_mean.shape[1]
    T = torch.eye(D) + 0.3 * torch.randn(D, D, generator=g) / D ** 0.5
    c = torch.randn(D, generator=g)
    before = torch.randn(4 * D, D, generator=g)                     # more images than dims: the map is identified
    mean0, cov0 = learner.class_mean.clone(), learner.class_cov.clone()
    learner.compensate_drift(before, before @ T + c, n_old=2, ridge=1e-9)
    torch.testing.assert_close(learner.class_mean[:2], mean0[:2] @ T + c, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(learner.class_cov[:2], T.T @ cov0[:2] @ T, atol=1e-4, rtol=1e-4)
    assert torch.equal(learner.class_mean[2:], mean0[2:]) and torch.equal(learner.class_cov[2:], cov0[2:])


def test_drift_compensation_moves_nothing_without_drift_and_shrinks_with_ridge():
    learner, g = _learner_with_stats()
    D = learner.class_mean.shape[1]
    before = torch.randn(50, D, generator=g)
    before -= before.mean(0)   # centred: a linear map then adds no shift of its own
    mean0 = learner.class_mean.clone()
    learner.compensate_drift(before, before, n_old=2, ridge=1.0)
    torch.testing.assert_close(learner.class_mean, mean0)
    shift = torch.randn(D, generator=g)
    learner.compensate_drift(before, before + shift, n_old=2, ridge=100.0)   # a pure shift is never shrunk
    torch.testing.assert_close(learner.class_mean[:2], mean0[:2] + shift, atol=1e-5, rtol=1e-5)
    T = 2.0 * torch.eye(D)
    learner.class_mean.copy_(mean0)
    learner.compensate_drift(before, before @ T, n_old=2, ridge=100.0)      # a strong ridge keeps M near 0
    moved = (learner.class_mean[:2] - mean0[:2]).norm()
    assert 0 < moved < 0.02 * (mean0[:2] @ T - mean0[:2]).norm()


def test_drift_ridge_runs_through_the_loop_and_frozen_is_unchanged():
    """A frozen backbone has no drift: with or without compensation the run is the same, to the bit."""
    plain = loop.run(small(method="frozen", epochs=1), progress=False, log=lambda s: None)
    comp = loop.run(small(method="frozen", epochs=1, drift_ridge=1.0), progress=False, log=lambda s: None)
    assert plain["acc_matrix"] == comp["acc_matrix"]
    moved = loop.run(small(method="seq_lora", epochs=1, lr=3e-3, drift_ridge=1.0), progress=False, log=lambda s: None)
    still = loop.run(small(method="seq_lora", epochs=1, lr=3e-3), progress=False, log=lambda s: None)
    assert moved["acc_matrix"][0] == still["acc_matrix"][0]   # task 1 has nothing old to move
    assert moved["acc_matrix"][1:] != still["acc_matrix"][1:]
    with pytest.raises(ConfigError, match="drift_ridge=0 is not allowed"):
        Config.from_dict({"drift_ridge": 0})
    with pytest.raises(ConfigError, match="not allowed without align_head"):
        Config.from_dict({"drift_ridge": 1.0, "align_head": False})


def test_first_lr_scale_reaches_every_adapting_method_on_the_first_task_only(monkeypatch):
    seen = []
    real = torch.optim.AdamW

    def spy(groups, **kw):
        seen.append([g["lr"] for g in groups])
        return real(groups, **kw)
    monkeypatch.setattr(torch.optim, "AdamW", spy)
    for method in ("seq_lora", "clora", "sdlora", "inflora", "finetune"):
        seen.clear()
        loop.run(small(method=method, epochs=1, tasks=2, lr=1e-3, backbone_lr=1e-3, head_lr=1e-2,
                        first_lr_scale=10.0), progress=False, log=lambda s: None)
        assert seen[0][0] == 1e-2 and seen[1][0] == 1e-2, method            # the head never scales
        assert all(abs(lr - 1e-2) < 1e-12 for lr in seen[0][1:]), method    # task 1: 10 x 1e-3
        assert all(abs(lr - 1e-3) < 1e-12 for lr in seen[1][1:]), method    # later tasks: lr
    seen.clear()
    loop.run(small(method="joint", epochs=1, tasks=2, lr=1e-3, first_lr_scale=10.0), progress=False, log=lambda s: None)
    assert len(seen) == 1 and all(abs(lr - 1e-3) < 1e-12 for lr in seen[0][1:])   # the reference is not warmed


def test_task_stream_joint_is_one_task_and_the_warm_start_only_the_first():
    bench = benchmarks.synthetic(3, 6, train_per_class=2, test_per_class=1, seed=0)
    (joint,) = loop.task_stream(small(method="joint", first_lr_scale=5.0), bench)
    assert (joint.labels, joint.parts, joint.seen, joint.lr_scale) == (list(range(6)), [0, 1, 2], 3, 1.0)
    stream = loop.task_stream(small(method="clora", first_lr_scale=5.0), bench)
    assert [t.labels for t in stream] == bench.tasks and [t.parts for t in stream] == [[0], [1], [2]]
    assert [t.seen for t in stream] == [1, 2, 3] and [t.lr_scale for t in stream] == [5.0, 1.0, 1.0]


def test_run_context_for_a_cpu_config():
    ctx = loop.RunContext.for_config(small(amp="auto"))
    assert ctx.device == torch.device("cpu") and ctx.amp_dtype is None and not ctx.scaler.is_enabled()
    ctx = loop.RunContext.for_config(small(amp="fp16"))
    assert ctx.amp_dtype is torch.float16 and ctx.scaler.is_enabled()

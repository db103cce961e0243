"""Bad input on the command line: one line on stderr naming the value, exit status 2, nothing written."""
import importlib
import subprocess
import sys

import pytest

from clora_lite.cli import main
from clora_lite.errors import DatasetMissing, WeightsUnavailable

RUN = ["run", "--benchmark", "synthetic", "--classes", "6", "--tasks", "3", "--train-per-class", "4",
       "--test-per-class", "2", "--epochs", "0", "--no-pretrained", "--quiet", "--device", "cpu"]

BAD = {
    "rank zero": (["--rank", "0"], "rank=0"),
    "rank above the layer": (["--rank", "999"], "rank=999"),
    "tasks not dividing classes": (["--tasks", "4"], "tasks=4"),
    "unknown method": (["--method", "ewc"], "method='ewc'"),
    "unknown backbone": (["--backbone", "resnet18"], "backbone='resnet18'"),
    "unknown benchmark": (["--benchmark", "mnist"], "benchmark='mnist'"),
    "negative epochs": (["--epochs", "-1"], "epochs=-1"),
    "non-numeric epochs": (["--epochs", "two"], "invalid int value: 'two'"),
    "bad orth side": (["--orth-side", "top"], "orth_side='top'"),
    "orth energy above 1": (["--orth-energy", "1.5"], "orth_energy=1.5"),
    "drift ridge zero": (["--drift-ridge", "0"], "drift_ridge=0"),
    "drift ridge without alignment": (["--drift-ridge", "1", "--no-align-head"], "without align_head"),
    "unknown target": (["--targets", "q,zz"], "targets='q,zz'"),
    "too many synthetic classes": (["--classes", "300", "--tasks", "3"], "classes=300"),
    "missing imagefolder": (["--benchmark", "imagefolder:/nonexistent/x"], "imagefolder:/nonexistent/x"),
    "unknown flag": (["--learning-rate", "1"], "unrecognized arguments: --learning-rate"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2_nothing_written(case, tmp_path, capsys):
    extra, needle = BAD[case]
    out = tmp_path / "out"
    assert main(RUN + extra + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("clora_lite: error: ") and needle in err, err
    assert not out.exists()


def test_missing_dataset_offline(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--benchmark", "split_cifar10", "--tasks", "5", "--data-dir", str(tmp_path / "empty"),
                 "--out", str(out), "--quiet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "split_cifar10" in err and "internet" in err
    assert not out.exists()


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(RUN + ["--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not writable" in err
    assert blocker.read_text() == "not a folder"


def test_bad_config_files(tmp_path, capsys):
    bad = tmp_path / "cfg.json"
    bad.write_text('{"rank": 4, "learning_rate": 1}')
    assert main(RUN + ["--config", str(bad)]) == 2
    assert "unknown config key 'learning_rate'" in capsys.readouterr().err
    assert main(RUN + ["--config", str(tmp_path / "missing.json")]) == 2
    assert "cannot be read" in capsys.readouterr().err


@pytest.mark.parametrize("argv,bad", [
    (["run", "--method", "no_such_method"], "method='no_such_method'"),
    (["compare", "--methods", "clora,sd_lora"], "method 'sd_lora'"),   # the method is sdlora
])
def test_unknown_method_names_fail_with_status_2_naming_the_value(argv, bad, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(argv + ["--out", str(out), "--device", "cpu", "--quiet"]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("clora_lite: error: ") and bad in err, err
    assert "is not allowed: use one of " in err and "sdlora" in err   # and says what is allowed
    assert captured.out == "" and not out.exists()


def test_compare_unknown_method_checked_before_any_run(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--methods", "frozen,nope", "--out", str(out), "--benchmark", "synthetic",
                 "--classes", "6", "--tasks", "3", "--device", "cpu"]) == 2
    assert "method 'nope' is not allowed" in capsys.readouterr().err
    assert not out.exists()


def test_pretrain_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "w.pt"
    target.write_bytes(b"keep me")
    assert main(["pretrain", "--out", str(target)]) == 2
    assert "--force" in capsys.readouterr().err and target.read_bytes() == b"keep me"


def test_exit_status_is_2_from_a_real_process(tmp_path):
    p = subprocess.run([sys.executable, "-m", "clora_lite"] + RUN + ["--rank", "-3", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "rank=-3" in p.stderr
    assert "Traceback" not in p.stderr


def test_compare_writes_one_folder_per_method_and_summaries(tmp_path, capsys):
    import csv
    import json
    out = tmp_path / "cmp"
    assert main(["compare", "--methods", "frozen,clora,clora_no_orth", "--out", str(out), "--benchmark", "synthetic",
                 "--classes", "4", "--tasks", "2", "--train-per-class", "8", "--test-per-class", "4", "--epochs", "1",
                 "--batch", "8", "--no-pretrained", "--device", "cpu", "--quiet", "--align-steps", "5"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [s["method"] for s in summary] == ["frozen", "clora", "clora_no_orth"]
    assert json.loads((out / "clora_no_orth" / "config.json").read_text())["lambda_orth"] == 0.0
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["method"] for r in rows] == ["frozen", "clora", "clora_no_orth"]
    assert float(rows[1]["last_acc"]) == summary[1]["last_acc"]
    assert (out / "accuracy_curves.png").stat().st_size > 1000 and (out / "acc_matrices.png").exists()
    for png in ("forgetting", "overlap", "routing", "interference", "stored_params"):   # the looking-inside PNGs
        assert (out / f"{png}.png").stat().st_size > 1000, png
    assert sorted(p.name for p in (out / "clora" / "adapters").iterdir()) == ["task_00.pt", "task_01.pt"]
    printed = capsys.readouterr().out
    assert "Forgetting = mean_{j<T}" in printed and "clora_no_orth" in printed


def test_new_methods_run_through_compare_on_an_imagefolder(tmp_path, capsys):
    """The issue-11 names (peers and the kit's best C-LoRA) are --methods names on any benchmark, own photos too."""
    import json
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 2)):
        for cls in ("cat", "dog", "eel", "fox"):
            (tmp_path / "photos" / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (40, 20, 3), dtype=np.uint8)).save(tmp_path / "photos" / split / cls / f"{i}.png")
    out = tmp_path / "cmp"
    methods = ["inflora", "sdlora", "clora_warm_drift", "seq_lora_warm_drift"]
    assert main(["compare", "--methods", ",".join(methods), "--out", str(out), "--benchmark",
                 f"imagefolder:{tmp_path / 'photos'}", "--tasks", "2", "--epochs", "1", "--batch", "4",
                 "--device", "cpu", "--quiet", "--align-steps", "2", "--lr", "5e-4"]) == 0
    assert [s["method"] for s in json.loads((out / "summary.json").read_text())] == methods
    cfg = json.loads((out / "clora_warm_drift" / "config.json").read_text())
    assert cfg["method"] == "clora" and cfg["first_lr_scale"] > 1 and cfg["drift_ridge"] is not None
    assert cfg["lr"] == 5e-4   # a preset turns options on; the learning rate stays the run's own
    printed = capsys.readouterr().out
    assert "clora_warm_drift: first_lr_scale 10 and drift_ridge 1 are what validation chose" in printed


def test_bench_prints_throughput_and_flops(capsys):
    assert main(["bench", "--backbone", "vit_tiny", "--batch", "4", "--steps", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "train images/s" in out and "GFLOP" in out and "TFLOP/s" in out
    assert main(["bench", "--batch", "0"]) == 2


def test_config_file_then_flags_precedence(tmp_path, monkeypatch):
    """command defaults < --config file < flags, checked once after merging."""
    seen = []
    monkeypatch.setattr(importlib.import_module("clora_lite.comparison"), "compare",
                        lambda methods, base, out, progress=True, figures=True: seen.append(base))
    f = tmp_path / "f.json"
    f.write_text('{"seed": 1}')
    assert main(["demo", "--config", str(f), "--methods", "frozen"]) == 0
    assert seen[-1].seed == 1 and seen[-1].train_per_class == 64 and seen[-1].batch == 64   # the demo's sizes
    f.write_text('{"classes": 6, "epochs": 2}')
    assert main(["compare", "--config", str(f), "--tasks", "3", "--epochs", "1", "--methods", "frozen"]) == 0
    assert (seen[-1].classes, seen[-1].tasks, seen[-1].epochs) == (6, 3, 1)


def test_pretrain_with_few_steps(tmp_path, capsys):
    import json
    out = tmp_path / "w.pt"
    assert main(["pretrain", "--steps", "10", "--out", str(out)]) == 0
    meta = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert meta["steps"] == 10 and out.stat().st_size > 100_000


def test_every_option_says_what_it_does_and_its_default():
    from clora_lite.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        for action in parser._actions:
            if action.dest == "help":
                continue
            assert action.help and "default" in action.help, f"{name} {action.option_strings}: {action.help!r}"
    demo_help = sub.choices["demo"].format_help()
    assert "(default: 64)" in demo_help   # the demo shows its own train_per_class, not Config's 300


def test_bench_counts_model_flops_per_method(capsys):
    from clora_lite.backbone import vit
    from clora_lite.throughput import measure_throughput
    fwd = vit.flops_per_image(vit.CONFIGS["vit_tiny"])
    got = {m: measure_throughput("vit_tiny", 2, 2, m, device="cpu", log=lambda s: None)
           for m in ("frozen", "clora", "finetune")}
    for method, multiple in (("frozen", 1), ("clora", 2), ("finetune", 3)):
        r = got[method]
        assert r["train_gflops_per_image"] * 1e9 == pytest.approx(multiple * fwd)
        assert r["achieved_tflops"] == pytest.approx(r["images_per_second"] * multiple * fwd / 1e12)


WITHOUT_EXTRAS = """
import sys
for name in ("plotly", "ipywidgets", "IPython", "nbformat", "jupytext", "timm"):
    sys.modules[name] = None   # import name -> ImportError, as if not installed
from clora_lite.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_writes_its_figures_with_the_core_dependencies_only(tmp_path):
    """A plain `pip install` (torch, torchvision, numpy, tqdm, matplotlib, plotly) runs and plots without the
    notebooks extra; plotly too is imported only where a plotly figure is made, so a run needs none of these."""
    import os
    out = tmp_path / "run"
    argv = RUN + ["--tasks", "2", "--classes", "4", "--epochs", "1", "--method", "clora", "--out", str(out)]
    p = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, *argv], capture_output=True, text=True,
                       env={**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-2000:]
    for png in ("accuracy_curves", "acc_matrices", "overlap", "routing", "interference", "stored_params"):
        assert (out / f"{png}.png").stat().st_size > 1000, png


def test_a_bug_in_the_loader_is_not_reported_as_a_missing_download(monkeypatch, tmp_path):
    import torchvision
    from clora_lite import benchmarks
    def offline(*a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DatasetMissing, match="split_cifar10"):
        benchmarks.split_cifar(10, 5, data_dir=tmp_path)
    def buggy(*a, **k):
        raise KeyError("a bug")
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", buggy)
    with pytest.raises(KeyError):
        benchmarks.split_cifar(10, 5, data_dir=tmp_path)


def test_a_bug_in_the_weight_mapping_is_not_reported_as_no_internet(monkeypatch):
    import torchvision
    from clora_lite.backbone import vit
    monkeypatch.setattr(torchvision.models, "vit_b_16", lambda **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(WeightsUnavailable, match="internet"):
        vit.build("vit_b16", pretrained=True)
    monkeypatch.setattr(torchvision.models, "vit_b_16", lambda **k: (_ for _ in ()).throw(KeyError("mapping bug")))
    with pytest.raises(KeyError):
        vit.build("vit_b16", pretrained=True)


def test_task_sizes_flag(tmp_path, capsys):
    assert main(RUN + ["--task-sizes", "3,1", "--tasks", "2", "--out", str(tmp_path / "a")]) == 2
    assert "task_sizes=3,1 is not allowed: they must add up to the 6 classes" in capsys.readouterr().err
    assert main(RUN + ["--task-sizes", "3,1,2", "--out", str(tmp_path / "b")]) == 0

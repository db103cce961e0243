"""Bad input on the command line: one line on stderr naming the value, exit status 2, nothing written."""
import subprocess
import sys

import pytest

from clora_lite.cli import main

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
    printed = capsys.readouterr().out
    assert "Forgetting = mean_{j<T}" in printed and "clora_no_orth" in printed


def test_bench_prints_throughput_and_flops(capsys):
    assert main(["bench", "--backbone", "vit_tiny", "--batch", "4", "--steps", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "train images/s" in out and "GFLOP" in out and "TFLOP/s" in out
    assert main(["bench", "--batch", "0"]) == 2

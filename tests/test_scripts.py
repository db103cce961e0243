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


# ---------------------------------------------------------------- the headroom study (scripts/study.py)

def _study():
    import importlib.util
    spec = importlib.util.spec_from_file_location("study", ROOT / "scripts" / "study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_row(out, bench, label, by_seed, grid, best, tune_seeds=(0,)):
    """What tune leaves in out/bench/label: tuning.json and one results.json per test seed."""
    import json
    d = out / bench / label
    for seed, acc in by_seed.items():
        (d / "test" / f"seed{seed}").mkdir(parents=True)
        cfg = {"method": label, "lr": 1e-3, "first_lr_scale": 1.0, "drift_ridge": None, **best}
        (d / "test" / f"seed{seed}" / "results.json").write_text(json.dumps(
            {"seed": seed, "last_acc": acc, "forgetting": 1.0, "val_last_acc": acc - 1, "config": cfg}))
    (d / "tuning.json").write_text(json.dumps({"grid": grid, "tune_seeds": list(tune_seeds),
                                               "best": {"settings": best}, "test": {"seeds": list(by_seed)}}))


def test_study_table_pairs_seeds_and_names_the_gap_share(tmp_path):
    """summarize: mean over the test seeds, and the gap share (m - frozen) / (joint - frozen) on the seeds m has."""
    study = _study()
    _fake_row(tmp_path, "inverted", "frozen", {1: 50.0, 2: 52.0}, {}, {})
    _fake_row(tmp_path, "inverted", "joint", {1: 80.0, 2: 90.0}, {"lr": [1e-3, 3e-3]}, {"lr": 3e-3})
    _fake_row(tmp_path, "inverted", "clora", {1: 65.0}, {"lr": [1e-3, 3e-3]}, {"lr": 1e-3})
    _fake_row(tmp_path, "inverted", "clora_warm", {1: 66.0}, {}, {})   # an ablation: borrowed, not tuned
    (tmp_path / "inverted" / "seq_lora").mkdir()   # a row still tuning: no tuning.json yet
    summary = study.summarize(tmp_path)["inverted"]
    assert summary["joint_minus_frozen"] == 85.0 - 51.0
    assert summary["methods"]["clora"]["gap_fraction"] == (65.0 - 50.0) / (80.0 - 50.0)   # seed 1 only
    assert summary["methods"]["frozen"]["seeds"] == [1, 2] and "seq_lora" not in summary["methods"]
    assert summary["chosen"] == {"joint": {"lr": 3e-3}, "clora": {"lr": 1e-3}}
    assert list(summary["methods"]) == ["frozen", "joint", "clora", "clora_warm"]   # the study's row order
    assert "| clora | lr 0.001 | 1 | 65.0 |" in (tmp_path / "table.md").read_text()


def test_study_is_a_thin_user_of_tune_and_ablations_borrow_the_choices(tmp_path, monkeypatch):
    """Each row is one tune call with its grid and the test seeds; ablations get a one-point grid built from the
    tuned rows' choices; a row only needed by an ablation is tuned without test seeds."""
    study = _study()
    calls = {}
    best = {"clora_warm_drift": {"lr": 3e-4, "first_lr_scale": 30.0, "drift_ridge": 1.0},
            "inflora": {"lr": 3e-4}, "sdlora": {"lr": 3e-3}}

    def fake_tune(base, grid, out, tune_seeds, test_seeds, log=print, workers=1):
        calls[out.name] = (base, grid, tuple(test_seeds))
        return {"best": {"settings": best.get(out.name, {})}}
    monkeypatch.setattr(study, "tune", fake_tune)
    study.run_rows("inverted", tmp_path, ["clora", "clora_warm", "sdlora_warm_drift"], (0,), (1, 2, 3))
    assert calls["clora"][1] == study.LRS and calls["clora"][2] == (1, 2, 3)
    assert calls["clora_warm_drift"][1] == study.WARM_DRIFT and calls["clora_warm_drift"][2] == ()
    assert calls["clora_warm"][1] == {} and calls["clora_warm"][0].first_lr_scale == 30.0
    assert calls["clora_warm"][0].drift_ridge is None and calls["clora_warm"][0].lr == 3e-4
    sd = calls["sdlora_warm_drift"][0]
    assert (sd.method, sd.lr, sd.first_lr_scale, sd.drift_ridge) == ("sdlora", 3e-3, 30.0, 1.0)
    assert "seq_lora" not in calls
    # the domains protocol: the two new baselines, no ablations, the smaller grid for the two options
    assert {"first_session", "ncm"} <= set(study.rows_of("domains")) and "clora_warm" not in study.rows_of("domains")
    assert study.tuned_rows("domains")["clora_warm_drift"][1] == study.WARM_DRIFT_DOMAINS


def test_study_refuses_overlapping_seeds_and_unknown_rows_before_any_work(tmp_path):
    for args, says in ((["--seeds", "1,2", "--tune-seeds", "0,2"], "share a seed"),
                       (["--benches", "domains", "--methods", "clora_warm"], "--methods clora_warm is not allowed"),
                       (["--benches", "nope"], "--benches nope is not allowed")):
        r = subprocess.run([sys.executable, str(ROOT / "scripts" / "study.py"), *args, "--out", str(tmp_path / "c")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and says in r.stderr and not (tmp_path / "c").exists(), (args, r.stderr)


def test_shipped_study_results_are_complete_and_consistent():
    """data/headroom_study.json (what the README and chapter 04 quote): every protocol of the study, 3 seeds per
    row, none of them a tuning seed, and every gap share equal to what its own means give."""
    import json
    from clora_lite import env
    study = _study()
    d = json.loads(env.shipped_file("headroom_study.json").read_text())
    assert set(d) == set(study.BENCHES)
    for bench, b in d.items():
        ms = b["methods"]
        assert set(ms) == set(study.rows_of(bench)), bench
        assert b["sizes"] == json.loads(json.dumps(study.BENCHES[bench])), bench   # the study as the script has it
        fr, jo = ms["frozen"]["test_last_mean"], ms["joint"]["test_last_mean"]
        for label, m in ms.items():
            assert m["seeds"] == [1, 2, 3] and not set(m["seeds"]) & set(b["tune_seeds"]), (bench, label)
            assert abs(m["gap_fraction"] - (m["test_last_mean"] - fr) / (jo - fr)) < 1e-9, (bench, label)
        assert b["chosen"]["clora_warm_drift"] == {k: v for k, v in ms["clora_warm_drift"]["settings"].items()
                                                   if k in b["chosen"]["clora_warm_drift"]}
    # the presets' two settings are what PRESET_NOTES says: validation's choice on fashion_1k
    from clora_lite.continual.presets import PRESET_NOTES, PRESETS
    chosen = d["fashion_1k"]["chosen"]["clora_warm_drift"]
    for name in ("clora_warm_drift", "seq_lora_warm_drift"):
        assert {k: v for k, v in PRESETS[name].items() if k != "method"} == {k: chosen[k] for k in study.OPTIONS}
    assert "chose for it on split_fashion_mnist (5 x 2 classes, 1000 images" in PRESET_NOTES["clora_warm_drift"]

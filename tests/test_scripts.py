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


def test_study_table_pairs_seeds_and_names_the_gap_share(tmp_path):
    """summarize: mean over seeds, and the gap share (m - frozen) / (joint - frozen) on the seeds m has; a row on
    a tuning seed (0 unless tune_seeds.json says otherwise) is left out."""
    import json
    study = _study()
    accs = {"frozen": {1: 50.0, 2: 52.0, 0: 10.0}, "joint": {1: 80.0, 2: 90.0}, "clora": {1: 65.0}}
    for label, by_seed in accs.items():
        for seed, acc in by_seed.items():
            d = tmp_path / "inverted" / f"seed{seed}" / label
            d.mkdir(parents=True)
            cfg = {"method": label, "lr": 1e-3, "first_lr_scale": 1.0, "drift_ridge": None}
            (d / "results.json").write_text(json.dumps({"seed": seed, "last_acc": acc, "forgetting": 1.0,
                                                        "val_last_acc": acc - 1, "config": cfg}))
    summary = study.summarize(tmp_path)["inverted"]
    assert summary["joint_minus_frozen"] == 85.0 - 51.0
    assert summary["methods"]["clora"]["gap_fraction"] == (65.0 - 50.0) / (80.0 - 50.0)   # seed 1 only
    assert summary["methods"]["frozen"]["seeds"] == [1, 2]
    assert "| clora | lr 0.001 | 1 | 65.0 |" in (tmp_path / "table.md").read_text()


def test_study_tuning_scores_each_setting_by_its_mean_validation_over_the_tuning_seeds(tmp_path, monkeypatch):
    """Seed 0 alone prefers lr 3e-3; seeds 0 and 4 together prefer 1e-3. Each seed runs in its own folder."""
    import json
    study = _study()
    val = {(0, 1e-3): 60.0, (0, 3e-3): 70.0, (4, 1e-3): 80.0, (4, 3e-3): 50.0}
    folders = []

    def fake_run(cfg, bench, out):
        folders.append(out.relative_to(tmp_path).as_posix())
        return {"val_last_acc": val[(cfg.seed, cfg.lr)]}
    monkeypatch.setattr(study, "run_one", fake_run)
    monkeypatch.setitem(study.TUNED, "clora", ("clora", [{"lr": 1e-3}, {"lr": 3e-3}]))
    assert study.tune("inverted", tmp_path / "a", ["clora"], seeds=(0,))["clora"] == {"lr": 3e-3}
    assert study.tune("inverted", tmp_path / "b", ["clora"], seeds=(0, 4))["clora"] == {"lr": 1e-3}
    assert "b/inverted/tune/clora/lr=0.001" in folders and "b/inverted/tune_seed4/clora/lr=0.001" in folders
    assert json.loads((tmp_path / "b" / "inverted" / "tune_seeds.json").read_text()) == {"clora": [0, 4]}
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "study.py"), "--seeds", "1,2", "--tune-seeds", "0,2",
                        "--out", str(tmp_path / "c")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "share a seed" in r.stderr and not (tmp_path / "c").exists()


def test_study_table_leaves_out_rows_run_with_settings_no_longer_chosen(tmp_path):
    import json
    study = _study()
    (tmp_path / "inverted").mkdir()
    (tmp_path / "inverted" / "chosen.json").write_text(json.dumps({"clora": {"lr": 1e-3}}))
    for seed, lr in ((1, 1e-3), (2, 3e-3)):   # seed 2 ran before validation changed its mind
        d = tmp_path / "inverted" / f"seed{seed}" / "clora"
        d.mkdir(parents=True)
        cfg = study.config_for("inverted", seed, "clora", {"lr": lr}).to_dict()
        (d / "results.json").write_text(json.dumps({"seed": seed, "last_acc": 60.0 + seed, "forgetting": 1.0,
                                                    "config": cfg}))
    assert study.summarize(tmp_path)["inverted"]["methods"]["clora"]["seeds"] == [1]


def test_study_ablations_borrow_the_chosen_settings():
    study = _study()
    chosen = {"clora_warm_drift": {"lr": 3e-4, "first_lr_scale": 30.0, "drift_ridge": 1.0},
              "seq_lora": {"lr": 1e-3}, "inflora": {"lr": 3e-4}, "sdlora": {"lr": 3e-3}}
    make = {label: f(chosen) for label, (_, f) in study.ABLATIONS.items()}
    assert make["clora_warm"] == {"lr": 3e-4, "first_lr_scale": 30.0}
    assert make["clora_drift"] == {"lr": 3e-4, "drift_ridge": 1.0}
    assert make["inflora_warm_drift"] == {"lr": 3e-4, "first_lr_scale": 30.0, "drift_ridge": 1.0}
    assert make["sdlora_warm_drift"]["lr"] == 3e-3


def test_shipped_study_results_are_complete_and_consistent():
    """data/headroom_study.json (what the README and chapter 04 quote): every benchmark of the study, 3 seeds
    per row, none of them a tuning seed, and every gap share equal to what its own means give."""
    import json
    from clora_lite import env
    study = _study()
    d = json.loads(env.shipped_file("headroom_study.json").read_text())
    assert set(d) == set(study.BENCHES)
    for bench, b in d.items():
        ms = b["methods"]
        assert set(ms) == set(study.ORDER), bench
        assert b["sizes"] == json.loads(json.dumps(study.BENCHES[bench])), bench   # the study as the script has it
        fr, jo = ms["frozen"]["test_last_mean"], ms["joint"]["test_last_mean"]
        for label, m in ms.items():
            assert m["seeds"] == [1, 2, 3] and not set(m["seeds"]) & set(b["tune_seeds"]), (bench, label)
            assert abs(m["gap_fraction"] - (m["test_last_mean"] - fr) / (jo - fr)) < 1e-9, (bench, label)
        assert b["chosen"]["clora_warm_drift"] == {k: v for k, v in ms["clora_warm_drift"]["settings"].items()
                                                   if k in b["chosen"]["clora_warm_drift"]}
    from clora_lite.continual.presets import PRESETS   # the --methods names carry the settings chosen on inverted
    for name in ("clora_warm_drift", "seq_lora_warm_drift"):
        assert {k: v for k, v in PRESETS[name].items() if k != "method"} == d["inverted"]["chosen"][name], name

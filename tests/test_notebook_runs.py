"""Where the chapters keep their runs: one helper for every chapter, so chapter 05 finds chapter 04's runs, on
Colab on Google Drive (a stand-in google.colab module here)."""
import sys
import types

import pytest

from clora_lite import Config, compare, notebook
from clora_lite.continual import loop

TINY = dict(benchmark="synthetic", tasks=2, classes=4, train_per_class=16, test_per_class=8, epochs=1, batch=8,
            eval_batch=64, align_steps=5, device="cpu")


@pytest.fixture
def colab(tmp_path, monkeypatch):
    """A stand-in google.colab whose drive.mount records the call; Drive lives under tmp_path."""
    mounted = []
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=lambda path: mounted.append(path))
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(notebook, "DRIVE", tmp_path / "drive")
    monkeypatch.delenv("CLORA_RUNS", raising=False)
    return mounted


def test_chapter_05_finds_chapter_04s_runs_on_colab_without_retraining(tmp_path, monkeypatch, colab):
    monkeypatch.setenv("CLORA_SCALE", "ci")
    out = notebook.runs_folder("ch04", notebook.scale())            # chapter 04
    assert out == tmp_path / "drive" / "MyDrive" / "clora_lite_runs" / "ch04_ci" and colab
    compare(["frozen", "clora"], Config(**TINY), out, progress=False, figures=False)

    def no_training(*args, **kw):
        raise AssertionError("chapter 05 retrained a run that chapter 04 had finished")
    monkeypatch.setattr(loop, "train_task", no_training)
    again = notebook.runs_folder("ch04", notebook.scale())          # chapter 05, in a later session
    assert again == out and (again / "summary.json").exists()
    results = compare(["frozen", "clora"], Config(**TINY), again, progress=False, figures=False)
    assert [r["label"] for r in results] == ["frozen", "clora"]


def test_runs_root_and_scale_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CLORA_RUNS", str(tmp_path / "mine"))
    monkeypatch.setenv("CLORA_SCALE", "cpu")
    assert notebook.runs_folder("ch04", notebook.scale()) == tmp_path / "mine" / "ch04_cpu"
    monkeypatch.setenv("CLORA_SCALE", "tpu")
    with pytest.raises(ValueError, match="CLORA_SCALE='tpu' is not allowed"):
        notebook.scale()
    monkeypatch.delenv("CLORA_RUNS")
    monkeypatch.setenv("CLORA_SCALE", "ci")   # CI without CLORA_RUNS: a fresh folder every time
    a, b = notebook.runs_folder("ch04", "ci"), notebook.runs_folder("ch04", "ci")
    assert a != b and a.is_dir() and not any(a.iterdir())

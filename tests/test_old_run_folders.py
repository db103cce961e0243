"""Run folders written by earlier versions of the kit (before the package was split into layers) still resume and
are still analysable; a run of the retired clora_inp method is refused in one line."""
import json

import pytest
import torch

from clora_lite import Config, run
from clora_lite.cli import main
from clora_lite.inside import analysis

TINY = dict(method="clora", benchmark="synthetic", tasks=2, classes=4, train_per_class=16, test_per_class=8,
            epochs=1, batch=8, eval_batch=64, align_steps=5, device="cpu")


class Stop(Exception):
    pass


def stop(message):   # the loop logs once per finished (and saved) task: stop the run after its first task
    raise Stop(message)


def make_old(folder):
    """What an earlier version wrote: the two settings of the retired clora_inp in config.json, no adapter
    scale in the snapshots."""
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "lambda_in": 100.0, "design_a": False}, indent=1))
    for f in (folder / "adapters").glob("task_*.pt"):
        snap = torch.load(f, weights_only=True)
        torch.save({k: v for k, v in snap.items() if not k.endswith(".scale")}, f)


def test_an_old_folder_resumes_to_the_same_results_and_stays_analysable(tmp_path):
    whole = run(Config(**TINY), tmp_path / "whole", progress=False, log=lambda s: None)
    old = tmp_path / "old"
    with pytest.raises(Stop):
        run(Config(**TINY), old, progress=False, log=stop)
    make_old(old)
    assert "lambda_in" in json.loads((old / "config.json").read_text())
    resumed = run(Config(**TINY), old, progress=False, log=lambda s: None)
    assert resumed["acc_matrix"] == whole["acc_matrix"]
    a, b = analysis.load_run(old), analysis.load_run(tmp_path / "whole")
    assert not any(k.endswith(".scale") for k in a.snapshots[0])   # task 1's snapshot is the old kind
    assert analysis.has_adapters(a) and a.num_tasks == 2
    for layer in a.layers:
        assert torch.equal(a.update(0, layer).dense(), b.update(0, layer).dense())


def test_a_run_of_the_retired_clora_inp_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "inp"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({**Config(**TINY).to_dict(), "lambda_in": 1000.0,
                                                 "design_a": True}))
    code = main(["run", "--benchmark", "synthetic", "--tasks", "2", "--classes", "4", "--train-per-class", "16",
                 "--test-per-class", "8", "--epochs", "1", "--batch", "8", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "clora_inp" in err, err
    assert not (out / "checkpoints").exists()   # nothing written

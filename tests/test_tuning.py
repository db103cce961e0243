"""`tune`: settings chosen on the validation split of the tuning seeds, written where `run --config` reads them."""
import csv
import json

import pytest

from clora_lite import Config, tuning
from clora_lite.cli import main
from clora_lite.continual import loop
from clora_lite.errors import ConfigError

TINY = dict(method="clora", benchmark="synthetic", tasks=2, classes=4, train_per_class=20, test_per_class=8,
            epochs=1, batch=8, align_steps=5, val_fraction=0.2, device="cpu")


def test_the_best_mean_validation_score_wins_and_ties_go_to_the_first(tmp_path, monkeypatch):
    score = {(1e-3, 0): 70.0, (1e-3, 1): 74.0, (3e-3, 0): 75.0, (3e-3, 1): 73.0, (1e-2, 0): 60.0, (1e-2, 1): 60.0}
    calls = []

    def fake_run(cfg, out, progress=False, log=None):
        calls.append(cfg)
        return {"val_last_acc": score[(cfg.lr, cfg.seed)], "task_seconds": [1.0], "last_acc": 0.0}
    monkeypatch.setattr(tuning, "run", fake_run)
    got = tuning.tune(Config(**TINY), {"lr": [1e-3, 3e-3, 1e-2]}, tmp_path, tune_seeds=(0, 1), log=lambda s: None)
    assert got["best"] == {"settings": {"lr": 3e-3}, "val_last_acc": 74.0}      # mean 74 beats 72 and 60
    assert got["runner_up"] == {"settings": {"lr": 1e-3}, "val_last_acc": 72.0}
    assert json.loads((tmp_path / "best.json").read_text())["lr"] == 3e-3
    rows = list(csv.DictReader(open(tmp_path / "trials.csv")))
    assert len(rows) == 6 and {r["seed"] for r in rows} == {"0", "1"} and rows[2]["val_last_acc"] == "75.0"
    score.update({(1e-3, 0): 74.0, (1e-3, 1): 74.0})                             # a tie at 74: the first wins
    assert tuning.tune(Config(**TINY), {"lr": [1e-3, 3e-3]}, tmp_path / "tie", (0, 1),
                       log=lambda s: None)["best"]["settings"] == {"lr": 1e-3}
    assert all(c.val_fraction == 0.2 for c in calls)                               # chosen on validation only


def test_a_rerun_skips_finished_trials_and_best_json_runs(tmp_path, monkeypatch):
    out = tmp_path / "tune"
    first = tuning.tune(Config(**TINY), {"lr": [1e-3, 3e-3]}, out, (0,), test_seeds=(1,), log=lambda s: None)

    def no_training(*a, **kw):
        raise AssertionError("a finished trial was trained again")
    monkeypatch.setattr(loop, "train_task", no_training)
    assert tuning.tune(Config(**TINY), {"lr": [1e-3, 3e-3]}, out, (0,), test_seeds=(1,), log=lambda s: None) == first
    monkeypatch.undo()
    best = json.loads((out / "best.json").read_text())
    assert main(["run", "--config", str(out / "best.json"), "--seed", "2", "--out", str(tmp_path / "again"),
                 "--quiet", "--no-figures"]) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["config"] == {**best, "seed": 2}


def test_bad_tuning_input_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="val_fraction=0 is not allowed"):
        tuning.tune(Config(**{**TINY, "val_fraction": 0.0}), {"lr": [1e-3]}, tmp_path)
    with pytest.raises(ConfigError, match="overlap the tuning seeds"):
        tuning.tune(Config(**TINY), {"lr": [1e-3]}, tmp_path, tune_seeds=(0, 1), test_seeds=(1, 2))
    for grid, bad in (("lr=fast", "grid='lr=fast'"), ("nope=1,2", "grid='nope=1,2'"), ("seed=1,2", "grid='seed=1,2'")):
        assert main(["tune", "--grid", grid, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and bad in err, err
    assert main(["tune", "--grid", "lr=1e-3", "--test-seeds", "a,b", "--out", str(tmp_path / "x")]) == 2
    assert "test_seeds='a,b' is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()   # nothing written
    assert tuning.parse_grid(["lr=1e-3,3e-3", "align_head=true,false", "rank=4"]) == \
        {"lr": [1e-3, 3e-3], "align_head": [True, False], "rank": [4]}


def test_two_workers_share_the_trials_through_optuna(tmp_path, monkeypatch):
    optuna = pytest.importorskip("optuna", reason="the engine path needs the optional Optuna: pip install optuna")

    def no_training(*a, **kw):
        raise AssertionError("the parent process trained a trial that the workers should have run")
    monkeypatch.setattr(loop, "train_task", no_training)   # spawned workers do not inherit this
    got = tuning.tune(Config(**TINY), {"lr": [1e-3, 3e-3]}, tmp_path / "two", (0, 1), workers=2, log=lambda s: None)
    study = optuna.load_study(study_name="clora_lite_tune", storage=tuning._storage(str(tmp_path / "two" / "optuna.log")))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.params["trial"] for t in done) == [0, 1, 2, 3]   # every (setting, seed) once
    assert any(a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete
               for a in done for b in done if a is not b)           # two trials ran at the same time
    monkeypatch.undo()
    one = tuning.tune(Config(**TINY), {"lr": [1e-3, 3e-3]}, tmp_path / "one", (0, 1), log=lambda s: None)
    assert one["scores"] == got["scores"] and one["best"] == got["best"]   # the engine changes where, not what

"""Helpers the test files share (not a test file: pytest collects only test_*.py)."""
import torch


class Stop(Exception):
    """Raised from a run's log to cut the run short, as a crash right after a checkpoint would."""


def stop_after(task: int):
    """A `log` for continual.loop.run that stops the run right after task `task` (1-based) is saved."""
    def log(line):
        if f" task {task}/" in line and line.endswith("saved"):
            raise Stop
    return log


def quiet(line):
    pass


def strip_timing(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in ("task_seconds", "train_images_per_second")}


def load_checkpoint(path) -> dict:
    return torch.load(path, weights_only=True)


def assert_same_checkpoints(a: dict, b: dict) -> None:
    """Two checkpoints hold the same names, the same left-out fingerprints and bit-identical saved tensors."""
    assert a["state"].keys() == b["state"].keys() and a["unchanged"] == b["unchanged"]
    for k in a["state"]:
        assert a["state"][k].dtype == b["state"][k].dtype and torch.equal(a["state"][k], b["state"][k]), k

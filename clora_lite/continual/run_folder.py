"""A run's folder: what it holds, how a run is saved into it, and how it resumes.

    config.json           the settings (a folder holding another config is refused in one line)
    results.json          written when the run has finished: accuracy matrix, metrics, sizes, timings
    checkpoints/task_XX.pt   the latest only: what training changed (adapters, head; every weight for finetune),
                          the GradScaler's state and the progress so far; enough to resume
    adapters/task_XX.pt   every task: `adapters.snapshot` of the model after training task XX, for the analysis
    stats/task_XX.pt      every task: the class statistics head alignment recorded for task XX's classes, and the
                          drift it applied to older classes (drift_ridge); written once, never rewritten
Every file is written atomically. The frozen backbone is left out of checkpoints: it is rebuilt bit for bit from
the same weights and seed (`build_learner`), and fingerprints of the left-out tensors prove it was (ViT-B/16's
frozen weights are 344 MB). The class statistics grow with the classes (ViT-B/16: a 768 x 768 covariance per
class, 236 MB for 100 classes), so they are kept per task instead of in every checkpoint: a checkpoint stays
small, and nothing large is written and then deleted (which on a Drive-mounted folder fills the trash). On resume
they are rebuilt by replaying each task's file in order, bit for bit. Running again into the same folder resumes
after the last finished task.
"""
import hashlib
import json
import pickle
from pathlib import Path

import torch

from .. import adapters as ad
from ..backbone import vit
from ..env import atomic_write, write_json
from ..errors import ConfigError
from ..methods import Learner, make_learner
from ..methods.base import CLASS_STATS
from .config import Config, without_retired

PROGRESS_KEYS = ("rows", "seen_acc", "task_il_rows", "val_rows", "val_seen_acc", "task_seconds",
                 "images_per_second")


def new_progress() -> dict:
    """The per-task lists a run fills in (accuracy rows, timings); saved in every checkpoint."""
    return {k: [] for k in PROGRESS_KEYS}


def build_learner(cfg: Config, num_classes: int) -> Learner:
    """The learner as a run starts it (on the CPU): backbone weights, adapters and head, seeded by cfg.seed.
    Building it twice gives the same tensors, which is what lets checkpoints leave the frozen weights out."""
    torch.manual_seed(cfg.seed)
    return make_learner(vit.build(cfg.backbone, pretrained=cfg.pretrained), num_classes, cfg)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)   # -0.0 and 0.0 differ, NaNs compare


def fingerprint(initial: dict, prints: dict, k: str) -> str:
    """A short sha256 of initial[k]'s bits, computed once per name (prints is the cache)."""
    if k not in prints:
        prints[k] = hashlib.sha256(_bits(initial[k]).numpy().tobytes()).hexdigest()[:16]
    return prints[k]


def changed_state(learner: Learner, initial: dict, prints: dict) -> tuple[dict, dict]:
    """(the entries of learner's state dict that differ from `initial` (its state as built, on the CPU),
    {name: fingerprint} of those that do not)."""
    state, same = {}, {}
    for k, v in learner.state_dict().items():
        if k in initial and initial[k].shape == v.shape and torch.equal(_bits(initial[k]), _bits(v)):
            same[k] = fingerprint(initial, prints, k)
        else:
            state[k] = v
    return state, same


def load_checkpoint(path: Path, device) -> dict:
    """A checkpoint, or a one-line ConfigError saying the file is damaged and what to do (nothing is deleted)."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
        missing = [k for k in ("task", "state", "rows") if k not in blob]   # a truncated dict is damaged too
        if missing:
            raise KeyError(missing[0])
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path} is damaged ({type(e).__name__}): nothing was changed; move it out of the folder "
                          "to redo the run from its start, or use another --out") from None
    return blob


def restore(learner: Learner, blob: dict, initial: dict | None = None, prints: dict | None = None,
            path: Path | str = "checkpoint") -> None:
    """Load a checkpoint into learner: its saved entries, and for the names it left out the values the learner
    was built with (initial; by default the learner's own state, right for a freshly built one; prints: their
    fingerprint cache). A one-line ConfigError when they do not fit, or when the rebuilt weights are not the
    ones the run was trained from. Old full checkpoints (no "unchanged") load as they are."""
    initial = {k: v.detach().cpu() for k, v in learner.state_dict().items()} if initial is None else initial
    prints = {} if prints is None else prints
    unchanged = {k: v for k, v in blob.get("unchanged", {}).items() if k not in CLASS_STATS}
    state = dict(blob["state"])
    stats = {k: state.pop(k) for k in CLASS_STATS if k in state}   # checkpoints of earlier versions carry them
    try:
        for k, digest in unchanged.items():
            if k not in initial or fingerprint(initial, prints, k) != digest:
                raise RuntimeError(f"{k} is not the tensor this run was trained from (other weights, or another "
                                   "torch version's initialisation)")
        learner.load_state_dict({**{k: initial[k] for k in unchanged}, **state})
        for k, v in stats.items():
            getattr(learner, k).copy_(v)
    except (RuntimeError, AttributeError) as e:
        raise ConfigError(f"{path} does not fit this run ({str(e).splitlines()[0]}): move it out of the "
                          "folder to redo the run, or use another --out") from None


def saved_config(path: Path) -> Config:
    """The Config in a run folder's config.json (also one written by an earlier version of the kit)."""
    return Config.from_saved(json.loads((Path(path) / "config.json").read_text()))


def load_learner(run_dir: Path | str, num_classes: int, device="cpu") -> Learner:
    """The learner a run folder's latest checkpoint holds (after its last finished task), in eval mode: for
    notebooks that look inside a finished run."""
    run_dir = Path(run_dir)
    ckpt = sorted((run_dir / "checkpoints").glob("task_*.pt"))[-1]
    cfg = saved_config(run_dir)
    learner = build_learner(cfg, num_classes)
    blob = load_checkpoint(ckpt, "cpu")
    restore(learner, blob, path=ckpt)
    RunFolder(run_dir, cfg).replay_class_stats(learner, blob, "cpu")
    return learner.to(device).eval()


class RunFolder:
    """One run's folder (see the module docstring). `initial` is the learner's state as built (on the CPU):
    what a checkpoint's left-out names refer to; `prints` caches their fingerprints."""

    def __init__(self, path: Path | str, cfg: Config):
        self.path, self.cfg = Path(path), cfg
        self.initial, self.prints = None, {}

    def check_config(self) -> bool:
        """True if the folder already holds this run's config.json; a one-line ConfigError if another one."""
        cfg_path = self.path / "config.json"
        if not cfg_path.exists():
            return False
        try:
            old = without_retired(json.loads(cfg_path.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{cfg_path} is not valid JSON: choose another --out") from None
        new = self.cfg.to_dict()
        if old != new:
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ConfigError(f"{self.path} holds a run with another config (differs in {', '.join(diff)}): "
                              "use another --out, or the same settings to resume")
        return True

    def finished_results(self) -> dict | None:
        """results.json of a finished run with this config, None if the run is not finished."""
        if not (self.path / "results.json").exists() or not self.check_config():
            return None
        try:
            return json.loads((self.path / "results.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{self.path / 'results.json'} is damaged: nothing was changed; move it out of the "
                              "folder to rebuild it from the last checkpoint, or use another --out") from None

    def start(self, learner: Learner) -> None:
        """Create the folder (or check it holds this config) and remember the learner as built."""
        if not self.check_config():
            try:
                (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
                (self.path / "adapters").mkdir(exist_ok=True)
                write_json(self.path / "config.json", self.cfg.to_dict())
            except OSError as e:
                raise ConfigError(f"out={str(self.path)!r} is not writable ({e.strerror})") from None
        self.initial = {k: v.detach().clone() for k, v in learner.state_dict().items()}

    def resume(self, learner: Learner, stream: list, ctx, log=print) -> tuple[dict, int]:
        """Restore learner (and ctx.scaler) from the latest checkpoint and the class statistics files; return the
        progress saved and the first task still to train (0 if none)."""
        ckpts = sorted((self.path / "checkpoints").glob("task_*.pt"))
        if not ckpts:
            return new_progress(), 0
        blob = load_checkpoint(ckpts[-1], ctx.device)
        start = blob["task"] + 1
        for t in range(start):   # replay the bookkeeping of finished tasks (adapter resets, head ranges)
            learner.begin_task(t, stream[t].labels)
        restore(learner, blob, self.initial, self.prints, ckpts[-1])
        self.replay_class_stats(learner, blob, ctx.device)
        if blob.get("scaler"):
            ctx.scaler.load_state_dict(blob["scaler"])
        log(f"{self.path}: resuming after task {start}")
        return {k: blob.get(k, []) for k in PROGRESS_KEYS}, start

    def save_class_stats(self, t: int, learner: Learner, labels: list, drift: dict | None) -> None:
        """stats/task_XX.pt: the statistics of task t's classes as recorded, and the drift applied before."""
        lo, hi = labels[0], labels[-1] + 1
        blob = {"labels": [lo, hi], "mean": learner.class_mean[lo:hi].cpu(), "cov": learner.class_cov[lo:hi].cpu(),
                "drift": None if drift is None else {k: v.cpu() if torch.is_tensor(v) else v for k, v in drift.items()}}
        (self.path / "stats").mkdir(exist_ok=True)
        atomic_write(self.path / "stats" / f"task_{t:02d}.pt", lambda p: torch.save(blob, p))

    def replay_class_stats(self, learner: Learner, blob: dict, device) -> None:
        """The class statistics as they were when checkpoint `blob` was saved, rebuilt from the per-task files in
        the order they were made. Nothing to do without head alignment, or for a checkpoint of an earlier version
        (it carries the statistics itself, and `restore` has loaded them)."""
        if not self.cfg.align_head or set(CLASS_STATS) & set(blob["state"]):
            return
        for t in range(blob["task"] + 1):
            path = self.path / "stats" / f"task_{t:02d}.pt"
            try:
                blob = torch.load(path, map_location=device, weights_only=True)
            except (OSError, RuntimeError, pickle.UnpicklingError) as e:
                raise ConfigError(f"{path} is missing or damaged ({type(e).__name__}): nothing was changed; move "
                                  "the checkpoints/ folder out to redo the run, or use another --out") from None
            if blob["drift"] is not None:
                learner.apply_drift(blob["drift"])
            lo, hi = blob["labels"]
            learner.class_mean[lo:hi] = blob["mean"]
            learner.class_cov[lo:hi] = blob["cov"]

    def save_snapshot(self, t: int, learner: Learner) -> None:
        """adapters/task_XX.pt: every adapter's tensors after training task t (before end_task)."""
        tensors = ad.snapshot(learner)
        atomic_write(self.path / "adapters" / f"task_{t:02d}.pt", lambda p: torch.save(tensors, p))

    def save_checkpoint(self, t: int, learner: Learner, progress: dict, scaler=None) -> None:
        """checkpoints/task_XX.pt: what training changed, the scaler's state and the progress; the earlier
        checkpoint is removed."""
        changed, unchanged = changed_state(learner, self.initial, self.prints)
        blob = {"task": t, "state": changed, "unchanged": unchanged, **progress,
                "scaler": scaler.state_dict() if scaler is not None else {}}
        atomic_write(self.path / "checkpoints" / f"task_{t:02d}.pt", lambda p: torch.save(blob, p))
        for old in sorted((self.path / "checkpoints").glob("task_*.pt"))[:-1]:
            old.unlink()

    def save_results(self, results: dict) -> None:
        write_json(self.path / "results.json", results)

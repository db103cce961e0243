"""A run folder stays small at ViT-B/16's width: checkpoints hold no class statistics, and nothing large is written
and then deleted (on a Drive-mounted folder deleted files fill the trash). Resume stays exact with the statistics
kept per task, drift compensation included."""
import pytest
import torch

from clora_lite import Config, run
from clora_lite.backbone import vit
from clora_lite.continual.run_folder import RunFolder, load_learner

MB = 2 ** 20


@pytest.fixture
def b16_width(monkeypatch):
    """vit_b16 at its real width (768, so a class covariance is 768 x 768) but one block and 32 px: the folder's
    sizes are those of ViT-B/16, the compute is small."""
    narrow = vit.ViTConfig(32, 16, 768, 1, 12, 768)
    monkeypatch.setattr(vit, "build", lambda name, pretrained=False: vit.ViT(narrow))


def test_checkpoints_stay_small_and_nothing_large_is_deleted(tmp_path, b16_width, monkeypatch):
    saved = []
    real_save = RunFolder.save_checkpoint

    def spy(self, t, *args, **kw):
        real_save(self, t, *args, **kw)
        saved.append((self.path / "checkpoints" / f"task_{t:02d}.pt").stat().st_size)
    monkeypatch.setattr(RunFolder, "save_checkpoint", spy)
    # two images per class: with one, every covariance is zero and a size check proves nothing
    cfg = Config(method="clora", backbone="vit_b16", pretrained=False, benchmark="synthetic", classes=100, tasks=10,
                 train_per_class=2, test_per_class=1, epochs=1, batch=4, align_steps=1, drift_ridge=1.0,
                 device="cpu", eval_batch=200)
    run(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    assert len(saved) == 10 and max(saved) <= 50 * MB, [s // MB for s in saved]
    deleted = sum(saved[:-1])   # every checkpoint but the last is replaced by the next
    assert deleted <= 1024 * MB
    stats = sorted((tmp_path / "run" / "stats").glob("task_*.pt"))
    kept = sum(f.stat().st_size for f in stats)
    assert len(stats) == 10 and kept > 100 * 768 * 768 * 4   # the covariances are on disk, once, in full
    learner = load_learner(tmp_path / "run", 100)
    assert learner.class_cov.abs().sum(dim=(1, 2)).gt(0).all()   # every class's statistics come back


def test_resume_rebuilds_the_class_statistics_bit_for_bit(tmp_path):
    cfg = Config(method="clora", benchmark="synthetic", tasks=3, classes=6, train_per_class=16, test_per_class=8,
                 epochs=1, batch=8, eval_batch=64, align_steps=5, device="cpu", drift_ridge=1.0)
    run(cfg, tmp_path / "whole", progress=False, log=lambda s: None)

    class Stop(Exception):
        pass
    logged = []

    def stop_after_two(message):
        logged.append(message)
        if len(logged) == 2:
            raise Stop
    with pytest.raises(Stop):
        run(cfg, tmp_path / "resumed", progress=False, log=stop_after_two)
    run(cfg, tmp_path / "resumed", progress=False, log=lambda s: None)
    a, b = load_learner(tmp_path / "whole", 6), load_learner(tmp_path / "resumed", 6)
    assert torch.equal(a.class_mean, b.class_mean) and torch.equal(a.class_cov, b.class_cov)
    assert torch.equal(a.head.weight, b.head.weight)   # head alignment after the resume saw the same statistics
    blob = torch.load(tmp_path / "whole" / "stats" / "task_02.pt", weights_only=True)
    assert blob["drift"] is not None and blob["drift"]["n_old"] == 4

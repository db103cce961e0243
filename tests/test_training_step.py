"""The training step waits for nothing: the kit's code reads no value back to the host inside the loop (on a GPU
every such read is a synchronisation that idles it), unless a progress bar is shown. Counted on the CPU with spies
on the reads made from clora_lite's own files (torch's optimisers keep their step counters on the host by design:
reading those is no GPU sync)."""
import sys

import pytest
import torch

from clora_lite import Config, benchmarks
from clora_lite.continual.loop import RunContext, train_task
from clora_lite.continual.run_folder import build_learner

READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__")


@pytest.mark.parametrize("method", ["clora", "sdlora"])
def test_a_training_step_reads_nothing_back(method, monkeypatch):
    cfg = Config(method=method, benchmark="synthetic", tasks=2, classes=4, train_per_class=16, test_per_class=4,
                 batch=4, device="cpu")
    bench = benchmarks.by_name("synthetic", 2, num_classes=4, train_per_class=16, test_per_class=4)
    learner = build_learner(cfg, bench.num_classes)
    x, y = bench.split(0)
    learner.begin_task(0, bench.tasks[0])
    learner.prepare_task(lambda: (learner.backbone.prepare(xb) for xb in x.split(16)))
    ctx = RunContext.for_config(cfg, progress=False)
    counts = {}
    for name in READS:
        real = getattr(torch.Tensor, name)

        def spy(self, *a, _real=real, _name=name, **kw):
            caller = sys._getframe(1).f_code.co_filename
            if "clora_lite" in caller and "tests" not in caller:
                counts[_name] = counts.get(_name, 0) + 1
            return _real(self, *a, **kw)
        monkeypatch.setattr(torch.Tensor, name, spy)

    def reads_in(epochs):
        counts.clear()
        train_task(learner, x, y, Config(**{**cfg.to_dict(), "epochs": epochs}), ctx,
                   torch.Generator().manual_seed(0))
        return dict(counts)
    one, three = reads_in(1), reads_in(3)   # 8 and 24 steps: a read per step would show as a difference
    assert one == three, (one, three)


def test_the_spy_sees_a_read_in_the_step(monkeypatch):
    """The check above can fail: with a progress bar the loop reads the loss every 10 steps."""
    import clora_lite.continual.loop as loop
    calls = []
    real = torch.Tensor.item

    def spy(self):
        if "clora_lite" in sys._getframe(1).f_code.co_filename:
            calls.append(1)
        return real(self)
    monkeypatch.setattr(torch.Tensor, "item", spy)
    cfg = Config(method="seq_lora", benchmark="synthetic", tasks=2, classes=4, train_per_class=16, test_per_class=4,
                 batch=4, epochs=3, device="cpu")
    bench = benchmarks.by_name("synthetic", 2, num_classes=4, train_per_class=16, test_per_class=4)
    learner = build_learner(cfg, bench.num_classes)
    learner.begin_task(0, bench.tasks[0])
    x, y = bench.split(0)
    loop.train_task(learner, x, y, cfg, RunContext.for_config(cfg, progress=True), torch.Generator().manual_seed(0))
    assert len(calls) == 3   # steps 0, 10 and 20 of 24

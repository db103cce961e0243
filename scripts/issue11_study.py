"""Issue 11 study driver (phase 1: works beside the unchanged train.py by wrapping it; to be replaced by the
`compare` preset once the validation split and the prepare_task hook are in train.py).

Every run trains on the training images minus a held-out validation part (val_fraction of each class), and is
evaluated on BOTH the validation part (for choosing settings) and the test set (reported, never tuned on).

    python scripts/issue11_study.py BENCH METHOD SEED [key=value ...]    # one run; appends a line to the log
BENCH: fashion | inverted. Prints one JSON line: val and test Last-Acc, forgetting, and the settings.
"""
import json
import sys
import time

import torch

from clora_lite import config, data, methods, peers, realdata, train
from clora_lite.config import Config

LOG = "/tmp/issue11_runs.jsonl"
VAL_FRACTION = 0.2
BENCHES = {
    # 5 tasks x 2 classes, 150 train images per class (30 of them validation), 200 test images per class
    "fashion": dict(benchmark="split_fashion_mnist", tasks=5, train_per_class=150, test_per_class=200,
                    epochs=10, batch=64),
    # the demo's synthetic_inverted sizes (10 tasks x 10 classes, 64 train images per class kept for training)
    "inverted": dict(benchmark="synthetic_inverted", tasks=10, classes=100, train_per_class=80, test_per_class=40,
                     epochs=3, batch=64),
}
EXTRA = ("lambda_in", "design_A")   # learner options not (yet) in Config

_val = {}


def holdout(bench: data.Benchmark, fraction: float, seed: int) -> tuple:
    """Split each class's training images: (bench with the rest for training, bench whose test set = the held-out)."""
    g = torch.Generator().manual_seed(10_000 + seed)
    keep, val = [], []
    for c in range(bench.num_classes):
        idx = torch.nonzero(bench.train_y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_val = max(1, round(fraction * len(idx)))
        val.append(idx[:n_val])
        keep.append(idx[n_val:])
    keep, val = torch.cat(keep).sort().values, torch.cat(val).sort().values
    make = lambda tx, ty: data.Benchmark(bench.name, bench.train_x[keep], bench.train_y[keep], tx, ty, bench.tasks,
                                         bench.class_names, bench.class_order, bench.hflip, dict(bench.info))
    return make(bench.test_x, bench.test_y), make(bench.train_x[val], bench.train_y[val])


def load(cfg):
    if cfg.benchmark == "split_fashion_mnist":
        bench = realdata.split_fashion_mnist(cfg.tasks, cfg.order, train_per_class=cfg.train_per_class,
                                             test_per_class=cfg.test_per_class, seed=cfg.seed)
    else:
        bench = train.load_benchmark.__wrapped__(cfg)
    bench, val = holdout(bench, VAL_FRACTION, cfg.seed)
    _val["bench"] = val
    _val["rows"] = []
    return bench


def evaluate(learner, bench, seen, device, eval_batch, amp):
    val = _val["bench"].to(device)
    _val["rows"].append(_orig_evaluate(learner, val, seen, device, eval_batch, amp))
    return _orig_evaluate(learner, bench, seen, device, eval_batch, amp)


def make_learner(backbone, num_classes, cfg):
    cls = peers.PEERS.get(cfg.method) or methods.METHODS[cfg.method]
    learner = cls(backbone, num_classes, cfg)
    if hasattr(learner, "prepare_task"):   # the hook train.py will call; wired here by wrapping begin_task
        begin = learner.begin_task

        def begin_task(t, labels):
            begin(t, labels)
            bench = _val["train_bench"]
            x, _ = bench.split(list(range(len(bench.tasks))) if cfg.method == "joint" else t, train=True)
            cv = learner.backbone.config
            learner.prepare_task(lambda: (data.prepare(xb, cv.image_size, cv.mean, cv.std) for xb in x.split(cfg.eval_batch)))
        learner.begin_task = begin_task
    return learner


def patched_load(cfg):
    bench = load(cfg)
    _val["train_bench"] = bench
    return bench


_orig_evaluate = train.evaluate
_orig_check = config.check


def check(c):
    real = c.benchmark
    if real == "split_fashion_mnist":
        c.benchmark = "split_cifar10"   # config.check does not know the new name yet; 10 classes like it
    try:
        return _orig_check(c)
    finally:
        c.benchmark = real


train.load_benchmark.__wrapped__ = train.load_benchmark
train.load_benchmark = patched_load
train.evaluate = evaluate
train.make_learner = make_learner
train.check = check
config.check = check
config.METHODS = config.METHODS + tuple(peers.PEERS)


def main(argv):
    bench_key, method, seed = argv[0], argv[1], int(argv[2])
    kw = dict(BENCHES[bench_key], method=method, seed=seed, align_head=True)
    extra = {}
    for a in argv[3:]:
        k, v = a.split("=", 1)
        v = json.loads(v) if v not in ("None",) else None
        (extra if k in EXTRA else kw)[k] = v
    cfg = Config.from_dict(kw)
    for k, v in extra.items():
        setattr(cfg, k, v)
    t0 = time.time()
    res = train.run(cfg, out=None, progress=False, log=lambda *a: None)
    val_rows = _val["rows"]
    from clora_lite import metrics
    vs = metrics.summarize([r[0] for r in val_rows], [r[1] for r in val_rows], val_rows[-1][2])
    line = {"bench": bench_key, "method": method, "seed": seed, "args": argv[3:],
            "val_last": round(vs["last_acc"], 2), "test_last": round(res["last_acc"], 2),
            "test_forgetting": None if res["forgetting"] is None else round(res["forgetting"], 2),
            "val_forgetting": None if vs["forgetting"] is None else round(vs["forgetting"], 2),
            "test_diag": [round(res["acc_matrix"][t][t], 1) for t in range(len(res["acc_matrix"]))],
            "seconds": round(time.time() - t0, 1)}
    print(json.dumps(line), flush=True)
    with open(LOG, "a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

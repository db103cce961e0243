"""Issue 11 study driver: one run, validation and test Last-Acc on one JSON line (appended to a log).

    python scripts/issue11_study.py BENCH METHOD SEED [key=value ...]     e.g.  fashion clora_inp 0 lr=0.01 design_a=true
BENCH: fashion | inverted (sizes below; every method gets the same budget). A fifth of each class's training images
is held out (val_fraction 0.2): choose settings on `val_last`, report `test_last`.
"""
import json
import sys
import time

from clora_lite import train
from clora_lite.config import Config

LOG = "/tmp/issue11_runs.jsonl"
BENCHES = {
    # 5 tasks x 2 classes, 150 train images per class (30 of them validation), 200 test images per class
    "fashion": dict(benchmark="split_fashion_mnist", tasks=5, train_per_class=150, test_per_class=200, epochs=10,
                    batch=64),
    # the demo's synthetic_inverted sizes: 10 tasks x 10 classes, 64 of 80 train images per class kept for training
    "inverted": dict(benchmark="synthetic_inverted", tasks=10, classes=100, train_per_class=80, test_per_class=40,
                     epochs=3, batch=64),
}


def main(argv):
    bench, method, seed = argv[0], argv[1], int(argv[2])
    kw = dict(BENCHES[bench], method=method, seed=seed, val_fraction=0.2)
    for a in argv[3:]:
        k, v = a.split("=", 1)
        kw[k] = json.loads(v)
    t0 = time.time()
    res = train.run(Config.from_dict(kw), out=None, progress=False, log=lambda *a: None)
    R = res["acc_matrix"]
    line = {"bench": bench, "method": method, "seed": seed, "args": argv[3:],
            "val_last": round(res["val_last_acc"], 2), "test_last": round(res["last_acc"], 2),
            "test_forgetting": None if res["forgetting"] is None else round(res["forgetting"], 2),
            "test_diag": [round(R[t][t], 1) for t in range(len(R))], "seconds": round(time.time() - t0, 1)}
    print(json.dumps(line), flush=True)
    with open(LOG, "a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

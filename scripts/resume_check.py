"""Resume across processes, as a Colab session that dies and a new one that reruns the notebook.

    python scripts/resume_check.py OUT [--device cpu|cuda|cuda:N] [--tol POINTS]

Process 1 trains C-LoRA on a tiny synthetic 2-task stream into OUT/resumed and exits after task 1 (checkpointed);
process 2 runs the same command line into the same folder and resumes; process 3 runs it into OUT/whole without a
stop. Prints PASS when the accuracy matrices agree bit for bit (the CPU) or within --tol points (CUDA, whose
non-deterministic kernels change the last bits); exit status 0 on PASS, 1 on FAIL. Step 4 of gpu_check.sh.
"""
import argparse
import json
from pathlib import Path
import subprocess
import sys

SETTINGS = dict(method="clora", benchmark="synthetic", backbone="vit_tiny", tasks=2, classes=4, train_per_class=16,
                test_per_class=8, epochs=1, batch=8, align_steps=5, amp="auto")
DIE_AFTER_ONE = """
import sys
from clora_lite import Config, continual, run
cfg = Config.from_dict(continual.config.read_json(sys.argv[1]))
def log(message):   # the loop logs once per finished, checkpointed task: die there
    sys.exit(3)
run(cfg, sys.argv[2], progress=False, log=log)
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--device", default="cpu")
    p.add_argument("--tol", type=float, default=1.0, help="accuracy points allowed on CUDA (default: 1)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "settings.json"
    cfg.write_text(json.dumps({**SETTINGS, "device": args.device}))
    cli = [sys.executable, "-m", "clora_lite", "run", "--config", str(cfg), "--quiet", "--no-figures", "--out"]
    first = subprocess.run([sys.executable, "-c", DIE_AFTER_ONE, str(cfg), str(out / "resumed")],
                           capture_output=True, text=True)
    if first.returncode != 3:
        print(f"FAIL: the first process did not die after task 1 (exit {first.returncode}): {first.stderr[-400:]}")
        return 1
    for folder in ("resumed", "whole"):
        done = subprocess.run(cli + [str(out / folder)], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"FAIL: run into {folder} exited {done.returncode}: {done.stderr[-400:]}")
            return 1
    a, b = (json.loads((out / f / "results.json").read_text())["acc_matrix"] for f in ("resumed", "whole"))
    gap = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
    exact = args.device == "cpu"
    ok = a == b if exact else gap <= args.tol
    print(f"resumed vs uninterrupted: largest difference {gap:.2f} points, "
          f"{'bit for bit' if a == b else 'not bit for bit'}: {'PASS' if ok else 'FAIL'} "
          f"({'exact, on the CPU' if exact else f'tolerance {args.tol:g} points, on CUDA'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The Colab path: a plain (non-editable) install, used from another folder, has everything a run needs."""
import subprocess
import sys

import pytest

JOB = """
import json, pathlib, sys
import clora_lite
from clora_lite import Config, env, run, vit
assert pathlib.Path(clora_lite.__file__).parent.parent == pathlib.Path(sys.argv[1]), clora_lite.__file__
weights = env.shipped_file(vit.TINY_WEIGHTS)
assert weights.is_relative_to(sys.argv[1]) and weights.exists(), weights
study = env.shipped_file("headroom_study.json")   # chapter 04 loads the headroom study's results on Colab
assert study.is_relative_to(sys.argv[1]) and json.loads(study.read_text()) == json.loads(sys.argv[2]), study
cfg = Config(method="clora", tasks=2, classes=4, train_per_class=16, test_per_class=4, epochs=1, batch=8,
             device="cpu", align_steps=5)
r = run(cfg, "out", progress=False, log=lambda s: None)
print(json.dumps({"weights": str(weights), "last_acc": r["last_acc"], "rows": len(r["acc_matrix"]),
                  "data_dir": str(env.data_dir())}))
"""


def test_a_plain_install_runs_a_tiny_job_from_another_folder(tmp_path):
    repo = __import__("pathlib").Path(__file__).resolve().parent.parent
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(repo), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(wheels)], capture_output=True, text=True)
    if build.returncode and "No module named" in build.stderr:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip().splitlines()[-1]}")
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("clora_lite-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    env = {"PYTHONPATH": str(site), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    shipped = (repo / "data" / "headroom_study.json").read_text()   # the wheel carries the repository's copy
    job = subprocess.run([sys.executable, "-c", JOB, str(site), shipped], cwd=work, env=env, capture_output=True, text=True)
    assert job.returncode == 0, job.stderr[-2000:]
    out = __import__("json").loads(job.stdout.strip().splitlines()[-1])
    assert out["weights"].startswith(str(site)) and out["rows"] == 2
    assert out["data_dir"].startswith(str(tmp_path))   # downloads would go to the user's folder, not site-packages
    saved = __import__("json").loads((work / "out" / "results.json").read_text())
    assert saved["last_acc"] == out["last_acc"] and len(saved["acc_matrix"]) == 2

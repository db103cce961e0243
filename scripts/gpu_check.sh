#!/usr/bin/env bash
# One-script GPU check of clora_lite: runs as it is on any machine with one NVIDIA GPU, no internet, within
# about 8 minutes. Usage (from the repository root, or anywhere clora_lite is installed):
#
#     bash scripts/gpu_check.sh [OUT_DIR]                  # default OUT_DIR: gpu_check_out
#     bash scripts/gpu_check.sh --cpu-dry-run [OUT_DIR]    # every step on the CPU at tiny sizes (CI runs this)
#
# Steps, each under its own `timeout` and all under one time budget (GPU_CHECK_BUDGET seconds, default 470):
#   0. device info: nvidia-smi, torch / CUDA versions, the GPU's name, memory, and the autocast dtype that
#      --amp auto picks there (bf16 from compute capability 8.0, fp16 with loss scaling on a T4 or V100)
#   1. `python -m clora_lite bench` on ViT-B/16 (random weights: bench never downloads), --amp auto, two batch
#      sizes that fit the GPU's memory (64 and 128 under 24 GiB, e.g. a 16 GB T4; else 128 and 256), eager and
#      --compile: images/s, model TFLOP/s and the share of the GPU's dense peak for that dtype (looked up by
#      the exact device name); bench says whether TorchDynamo compiled anything
#   2. a short C-LoRA `compare` (frozen, clora, joint) on the synthetic benchmark with the small shipped ViT,
#      --amp auto, on the GPU fast path (the whole set on the device as uint8, crop/flip/resize batched there)
#   3. the same compare of clora in float32: PASS when the two Last-Acc differ by <= GPU_CHECK_TOL points (3)
#   4. a resume across processes: one process is stopped after task 1 of 2, a second resumes it, a third runs
#      without a stop; PASS when the accuracy matrices agree bit for bit on the CPU, and within
#      GPU_CHECK_RESUME_TOL points (default 1) on CUDA, whose non-deterministic kernels make bits differ
#   5. the ViT-B/16 training path end to end (224 px, resize on the device) with `--no-pretrained`: the
#      torchvision weights need a download, which a machine with no internet cannot do, so its accuracy means
#      nothing; it shows the path runs
# Every step prints PASS, FAIL, TIMEOUT or SKIPPED in the summary; a failing step does not stop the next one; the
# exit status is 0 only when every step passed. Exit 2 at once when PyTorch sees no CUDA device.
#
# Everything printed also goes to OUT_DIR/gpu_check.log; run folders go to OUT_DIR/run_<date>_<time>/ (a new
# one each time: a kit run folder that exists already would resume instead of training).
#
# --cpu-dry-run (or GPU_CHECK_DEVICE=cpu): the same steps on the CPU at tiny sizes (ViT-B/16 itself in step 5),
# so that the script is known to work before a GPU is at hand; --compile stays on the command line but
# TorchDynamo is switched off (inductor's C++ build would take minutes). Its numbers mean nothing.
set -euo pipefail

DEVICE=${GPU_CHECK_DEVICE:-cuda}
if [[ ${1:-} == --cpu-dry-run ]]; then DEVICE=cpu; shift; fi
if [[ ${1:-} == -* ]]; then echo "gpu_check: option $1 is not allowed: use --cpu-dry-run, or none" >&2; exit 2; fi
OUT=${1:-gpu_check_out}
BUDGET=${GPU_CHECK_BUDGET:-470}   # seconds for everything, leaving margin inside the 8 minutes
TOL=${GPU_CHECK_TOL:-3}           # Last-Acc points autocast may differ from fp32
RESUME_TOL=${GPU_CHECK_RESUME_TOL:-1}   # accuracy points a resumed CUDA run may differ from an uninterrupted one
PY=${PYTHON:-python}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONUNBUFFERED=1         # python's output in order with ours, also through the pipe to tee

mkdir -p "$OUT"
LOG=$OUT/gpu_check.log
RUN=$OUT/run_$(date +%Y%m%d_%H%M%S)

# Sizes. The GPU sizes are the check itself; the CPU ones only exercise the same command lines.
if [[ $DEVICE == cpu ]]; then
    BENCH_BACKBONE=vit_tiny; BATCHES="2 4"; BENCH_STEPS=2
    CMP_SIZE=(--tasks 2 --classes 4 --train-per-class 4 --test-per-class 2 --epochs 1 --align-steps 2 --batch 4
              --eval-batch 8)
    B16_SIZE=(--tasks 1 --classes 2 --train-per-class 2 --test-per-class 1 --epochs 1 --align-steps 1 --batch 2
              --eval-batch 2)
    # --compile stays on the command line and model.compile() is called, but TorchDynamo is switched off:
    # inductor's C++ build of a CPU graph alone would take minutes on 2 cores.
    COMPILE_ENV=(env TORCH_COMPILE_DISABLE=1)
    CAP_BENCH=60; CAP_COMPILE=60; CAP_COMPARE=120; CAP_B16=90; CAP_RESUME=120
elif [[ $DEVICE == cuda* ]]; then
    BENCH_BACKBONE=vit_b16; BATCHES=""; BENCH_STEPS=20   # BATCHES: from the GPU's memory, in main
    CMP_SIZE=(--tasks 5 --classes 50)
    B16_SIZE=(--tasks 2 --classes 10 --train-per-class 50 --test-per-class 20 --epochs 1 --batch 64)
    COMPILE_ENV=()
    CAP_BENCH=90; CAP_COMPILE=180; CAP_COMPARE=150; CAP_B16=120; CAP_RESUME=90
else
    echo "gpu_check: GPU_CHECK_DEVICE=$DEVICE is not allowed: use cuda, cuda:N or cpu (a dry run)" >&2
    exit 2
fi

# Fail fast, in one line on stderr (and in the log), before any other output, when there is nothing to check.
if [[ $DEVICE == cuda* ]]; then
    why=$("$PY" -c '
import torch
if not torch.cuda.is_available():
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
    print(f"PyTorch {torch.__version__} ({build}) sees no CUDA device")
' 2>&1) || why="PyTorch could not be imported ($(tail -n 1 <<<"$why"))"
    if [[ -n $why ]]; then
        echo "gpu_check: no GPU to check: $why; run it on a machine with an NVIDIA GPU, or GPU_CHECK_DEVICE=cpu for a CPU dry run" \
            | tee "$LOG" >&2
        exit 2
    fi
fi

START=$SECONDS
STATUS=()   # one "name: result" line per step, printed at the end

# run_step NAME CAP CMD...: run CMD under `timeout`, the smaller of CAP and what is left of the budget;
# record PASS / FAIL (exit status) / TIMEOUT / SKIPPED, and never stop the script.
run_step() {
    local name=$1 cap=$2; shift 2
    local left=$((BUDGET - (SECONDS - START)))
    if ((left < 15)); then
        echo "== $name: SKIPPED, the ${BUDGET} s budget is spent"
        STATUS+=("$name: SKIPPED (budget)")
        return 0
    fi
    local limit=$((cap < left ? cap : left)) rc=0 t0=$SECONDS
    echo
    echo "== $name  (limit ${limit} s)"
    echo "\$ $*"
    timeout --kill-after=10 "$limit" "$@" || rc=$?
    local took=$((SECONDS - t0))
    if ((rc == 0)); then STATUS+=("$name: PASS (${took} s)")
    elif ((rc == 124 || rc == 137)); then STATUS+=("$name: TIMEOUT after ${limit} s")
    else STATUS+=("$name: FAIL (exit $rc, ${took} s)")
    fi
}

main() {
    echo "gpu_check $(date -u '+%Y-%m-%d %H:%M:%S UTC'), device $DEVICE, budget ${BUDGET} s, output in $RUN"
    if [[ $DEVICE == cpu ]]; then echo "DRY RUN on the CPU with tiny sizes: the numbers below mean nothing"; fi

    # 0. device info
    echo
    echo "== device"
    if command -v nvidia-smi >/dev/null; then
        timeout 20 nvidia-smi || echo "nvidia-smi failed"
    else
        echo "nvidia-smi: not found"
    fi
    # Dense (no 2:4 sparsity) tensor-core peaks in TFLOP/s from NVIDIA's data sheets, by exact device name, for
    # the dtype --amp auto picks there (bf16 from compute capability 8.0; fp16 on a T4 or V100). Any other GPU:
    # no peak, and bench prints no share. The share is of the model FLOPs bench counts.
    local info peak gib
    info=$(timeout 60 "$PY" - "$DEVICE" <<'EOF' || echo "- 0"
import sys
import torch
import clora_lite
from clora_lite import env
PEAKS = {   # exact torch.cuda.get_device_name -> (bf16, fp16) dense TFLOP/s
    "NVIDIA H200": (989, 989), "NVIDIA H100 80GB HBM3": (989, 989), "NVIDIA H100 PCIe": (756, 756),
    "NVIDIA H100 NVL": (835, 835), "NVIDIA H200 NVL": (835, 835),
    "NVIDIA A100-SXM4-80GB": (312, 312), "NVIDIA A100-SXM4-40GB": (312, 312), "NVIDIA A100-PCIE-40GB": (312, 312),
    "NVIDIA A100 80GB PCIe": (312, 312), "NVIDIA L4": (121, 121), "Tesla T4": (None, 65),
    "Tesla V100-SXM2-16GB": (None, 125), "Tesla V100-SXM2-32GB": (None, 125), "Tesla V100-PCIE-16GB": (None, 112),
}
dev = torch.device(sys.argv[1])
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"clora_lite {clora_lite.__version__} ({clora_lite.__file__})", file=sys.stderr)
dtype = env.amp_dtype("auto", dev)
amp = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
peak, gib = None, 0
if dev.type == "cuda":
    p = torch.cuda.get_device_properties(dev)
    name, gib = torch.cuda.get_device_name(dev), p.total_memory / 2 ** 30
    print(f"GPU {name}: compute capability {p.major}.{p.minor}, {gib:.0f} GiB, {p.multi_processor_count} SMs; "
          f"--amp auto picks {amp}", file=sys.stderr)
    pair = PEAKS.get(name)
    peak = None if pair is None else {"bf16": pair[0], "fp16": pair[1]}.get(amp)
print(f"{peak or '-'} {int(gib)}")
EOF
)
    read -r peak gib <<<"$info"
    [[ $peak == - ]] && peak=""
    if [[ $DEVICE == cuda* ]]; then
        if ((${gib:-0} < 24)); then BATCHES="64 128"; else BATCHES="128 256"; fi
    fi
    echo "dense peak used for the share: ${peak:-unknown (no share printed)} TFLOP/s; bench batches: $BATCHES"
    local peak_flag=()
    [[ -n $peak ]] && peak_flag=(--peak-tflops "$peak")

    # 1. throughput: eager first, then compiled (the first compile fills the inductor cache the second reuses)
    local b
    for b in $BATCHES; do
        run_step "bench b$b eager" "$CAP_BENCH" "$PY" -m clora_lite bench --backbone "$BENCH_BACKBONE" \
            --batch "$b" --steps "$BENCH_STEPS" --amp auto --device "$DEVICE" "${peak_flag[@]}"
    done
    for b in $BATCHES; do
        run_step "bench b$b compiled" "$CAP_COMPILE" "${COMPILE_ENV[@]}" "$PY" -m clora_lite bench --backbone "$BENCH_BACKBONE" \
            --batch "$b" --steps "$BENCH_STEPS" --amp auto --device "$DEVICE" --compile "${peak_flag[@]}"
    done

    # 2. + 3. C-LoRA on synthetic data, --amp auto and fp32, same flags otherwise (same seed 0)
    local common=(--benchmark synthetic --backbone vit_tiny "${CMP_SIZE[@]}" --device "$DEVICE" --quiet)
    run_step "compare amp auto" "$CAP_COMPARE" "$PY" -m clora_lite compare --methods frozen,clora,joint \
        "${common[@]}" --amp auto --out "$RUN/compare_auto"
    run_step "compare fp32" "$CAP_COMPARE" "$PY" -m clora_lite compare --methods clora \
        "${common[@]}" --amp off --out "$RUN/compare_fp32"
    echo
    echo "== amp auto vs fp32 accuracy (clora, Last-Acc, tolerance $TOL points)"
    local rc=0
    "$PY" - "$RUN/compare_auto/summary.json" "$RUN/compare_fp32/summary.json" "$TOL" <<'EOF' || rc=$?
import json, sys
def last_acc(path):
    try:
        rows = json.load(open(path))
    except (OSError, ValueError) as e:
        sys.exit(f"cannot read {path} ({type(e).__name__}): did its compare step fail?")
    return next(r["last_acc"] for r in rows if r["method"] == "clora")
auto, fp32, tol = last_acc(sys.argv[1]), last_acc(sys.argv[2]), float(sys.argv[3])
ok = abs(auto - fp32) <= tol
print(f"Last-Acc amp auto {auto:.1f} %, fp32 {fp32:.1f} %, difference {abs(auto - fp32):.1f} points: "
      f"{'PASS' if ok else 'FAIL'} (tolerance {tol:g})")
sys.exit(0 if ok else 1)
EOF
    if ((rc == 0)); then STATUS+=("amp auto vs fp32 accuracy: PASS"); else STATUS+=("amp auto vs fp32 accuracy: FAIL"); fi

    # 4. resume across processes (scripts/resume_check.py)
    run_step "resume across processes" "$CAP_RESUME" "$PY" "$HERE/resume_check.py" "$RUN/resume" --device "$DEVICE" \
        --tol "$RESUME_TOL"

    # 5. the ViT-B/16 training path, random weights (no internet for torchvision's)
    run_step "vit_b16 clora (--no-pretrained)" "$CAP_B16" "$PY" -m clora_lite run --method clora \
        --benchmark synthetic --backbone vit_b16 --no-pretrained "${B16_SIZE[@]}" --device "$DEVICE" \
        --amp auto --quiet --no-figures --out "$RUN/vit_b16_clora"

    echo
    echo "== summary ($((SECONDS - START)) s; device $DEVICE)"
    local line failed=0
    for line in "${STATUS[@]}"; do
        echo "  $line"
        [[ $line == *": PASS"* ]] || failed=1
    done
    echo "throughput:"
    grep -h -A3 "^bench " "$LOG" | grep -E "^bench |images/s|achieved" | sed 's/^/  /' || true
    return $failed
}

# Everything to the terminal and to the log; the script's status is main's (pipefail, PIPESTATUS).
main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"

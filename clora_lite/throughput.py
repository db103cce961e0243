"""The throughput benchmark, `python -m clora_lite bench` (not to be confused with a Benchmark, a task stream):
training throughput with synthetic inputs (no downloads), model FLOPs per
image and achieved TFLOP/s, so efficiency can be judged against the hardware's peak.

Model FLOPs of one training image, in multiples of the backbone's forward pass (2 FLOPs per multiply-add):
    frozen    1x  forward only: no gradient flows back through the frozen backbone (the head is negligible)
    seq_lora  2x  forward + activation gradients back to the first adapter; no weight gradients for W0
    clora     2x  the same (the rank-r factors add well under 1 %)
    finetune  3x  forward + activation gradients + weight gradients
"""
import time

import torch

from . import env
from .backbone import vit
from .continual.config import Config, check
from .errors import ConfigError
from .methods import make_learner

TRAIN_FLOPS_MULTIPLE = {"frozen": 1, "seq_lora": 2, "clora": 2, "finetune": 3}


def measure_throughput(backbone=None, batch=128, steps=20, method="clora", rank=8, device="auto", amp="auto",
          compile=False, peak_tflops=None, log=print) -> dict:
    dev = env.resolve_device(device)
    backbone = backbone or ("vit_b16" if dev.type == "cuda" else "vit_tiny")
    if method not in TRAIN_FLOPS_MULTIPLE:
        raise ConfigError(f"method={method!r} is not allowed for bench: use {', '.join(TRAIN_FLOPS_MULTIPLE)}")
    if batch < 1 or steps < 2:
        raise ConfigError(f"batch={batch}, steps={steps} are not allowed: use batch >= 1 and steps >= 2")
    cfg = check(Config(method=method, backbone=backbone, rank=rank, batch=batch, amp=amp, compile=compile,
                       pretrained=False, classes=100))
    learner = make_learner(vit.build(backbone), 100, cfg).to(dev)
    model = learner.backbone
    learner.begin_task(0, list(range(10)))
    if compile:
        model.compile()
    amp_dtype = env.amp_dtype(amp, dev)
    opt = torch.optim.AdamW(learner.param_groups())
    scaler = env.grad_scaler(dev, amp_dtype)
    # uint8 images of the benchmark's own size (32 px), resized on the device as in a real run
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, 10, (batch,), device=dev)
    g = torch.Generator(device=dev).manual_seed(0)

    def step():
        with env.autocast(dev, amp_dtype):
            loss = learner.loss(model.prepare(images, train=True, generator=g), labels)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(max(1, min(5, steps // 4))):   # warm-up (and compilation)
        step()
    sync()
    graphs = 0
    if compile:   # inductor may skip a graph (e.g. bf16 on a GPU without bf16 support): then the numbers are eager
        from torch._dynamo.utils import counters
        graphs = counters["stats"]["unique_graphs"]
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - t0
    ips = steps * batch / seconds
    fwd = vit.flops_per_image(model.config)
    multiple = TRAIN_FLOPS_MULTIPLE[method]
    res = {"backbone": backbone, "method": method, "device": str(dev), "batch": batch,
           "amp": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype],
           "compile": compile, "compiled": graphs > 0, "images_per_second": ips, "step_seconds": seconds / steps,
           "forward_gflops_per_image": fwd / 1e9, "train_flops_multiple": multiple,
           "train_gflops_per_image": multiple * fwd / 1e9, "achieved_tflops": ips * multiple * fwd / 1e12,
           "peak_fraction": None if not peak_tflops else ips * multiple * fwd / 1e12 / peak_tflops}
    compiled = "" if not compile else f" (TorchDynamo compiled {graphs} graphs)" if graphs else \
        " (but nothing was compiled: these numbers are eager)"
    log(f"bench {backbone} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params) method={method} "
        f"device={dev} batch={batch} amp={res['amp']} compile={compile}{compiled}")
    log(f"  {res['step_seconds'] * 1e3:.1f} ms/step   {ips:,.0f} train images/s")
    log(f"  model FLOPs/image: forward {fwd / 1e9:.3f} GFLOP; training {method} = {multiple}x forward "
        f"= {multiple * fwd / 1e9:.3f} GFLOP")
    log(f"  achieved {res['achieved_tflops']:.2f} TFLOP/s" +
        (f" = {100 * res['peak_fraction']:.1f} % of the {peak_tflops:g} TFLOP/s peak" if peak_tflops else ""))
    return res


# The downloaded benchmarks' full sizes: (classes, training images per class, test images per class). CIFAR-10 has
# 50,000 training images in 10 classes, CIFAR-100 50,000 in 100: a per-class count for both would be 10x off for one.
# The synthetic benchmarks, split_fashion_mnist (a seeded subset) and imagefolder take their sizes from the Config.
FULL_SIZES = {"split_cifar100": (100, 500, 100), "split_cifar10": (10, 5000, 1000)}


def image_counts(cfg: Config) -> dict:
    """What one pass over cfg's benchmark holds, before any training: {"task_sizes": classes per task (list of
    cfg.tasks ints), "train_per_class": training images per class after the validation split, "val_per_class",
    "test_per_class", "train_images", "test_images": totals over all classes}."""
    classes, train, test = FULL_SIZES.get(cfg.benchmark, (cfg.classes, cfg.train_per_class, cfg.test_per_class))
    sizes = list(cfg.task_sizes) if cfg.task_sizes else [classes // cfg.tasks] * cfg.tasks
    held = min(train - 1, max(1, round(cfg.val_fraction * train))) if cfg.val_fraction > 0 else 0   # as hold_out
    kept = train - held
    return {"task_sizes": sizes, "train_per_class": kept, "val_per_class": train - kept, "test_per_class": test,
            "train_images": sum(sizes) * kept, "test_images": sum(sizes) * test}


def estimate_seconds(cfg: Config, methods: list, train_images_per_second: float, figures: bool = True,
                     per_task_figure_images: int = 32) -> dict:
    """What a comparison of `methods` on cfg costs, from a measured C-LoRA training throughput on this machine
    (`measure_throughput(...)["images_per_second"]`). Counts (image_counts: each benchmark's own sizes, uneven
    task_sizes too), per method: training steps (full batches, every epoch); forward passes for evaluation after
    every task (test images of the classes seen; validation too), for the class statistics of head alignment, for
    drift compensation and for InfLoRA's two covariance passes; and, for the methods with adapters, the
    interference passes of the figures. A forward pass is taken to cost 1 / TRAIN_FLOPS_MULTIPLE of a training
    image. Head alignment's own work (a Cholesky per class, the head's steps) is left out: seconds at most.
    Returns {method: seconds, "total": seconds}."""
    from .continual.presets import preset_config
    n = image_counts(cfg)
    sizes, train_per_class, test_per_class = n["task_sizes"], n["train_per_class"], n["test_per_class"]
    T, classes = len(sizes), sum(sizes)
    forward_ips = train_images_per_second * TRAIN_FLOPS_MULTIPLE["clora"]
    out = {}
    for name in methods:
        c = preset_config(name, cfg)
        multiple = TRAIN_FLOPS_MULTIPLE.get(c.method, 2)
        steps = (classes * train_per_class // c.batch) if c.method == "joint" else \
            sum(k * train_per_class // c.batch for k in sizes)
        train = steps * c.batch * c.epochs * multiple / (2 * train_images_per_second)
        seen = [classes] if c.method == "joint" else [sum(sizes[:t + 1]) for t in range(T)]
        forward = sum(seen) * (test_per_class + n["val_per_class"])   # evaluation after every task
        forward += classes * train_per_class * (1 + (c.drift_ridge is not None) + 2 * (c.method == "inflora"))
        if figures and c.method not in ("frozen", "finetune", "joint"):
            forward += T * (T + 1) / 2 * per_task_figure_images
        out[name] = train + forward / forward_ips
    out["total"] = sum(out.values())
    return out

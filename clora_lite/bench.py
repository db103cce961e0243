"""`python -m clora_lite bench`: training throughput with synthetic inputs (no downloads), model FLOPs per
image and achieved TFLOP/s, so efficiency can be judged against the hardware's peak."""
import time

import torch

from . import data, vit
from .config import Config, ConfigError, check
from .methods import make_learner
from .train import resolve_device


def bench(backbone=None, batch=128, steps=20, method="clora", rank=8, device="auto", amp="auto",
          compile=False, peak_tflops=None, log=print) -> dict:
    dev = resolve_device(device)
    backbone = backbone or ("vit_b16" if dev.type == "cuda" else "vit_tiny")
    if method not in ("clora", "seq_lora", "frozen", "finetune"):
        raise ConfigError(f"method={method!r} is not allowed for bench: use clora, seq_lora, frozen or finetune")
    if batch < 1 or steps < 2:
        raise ConfigError(f"batch={batch}, steps={steps} are not allowed: use batch >= 1 and steps >= 2")
    cfg = Config(method=method, backbone=backbone, rank=rank, batch=batch, amp=amp, compile=compile,
                 pretrained=False, classes=100)
    check(cfg)
    model = vit.build(backbone)
    c = model.config
    learner = make_learner(model, 100, cfg).to(dev)
    learner.begin_task(0, list(range(10)))
    if compile:
        learner.backbone.compile()
    use_bf16 = amp == "bf16" or (amp == "auto" and dev.type == "cuda")
    opt = torch.optim.AdamW(learner.param_groups())
    # uint8 images of the benchmark's own size (32 px), resized on the device as in a real run
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, 10, (batch,), device=dev)
    g = torch.Generator(device=dev).manual_seed(0)

    def step():
        x = data.prepare(images, c.image_size, c.mean, c.std, train=True, generator=g)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = learner.loss(x, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    warm = max(1, min(5, steps // 4))
    for _ in range(warm):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - t0
    ips = steps * batch / seconds
    fwd = vit.flops_per_image(c)
    train_flops = 3 * fwd   # forward + backward ~ 3x forward (the usual MFU convention)
    res = {"backbone": backbone, "method": method, "device": str(dev), "batch": batch, "bf16": use_bf16,
           "compile": compile, "images_per_second": ips, "step_seconds": seconds / steps,
           "forward_gflops_per_image": fwd / 1e9, "achieved_tflops": ips * train_flops / 1e12}
    log(f"bench {backbone} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params) method={method} "
        f"device={dev} batch={batch} bf16={use_bf16} compile={compile}")
    log(f"  {res['step_seconds'] * 1e3:.1f} ms/step   {ips:,.0f} train images/s")
    log(f"  model FLOPs/image: forward {fwd / 1e9:.3f} GFLOP, train ~3x = {train_flops / 1e9:.3f} GFLOP")
    log(f"  achieved {res['achieved_tflops']:.2f} TFLOP/s" +
        (f" = {100 * res['achieved_tflops'] / peak_tflops:.1f} % of the {peak_tflops:g} TFLOP/s peak"
         if peak_tflops else ""))
    return res

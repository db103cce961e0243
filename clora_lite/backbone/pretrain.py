"""Pre-train the small ViT shipped in data/ on the synthetic pre-training classes (disjoint from every
continual class: see benchmarks.synthetic). `python -m clora_lite pretrain` regenerates data/vit_tiny_synthetic.pt."""
import math
import time

import torch
import torch.nn.functional as F

from ..benchmarks.synthetic import synthetic, synthetic_classes
from . import vit


def pretrain(steps: int = 3000, batch: int = 256, lr: float = 1e-3, per_class: int = 200, seed: int = 0,
             out=None, device: str = "cpu", log=print) -> dict:
    """AdamW with warm-up and cosine decay, label smoothing 0.1, random-resized crops. Returns the metadata
    saved with the weights (accuracy on held-out images of the pre-training classes included)."""
    torch.manual_seed(seed)
    t0 = time.time()
    pool = len(synthetic_classes(pretrain=True))
    bench = synthetic(1, pool, per_class, 20, seed=seed + 1000, pretrain=True).to(device)
    model = vit.ViT(vit.CONFIGS["vit_tiny"]).to(device)
    head = torch.nn.Linear(model.dim, pool).to(device)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    warm = max(1, steps // 20)   # 5 % warm-up, at least one step
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    g = torch.Generator(device=device).manual_seed(seed)
    for step in range(steps):
        idx = torch.randint(len(bench.train_y), (batch,), device=device, generator=g)
        x = model.prepare(bench.train_x[idx], train=True, hflip=False, generator=g)
        loss = F.cross_entropy(head(model(x)), bench.train_y[idx], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0 or step == steps - 1:
            log(f"step {step:5d}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f} s)")
    model.eval()
    with torch.no_grad():
        correct = sum((head(model(model.prepare(x))).argmax(1) == y).sum().item()
                      for x, y in zip(bench.test_x.split(1000), bench.test_y.split(1000)))
    meta = {"classes": pool, "train_per_class": per_class, "steps": steps, "batch": batch, "lr": lr, "seed": seed,
            "test_acc": 100.0 * correct / len(bench.test_y), "seconds": round(time.time() - t0, 1),
            "torch": str(torch.__version__)}
    log(f"pre-training accuracy on held-out images of the {pool} pre-training classes: {meta['test_acc']:.1f} %")
    if out is not None:
        vit.save_tiny(model.cpu(), out, meta)
    return meta

"""Backbone and benchmark numbers on this machine:
synthetic-set generation time, the small ViT's CPU training-step time at batch 128, and linear-probe accuracy
on the 100 continual classes with the shipped pre-trained weights versus random weights.
Usage: python scripts/bench_backbone.py [--per-class 100]"""
import argparse
import time

import torch
import torch.nn.functional as F

from clora_lite import vit
from clora_lite.benchmarks import synthetic


@torch.no_grad()
def features(model, x, batch=500):
    model.eval()
    return torch.cat([model(model.prepare(xb)) for xb in x.split(batch)])


def linear_probe(model, bench, epochs=100):
    """A linear classifier over all 100 classes on frozen features (full-batch Adam); test accuracy in %."""
    ftr, fte = features(model, bench.train_x), features(model, bench.test_x)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    ftr, fte = (ftr - mu) / sd, (fte - mu) / sd
    head = torch.nn.Linear(ftr.shape[1], bench.num_classes)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(epochs):
        loss = F.cross_entropy(head(ftr), bench.train_y)
        opt.zero_grad(); loss.backward(); opt.step()
    return 100.0 * (head(fte).argmax(1) == bench.test_y).float().mean().item()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-class", type=int, default=100)
    args = p.parse_args()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    full = synthetic(10, 100, 300, 50, seed=0)
    print(f"synthetic 10 tasks x 10 classes, 300 train + 50 test per class ({len(full.train_y) + len(full.test_y):,} "
          f"images): generated in {time.perf_counter() - t0:.1f} s")

    model = vit.build("vit_tiny", pretrained=True)
    model.requires_grad_(True)
    head = torch.nn.Linear(model.dim, 100)
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=1e-4)
    times = []
    for i in range(6):
        idx = torch.randint(len(full.train_y), (128,))
        t = time.perf_counter()
        x = model.prepare(full.train_x[idx], train=True, hflip=False)
        loss = F.cross_entropy(head(model(x)), full.train_y[idx])
        opt.zero_grad(); loss.backward(); opt.step()
        times.append(time.perf_counter() - t)
    step = sorted(times[1:])[len(times[1:]) // 2]
    print(f"vit_tiny ({sum(p.numel() for p in model.parameters()):,} params), full fine-tuning step at batch 128 on "
          f"{torch.get_num_threads()} CPU threads: {step * 1e3:.0f} ms ({128 / step:,.0f} images/s)")

    bench = synthetic(10, 100, args.per_class, 50, seed=0)
    pre = linear_probe(vit.build("vit_tiny", pretrained=True), bench)
    torch.manual_seed(0)
    rnd = linear_probe(vit.build("vit_tiny", pretrained=False), bench)
    print(f"linear probe on the 100 continual classes ({args.per_class} train / 50 test per class): "
          f"pre-trained {pre:.1f} %   random weights {rnd:.1f} %   (chance 1.0 %)")


if __name__ == "__main__":
    main()

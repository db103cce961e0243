"""Micro-benchmark: one ViT-B-sized layer (768 -> 768, rank 8, a batch of 128 x 197 tokens).

Prints forward+backward time of CLoRALinear relative to LoRALinear, and forward time of a merged layer
relative to a plain nn.Linear, measured in one run. Usage: python scripts/bench_layers.py [--device cuda]
"""
import argparse
import time

import torch
from torch import nn

from clora_lite import CLoRALinear, LoRALinear


def timed(fn, device, repeats):
    fn()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]  # median


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--tokens", type=int, default=128 * 197)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    torch.manual_seed(0)
    dev = args.device
    x = torch.randn(args.tokens, 768, device=dev, requires_grad=True)
    base = nn.Linear(768, 768).to(dev)
    lora = LoRALinear(base, 8).to(dev)
    clora = CLoRALinear(nn.Linear(768, 768).to(dev), 8).to(dev)
    with torch.no_grad():  # a mid-sequence state: an old route and a new one both present
        clora.R_old.normal_(); clora.R_delta.normal_()

    def fwd_bwd(m):
        def run():
            m.zero_grad(set_to_none=True); x.grad = None
            m(x).sum().backward()
        return run

    def fwd(m):
        def run():
            with torch.no_grad():
                m(x)
        return run

    t_lora = timed(fwd_bwd(lora), dev, args.repeats)
    t_clora = timed(fwd_bwd(clora), dev, args.repeats)
    plain = nn.Linear(768, 768).to(dev)
    t_plain = timed(fwd(plain), dev, args.repeats)
    t_merged = timed(fwd(clora.merged()), dev, args.repeats)
    t_unmerged = timed(fwd(clora), dev, args.repeats)
    print(f"device={dev} threads={torch.get_num_threads()} tokens={args.tokens} d=768 rank=8 (median of {args.repeats})")
    print(f"fwd+bwd  LoRALinear   {t_lora * 1e3:8.1f} ms")
    print(f"fwd+bwd  CLoRALinear  {t_clora * 1e3:8.1f} ms   ratio C-LoRA / LoRA = {t_clora / t_lora:.2f}")
    print(f"forward  nn.Linear    {t_plain * 1e3:8.1f} ms")
    print(f"forward  merged       {t_merged * 1e3:8.1f} ms   ratio merged / nn.Linear = {t_merged / t_plain:.2f}")
    print(f"forward  CLoRA unmerged {t_unmerged * 1e3:6.1f} ms   ratio unmerged / nn.Linear = {t_unmerged / t_plain:.2f}")


if __name__ == "__main__":
    main()

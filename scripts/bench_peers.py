"""Side-by-side CPU timing of one ViT-B/16 LoRA training step: the kit's C-LoRA and LoRA layers versus
Hugging Face PEFT's LoRA, on the same batch, rank and weights, in one run. Usage:
    python scripts/bench_peers.py [--batch 4 --steps 5 --threads 2 --precisions fp32,bf16]
Needs `pip install peft timm` (random weights only: no download).

What is compared. torchvision's vit_b_16 fuses q, k, v into one MultiheadAttention.in_proj_weight, which
PEFT cannot wrap as an nn.Linear, so the peer network is timm's vit_base_patch16_224 (random weights), whose
attn.qkv is one nn.Linear. The kit's ViT gets the very same weights (`ViT.from_timm`, q, k, v split out of
qkv), so both networks compute the same function (checked below). Six rows, all rank 8, alpha = 8 (scale 1),
no dropout, on 12 blocks:

  kit ViT (separate q, k, v Linear layers), targets q, k, v: 3 rank-8 adapters per block
    kit-clora   the kit's CLoRALinear (stop-gradient on, R_old set as after earlier tasks, + orthogonality loss)
    kit-lora    the kit's LoRALinear
    peft-lora   PEFT's LoRA on the same q, k, v layers           -> isolates the adapter implementation
  timm ViT (fused qkv Linear 768 -> 2304), target qkv: 1 rank-8 adapter per block on q, k, v together
    timm+peft   PEFT's LoRA on qkv: what a user would otherwise pick -> the issue's reference
    timm+clora  the kit's CLoRALinear on qkv
    timm+lora   the kit's LoRALinear on qkv

"rank 8 on q, k, v" therefore means three rank-8 updates per block on the kit's ViT (as the kit trains),
but one rank-8 update of the fused (2304 x 768) map on timm's; the fused rows hold the like-for-like match
(same layer, same rank) for the kit's adapters too. The ratios printed are each row over the PEFT row on
the same network, and the issue's headline kit-clora / timm+peft.

A step is: forward on a fixed batch of normalised images, a trainable linear head (10 classes) and
cross-entropy (+ lambda_orth * orthogonality loss for C-LoRA, as the kit trains it), backward, AdamW step.
fp32, then bf16 autocast on the CPU. Steps of all rows are interleaved (one step of each row in turn, the
order rotated every round), so load from other processes on a shared machine hits every row alike; the
median over rounds is reported.

Then inference: the kit's merge_adapters (and PEFT's merge_and_unload) must compute what the adapted model
computes (max abs difference, fp32), and a merged model must run as fast as the plain backbone.
"""
import argparse
import copy
import platform
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

import clora_lite
from clora_lite import vit

RANK = 8
ROWS = ("kit-clora", "kit-lora", "peft-lora", "timm+peft", "timm+clora", "timm+lora")
REFERENCE = {"kit-clora": "peft-lora", "kit-lora": "peft-lora", "timm+clora": "timm+peft", "timm+lora": "timm+peft"}
LAMBDA_ORTH = 100.0  # the kit's default: the C-LoRA step pays for its penalty as in a real run


def build_networks():
    """timm's ViT-B/16 with random weights and the kit's ViT with the same weights."""
    import timm
    torch.manual_seed(0)
    timm_model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
    return timm_model, vit.ViT.from_timm(timm_model)


def with_kit_adapters(model, kind, targets):
    model = copy.deepcopy(model)
    adapters = clora_lite.add_adapters(model, kind=kind, rank=RANK, targets=targets)
    if kind == "clora":
        # A mid-sequence state (task >= 2): an old route to protect, so the step pays for both routes and
        # the orthogonality penalty is not trivially zero. It costs the same as R_old = 0 in the forward.
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for a in adapters:
                a.R_old.copy_(0.1 * torch.randn(RANK, RANK, generator=g))
    return model


def with_peft(model, targets):
    from peft import LoraConfig, get_peft_model
    cfg = LoraConfig(r=RANK, lora_alpha=RANK, lora_dropout=0.0, target_modules=list(targets), bias="none")
    return get_peft_model(copy.deepcopy(model), cfg)  # freezes the base, like add_adapters


class Row:
    """One adapted network + its own head and optimizer: one training step on demand."""

    def __init__(self, name, model, dim=768, classes=10):
        self.name, self.model = name, model
        torch.manual_seed(2)
        self.head = nn.Linear(dim, classes)  # the same initial head for every row
        params = [p for p in model.parameters() if p.requires_grad] + list(self.head.parameters())
        self.trainable = sum(p.numel() for p in params) - sum(p.numel() for p in self.head.parameters())
        self.opt = torch.optim.AdamW(params, lr=1e-3)
        self.orth = any(isinstance(m, clora_lite.CLoRALinear) for m in model.modules())

    def step(self, x, y, bf16):
        self.model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(self.head(self.model(x)), y)
            if self.orth:
                loss = loss + LAMBDA_ORTH * clora_lite.orthogonality_loss(self.model)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def interleaved_medians(fns: dict, rounds: int, warmup: int) -> dict:
    """{name: median seconds}; one call of each fn per round, the starting fn rotated each round."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(t) for n, t in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=4, help="images of 224 px per step (default: 4)")
    p.add_argument("--steps", type=int, default=5, help="timed rounds per precision (default: 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default: 1)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16 (default: both)")
    p.add_argument("--rows", default=",".join(ROWS),
                   help=f"comma-separated subset of {', '.join(ROWS)} (default: all); a row's reference PEFT "
                        "row is added when missing")
    args = p.parse_args()
    # check the arguments before minutes of model building
    precisions, wanted = args.precisions.split(","), args.rows.split(",")
    for flag, given, allowed in (("--precisions", precisions, ("fp32", "bf16")), ("--rows", wanted, ROWS)):
        bad = [n for n in given if n not in allowed]
        if bad:
            print(f"{flag}: {bad[0]!r} is not allowed: use a subset of {', '.join(allowed)}", file=sys.stderr)
            sys.exit(2)
    # every ratio needs its reference, and the headline needs kit-clora and timm+peft
    wanted += [REFERENCE[n] for n in wanted if n in REFERENCE] + ["kit-clora", "timm+peft"]
    torch.set_num_threads(args.threads)
    import peft
    import timm
    t_start = time.perf_counter()
    print(f"torch {torch.__version__}, peft {peft.__version__}, timm {timm.__version__}, "
          f"{platform.processor() or platform.machine()}, {args.threads} threads; batch {args.batch} x 224 px, "
          f"rank {RANK}, median of {args.steps} interleaved steps after {args.warmup} warm-up")

    timm_model, kit_model = build_networks()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, 224, 224, generator=g)
    y = torch.randint(0, 10, (args.batch,), generator=g)
    with torch.no_grad():
        same = (timm_model.eval()(x[:1]) - kit_model.eval()(x[:1])).abs().max().item()
    print(f"same function: max |timm ViT - kit ViT| on one image = {same:.2e} (fp32)")

    build = {"kit-clora": lambda: with_kit_adapters(kit_model, "clora", ("q", "k", "v")),
             "kit-lora": lambda: with_kit_adapters(kit_model, "lora", ("q", "k", "v")),
             "peft-lora": lambda: with_peft(kit_model, ("q", "k", "v")),
             "timm+peft": lambda: with_peft(timm_model, ("qkv",)),
             "timm+clora": lambda: with_kit_adapters(timm_model, "clora", ("qkv",)),
             "timm+lora": lambda: with_kit_adapters(timm_model, "lora", ("qkv",))}
    rows = [Row(n, build[n]()) for n in ROWS if n in wanted]

    for precision in precisions:
        bf16 = precision == "bf16"
        med = interleaved_medians({r.name: (lambda r=r: r.step(x, y, bf16)) for r in rows},
                                  args.steps, args.warmup)
        print(f"\ntraining step, {precision}{' autocast' if bf16 else ''} (forward + backward + AdamW):")
        print(f"  {'row':<11} {'network / targets':<26} {'trainable':>10} {'ms/step':>9}  ratio")
        for r in rows:
            where = "kit ViT / q,k,v" if not r.name.startswith("timm") else "timm ViT / fused qkv"
            ref = REFERENCE.get(r.name)
            ratio = f"{med[r.name] / med[ref]:.3f} vs {ref}" if ref else "(reference)"
            print(f"  {r.name:<11} {where:<26} {r.trainable:>10,} {med[r.name] * 1e3:>9.1f}  {ratio}")
        print(f"  headline kit-clora / timm+peft = {med['kit-clora'] / med['timm+peft']:.3f}   (goal: <= 1.0)"
              + (f"   kit-lora / timm+peft = {med['kit-lora'] / med['timm+peft']:.3f}" if "kit-lora" in med else ""))

    # Inference: after the steps above the updates are non-zero (LoRA's B has moved, C-LoRA has R_old).
    print("\nmerged inference (fp32, eval; the difference on the first image, equality is per sample):")
    merged = {}
    with torch.no_grad():
        for r in rows:
            r.model.eval()
            adapted = r.model(x[:1])
            if "peft" in r.name:
                m = copy.deepcopy(r.model).merge_and_unload()
            else:
                m = clora_lite.merge_adapters(copy.deepcopy(r.model))
            left = sum(isinstance(mod, (clora_lite.LoRALinear, clora_lite.CLoRALinear)) for mod in m.modules())
            diff = (m(x[:1]) - adapted).abs().max().item()
            print(f"  {r.name:<11} max |merged - adapted| = {diff:.2e}  (output scale {adapted.abs().max():.2f}; "
                  f"adapter modules left: {left}; update max {max_update(r.model):.2e})")
            merged[r.name] = m.eval()
    kit_model.eval(), timm_model.eval()

    def fwd(m):
        def run():
            with torch.no_grad():
                m(x)
        return run
    kit_clora = next(r.model for r in rows if r.name == "kit-clora")
    med = interleaved_medians({"kit plain": fwd(kit_model), "kit-clora merged": fwd(merged["kit-clora"]),
                               "kit-clora adapted": fwd(kit_clora), "timm plain": fwd(timm_model),
                               "timm+peft merged": fwd(merged["timm+peft"])}, args.steps, 1)
    print(f"inference forward (fp32, batch {args.batch}), median ms:")
    for n, t in med.items():
        print(f"  {n:<18} {t * 1e3:8.1f}")
    print(f"  kit-clora merged / kit plain = {med['kit-clora merged'] / med['kit plain']:.3f}   "
          f"adapted / plain = {med['kit-clora adapted'] / med['kit plain']:.3f}   "
          f"timm+peft merged / timm plain = {med['timm+peft merged'] / med['timm plain']:.3f}")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")


def max_update(model) -> float:
    """Largest entry of any adapter's update (kit: delta_weight; PEFT: B A), to show merging was not trivial."""
    out = 0.0
    for m in model.modules():
        if isinstance(m, (clora_lite.LoRALinear, clora_lite.CLoRALinear)):
            out = max(out, m.delta_weight().abs().max().item())
        elif hasattr(m, "lora_A") and isinstance(m.lora_A, nn.ModuleDict) and "default" in m.lora_A:
            out = max(out, (m.lora_B["default"].weight @ m.lora_A["default"].weight).abs().max().item())
    return out


if __name__ == "__main__":
    main()

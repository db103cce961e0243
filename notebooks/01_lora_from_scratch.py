# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · LoRA from scratch
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/clora-lite/clora_lite/blob/main/notebooks/01_lora_from_scratch.ipynb)
#
# This is the first chapter of **clora_lite**, a small kit that teaches and implements C-LoRA
# (*Continual Low-Rank Adaptation for Pre-trained Models*, Zhang et al. 2025). Before C-LoRA we need LoRA itself.
#
# You know PyTorch; you may not know LoRA. By the end of this notebook you will have
#
# 1. **seen** that the change fine-tuning makes to a weight matrix is close to low rank, on data where
#    adapting the backbone is worth something,
# 2. **built** a LoRA layer step by step, with its zero start and its `alpha / r` scale, and measured what that
#    scale does and does not keep fixed across ranks,
# 3. **merged** it into the frozen weight and taken it out again (exact in float64, not in float32 or bfloat16),
# 4. **counted** what LoRA trains on a small ViT and on ViT-B/16,
# 5. **trained** the LoRA you built at ranks 1, 4 and 8 against full fine-tuning,
# 6. **met** the problem the rest of the kit is about: one LoRA, trained task after task, forgets.
#
# Everything runs offline on a laptop CPU. The settings cell below is the only one to change for a bigger run.

# %%
# On Colab: install the kit (elsewhere this does nothing). KIT is where the repository lives; change it for a fork.
import sys
KIT = "git+https://github.com/clora-lite/clora_lite"
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", KIT], check=True)

# %%
import copy
import math
import time

import matplotlib.pyplot as plt
import torch
from torch import nn
import torch.nn.functional as F

import clora_lite
from clora_lite import benchmarks, notebook, vit
from clora_lite.notebook import pick, setup_notebook

setup_notebook(seed=0)
torch.set_printoptions(precision=4, sci_mode=False)
device = "cuda" if torch.cuda.is_available() else "cpu"
print(notebook.banner())

# %%
# NBVAL_IGNORE_OUTPUT
print(notebook.runtime())

# %%
# Settings: the only cell to change. CLORA_SMOKE=1 (CI) shrinks the training runs.
PER_CLASS = pick(300, 64)        # training images per class (section 1 and 5: task 1 of synthetic_inverted)
STEPS = pick(300, 30)            # optimiser steps for every single-task training run in sections 1 and 5
BATCH = pick(64, 32)             # images per step in those runs
STREAM_PER_CLASS = pick(300, 16) # training images per class in the 10-task runs of section 6
STREAM_EPOCHS = pick(3, 1)       # epochs per task in those runs

# %% [markdown]
# ## 1. Fine-tuning changes a weight matrix by something close to low rank
#
# The kit ships a small pre-trained Vision Transformer (`vit_tiny`, 0.56 M parameters) trained on synthetic
# images of 240 classes. Our new task: 10 classes it has never seen.
#
# First a check that adapting the backbone is worth anything at all. The cheapest alternative is to keep the
# backbone frozen and fit only a new linear head on its features (a *linear probe*). On the kit's `synthetic`
# benchmark the frozen features are already so good that this leaves little to gain; `synthetic_inverted` shows the
# same classes as photographic negatives, a shift pre-training never saw. Fit a probe on each:

# %%
# Sections 1-5 use task 1 only: its 10 classes are the same whichever number of later classes is generated.
bench_plain = benchmarks.synthetic(num_tasks=1, num_classes=10, train_per_class=PER_CLASS, test_per_class=50, seed=0)
bench = benchmarks.synthetic(num_tasks=1, num_classes=10, train_per_class=PER_CLASS, test_per_class=50, seed=0,
                       inverted=True)
pretrained = vit.build("vit_tiny", pretrained=True)
print("task 1 classes:", bench.class_names[:10])
print("train images per task:", tuple(bench.split(0, "train")[0].shape), " test:", tuple(bench.split(0, "test")[0].shape))


@torch.no_grad()
def features(backbone, x):
    backbone.eval()
    return backbone(backbone.prepare(x))


def linear_probe(backbone, b, steps=100):
    """Fit a fresh 10-class linear head on the frozen features of task 1; return its test accuracy (%)."""
    x, y = b.split(0, "train")
    xt, yt = b.split(0, "test")
    f, ft = features(backbone, x), features(backbone, xt)
    torch.manual_seed(0)
    head = nn.Linear(f.shape[1], 10)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = F.cross_entropy(head(f), y)
        opt.zero_grad(); loss.backward(); opt.step()
    return 100.0 * (head(ft).argmax(1) == yt).float().mean().item()


print(f"frozen backbone + refit head, synthetic task 1:          {linear_probe(pretrained, bench_plain):5.1f} %")
print(f"frozen backbone + refit head, synthetic_inverted task 1: {linear_probe(pretrained, bench):5.1f} %")

# %% [markdown]
# On plain `synthetic` the frozen backbone is already near perfect: adapting it could not show much. From here
# on this chapter uses **`synthetic_inverted`**, where the frozen features leave room. Now fine-tune **all**
# weights of the backbone (and a new head) on its task 1 and look at what fine-tuning did to one weight matrix,
# $\Delta W = W_\text{after} - W_\text{before}$.

# %%
x_train, y_train = bench.split(0, "train")    # task 1: 10 classes
x_test, y_test = bench.split(0, "test")


def batches(steps, batch=BATCH, seed=0):
    """Random mini-batches of (normalised, augmented images, labels) from task 1's training set."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(y_train), (batch,), generator=g)
        yield pretrained.prepare(x_train[idx], train=True, hflip=False, generator=g), y_train[idx]


@torch.no_grad()
def accuracy(backbone, head):
    return 100.0 * (head(features(backbone, x_test)).argmax(1) == y_test).float().mean().item()


def train(backbone, head, lr, steps=STEPS):
    """AdamW on every trainable tensor of backbone (at lr) and head (at 1e-2); returns the seconds it took."""
    trainable = [p for p in backbone.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": trainable, "lr": lr}, {"params": head.parameters(), "lr": 1e-2}],
                            weight_decay=0.0)
    backbone.train()
    t0 = time.perf_counter()
    for images, labels in batches(steps):
        loss = F.cross_entropy(head(backbone(images)), labels)
        opt.zero_grad(); loss.backward(); opt.step()
    return time.perf_counter() - t0


torch.manual_seed(0)
tuned = copy.deepcopy(pretrained).requires_grad_(True)
tuned_head = nn.Linear(tuned.dim, 10)
full_seconds = train(tuned, tuned_head, lr=3e-4)
full_acc = accuracy(tuned, tuned_head)
print(f"task-1 accuracy after full fine-tuning ({STEPS} steps of {BATCH} images): {full_acc:.1f} %")

# %% [markdown]
# Now the singular values of $\Delta W$ for the query projection of block 2 (a 128 × 128 matrix). A random matrix
# of the same size and norm spreads its energy over all 128 directions; the fine-tuning update does not.

# %%
name = "blocks.2.attn.q.weight"
W0, W1 = pretrained.state_dict()[name], tuned.state_dict()[name]
dW = W1 - W0
S = torch.linalg.svdvals(dW)
S_rand = torch.linalg.svdvals(torch.randn_like(dW) * dW.norm() / dW.numel() ** 0.5)


def energy_kept(S, k):
    """Fraction of ||dW||_F^2 kept by the best rank-k approximation (Eckart-Young)."""
    return (S[:k] ** 2).sum() / (S ** 2).sum()


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
ax1.semilogy(S, ".-", label="fine-tuning update ΔW")
ax1.semilogy(S_rand, ".-", alpha=0.6, label="random matrix, same norm")
ax1.set_xlabel("index i"); ax1.set_ylabel("singular value σ_i"); ax1.set_title(f"Spectrum of ΔW ({name})")
ax1.legend()
ks = range(1, len(S) + 1)
ax2.plot(ks, [100 * energy_kept(S, k) for k in ks], label="ΔW")
ax2.plot(ks, [100 * energy_kept(S_rand, k) for k in ks], label="random")
ax2.set_xscale("log"); ax2.set_xlabel("rank k"); ax2.set_ylabel("% of ||ΔW||² kept")
ax2.set_title("Energy kept by the best rank-k approximation"); ax2.legend(); ax2.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# The energy curve says how well a rank-*k* matrix can *approximate* $\Delta W$. What matters more is whether
# the *model* still works. Build the pre-trained backbone plus the best rank-*k* approximation of every weight
# matrix's update; everything else (biases, LayerNorms, the patch and position embeddings, the class token)
# stays **pre-trained**, so rank 0 *is* the pre-trained backbone. Each truncated backbone gets its own freshly
# fitted head (the head fine-tuning trained belongs to the fully tuned backbone, not to these).

# %%
# NBVAL_IGNORE_OUTPUT
def truncate_update(k):
    """The pre-trained backbone plus a rank-k truncation of every weight matrix's fine-tuning update."""
    model = copy.deepcopy(pretrained)
    after, before = tuned.state_dict(), pretrained.state_dict()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.ndim == 2 and k > 0:      # nn.Linear weights only; all other tensors stay pre-trained
                U, s, Vh = torch.linalg.svd(after[n] - before[n], full_matrices=False)
                p.add_(U[:, :k] @ torch.diag(s[:k]) @ Vh[:k])
    return model


ranks = [0, 1, 2, 4, 8, 16, 32, 128]
acc_by_rank = [linear_probe(truncate_update(k), bench) for k in ranks]
tuned_probe = linear_probe(tuned, bench)
for k, a in zip(ranks, acc_by_rank):
    print(f"rank {k:3d}{' (pre-trained backbone)' if k == 0 else ' (every matrix update)' if k == 128 else '':23s}: {a:5.1f} %")
print(f"fully fine-tuned backbone, refit head:       {tuned_probe:5.1f} %")

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
xs = [max(k, 0.5) for k in ranks]
ax.plot(xs, acc_by_rank, "o-", label="pre-trained + rank-k update of each matrix")
ax.axhline(acc_by_rank[0], ls="--", color="gray", label="frozen backbone (rank 0)")
ax.axhline(tuned_probe, ls=":", color="black", label="fully fine-tuned backbone")
ax.set_xscale("log", base=2)
ax.set_xticks(xs, [str(k) for k in ranks])
ax.set_xlabel("rank k kept of every weight matrix's update")
ax.set_ylabel("task-1 test accuracy (%)\n(each with a refit head)")
ax.set_title("A low-rank slice of the update does most of the work")
ax.grid(alpha=0.3); ax.legend(fontsize=8, loc="lower right")
plt.show()

# %% [markdown]
# Drag the slider: the left panel is $\Delta W$, the right one its best rank-*k* approximation.

# %%
# NBVAL_IGNORE_OUTPUT
import io

import ipywidgets as widgets

U, s, Vh = torch.linalg.svd(dW)
lim = dW.abs().max().item()


def rank_k_picture(k):
    """PNG bytes: ΔW beside its best rank-k approximation."""
    approx = U[:, :k] @ torch.diag(s[:k]) @ Vh[:k]
    err = (dW - approx).norm() / dW.norm()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    for ax, M, title in zip(axes, (dW, approx), ("ΔW", f"rank-{k} approximation")):
        ax.imshow(M, cmap="RdBu", vmin=-lim, vmax=lim)
        ax.set_title(title); ax.set_xlabel("input dimension"); ax.set_ylabel("output dimension")
    fig.suptitle(f"relative error ||ΔW − ΔW_k|| / ||ΔW|| = {err:.3f}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    plt.close(fig)
    return buf.getvalue()


slider = widgets.IntSlider(value=4, min=1, max=64, step=1, description="rank k", continuous_update=False)
picture = widgets.Image(value=rank_k_picture(slider.value), format="png")
slider.observe(lambda change: setattr(picture, "value", rank_k_picture(change["new"])), names="value")
widgets.VBox([slider, picture])

# %% [markdown]
# **What we learn.** Full fine-tuning moves all $128 \times 128$ numbers of every matrix, yet a few directions of
# each update recover most of what the whole update adds over the frozen backbone. LoRA bets on this from the
# start: instead of learning $\Delta W$ and cutting it afterwards, it *parametrises* $\Delta W$ as a product of
# two thin matrices. (That fine-tuning has a low "intrinsic dimension" was measured before LoRA by Aghajanyan
# et al., 2020.)
#
# ## 2. LoRA, step by step
#
# For a frozen linear layer $y = W_0 x + b$ with $W_0 \in \mathbb{R}^{d_\text{out} \times d_\text{in}}$, LoRA learns
#
# $$ y = W_0 x + b + s \, B A x, \qquad A \in \mathbb{R}^{r \times d_\text{in}}, \; B \in \mathbb{R}^{d_\text{out} \times r}, \; s = \alpha / r .$$
#
# $A$ projects the input down to $r$ numbers, $B$ projects them back up. Only $A$ and $B$ train:
# $r (d_\text{in} + d_\text{out})$ numbers instead of $d_\text{in} d_\text{out}$.
#
# ### 2a. The smallest version that works

# %%
class MyLoRA(nn.Module):
    def __init__(self, base: nn.Linear, r: int):
        super().__init__()
        self.base = base.requires_grad_(False)                            # W0, b: frozen
        self.A = nn.Parameter(torch.randn(r, base.in_features) / base.in_features ** 0.5)
        self.B = nn.Parameter(torch.zeros(base.out_features, r))          # zero: the update starts at 0

    def forward(self, x):                                                 # x: (..., d_in)
        return self.base(x) + (x @ self.A.T) @ self.B.T                   # (..., d_out)


torch.manual_seed(0)
base = nn.Linear(16, 12)
layer = MyLoRA(base, r=2)
x = torch.randn(5, 16)
print("output shape:", tuple(layer(x).shape))
print("identical to the frozen layer at the start:", torch.equal(layer(x), base(x)))
print("trainable numbers:", sum(p.numel() for p in layer.parameters() if p.requires_grad), "of", 16 * 12 + 12)

# %% [markdown]
# ### 2b. Why B starts at zero — and why training still starts
#
# With $B = 0$ the adapted model *is* the pre-trained model at step 0: no random damage before learning begins.
# Is the layer stuck? $\partial L / \partial A = s B^\top G x^\top = 0$, but
# $\partial L / \partial B = s\, G (A x)^\top \neq 0$ ($G$ is the gradient arriving at the output), so $B$ moves first,
# and from then on both do.

# %%
layer(x).pow(2).sum().backward()
print("|dL/dA| =", layer.A.grad.abs().sum().item())
print("|dL/dB| > 0:", layer.B.grad.abs().sum().item() > 0)

# %% [markdown]
# ### 2c. The scale $s$, and what a change of rank does to the update
#
# The update is multiplied by $s = \alpha / r$. Hu et al. (2021) keep $\alpha$ fixed when they try another rank,
# hoping to retune less. How big is the update at each rank? One measurable piece: the update after **one Adam
# step** from the zero start. Adam's first step moves every entry of $B$ by about the learning rate, whatever the
# gradient's size; $BA$ then sums $r$ such terms with random signs. Three choices of $s$:

# %%
def update_norm_after_one_step(r, scale):
    torch.manual_seed(0)
    m = clora_lite.LoRALinear(nn.Linear(256, 256), rank=r, alpha=scale * r)   # LoRALinear's scale is alpha / r
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m(torch.randn(64, 256)).pow(2).mean().backward()
    opt.step()
    return m.delta_weight().norm().item()


alpha = 8
print(" rank | ||ΔW||: s = 1 (kit default) | s = 8/r | s = 8/sqrt(r)")
for r in (2, 8, 32, 128):
    print(f"{r:5d} | {update_norm_after_one_step(r, 1.0):26.4f} | {update_norm_after_one_step(r, alpha / r):7.4f} "
          f"| {update_norm_after_one_step(r, alpha / math.sqrt(r)):13.4f}")

# %% [markdown]
# Read the columns. With $s = 1$ the first update grows like $\sqrt{r}$ (random signs add up as a square root:
# ×9 from rank 2 to rank 128); a fixed $\alpha$ with $s = \alpha / r$ over-corrects and makes it *shrink* like
# $1/\sqrt{r}$; $s = \alpha / \sqrt{r}$ holds it about steady. That last choice is rank-stabilised LoRA
# (Kalajdzievski, 2023).
#
# **The kit's choice.** `LoRALinear` computes $s = \alpha / r$, the convention of the LoRA paper and of the PEFT
# library, and the kit defaults to $\alpha = r$, so $s = 1$ at every rank: the first column. So a learning rate
# tuned at one rank does **not** carry over to another in the kit: at rank 32 the first step is about twice as
# large as at rank 8. If you sweep the rank, sweep the learning rate too, or pass `alpha` to get the $s$ you want
# (`alpha = c * math.sqrt(r)` for the rsLoRA rule).
#
# **What one Adam step shows, and what it does not.** It shows how the *size of the first update* depends on $r$
# and $s$, under Adam, from the zero start. It does not show how training goes after that (the two factors
# start to move together, and Adam's per-coordinate normalisation is not a fixed learning rate), what happens
# under plain SGD (there the gradient itself scales with $s$), or which rank and scale give the best accuracy —
# that needs training runs, as in section 5 and the exercises.
#
# ### 2d. The kit's `LoRALinear`
#
# `clora_lite.LoRALinear` is `MyLoRA` with the names PEFT uses (`lora_A`, `lora_B`), the `alpha / r` scale,
# Kaiming-uniform $A$ (the rule `nn.Linear` itself uses), and `delta_weight()` / `merged()`. Same function:

# %%
kit = clora_lite.LoRALinear(nn.Linear(16, 12), rank=2, alpha=2)   # scale 1, like MyLoRA
with torch.no_grad():
    kit.base.load_state_dict(base.state_dict())
    kit.lora_A.copy_(layer.A)
    kit.lora_B.copy_(torch.randn(12, 2))
    layer.B.copy_(kit.lora_B)
print(kit)
print("same outputs as MyLoRA:", torch.allclose(kit(x), layer(x), atol=1e-6))

# %% [markdown]
# ## 3. Merge, and un-merge
#
# At inference $W_0 x + s B A x = (W_0 + s B A) x$: fold the update into the weight and the adapter costs nothing.
# Subtract it again and the frozen weight comes back — exactly? In float64, to within $10^{-12}$:

# %%
torch.manual_seed(1)
lora = clora_lite.LoRALinear(nn.Linear(64, 48).double(), rank=4, alpha=8)
with torch.no_grad():
    lora.lora_B.normal_()                       # a trained-looking adapter
x64 = torch.randn(10, 64, dtype=torch.float64)

merged = lora.merged()                          # a plain nn.Linear with W0 + s B A
print("merged is an nn.Linear:", type(merged) is nn.Linear)
print("max |merged(x) - lora(x)| < 1e-12:", (merged(x64) - lora(x64)).abs().max().item() < 1e-12)

unmerged_W = merged.weight - lora.delta_weight()
print("max |(W0 + ΔW) - ΔW - W0| < 1e-12:", (unmerged_W - lora.base.weight).abs().max().item() < 1e-12)

# %% [markdown]
# In the precisions models actually run in, merging rounds. $W_0 + \Delta W$ is stored with a 24-bit (float32)
# or 8-bit (bfloat16) mantissa, so subtracting $\Delta W$ again gives back $W_0$ only up to that rounding:

# %%
# The error's last digit depends on the CPU (rounding in ΔW = s B A), so we print a bound that holds everywhere.
for dtype, bound in ((torch.float64, 1e-15), (torch.float32, 1e-6), (torch.bfloat16, 1e-2)):
    W0_, dW_ = lora.base.weight.to(dtype), lora.delta_weight().detach().to(dtype)
    back = (W0_ + dW_) - dW_
    err = (back.double() - W0_.double()).abs().max().item()
    print(f"{str(dtype):15s} W0 recovered bit for bit: {str(torch.equal(back, W0_)):5s}   "
          f"max error {f'< {bound:.0e}' if err < bound else f'{err:.0e}'}")

# %% [markdown]
# Not bit for bit in any precision: float64 gets $W_0$ back to within $10^{-15}$ (rounding, about $10^{-16}$),
# float32 to within $10^{-6}$ (about $10^{-7}$, one unit in the last place), bfloat16 only to within $10^{-2}$
# (a few $10^{-3}$) — as large as a small trained update. So keep $W_0$ (or the adapter) if you may
# need to un-merge, and merge for deployment, not back and forth. (The kit evaluates on a merged *copy*.)
#
# ## 4. What LoRA trains, counted
#
# The kit puts adapters on the query, key and value projections of every attention block by default.
# Counts for the kit's small ViT and for ViT-B/16 (86 M parameters), at several ranks:

# %%
def lora_params(model, rank, targets):
    """r * (d_in + d_out) for every nn.Linear whose name ends in one of targets."""
    return sum(rank * (m.in_features + m.out_features) for n, m in model.named_modules()
               if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in targets)


print(f"{'backbone':<9} {'targets':<6} {'rank':>4} {'backbone params':>16} {'LoRA params':>12} {'share':>7}")
for name in ("vit_tiny", "vit_b16"):
    model = vit.build(name)
    total = sum(p.numel() for p in model.parameters())
    for targets in (("q", "v"), ("q", "k", "v")):
        for rank in (1, 4, 8, 16, 64):
            n = lora_params(model, rank, targets)
            print(f"{name:<9} {','.join(targets):<6} {rank:>4} {total:>16,} {n:>12,} {100 * n / total:6.2f}%")
check = vit.build("vit_tiny")
print("same count as add_adapters:", lora_params(check, 8, ("q", "k", "v")) ==
      sum(p.numel() for m in clora_lite.add_adapters(check, kind="lora", rank=8) for p in (m.lora_A, m.lora_B)))

# %% [markdown]
# Each adapted $d \times d$ projection costs $2 d r$ numbers: for ViT-B/16 ($d = 768$, 12 blocks, q, k, v) at
# rank 8, that is $12 \cdot 3 \cdot 2 \cdot 768 \cdot 8 = 442{,}368$, half a per cent of the backbone.
#
# ## 5. Train the LoRA you built
#
# Put `MyLoRA` on q, k and v of every block of the pre-trained backbone, train $A$, $B$ and a new head on task 1
# of `synthetic_inverted` with the same budget as the full fine-tuning of section 1 (STEPS steps of BATCH images),
# and compare: the frozen backbone with a trained head (rank 0), ranks 1, 4, 8, and full fine-tuning.

# %%
# NBVAL_IGNORE_OUTPUT
def with_my_lora(r):
    model = copy.deepcopy(pretrained).requires_grad_(False)
    for block in model.blocks:
        for proj in ("q", "k", "v"):
            setattr(block.attn, proj, MyLoRA(getattr(block.attn, proj), r))
    return model


rows = []
for r in (0, 1, 4, 8):
    torch.manual_seed(0)
    model = copy.deepcopy(pretrained).requires_grad_(False) if r == 0 else with_my_lora(r)
    head = nn.Linear(model.dim, 10)
    seconds = train(model, head, lr=3e-3)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rows.append((f"frozen backbone, head only" if r == 0 else f"MyLoRA rank {r}", accuracy(model, head), trainable, seconds))
rows.append(("full fine-tuning (section 1)", full_acc, sum(p.numel() for p in tuned.parameters()), full_seconds))
print(f"{'':30s} {'task-1 acc':>10} {'trainable (backbone)':>21} {'seconds':>8}")
for label, a, n, sec in rows:
    print(f"{label:30s} {a:9.1f}% {n:21,} {sec:8.1f}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.4))
labels = [r[0].replace("full fine-tuning (section 1)", "full fine-tuning").replace("frozen backbone, head only",
                                                                                     "frozen + head") for r in rows]
colors = ["gray"] + ["tab:blue"] * 3 + ["black"]
ax.barh(labels, [r[1] for r in rows], color=colors)
for i, r in enumerate(rows):
    ax.text(r[1] + 0.5, i, f"{r[1]:.1f} %  ({r[2]:,} trained)", va="center", fontsize=8)
ax.set_xlim(0, 130); ax.invert_yaxis()
ax.set_xlabel("task-1 test accuracy on synthetic_inverted (%)")
ax.set_title("Reference points in grey (frozen) and black (full fine-tuning)")
ax.grid(alpha=0.3, axis="x")
plt.show()

# %% [markdown]
# The frozen backbone with a trained head is the floor. In the CI-sized run stored here (30 steps of 32 images),
# rank 1 — 3,072 trained numbers in the backbone, half a per cent of it — already recovers about half of the gap
# between that floor (62 %) and rank 8 (92 %), and ranks 4–8 match or pass full fine-tuning (87 %), which trains
# all 557,184 numbers at a smaller learning rate and is not done learning after so few steps. (Seconds
# per run are printed above: LoRA still runs the full backward pass through the frozen network, so on a CPU it is
# not much faster than full fine-tuning on a model this small; the savings are in optimiser memory and in what
# has to be stored.) The learning rates (3e-3 for LoRA, 3e-4 for full fine-tuning) were set by hand, not tuned.
#
# ## 6. Looking ahead: one LoRA, task after task
#
# Continual learning hands the model tasks one at a time — here, 10 tasks of 10 new classes each — and tests it on
# *all classes seen so far*, with no task id. What happens if we simply keep training the same LoRA?
# The kit's `run()` does the whole loop. The settings used here:
#
# | setting | here | what it means |
# |---|---|---|
# | `method` | `seq_lora`, `frozen`, `joint` | one LoRA trained task after task / only the head learns / one LoRA trained on all 100 classes at once (the upper bound) |
# | `benchmark`, `tasks`, `classes` | `synthetic_inverted`, 10, 100 | 100 classes split into 10 tasks of 10 |
# | `train_per_class`, `test_per_class` | STREAM_PER_CLASS, 50 | images per class |
# | `epochs`, `batch` | STREAM_EPOCHS, 32 | passes over each task's training images, images per step |
# | `lr`, `head_lr` | 1e-3, 1e-2 (defaults) | AdamW learning rates of the adapter and of the head |
# | `rank` | 8 (default) | LoRA rank, on q, k, v (`targets`) |
# | `align_head` | True (default) | after each task, re-balance the head over all classes seen so far (chapter 03) |
#
# We measure task 1's accuracy after each of the 10 tasks.

# %%
# NBVAL_IGNORE_OUTPUT
from clora_lite import Config, run

stream = dict(benchmark="synthetic_inverted", tasks=10, classes=100, train_per_class=STREAM_PER_CLASS,
              test_per_class=pick(50, 16), epochs=STREAM_EPOCHS, batch=32, align_steps=pick(100, 50), device=device)
results = {m: run(Config(method=m, **stream), progress=False, log=lambda s: None)
           for m in ("seq_lora", "frozen", "joint")}
print("task-1 accuracy after each task, seq_lora:", [f"{row[0]:.0f}" for row in results["seq_lora"]["acc_matrix"]])
print("task-1 accuracy after each task, frozen:  ", [f"{row[0]:.0f}" for row in results["frozen"]["acc_matrix"]])
print(f"joint upper bound on task 1: {results['joint']['acc_matrix'][0][0]:.0f} %")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(range(1, 11), [row[0] for row in results["seq_lora"]["acc_matrix"]], "o-", label="one LoRA trained task after task")
ax.plot(range(1, 11), [row[0] for row in results["frozen"]["acc_matrix"]], ".--", color="gray",
        label="frozen backbone, head only")
ax.axhline(results["joint"]["acc_matrix"][0][0], ls=":", color="black", label="joint upper bound (all tasks at once)")
ax.set_xlabel("tasks learned"); ax.set_ylabel("accuracy on task 1's classes (%)")
ax.set_title("One shared LoRA forgets what it learned first"); ax.set_ylim(0, 100); ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# What to look for: right after task 1 the LoRA should be far better on it than the frozen backbone (the gain of
# section 5); then each new task rewrites the same low-rank update and task 1's classes fade, until the untouched
# pre-trained backbone remembers task 1 better. The CI-sized run stored here (16 images per class, one epoch) is
# too short to show it: all three lines sit close together, and even the joint run is under-trained. At the demo's
# size on the same benchmark (64 images per class, 3 epochs; docs/headroom_study.md, "With headroom") one shared LoRA learns each
# new task to 88.9 % where the frozen backbone gets 54.0 %, but ends at 26.1 % over all classes against frozen's
# 47.8 % (joint: 72.1 %). Unset `CLORA_SMOKE` to see the full picture. Two obvious fixes each cost something: a *new* LoRA per task (the memory grows with
# every task, and at test time we would need to know which one to use, or sum them all), or freezing the backbone
# (it forgets little, but learns nothing new: the gap to the joint line). **C-LoRA** keeps one shared pair $A, B$
# and learns a small $r \times r$ **routing matrix** between them, $B (R_\text{old} + R_\Delta) A$, so that each
# task's change is steered away from what earlier tasks use. That is chapter 02; chapter 03 measures forgetting
# properly.
#
# ## Summary
#
# - Fine-tuning updates are close to low rank: a few directions per matrix recover most of what the full update
#   adds over the frozen backbone — on data where adapting matters (`synthetic_inverted`, not `synthetic`).
# - LoRA: $y = W_0 x + b + s B A x$, $B = 0$ at the start (the pre-trained model, and $B$ still gets a gradient).
# - The kit's $s = \alpha / r$ with $\alpha = r$ is $s = 1$: the first Adam update grows like $\sqrt{r}$, so
#   retune the learning rate when you change the rank (rsLoRA's $\alpha \propto \sqrt{r}$ keeps it steady).
# - Merging folds $s B A$ into $W_0$ for free inference; un-merging costs rounding: ~1e-16 in float64, ~1e-7 in
#   float32, ~1e-3 in bfloat16.
# - A LoRA of rank 1–8 on q, k, v trains about 0.5–4 % of the small ViT and recovers most of full fine-tuning's
#   gain on one task; trained task after task, it forgets.
#
# ## Exercises
#
# **1.** A LoRA of rank $r$ on a $d_\text{out} \times d_\text{in}$ layer trains $r (d_\text{in} + d_\text{out})$ numbers.
# At what rank does LoRA train as many numbers as the full matrix of a $768 \times 768$ layer?
#
# **2.** Why must *one* of $A$, $B$ start at zero, but not both? What goes wrong if both are zero?
#
# **3.** Explore: in section 5, train `MyLoRA` rank 8 with learning rates 1e-3, 3e-3 and 1e-2, then rank 1 with
# the same three. Before you run it, predict from the table of section 2c whether the best learning rate should
# be the same at both ranks.
#
# **4.** Explore: in section 1, plot the rank-truncation curve for `bench_plain` (plain `synthetic`) instead. What
# do you expect, given the first probe of the chapter?
#
# **5.** minLoRA writes LoRA with `torch.nn.utils.parametrize`: the weight itself becomes $W_0 + s B A$ whenever it
# is read. Write that version and check it computes the same function as `LoRALinear`.
#
# ### Solutions (try first)

# %% [markdown]
# <details><summary>1. Break-even rank</summary>
#
# $r (768 + 768) = 768^2 \Rightarrow r = 384$: half the width. LoRA saves only while $r \ll d$.
# `768 * 768 // (2 * 768)` is 384.
# </details>
#
# <details><summary>2. Why one zero factor, not two</summary>
#
# One zero factor makes the update exactly 0 at the start (the pre-trained model, unchanged). If both are
# zero, both gradients vanish: $\partial L/\partial B = s G (Ax)^\top = 0$ and
# $\partial L/\partial A = s B^\top G x^\top = 0$, so nothing ever trains. Check it: set `layer.A` to zero in a
# fresh `MyLoRA`, call `backward()` and print both gradients — both are 0.
# </details>
#
# <details><summary>3. Learning rate against rank</summary>
#
# With $s = 1$ the first update of rank 8 is about $\sqrt{8} \approx 2.8$ times that of rank 1 at the same learning
# rate, so the table predicts a lower best learning rate at rank 8 (or, equivalently, that rank 1 wants a
# larger one). Whether accuracy follows depends on the budget: with few steps the larger rate tends to win at
# both ranks. Measure rather than assume; this is exactly what one Adam step cannot tell you.
# </details>
#
# <details><summary>4. The same curve on plain synthetic</summary>
#
# Replace `bench` by `bench_plain` in the fine-tuning, `truncate_update` and `linear_probe` calls (the helpers read
# `x_train`, `y_train`, `x_test`, `y_test`: set them from `bench_plain` first). Rank 0 already sits near the top,
# so the curve is almost flat: there is nothing for the update to add. The lesson of section 1 needs a task
# where the frozen features fall short.
# </details>
#
# <details><summary>5. minLoRA-style parametrization</summary>
#
# ```python
# from torch.nn.utils import parametrize
#
# class LoRAParametrization(nn.Module):
#     def __init__(self, A, B, scale):
#         super().__init__()
#         self.A, self.B, self.scale = nn.Parameter(A.clone()), nn.Parameter(B.clone()), scale
#
#     def forward(self, W0):                    # called every time layer.weight is read
#         return W0 + self.scale * self.B @ self.A
#
# ref = clora_lite.LoRALinear(nn.Linear(16, 12), rank=2, alpha=4)
# with torch.no_grad():
#     ref.lora_B.normal_()
# plain = copy.deepcopy(ref.base)
# parametrize.register_parametrization(plain, "weight", LoRAParametrization(ref.lora_A, ref.lora_B, ref.scale))
# print(torch.allclose(plain(x), ref(x), atol=1e-6))   # True
# ```
# </details>
#
# ## References
#
# - E. J. Hu, Y. Shen, P. Wallis, Z. Allen-Zhu, Y. Li, S. Wang, L. Wang, W. Chen. *LoRA: Low-Rank Adaptation of
#   Large Language Models.* arXiv:2106.09685, 2021 (ICLR 2022).
# - A. Aghajanyan, L. Zettlemoyer, S. Gupta. *Intrinsic Dimensionality Explains the Effectiveness of Language Model
#   Fine-Tuning.* arXiv:2012.13255, 2020 (ACL 2021).
# - D. Kalajdzievski. *A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA* (rsLoRA). arXiv:2312.03732, 2023.
# - *minLoRA*: LoRA for any PyTorch model in a few dozen lines, with `torch.nn.utils.parametrize`.
#   github.com/cccntu/minLoRA.
# - X. Zhang, L. Bai, X. Yang, J. Liang. *C-LoRA: Continual Low-Rank Adaptation for Pre-trained Models.*
#   arXiv:2502.17920, 2025.
# - PEFT, Hugging Face's parameter-efficient fine-tuning library (its `LoraConfig` documents the `lora_alpha / r`
#   scale and the `use_rslora` option). github.com/huggingface/peft.

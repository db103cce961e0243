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
# 1. **seen** that the change fine-tuning makes to a weight matrix is close to low rank,
# 2. **built** a LoRA layer step by step, with its `alpha / r` scaling and its zero start,
# 3. **merged** it into the frozen weight and taken it out again, exactly,
# 4. **counted** what LoRA trains on a small ViT and on ViT-B/16,
# 5. **met** the problem the rest of the kit is about: one LoRA, trained task after task, forgets.
#
# Everything runs offline on a laptop CPU in a minute. The settings cell below is the only one to change
# for a bigger run.

# %%
# On Colab: install the kit (elsewhere this does nothing). KIT is where the repository lives; change it for a fork.
import sys
KIT = "git+https://github.com/clora-lite/clora_lite"
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", KIT], check=True)

# %%
import math

import matplotlib.pyplot as plt
import torch
from torch import nn
import torch.nn.functional as F

import clora_lite
from clora_lite import data, vit
from clora_lite.settings import SMOKE, pick, setup_notebook

setup_notebook(seed=0)
torch.set_printoptions(precision=4, sci_mode=False)
device = "cuda" if torch.cuda.is_available() else "cpu"

# Settings: the only cell to change. CLORA_SMOKE=1 (CI) shrinks the training runs.
FINETUNE_STEPS = pick(300, 40)
PER_CLASS = pick(300, 64)
print("smoke mode" if SMOKE else "full mode")

# %% [markdown]
# ## 1. Fine-tuning changes a weight matrix by something close to low rank
#
# Take a small pre-trained Vision Transformer — the kit ships one in `data/`, trained on synthetic images of
# 240 classes — and fine-tune **all** of its weights on a new task it has never seen: 10 new classes.
# Then look at what fine-tuning did to one weight matrix, $\Delta W = W_\text{after} - W_\text{before}$.

# %%
bench = data.synthetic(num_tasks=10, num_classes=100, train_per_class=PER_CLASS, test_per_class=50, seed=0)
x_train, y_train = bench.split(0, "train")    # task 1: 10 classes
x_test, y_test = bench.split(0, "test")
print("task 1 classes:", bench.class_names[:10])
print("train images:", tuple(x_train.shape), " test images:", tuple(x_test.shape))

# %%
pretrained = vit.build("vit_tiny", pretrained=True)
cfg = pretrained.config


def batches(x, y, steps, batch=64, seed=0):
    """Random mini-batches of (normalised, augmented images, labels)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(y), (batch,), generator=g)
        yield pretrained.prepare(x[idx], train=True, hflip=False, generator=g), y[idx]


@torch.no_grad()
def accuracy(backbone, head):
    backbone.eval()
    pred = head(backbone(backbone.prepare(x_test))).argmax(1)
    return 100.0 * (pred == y_test).float().mean().item()


def fine_tune(backbone, head, params, steps, lr):
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    backbone.train()
    for images, labels in batches(x_train, y_train, steps):
        loss = F.cross_entropy(head(backbone(images)), labels)
        opt.zero_grad(); loss.backward(); opt.step()
    return loss.item()

# %%
# NBVAL_IGNORE_OUTPUT
import copy

torch.manual_seed(0)
tuned = copy.deepcopy(pretrained)
tuned.requires_grad_(True)
head = nn.Linear(tuned.dim, 10)
fine_tune(tuned, head, list(tuned.parameters()) + list(head.parameters()), FINETUNE_STEPS, lr=3e-4)
print(f"task-1 accuracy after full fine-tuning: {accuracy(tuned, head):.1f} %")

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
# the *model* still works: replace every layer's update by its best rank-*k* approximation and measure accuracy.

# %%
# NBVAL_IGNORE_OUTPUT
def truncate_update(k):
    """The pre-trained backbone plus a rank-k truncation of every weight matrix's fine-tuning update."""
    model = copy.deepcopy(pretrained)
    sd, before = tuned.state_dict(), pretrained.state_dict()
    with torch.no_grad():
        for n, p in model.named_parameters():
            d = sd[n] - before[n]
            if d.ndim == 2:      # weight matrices: keep the top-k singular directions
                U, s, Vh = torch.linalg.svd(d, full_matrices=False)
                d = U[:, :k] @ torch.diag(s[:k]) @ Vh[:k]
            p.add_(d)            # vectors (biases, norms) keep their full update
    return model


ranks = [0, 1, 2, 4, 8, 16, 32, 128]
acc_by_rank = [accuracy(truncate_update(k), head) for k in ranks]
for k, a in zip(ranks, acc_by_rank):
    print(f"rank {k:3d}: {a:5.1f} %")

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.plot([max(k, 0.5) for k in ranks], acc_by_rank, "o-")
ax.set_xscale("log", base=2)
ax.set_xticks([max(k, 0.5) for k in ranks], [str(k) for k in ranks])
ax.set_xlabel("rank k of every layer's update (0 = pre-trained weights)")
ax.set_ylabel("task-1 test accuracy (%)")
ax.set_title("A low-rank slice of the update does most of the work")
ax.grid(alpha=0.3)
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


slider = widgets.IntSlider(value=4, min=1, max=64, step=1, description="rank k")
picture = widgets.Image(value=rank_k_picture(slider.value), format="png")
slider.observe(lambda change: setattr(picture, "value", rank_k_picture(change["new"])), names="value")
widgets.VBox([slider, picture])

# %% [markdown]
# **What we learn.** Full fine-tuning moves all $128 \times 128$ numbers of this matrix, yet the model keeps most
# of its new skill when each update is cut to a handful of directions. LoRA bets on this from the start: instead
# of learning $\Delta W$ and cutting it afterwards, it *parametrises* $\Delta W$ as a product of two thin matrices.
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
# ### 2c. The `alpha / r` scale
#
# The update is multiplied by $s = \alpha / r$. The idea (Hu et al., 2021): when you try another rank $r$,
# keep $\alpha$ and the learning rate as they were, and the update should keep about the same size.
# Does it? Adam's first step moves every entry of $B$ by about the learning rate, whatever $r$ is; $BA$ then
# sums $r$ such terms with random signs. Measure the update after one Adam step from the zero start, for three
# choices of $s$:

# %%
def update_norm_after_one_step(r, scale):
    torch.manual_seed(0)
    m = clora_lite.LoRALinear(nn.Linear(256, 256), rank=r, alpha=scale * r)   # LoRALinear's scale is alpha / r
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m(torch.randn(64, 256)).pow(2).mean().backward()
    opt.step()
    return m.delta_weight().norm().item()


alpha = 8
print(" rank | ||ΔW||, s = 1 | s = alpha/r | s = alpha/sqrt(r)")
for r in (2, 8, 32, 128):
    print(f"{r:5d} | {update_norm_after_one_step(r, 1.0):12.4f} | {update_norm_after_one_step(r, alpha / r):11.4f} "
          f"| {update_norm_after_one_step(r, alpha / math.sqrt(r)):10.4f}")

# %% [markdown]
# With $s = 1$ the first update grows like $\sqrt{r}$ (random signs add up as a square root); $\alpha / r$
# over-corrects and makes it *shrink* like $1/\sqrt{r}$; $\alpha / \sqrt{r}$ holds it steady. That last choice is
# rank-stabilised LoRA (Kalajdzievski, 2023). The kit keeps the original $\alpha / r$ (the convention of LoRA,
# PEFT and the C-LoRA paper) and defaults to $\alpha = r$, i.e. $s = 1$: if you sweep the rank, sweep the learning
# rate too, or pass `alpha` so that $s$ matches what you want.
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
# ## 3. Merge, and un-merge, exactly
#
# At inference $W_0 x + s B A x = (W_0 + s B A) x$: fold the update into the weight and the adapter costs nothing.
# Subtract it again and the frozen weight comes back. In float64 both are exact to rounding:

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
# ## 4. What LoRA trains, counted
#
# The kit puts adapters on the query, key and value projections of every attention block by default.
# Counts for the kit's small ViT and for ViT-B/16 (86 M parameters), at several ranks:

# %%
def count(name, rank, targets):
    model = vit.build(name)
    total = sum(p.numel() for p in model.parameters())
    clora_lite.add_adapters(model, kind="lora", rank=rank, targets=targets)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


print(f"{'backbone':<9} {'targets':<6} {'rank':>4} {'backbone params':>16} {'LoRA params':>12} {'share':>7}")
for name in ("vit_tiny", "vit_b16"):
    for targets in (("q", "v"), ("q", "k", "v")):
        for rank in (1, 4, 8, 16, 64):
            total, trainable = count(name, rank, targets)
            print(f"{name:<9} {','.join(targets):<6} {rank:>4} {total:>16,} {trainable:>12,} {100 * trainable / total:6.2f}%")

# %% [markdown]
# Each adapted $d \times d$ projection costs $2 d r$ numbers: for ViT-B/16 ($d = 768$, 12 blocks, q, k, v) at
# rank 8, that is $12 \cdot 3 \cdot 2 \cdot 768 \cdot 8 = 442{,}368$, half a per cent of the backbone.
#
# ## 5. Looking ahead: one LoRA, task after task
#
# Continual learning hands the model tasks one at a time — here, 10 new classes at a time — and tests it on
# *all classes seen so far*, with no task id. What happens if we simply keep training the same LoRA?
# We train one LoRA on tasks 1 and 2 in turn and measure task 1's accuracy after each.

# %%
# NBVAL_IGNORE_OUTPUT
from clora_lite.config import Config
from clora_lite.train import run

stream = dict(benchmark="synthetic", tasks=10, classes=100, train_per_class=PER_CLASS, test_per_class=50,
              epochs=pick(3, 2), batch=64, device=device, align_head=False, lr=3e-3)
seq = run(Config(method="seq_lora", **stream), progress=False, log=lambda s: None)
frozen = run(Config(method="frozen", **stream), progress=False, log=lambda s: None)
print("task-1 accuracy after each task (seq_lora):", [f"{row[0]:.0f}" for row in seq["acc_matrix"]])

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
for r, label in ((seq, "one LoRA trained task after task"), (frozen, "frozen backbone, head only")):
    ax.plot(range(1, 11), [row[0] for row in r["acc_matrix"]], "o-", label=label)
ax.set_xlabel("tasks learned"); ax.set_ylabel("accuracy on task 1's classes (%)")
ax.set_title("One shared LoRA forgets what it learned first"); ax.set_ylim(0, 100); ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# The single LoRA keeps rewriting the same low-rank update for each new task, and the classes of task 1 fade —
# so badly that the untouched pre-trained backbone (orange) remembers task 1 far better. Two obvious fixes each
# cost something: a *new* LoRA per task (the memory grows with every task, and at test time we would need to
# know which one to use), or freezing the backbone (it forgets little, but learns nothing new about the new
# classes: section 1 showed how much adaptation is worth on a single task).
# **C-LoRA** keeps one shared pair $A, B$ and learns a small $r \times r$ **routing matrix** between them,
# $B (R_\text{old} + R_\Delta) A$, so that each task's change is steered away from what earlier tasks use.
# That is notebook 02.
#
# ## Exercises
#
# **1.** A LoRA of rank $r$ on a $d_\text{out} \times d_\text{in}$ layer trains $r (d_\text{in} + d_\text{out})$ numbers.
# At what rank does LoRA train as many numbers as the full matrix of a $768 \times 768$ layer?
#
# **2.** Why must *one* of $A$, $B$ start at zero, but not both? What goes wrong if both are zero?
#
# **3.** minLoRA writes LoRA with `torch.nn.utils.parametrize`: the weight itself becomes $W_0 + s B A$ whenever it
# is read. Write that version and check it computes the same function as `LoRALinear`.
#
# ### Solutions

# %% [markdown]
# **1.** $r (768 + 768) = 768^2 \Rightarrow r = 384$: half the width. LoRA saves only while $r \ll d$.

# %%
d = 768
print("break-even rank:", d * d // (2 * d))

# %% [markdown]
# **2.** One zero factor makes the update exactly 0 at the start (the pre-trained model, unchanged). If both are
# zero, both gradients vanish: $\partial L/\partial B = s G (Ax)^\top = 0$ and $\partial L/\partial A = s B^\top G x^\top = 0$,
# so nothing ever trains:

# %%
stuck = MyLoRA(nn.Linear(16, 12), r=2)
with torch.no_grad():
    stuck.A.zero_()
stuck(x).pow(2).sum().backward()
print("gradients with A = B = 0:", stuck.A.grad.abs().sum().item(), stuck.B.grad.abs().sum().item())

# %% [markdown]
# **3.** A parametrization is a module whose `forward` maps the stored weight to the weight the layer uses.

# %%
from torch.nn.utils import parametrize


class LoRAParametrization(nn.Module):
    def __init__(self, A, B, scale):
        super().__init__()
        self.A, self.B, self.scale = nn.Parameter(A.clone()), nn.Parameter(B.clone()), scale

    def forward(self, W0):                          # called every time layer.weight is read
        return W0 + self.scale * self.B @ self.A


ref = clora_lite.LoRALinear(nn.Linear(16, 12), rank=2, alpha=4)
with torch.no_grad():
    ref.lora_B.normal_()
plain = copy.deepcopy(ref.base)
parametrize.register_parametrization(plain, "weight", LoRAParametrization(ref.lora_A, ref.lora_B, ref.scale))
print("parametrize version == LoRALinear:", torch.allclose(plain(x), ref(x), atol=1e-6))

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
# # 02 · The routing matrix
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/clora-lite/clora_lite/blob/main/notebooks/02_routing_matrix.ipynb)
#
# Chapter 01 ended with a problem: one LoRA, trained task after task, forgets; one LoRA *per* task grows with
# every task. C-LoRA (*Continual Low-Rank Adaptation for Pre-trained Models*, Zhang et al. 2025) keeps **one**
# pair of LoRA factors $A$, $B$ and puts a small $r \times r$ **routing matrix** $R$ between them:
#
# $$ y = W_0 x + b + s\, B\,(R_\text{old} + R_\Delta)\,A\,x . $$
#
# By the end of this notebook you will have
#
# 1. **built** a routing matrix by hand that turns a stack of LoRAs into one adapter, and seen what a full
#    (not block-diagonal) $R$ adds;
# 2. **met** `CLoRALinear`: $R = R_\text{old} + R_\Delta$, its zero start, and consolidation — checked to leave
#    the function unchanged;
# 3. **measured** what the stop-gradient on the old route does to the gradients reaching $A$ and $B$;
# 4. **taken apart** the orthogonality penalty: what it measures, why the kit penalises two sides, what
#    `orth_energy` leaves out, and where "exact" turns into "approximate";
# 5. **watched** the routing matrix fill up over the tasks of a real (short) continual run;
# 6. **separated** what the paper says from what this kit chose.
#
# Everything runs offline on a CPU. The settings cell is the only one to change for a bigger run.

# %%
# On Colab: install the kit (elsewhere this does nothing). KIT is where the repository lives; change it for a fork.
import sys
KIT = "git+https://github.com/clora-lite/clora_lite"
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", KIT], check=True)

# %%
import copy
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

import clora_lite
from clora_lite import CLoRALinear, from_loras
from clora_lite.notebook import banner, pick, runtime, setup_notebook

setup_notebook(seed=0)
torch.set_printoptions(precision=3, sci_mode=False)
print(banner())

# %%
# NBVAL_IGNORE_OUTPUT
print(runtime())

# %%
# Settings: the only cell to change. CLORA_SMOKE=1 (CI) shrinks the short continual run of section 5.
RUN = dict(tasks=pick(5, 3), classes=pick(50, 12), train_per_class=pick(300, 32), test_per_class=pick(50, 10),
           epochs=pick(3, 2), batch=pick(128, 32), rank=pick(8, 4))
TOY_STEPS = 60          # steps per task of the one-layer task sequence in section 3 (seconds at any scale)

# %% [markdown]
# ## 1. From many LoRAs to one
#
# ### 1a. Build the routing matrix by hand
#
# Three LoRAs on the same frozen layer (16 inputs, 12 outputs), each of rank 2, added with weights $w_t$:
# $\Delta W = \sum_t w_t B_t A_t$. Stack the $A_t$ as row blocks and the $B_t$ as column blocks,
#
# $$ A = \begin{bmatrix} A_1 \\ A_2 \\ A_3 \end{bmatrix} \;(6 \times 16), \qquad
#    B = \begin{bmatrix} B_1 & B_2 & B_3 \end{bmatrix} \;(12 \times 6), \qquad
#    R = \begin{bmatrix} w_1 I_2 & & \\ & w_2 I_2 & \\ & & w_3 I_2 \end{bmatrix}, $$
#
# and block multiplication gives $B R A = \sum_t w_t B_t A_t$: the stack is *one* rank-6 adapter whose routing
# matrix is block-diagonal. Check it in float64:

# %%
torch.manual_seed(0)
d_in, d_out, r_each, T = 16, 12, 2, 3
loras = [(torch.randn(r_each, d_in, dtype=torch.float64),     # A_t: (2, 16)
          torch.randn(d_out, r_each, dtype=torch.float64))    # B_t: (12, 2)
         for _ in range(T)]
w = [1.0, 0.5, -2.0]

A = torch.cat([A_t for A_t, _ in loras], dim=0)                 # (6, 16)
B = torch.cat([B_t for _, B_t in loras], dim=1)                 # (12, 6)
R_block = torch.block_diag(*[w_t * torch.eye(r_each, dtype=torch.float64) for w_t in w])   # (6, 6)

sum_of_loras = sum(w_t * B_t @ A_t for (A_t, B_t), w_t in zip(loras, w))
print("A", tuple(A.shape), " B", tuple(B.shape), " R", tuple(R_block.shape))
print("max |B R A - sum_t w_t B_t A_t| < 1e-12:", (B @ R_block @ A - sum_of_loras).abs().max().item() < 1e-12)

# %% [markdown]
# ### 1b. A full R mixes the subspaces
#
# Nothing forces $R$ to be block-diagonal. Writing $R$ in $2 \times 2$ blocks $R_{st}$,
#
# $$ B R A = \sum_{s,t} B_s R_{st} A_t , $$
#
# so an off-diagonal block $R_{st}$ reads the input directions of LoRA $t$ ($A_t$) and writes them to the output
# directions of LoRA $s$ ($B_s$): nine routes instead of three. The update still lives inside the same column
# space (span of $B$) and row space (span of $A$); $R$ only decides **which input directions feed which output
# directions**. That is the whole idea of C-LoRA: keep $A$ and $B$ shared and let each task change the routing.

# %%
torch.manual_seed(1)
R_full = torch.randn(6, 6, dtype=torch.float64)
blocks = lambda M, s, t: M[2 * s:2 * s + 2, 2 * t:2 * t + 2]
nine_routes = sum(loras[s][1] @ blocks(R_full, s, t) @ loras[t][0] for s in range(T) for t in range(T))
print("max |B R A - sum_{s,t} B_s R_st A_t| < 1e-12:", (B @ R_full @ A - nine_routes).abs().max().item() < 1e-12)
for name, R in (("block-diagonal R", R_block), ("full R", R_full)):
    print(f"{name:>16}: rank of B R A = {torch.linalg.matrix_rank(B @ R @ A).item()}")

fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
for ax, R, title in zip(axes, (R_block, R_full), ("block-diagonal R: a stack of 3 LoRAs", "full R: 9 routes")):
    lim = R.abs().max().item()
    im = ax.imshow(R, cmap="RdBu", vmin=-lim, vmax=lim)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("column j: reads row j of A"); ax.set_ylabel("row i: writes column i of B")
    for k in (1.5, 3.5):
        ax.axhline(k, color="k", lw=0.5); ax.axvline(k, color="k", lw=0.5)
    fig.colorbar(im, ax=ax, label="routing weight")
fig.tight_layout()
plt.show()

# %% [markdown]
# (Both have rank 6: with random $A$ and $B$ any invertible $R$ does. What differs is *which* directions are
# connected.)
#
# ### 1c. The kit's `from_loras`
#
# `clora_lite.from_loras(base, loras, weights)` does exactly 1a and returns a `CLoRALinear` with $R_\text{old}$
# = the block-diagonal routing and $R_\Delta = 0$. Same function as the frozen layer plus the weighted sum:

# %%
torch.manual_seed(2)
base = nn.Linear(d_in, d_out).double()
layer = from_loras(base, loras, w)
x = torch.randn(5, d_in, dtype=torch.float64)
print(layer)
print("R_old == my block-diagonal R:", torch.equal(layer.R_old, R_block))
print("max |layer(x) - (base(x) + x (sum w_t B_t A_t)^T)| < 1e-12:",
      (layer(x) - (base(x) + x @ sum_of_loras.T)).abs().max().item() < 1e-12)

# %% [markdown]
# ## 2. `CLoRALinear`: R = R_old + R_Δ
#
# In a continual run the routing has two parts:
#
# | | shape | what it is | trained? |
# |---|---|---|---|
# | `lora_A` | $r \times d_\text{in}$ | shared down-projection | yes, every task |
# | `lora_B` | $d_\text{out} \times r$ | shared up-projection | yes, every task |
# | `R_old` | $r \times r$ | routing learned by the earlier tasks (a buffer) | no |
# | `R_delta` | $r \times r$ | routing being learned for the current task | yes |
#
# ### 2a. The zero start
#
# LoRA starts with $B = 0$. C-LoRA (as this kit reads it) starts with $A$, $B$ random and $R_\text{old} = R_\Delta = 0$:
# the update $s B R A$ is exactly 0, yet $\partial L / \partial R_\Delta = s\, B^\top G\, (A x)^\top \neq 0$
# ($G$ = the gradient arriving at the output), so the routing moves at the first step.

# %%
torch.manual_seed(3)
base = nn.Linear(d_in, d_out).double()
clora = CLoRALinear(base, rank=4)
x = torch.randn(8, d_in, dtype=torch.float64)
print({n: tuple(p.shape) for n, p in clora.named_parameters() if p.requires_grad}, "trainable")
print({n: tuple(b.shape) for n, b in clora.named_buffers() if n == "R_old"}, "buffer")
print("output equals the frozen layer at the start:", torch.equal(clora(x), base(x)))

G = torch.randn(8, d_out, dtype=torch.float64)       # some gradient dL/dy arriving at the output
(clora(x) * G).sum().backward()                       # L = sum(y * G), so dL/dy = G
want = clora.scale * clora.lora_B.T @ G.T @ x @ clora.lora_A.T
print("dL/dR_delta == s B^T G^T x A^T:", torch.allclose(clora.R_delta.grad, want))
print("|dL/dR_delta| =", f"{clora.R_delta.grad.norm().item():.2f}",
      " |dL/dA| =", clora.lora_A.grad.norm().item(), " |dL/dB| =", clora.lora_B.grad.norm().item())

# %% [markdown]
# $A$ and $B$ get no gradient at the very first step (their gradients go through $R = 0$); they start moving as
# soon as $R_\Delta$ has.
#
# ### 2b. Consolidation leaves the function alone
#
# After each task, `consolidate()` does $R_\text{old} \leftarrow R_\text{old} + R_\Delta$, $R_\Delta \leftarrow 0$.
# The forward pass only ever uses the sum $R_\text{old} + R_\Delta$, and the sum does not change, so neither does
# the output (up to rounding: the forward pass multiplies the two parts separately). (What *does* change is what
# trains next: $R_\Delta$ restarts from 0 and the penalty of section 4 now guards the new $R_\text{old}$.)

# %%
with torch.no_grad():                                   # pretend a task was learned
    clora.lora_A.normal_(); clora.lora_B.normal_(); clora.R_delta.normal_()
before, R_sum = clora(x), clora.routing().clone()
clora.consolidate()
print("max |output after - before| < 1e-12:", (clora(x) - before).abs().max().item() < 1e-12)
print("R_old == old R_old + R_delta:", torch.equal(clora.R_old, R_sum), "| R_delta is 0:",
      bool((clora.R_delta == 0).all()))
print("merged nn.Linear gives the same outputs:", torch.allclose(clora.merged()(x), clora(x)))

# %% [markdown]
# The last line is why C-LoRA costs nothing at inference: $W_0 + s B R A$ folds into one matrix, and no task id
# is needed to pick an adapter — there is only one.
#
# ## 3. The stop-gradient on the old route
#
# With `detach_old=True` (the default) the layer computes
#
# $$ y = W_0 x + b + s\, B R_\Delta A x + s\, \bar B R_\text{old} \bar A x, \qquad \bar A, \bar B = \text{detached copies of } A, B, $$
#
# the same value as before, but $A$ and $B$ receive gradient **only through $R_\Delta$**:
#
# $$ \frac{\partial L}{\partial B} = s\, G\, (R_\Delta A x)^\top, \qquad \frac{\partial L}{\partial A} = s\, R_\Delta^\top B^\top G\, x^\top . $$
#
# The kit reads this as the paper's Theorem 3.1: the shared subspaces move only as much as the new routing lets
# them. Without it, the old route $B R_\text{old} A$ passes gradient to $A$ and $B$ from the first step of every
# new task. The input $x$ still gets the full gradient in both cases (earlier layers train normally).
#
# First, one step with $R_\Delta = 0$ and a learned $R_\text{old}$ (right after a consolidation):

# %%
def grads_after_consolidation(detach_old):
    torch.manual_seed(4)
    layer = CLoRALinear(nn.Linear(d_in, d_out).double(), rank=4, detach_old=detach_old)
    with torch.no_grad():
        layer.lora_A.normal_(); layer.lora_B.normal_(); layer.R_old.normal_()   # R_delta = 0
    layer(x).pow(2).sum().backward()
    return layer.lora_A.grad.norm().item(), layer.lora_B.grad.norm().item()


for flag in (True, False):
    gA, gB = grads_after_consolidation(flag)
    print(f"detach_old={flag!s:5}: |dL/dA| = {gA:8.1f}   |dL/dB| = {gB:8.1f}")

# %% [markdown]
# Now over a short task sequence. One C-LoRA layer (24 inputs, 16 outputs, rank 6) learns three regression
# tasks in turn; task $t$'s inputs live on their own 8 input coordinates and its target is the frozen layer plus a
# random rank-2 map. Adam, `TOY_STEPS` steps per task, no orthogonality penalty (so we see the stop-gradient
# alone), consolidation between tasks. We record the norms of the gradients reaching $A$ and $B$ at every step.
#
# Look for: with the stop-gradient, both norms drop to exactly 0 at the first step of every task ($R_\Delta = 0$
# again) and build up from there; without it, they start each new task large, driven by the old route.

# %%
D_IN, D_OUT, RANK, TASKS = 24, 16, 6, 3
g = torch.Generator().manual_seed(0)
torch.manual_seed(0)
frozen = nn.Linear(D_IN, D_OUT)
task_maps = [0.5 * torch.randn(D_OUT, 2, generator=g) @ torch.randn(2, D_IN, generator=g) for _ in range(TASKS)]


def task_batch(t, n, gen):
    """n inputs of task t (nonzero only on coordinates 8t..8t+7) and their targets."""
    x = torch.zeros(n, D_IN)
    x[:, 8 * t:8 * t + 8] = torch.randn(n, 8, generator=gen)
    return x, frozen(x).detach() + x @ task_maps[t].T


def train_sequence(detach_old, steps=TOY_STEPS):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    layer = CLoRALinear(copy.deepcopy(frozen), RANK, detach_old=detach_old)
    norms = {"A": [], "B": []}
    for t in range(TASKS):
        opt = torch.optim.Adam([layer.lora_A, layer.lora_B, layer.R_delta], lr=1e-2)
        for _ in range(steps):
            x_t, y_t = task_batch(t, 64, gen)
            loss = (layer(x_t) - y_t).pow(2).mean()
            opt.zero_grad(); loss.backward()
            norms["A"].append(layer.lora_A.grad.norm().item())
            norms["B"].append(layer.lora_B.grad.norm().item())
            opt.step()
        layer.consolidate()
    return norms


runs = {flag: train_sequence(flag) for flag in (True, False)}
for flag, n in runs.items():
    first = [n["A"][t * TOY_STEPS] for t in range(TASKS)]
    print(f"detach_old={flag!s:5}: |dL/dA| at the first step of tasks 1-3 =", [f"{v:.2f}" for v in first])

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
steps = range(1, TASKS * TOY_STEPS + 1)
for ax, key in zip(axes, ("A", "B")):
    for flag in (False, True):
        ax.plot(steps, runs[flag][key], lw=1.2,
                label=f"detach_old={flag}" + (" (stop-gradient, default)" if flag else ""))
    for t in range(1, TASKS):
        ax.axvline(t * TOY_STEPS + 0.5, color="gray", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel(f"training step (tasks of {TOY_STEPS} steps, dotted lines = consolidation)")
    ax.set_title(f"gradient reaching {key}")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("gradient norm ‖∂L/∂·‖_F (log scale)")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Exact zeros cannot be drawn on a log scale: the curves with the stop-gradient have a gap at the first step of
# each task (the printed zeros above). What the plot shows is *where* the gradient comes from; it does not show
# that the stop-gradient alone protects old tasks — it does not (try exercise 3). The protection comes from
# combining it with the orthogonality penalty, next.
#
# ## 4. The orthogonality penalty
#
# ### 4a. What it measures
#
# Take the SVD $R_\text{old} = U \Sigma V^\top$ and keep the leading $k$ singular vectors $U_\text{old}$, $V_\text{old}$
# ($r \times k$) that hold a fraction `orth_energy` of $\sum \sigma_i^2$. The kit's penalty is
#
# $$ L_\text{orth} = \lVert U_\text{old}^\top R_\Delta \rVert_F^2 + \lVert R_\Delta V_\text{old} \rVert_F^2 . $$
#
# The left term is the energy of $R_\Delta$'s **columns** inside the column space of $R_\text{old}$ (the
# $B$-side directions old tasks write to); the right term is the energy of its **rows** inside the row space of
# $R_\text{old}$ (the $A$-side directions old tasks read from). It is 0 exactly when the new routing avoids both.
# The training loss is $\text{CE} + \lambda_\text{orth} \sum_\text{layers} L_\text{orth}$.

# %%
torch.manual_seed(5)
r = 6
Q, _ = torch.linalg.qr(torch.randn(r, r, dtype=torch.float64))
U_keep, U_free = Q[:, :3], Q[:, 3:]            # R_old lives on span(U_keep): rank 3
R_old = U_keep @ torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)) @ U_keep.T
layer = CLoRALinear(nn.Linear(d_in, d_out).double(), rank=r, orth_energy=1.0)
with torch.no_grad():
    layer.R_old.copy_(R_old)

cases = {"inside R_old's subspaces": U_keep @ torch.randn(3, 3, dtype=torch.float64) @ U_keep.T,
         "outside on both sides": U_free @ torch.randn(3, 3, dtype=torch.float64) @ U_free.T,
         "columns outside, rows inside": U_free @ torch.randn(3, 3, dtype=torch.float64) @ U_keep.T,
         "random": torch.randn(r, r, dtype=torch.float64)}
U_old, V_old = clora_lite.adapters.energy_basis(R_old, 1.0)
print(f"{'R_delta':>30} | left ||U^T R_d||^2 | right ||R_d V||^2 | layer.orthogonality_loss()")
for name, R_d in cases.items():
    with torch.no_grad():
        layer.R_delta.copy_(R_d)
    left, right = (U_old.T @ R_d).pow(2).sum().item(), (R_d @ V_old).pow(2).sum().item()
    print(f"{name:>30} | {left:17.3f} | {right:17.3f} | {layer.orthogonality_loss().item():.3f}")

# %% [markdown]
# The third row is the case one side cannot see: its columns avoid $R_\text{old}$'s column space (left term 0)
# while its rows sit inside $R_\text{old}$'s row space. `orth_side="left"` would call it harmless.
#
# ### 4b. Why two sides: the old route, exactly fixed
#
# With the stop-gradient, every gradient step changes $B$ by some $M R_\Delta^\top$ and $A$ by some $R_\Delta^\top N$
# (section 3's formulas). The old route after one plain gradient step is
#
# $$ (B + M R_\Delta^\top)\, R_\text{old}\, (A + R_\Delta^\top N) = B R_\text{old} A + M\,(R_\Delta^\top R_\text{old})\,A
#    + B\,(R_\text{old} R_\Delta^\top)\,N + M\,(R_\Delta^\top R_\text{old} R_\Delta^\top)\,N . $$
#
# Left orthogonality ($U_\text{old}^\top R_\Delta = 0$) gives $R_\Delta^\top R_\text{old} = 0$; right orthogonality
# ($R_\Delta V_\text{old} = 0$) gives $R_\text{old} R_\Delta^\top = 0$. With **both**, every extra term vanishes and
# $B R_\text{old} A$ does not move, however far $A$ and $B$ travel. With one side, one term survives.
#
# Check: a fixed $R_\Delta$ of each kind from 4a, 30 steps on $A$ and $B$ only, then the relative change of the
# old route $\lVert \Delta(B R_\text{old} A) \rVert_F / \lVert B R_\text{old} A \rVert_F$. SGD first, then Adam:

# %%
def old_route_drift(R_d, optimizer, steps=30, lr=0.01):
    torch.manual_seed(6)
    layer = CLoRALinear(nn.Linear(d_in, d_out).double(), rank=r)       # detach_old=True
    with torch.no_grad():
        layer.lora_A.normal_(); layer.lora_B.normal_()
        layer.R_old.copy_(R_old); layer.R_delta.copy_(R_d)
    route = lambda: (layer.lora_B @ layer.R_old @ layer.lora_A).detach().clone()
    start = route()
    opt = optimizer([layer.lora_A, layer.lora_B], lr=lr)                # R_delta held fixed
    for _ in range(steps):
        xb = torch.randn(32, d_in, dtype=torch.float64)
        loss = (layer(xb) - torch.randn(32, d_out, dtype=torch.float64)).pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
    return (route() - start).norm().item() / start.norm().item()


kinds = {"both sides orthogonal": cases["outside on both sides"],
         "left side only": cases["columns outside, rows inside"],
         "right side only": cases["columns outside, rows inside"].T,
         "neither (random)": cases["random"]}
print(f"{'R_delta':>22} | drift of B R_old A, SGD | Adam")
for name, R_d in kinds.items():
    sgd, adam = old_route_drift(R_d, torch.optim.SGD), old_route_drift(R_d, torch.optim.Adam)
    print(f"{name:>22} | {'< 1e-12' if sgd < 1e-12 else f'{sgd:.1e}':>23} | {adam:.1e}")   # rounding: CPU-dependent

# %% [markdown]
# Read the table row by row:
#
# - **both sides:** with SGD the old route stays put to rounding error (float64: below 1e-12; in fact a few 1e-16,
#   the digits depending on the CPU). With **Adam** it moves:
#   14 % here, less than the other rows but nowhere near 0. Adam divides each entry of the gradient by its own
#   running scale, which destroys the $M R_\Delta^\top$ form. The kit trains with AdamW, so in a real run the
#   two-sided guarantee is at best approximate.
# - **one side only** and **neither:** the old route drifts under both optimisers (50–130 % with SGD here: these
#   30 steps move $A$ and $B$ a long way).
#
# Two more reasons the guarantee is approximate in a real run: the penalty *pushes* $R_\Delta$ towards
# orthogonality instead of enforcing it, and `orth_energy < 1` leaves part of $R_\text{old}$ unguarded (4c). And
# a fixed old route $B R_\text{old} A$ is a statement about weights; the features that reach this layer on old
# tasks' images can still change, because earlier layers also train.
#
# ### 4c. What `orth_energy` truncates
#
# The kit guards only the leading singular directions of $R_\text{old}$ holding `orth_energy` of its energy
# (default 0.95). Weak directions are left free for new tasks — a choice of this kit, so that $R_\text{old}$'s small
# leftovers do not use up the whole $r$-dimensional space after a few tasks. A routing matrix with
# singular values 3, 1, 0.3, 0.1, 0, 0:

# %%
sv = torch.tensor([3.0, 1.0, 0.3, 0.1, 0.0, 0.0], dtype=torch.float64)
R_weak = torch.diag(sv)
share = (sv ** 2).cumsum(0) / (sv ** 2).sum()
print("energy share of the leading k directions:", [f"{v:.3f}" for v in share[:4].tolist()])
for energy in (0.5, 0.9, 0.95, 0.999, 1.0):
    U_k, _ = clora_lite.adapters.energy_basis(R_weak, energy)
    print(f"orth_energy={energy:<5}: guards k = {U_k.shape[1]} direction(s)")

# %% [markdown]
# At the default 0.95 two directions are guarded. A new $R_\Delta$ along the third direction (singular value 0.3)
# costs nothing:

# %%
layer = CLoRALinear(nn.Linear(d_in, d_out).double(), rank=6, orth_energy=0.95)
with torch.no_grad():
    layer.R_old.copy_(R_weak)
    layer.R_delta.zero_(); layer.R_delta[2, 2] = 1.0
print("penalty for R_delta on direction 3, orth_energy=0.95:", f"{layer.orthogonality_loss().item():.1f}")
layer.orth_energy = 1.0
print("the same with orth_energy=1.0:                      ", f"{layer.orthogonality_loss().item():.1f}")

# %% [markdown]
# ## 5. The routing matrix filling up, on a real run
#
# Now a real, short continual run: the kit's small pre-trained ViT, the offline `synthetic` benchmark, C-LoRA on
# the q, k, v projections of every block (`clora_lite.run`). We run it twice, with the default two-sided penalty and
# with the left side only. Head alignment is switched off: this chapter looks at the adapters, not at accuracy
# (chapter 03 does that). Each run folder keeps `adapters/task_XX.pt`, saved after training task $t$ and before
# consolidation, so $R_\Delta$ is task $t$'s routing and $R_\text{old}$ the sum of the earlier tasks'.

# %%
# NBVAL_IGNORE_OUTPUT
import time

from clora_lite import Config, run
from clora_lite.inside import analysis

device = "cuda" if torch.cuda.is_available() else "cpu"
out = Path(tempfile.mkdtemp(prefix="clora_ch02_"))
variants = {"clora (both sides)": dict(orth_side="both"), "clora (left side)": dict(orth_side="left")}
t0 = time.perf_counter()
for name, kw in variants.items():
    cfg = Config(method="clora", benchmark="synthetic", align_head=False, device=device, **RUN, **kw)
    run(cfg, out / name.replace(" ", "_"), progress=False, log=lambda s: None)
print(f"{len(variants)} runs of {RUN['tasks']} tasks in {time.perf_counter() - t0:.0f} s on {device}")

# %%
runs = {name: analysis.load_run(out / name.replace(" ", "_"), name) for name in variants}
hists = {name: analysis.routing_history(r) for name, r in runs.items()}
first = next(iter(runs.values()))
print("adapted layers:", len(first.layers), "| snapshots per run:", first.num_tasks, "| rank:", first.config["rank"])
print("first layer:", first.layers[0])

# %% [markdown]
# What to look for in the figure below (first adapted layer, `blocks.0.attn.q`, after the last task): the left
# heatmap is $R_\text{old}$, everything the earlier tasks routed; the second is the last task's $R_\Delta$, on its
# own colour scale (it is usually much smaller); the bars are their singular values; the last panel follows,
# task by task, the share of $R_\Delta$'s energy that falls inside $R_\text{old}$'s guarded subspaces — the quantity
# the penalty pushes down (after task 1 there is no $R_\text{old}$, so the curve starts at task 2).

# %%
from clora_lite.inside import figures

layer_name = first.layers[0]
fig = figures.plot_routing({name: h[layer_name] for name, h in hists.items()}, first.num_tasks - 1)
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
for name, h in hists.items():
    L = h[layer_name]
    print(f"{name}: share of R_delta inside R_old's subspaces, tasks 2..{first.num_tasks}: "
          f"left {[f'{100 * v:.0f}%' for v in L['share_left'][1:]]}, right {[f'{100 * v:.0f}%' for v in L['share_right'][1:]]}")

# %% [markdown]
# In the explorer, move **after task** to watch $R_\text{old}$ fill up (after task 1 it is all zeros: nothing is
# old yet), and pick another **block** or **projection** to see that every adapted layer has its own routing.
# It needs a live kernel (JupyterLab, VS Code or Colab); the static figure above is the same view at the last task.

# %%
# NBVAL_IGNORE_OUTPUT
from clora_lite.inside.explorers import RoutingExplorer

RoutingExplorer(runs)

# %% [markdown]
# A caution on reading these runs: at CI size each task trains for 8 steps, so $R_\Delta$ stays tiny and the
# shares printed above come from very few updates. (In the explorer, most entries of task 1's $R_\Delta$ have
# nearly the same magnitude: Adam moves every entry by about the learning rate, 1e-3, per step, so at this size
# the pictures show the first steps of training more than learned structure.)
#
# In the stored CI run the picture is mixed: the left-only run has the lower *left* share (19 % and 18 %, against
# 30 % and 54 %), the two-sided run the lower *right* share (14 % and 50 %, against 23 % and 69 %), and no share is
# near 0. From two runs this short we draw no conclusion about `orth_side`. Sections 4a–4b are where the two sides are compared exactly; the ablation
# over `orth_side` at full scale belongs to chapter 04. The full-size settings (unset `CLORA_SMOKE`) train longer;
# we have not timed this chapter at full size on a 2-core CPU or on a GPU.
#
# ## 6. What is the paper's, and what is this kit's reading
#
# The paper's full text was not available to us. The left column is what we take from the paper's abstract and
# from third-party restatements; the right column is how this kit fills in everything the paper's text would
# pin down. Treat the whole notebook as **the kit's reading** of C-LoRA, not as the paper's code.
#
# | | the paper (as restated) | this kit (`clora_lite`) |
# |---|---|---|
# | adapter | one shared adapter $B R A$ for all tasks | `CLoRALinear`, on q, k, v by default, rank 8, $s = \alpha / r$ with $\alpha = r$ |
# | routing | $R = R_\text{old} + R_\Delta$, old part frozen during a task | same: `R_old` buffer, `R_delta` parameter |
# | stop-gradient | on the old route (Theorem 3.1) | `detach_old=True` by default: $A$, $B$ detached in $B R_\text{old} A$ |
# | orthogonality | a penalty between the new and the old routing | $\lVert U_\text{old}^\top R_\Delta\rVert_F^2 + \lVert R_\Delta V_\text{old}\rVert_F^2$, bases truncated at `orth_energy=0.95`, `orth_side="both"` by default (restatements of Eq. 26 give only the left side: `orth_side="left"`), weight `lambda_orth=100` |
# | consolidation | $R_\text{old} \leftarrow R_\text{old} + R_\Delta$ after a task | same, `consolidate()`; the function is unchanged (2b) |
# | initialisation | not known to us | $A$, $B$ Kaiming-uniform, $R_\text{old} = R_\Delta = 0$ at every task (2a) |
# | classifier | not known to us | one linear head, masked to the current task's classes during training; head alignment after each task (`align_head=True`, from SLCA), for every method alike |
# | other settings | not known to us | AdamW, adapter lr 1e-3, head lr 1e-2, cosine schedule, 3 epochs per task (`clora_lite.Config`) |
#
# ## 7. Exercises
#
# **1. One side or two?** In section 5, add a third variant with `orth_side="right"`. Before you run it: which of
# the two shares (left, right) do you expect it to keep low, and which not? Rerun and check in the explorer.
#
# <details><summary>Solution</summary>
#
# `orth_side="right"` penalises only $\lVert R_\Delta V_\text{old}\rVert^2$, the energy of $R_\Delta$'s rows in
# $R_\text{old}$'s row space: that is the share the penalty acts on; the left share is left to the data. Add
# `"clora (right side)": dict(orth_side="right")` to `variants`. At CI size the runs are too short for the penalty to
# show (section 5's caution), so expect no clear difference there; use the full settings. Whatever you see, 4b says
# which guarantee you gave up: with one side, one term of the old route's change survives.
# </details>
#
# **2. Truncation.** In 4c, set `orth_energy=0.5`, then `0.98`. Predict $k$ each time from the printed energy
# shares, then predict the penalty for an $R_\Delta$ with a single entry at position (1, 1) (the second direction).
#
# <details><summary>Solution</summary>
#
# The shares of the leading 1, 2, 3 directions are 0.891, 0.990, 0.999. `orth_energy=0.5`: one direction is
# enough, $k = 1$, so direction 2 is free and the penalty is 0. `orth_energy=0.98`: one direction holds
# 0.891 < 0.98, two hold 0.990, so $k = 2$ and the entry at (1, 1) is seen by both sides: penalty $1 + 1 = 2$.
# Code: `layer.orth_energy = 0.5; layer.R_delta.zero_(); layer.R_delta[1, 1] = 1.0; layer.orthogonality_loss()`
# (inside `torch.no_grad()` for the assignments).
# </details>
#
# **3. Does the stop-gradient alone protect old tasks?** In section 3, also record the loss on task 1 after each
# task (`(layer(x) - y).pow(2).mean()` on a fresh batch of task 1). Predict first: with `detach_old=True` and no
# penalty, does task 1's loss stay low? Then add `+ 10 * layer.orthogonality_loss()` to the loss, switch to
# `torch.optim.SGD(..., lr=0.05)` and 100 steps per task, and measure again.
#
# <details><summary>Solution</summary>
#
# No. With the stop-gradient alone, $A$ and $B$ still move (through $R_\Delta$), and nothing keeps that movement
# away from the directions task 1 uses. In our run (Adam, 60 steps, no penalty) task 1's loss was 0.23 right after
# task 1, 2.96 after task 2 and 7.63 after task 3. With the penalty and plain SGD (100 steps per task) the new
# routing is pushed out of $R_\text{old}$'s subspaces, 4b's algebra applies approximately, and task 1's loss stayed
# at 0.20, 0.26, 0.25 — but task 3 was then learned badly (its own loss 3.61, against 0.53 with the same SGD and no
# penalty): part of the 6-dimensional routing space was guarded. Protection costs capacity.
# (Losses on 512 fresh inputs of the task, after consolidation; yours may differ in the digits.)
# </details>
#
# **4. Adam versus exactness.** In 4b, replace Adam by `torch.optim.SGD(..., momentum=0.9)`. Predict: is the
# both-sided drift still at rounding level?
#
# <details><summary>Solution</summary>
#
# Yes. Momentum adds up past gradients, and each has the form $M_k R_\Delta^\top$ with the same fixed $R_\Delta$, so
# the sum keeps that form and the algebra of 4b holds. What breaks it is a per-entry rescaling (Adam, AdaGrad,
# RMSprop) or weight decay applied to $A$ and $B$ directly (AdamW's decay shrinks $B R_\text{old} A$ itself).
# </details>
#
# ## Summary
#
# - A stack of $T$ LoRAs is one adapter $B R A$ with a block-diagonal routing matrix; a full $R$ connects every
#   input direction of $A$ to every output direction of $B$.
# - C-LoRA trains a new routing $R_\Delta$ per task on top of the frozen $R_\text{old}$, and `consolidate()` folds it
#   in without changing the function. The adapter never grows.
# - The stop-gradient sends the gradient to $A$ and $B$ only through $R_\Delta$; alone, it does not protect old tasks.
# - The two-sided orthogonality penalty makes the old route $B R_\text{old} A$ exactly fixed under plain gradient
#   steps when it is met exactly; one side does not; Adam, the soft penalty and `orth_energy < 1` make it approximate.
#
# Next, chapter 03: the class-incremental protocol, its metrics, and forgetting made visible.
#
# ## References
#
# - X. Zhang, L. Bai, X. Yang, J. Liang. *C-LoRA: Continual Low-Rank Adaptation for Pre-trained Models.*
#   arXiv:2502.17920, 2025. (Full text not read by us; see section 6.)
# - E. J. Hu et al. *LoRA: Low-Rank Adaptation of Large Language Models.* ICLR 2022, arXiv:2106.09685.
# - Y.-S. Liang, W.-J. Li. *InfLoRA: Interference-Free Low-Rank Adaptation for Continual Learning.* CVPR 2024.
# - G. Zhang et al. *SLCA: Slow Learner with Classifier Alignment for Continual Learning on a Pre-trained Model.*
#   ICCV 2023 (the classifier alignment behind `align_head`).
# - D. P. Kingma, J. Ba. *Adam: A Method for Stochastic Optimization.* ICLR 2015.

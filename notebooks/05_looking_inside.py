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
# # 05 · Looking inside: subspace overlap, routing weights, interference and forgetting
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/clora-lite/clora_lite/blob/main/notebooks/05_looking_inside.ipynb)
#
# Chapter 04 ran C-LoRA against its baselines and printed a table. A table says *how much* each method forgot;
# this chapter opens the trained adapters to ask *why*. Every run of the kit keeps, for every task, the adapter
# tensors as they were at the end of that task (`adapters/task_XX.pt`), so we can rebuild what each task added
# to each weight matrix and measure it.
#
# By the end you will have
#
# 1. **measured** which directions each task's update uses (subspace overlap), and seen why C-LoRA's overlap is
#    *high* by design: all tasks share the span of B, and their separation lives in the small routing matrix R,
# 2. **watched** the routing matrix fill up task by task, and how much of each new task's routing lands inside
#    the directions old tasks already use (what the orthogonality penalty fights),
# 3. **measured** how much each new update changes a layer's output on *old* tasks' images (interference), and
#    compared its ordering across methods with their forgetting,
# 4. **located** where accuracy is lost, task by task, with the frozen backbone and the joint upper bound drawn,
# 5. **changed one knob** of C-LoRA (`lambda_orth`, `orth_side`, `detach_old`, `rank`, `orth_energy`),
#    predicted the picture, rerun it and compared two runs side by side.
#
# Each question gets a static figure first (it shows on GitHub and nbviewer) and then an interactive explorer
# with the same picture: pick a block, a projection, a task, and two methods to put side by side.

# %%
# On Colab: install the kit (elsewhere this does nothing). KIT is where the repository lives; change it for a fork.
import sys
KIT = "git+https://github.com/clora-lite/clora_lite"
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", KIT], check=True)

# %%
import contextlib
import dataclasses
import io
from pathlib import Path
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import torch

from clora_lite import Config, compare, notebook, run, vit
from clora_lite.adapters import energy_basis
from clora_lite.inside import analysis as an
from clora_lite.inside.explorers import ForgettingExplorer, InterferenceExplorer, OverlapExplorer, RoutingExplorer
from clora_lite.inside.figures import chance_overlap
from clora_lite.notebook import SMOKE, pick, setup_notebook

setup_notebook(seed=0)
device = "cuda" if torch.cuda.is_available() else "cpu"
print(notebook.banner())

# %%
# NBVAL_IGNORE_OUTPUT
print(notebook.runtime())

# %% [markdown]
# ## Settings
#
# `RUNS` is where chapter 04 wrote its comparison (`runs/ch04_cpu/` or `runs/ch04_gpu/`, one folder per
# method, or under `$CLORA_RUNS`). If that folder holds finished runs we read them; if not (and always in CI,
# where chapter 04's runs live in a temporary folder) we run a small comparison ourselves on
# `synthetic_inverted`, the benchmark where adapting the backbone is worth something. `OWN` is its size.

# %%
SCALE = notebook.scale()
RUNS = notebook.runs_folder("ch04", SCALE)   # chapter 04's run folders, if any (on Colab: on Google Drive)

OWN = pick(   # the comparison we run when RUNS holds none: Config overrides
    dict(benchmark="synthetic_inverted", tasks=10, classes=100, train_per_class=64, test_per_class=40,
         backbone="vit_tiny", epochs=3, batch=64),                       # the demo's sizes (a few CPU minutes)
    dict(benchmark="synthetic_inverted", tasks=4, classes=20, train_per_class=32, test_per_class=25,
         backbone="vit_tiny", epochs=3, batch=32, align_steps=20))      # CI: seconds
METHODS = ["frozen", "seq_lora", "lora_per_task", "clora", "clora_no_orth", "joint"]
IMAGES_PER_TASK = pick(64, 16)   # test images per task for the interference measurement

# %% [markdown]
# ## 1. The runs
#
# Six runs: the frozen backbone (head only), one LoRA trained on task after task (`seq_lora`), a fresh LoRA per
# task with the old ones frozen (`lora_per_task`), C-LoRA (`clora`), C-LoRA without its orthogonality penalty
# (`clora_no_orth`, the ablation `lambda_orth=0`), and the same LoRA trained once on all classes (`joint`, the
# upper bound). If chapter 04's folder has more (full fine-tuning, the other ablations, the peers), they are
# read too; the inside views show every run that has LoRA-style adapters.

# %%
# NBVAL_IGNORE_OUTPUT
if (RUNS / "summary.json").exists():
    print(f"reading chapter 04's runs in {RUNS}")
else:
    RUNS = notebook.runs_folder("ch05", SCALE)
    print("no chapter 04 runs found: running the comparison" + ("" if SCALE == "ci" else f" into {RUNS}"))
    with contextlib.redirect_stdout(io.StringIO()):   # compare prints a table; we print our own below
        compare(METHODS, Config(**OWN, device=device), RUNS, progress=False)

# %% [markdown]
# `load_runs` reads every run folder: its `config.json`, `results.json` and the per-task adapter snapshots.

# %%
# NBVAL_IGNORE_OUTPUT
every = {name: r for name, r in an.load_runs(RUNS).items() if r.results is not None}
order = METHODS + sorted(set(every) - set(METHODS))
every = {name: every[name] for name in order if name in every}
results = [r.results for r in every.values()]
first = every[next(iter(every))]
print(f"benchmark {first.config['benchmark']}, {first.config['tasks']} tasks, backbone {first.config['backbone']}, "
      f"rank {first.config['rank']} on {', '.join(first.config['targets'])}")
print(f"{'run':<18}{'Last-Acc':>10}{'Forgetting':>12}   (%)")
for name, r in every.items():
    f = r.results["forgetting"]
    print(f"{name:<18}{r.results['last_acc']:>10.1f}{'-' if f is None else format(f, '.1f'):>12}")

# %% [markdown]
# Forgetting here is the mean, over old tasks, of the points each lost between its best and the end
# (chapter 03). Keep one thing in mind for the rest of the chapter: the **frozen backbone forgets too**. Its
# backbone never changes, so whatever it loses is lost in the classifier head (old classes' logits crowded out by
# new ones). A method's forgetting *beyond* the frozen line is what its backbone updates cost.
#
# The inside views need adapters that change over the stream, so they take the continual runs with LoRA-style
# adapters (not `frozen`, not `joint`, which learns in one task, and not full fine-tuning).

# %%
continual = {name: r for name, r in every.items() if an.has_adapters(r) and r.num_tasks > 1}
continual = {**{n: continual[n] for n in ("seq_lora", "clora") if n in continual}, **continual}   # A, B shown first
routed = {name: r for name, r in continual.items() if f"{r.layers[0]}.R_old" in r.snapshots[0]}
print("with adapters:", ", ".join(continual))
print("with a routing matrix:", ", ".join(routed))
layers = next(iter(continual.values())).layers
print(f"{len(layers)} adapted layers, e.g. {layers[0]}")

# %% [markdown]
# ## 2. Which directions does each task's update use?
#
# For each task t and each adapted layer, the update the task added is ΔW_t = (everything the adapters add after
# task t) − (after task t−1), a d_out × d_in matrix of rank at most a few times r. Its top-k left singular vectors
# span the **output directions** it writes to (its column space); the top-k right ones span the **input
# directions** it reads (its row space). The overlap of two tasks' subspaces is the mean cos² of their principal
# angles: 1 = the same subspace, 0 = orthogonal. Two *random* k-dimensional subspaces of ℝ^d overlap by about
# k/d, so that is the level that means "unrelated".
#
# **What to look for.** A stack of per-task LoRAs draws a fresh random A and B for each task, so its tasks
# should sit near the random level. C-LoRA is different *by design*: every task's update is
# B·R_delta·A with the **same** B and A (they move only slowly), so every update's column space lies inside
# span(B) and its row space inside span(A). Expect C-LoRA's overlap to be **high**. That is not a failure:
# C-LoRA keeps tasks apart *inside* that shared r-dimensional space, in the routing matrix R (section 3).

# %%
ref = next(iter(continual.values()))
K = ref.config["rank"]   # subspace size k: the adapter rank
overlap = OverlapExplorer(continual, k=K)
print(f"k = {K}; random k-dim subspaces overlap by k/d = {chance_overlap(ref, K, 'col'):.3f} (column spaces), "
      f"{chance_overlap(ref, K, 'row'):.3f} (row spaces)")

# %%
# NBVAL_IGNORE_OUTPUT
print(f"mean overlap between different tasks' updates (all adapted layers), k = {K}:")
print(f"{'run':<18}{'column spaces':>15}{'row spaces':>12}")
for name, r in continual.items():
    ups = an.task_updates(r)
    col, row = (an.mean_offdiag(an.overlap_matrix(ups, K, side)[1]) for side in ("col", "row"))
    print(f"{name:<18}{col:>15.2f}{row:>12.2f}")

# %% [markdown]
# In the stored CI run, column spaces: `lora_per_task` 0.20 and `seq_lora` 0.26, a few times the random 0.06;
# `clora` 0.85 and `clora_no_orth` 0.95: C-LoRA's tasks write to nearly the same output directions, as expected.
# So the overlap of *subspaces* is not what keeps C-LoRA's tasks apart; the routing is (next section).
#
# The row spaces hold a surprise: `seq_lora` 0.87. One LoRA starts with B = 0 and a random A, and in a short
# run A hardly moves, so every task's update *reads* the same input directions (the rows of A) and differs
# only in where it writes. `lora_per_task` draws a fresh A per task and sits at the random level, 0.06.
#
# The static figure shows the mean over all adapted layers for methods A and B of the explorer below it.

# %%
fig = overlap.static()
plt.show()

# %% [markdown]
# The explorer: **method A** and **method B** put two runs side by side on one colour scale; **block** and
# **projection** pick one adapted layer (or the mean over them); the toggle switches between column spaces and
# row spaces. Try `lora_per_task` against `clora`, and block 0 against the last block.

# %%
# NBVAL_IGNORE_OUTPUT
overlap

# %% [markdown]
# ## 3. How does the routing matrix fill up?
#
# C-LoRA's update is s·B(R_old + R_delta)A. After each task, R_old ← R_old + R_delta. The penalty
# λ·(‖U_oldᵀ R_delta‖² + ‖R_delta V_old‖²) pushes the new task's R_delta out of R_old's *kept* subspaces (the
# leading singular directions holding `orth_energy` = 95 % of R_old's energy), on the left and on the right.
#
# **What to look for.** With the penalty, the share of R_delta's energy inside R_old's kept subspaces should be
# small; without it (`clora_no_orth`) nothing stops the new routing from reusing the old directions. The level to
# compare with: a *random* R_delta would put (kept dimensions) / r of its energy there. Watch also
# the effective rank of R_old grow as tasks add directions, and the singular values: a task's R_delta is often
# much smaller than R_old, so each matrix has its own colour scale.

# %%
routing = RoutingExplorer(routed)

# %%
# NBVAL_IGNORE_OUTPUT
T = ref.num_tasks
print(f"share of R_delta's energy inside R_old's kept subspaces (%), mean over adapted layers, tasks 2..{T}:")
for name, r in routed.items():
    hist = list(an.routing_history(r).values())
    left, right = (100 * np.mean([h[key][1:] for h in hist], 0) for key in ("share_left", "share_right"))
    kept = np.mean([[energy_basis(torch.as_tensor(h["R_old"][t]), r.config["orth_energy"])[0].shape[1]
                     for t in range(1, T)] for h in hist], 0)
    print(f"{name:<15} left  " + " ".join(f"{v:5.1f}" for v in left))
    print(f"{'':<15} right " + " ".join(f"{v:5.1f}" for v in right))
    print(f"{'':<15} a random R_delta: kept dims / r = " + " ".join(f"{100 * m / K:5.1f}" for m in kept))
    size = np.mean([np.linalg.norm(h["R_delta"][1:], axis=(1, 2)) / np.linalg.norm(h["R_old"][1:], axis=(1, 2))
                    for h in hist], 0)
    print(f"{'':<15} size ‖R_delta‖ / ‖R_old‖ (%)        " + " ".join(f"{100 * v:5.1f}" for v in size))

# %% [markdown]
# Task 1 is left out: R_old = 0 then, nothing to protect yet. In the stored CI run, about half of R_old's r = 8
# dimensions are kept (so a random R_delta would put about 50 % of its energy there). Without the penalty,
# `clora_no_orth` puts *more* than that, 59–80 %: a new task's routing naturally reuses the strong old
# directions. With it, `clora` puts 34–50 %: pushed out, but far from 0, because each task here trains for only
# 15 steps, and the penalty competes with the task's own loss. (Exercise 2 turns the penalty up.)
#
# The last line of each block is the bigger effect at this size: C-LoRA's new routing is *small*, 8–10 % of
# R_old's norm, against 59–104 % without the penalty. Since the penalty is quadratic in R_delta, the cheapest way
# to lower it is to keep R_delta small; so here it protects the old route mainly by shrinking the new one, and
# only partly by turning it. Keep that in mind when you read the interference in section 4.
#
# This is where C-LoRA separates tasks: not in which *output directions* they use (section 2), but in how each
# task routes through the shared r-dimensional space. The static figure shows one layer (block 0, q) after the
# last task; its fourth panel is that share, task by task, for that layer.

# %%
fig = routing.static()
plt.show()

# %% [markdown]
# Move the **after task** slider to watch R_old fill up; pick another block or projection to see whether every
# layer behaves alike.

# %%
# NBVAL_IGNORE_OUTPUT
routing

# %% [markdown]
# ## 4. Which old tasks does a new update disturb?
#
# Orthogonal routing protects the old route B·R_old·A. It does not stop the new route B·R_delta·A from reading
# the *inputs* that old tasks' images produce. What decides whether an old task is forgotten is how much the
# new update changes the layer's output **on old tasks' inputs**:
#
# interference(t, j) = ‖ΔW_t X_j‖ / ‖W_{t−1} X_j‖,
#
# with X_j the inputs that task j's test images produce at that layer, in the backbone as it was before task t.
# Row t of the matrix is task t's update; column j ≤ t is whose inputs it disturbs. The diagonal is the task's
# effect on its own inputs, the cells below it the effect on older tasks.
#
# **What to look for.** Compare the mean below the diagonal across methods, then compare that ordering with
# the forgetting column of the table in section 1.

# %%
base = vit.build(first.config["backbone"], pretrained=first.config.get("pretrained", True))
images = an.task_images_of(first.config, base, IMAGES_PER_TASK)   # re-reads the benchmark: seconds
interference = InterferenceExplorer(continual, base, images, device=device)
print(f"{len(images)} tasks x {len(images[0])} test images each, shape {tuple(images[0].shape[1:])}")


# %%
# NBVAL_IGNORE_OUTPUT
def below_diagonal(M):
    return float(np.nanmean(M[np.tril_indices(len(M), -1)]))


print(f"{'run':<18}{'interference on older tasks':>28}{'forgetting':>12}{'beyond frozen':>15}")
frozen_f = every["frozen"].results["forgetting"] if "frozen" in every else float("nan")
inter = {}
for name, r in continual.items():
    inter[name] = below_diagonal(an.interference(r, base, images, device)[1])
    f = r.results["forgetting"]
    print(f"{name:<18}{100 * inter[name]:>27.2f}%{f:>11.1f}%{f - frozen_f:>+14.1f}")

# %% [markdown]
# In the stored CI run every update changes old tasks' layer outputs by a few percent at most: `seq_lora` 2.2 %,
# `lora_per_task` 1.3 %, `clora_no_orth` 1.2 %, `clora` 0.16 %, more than ten times less than one shared LoRA.
# Forgetting comes out in the same order: `clora` 2.9, `clora_no_orth` 5.1, `lora_per_task` 7.5, `seq_lora` 10.1
# points, against 4.5 for the frozen backbone. So here the least disturbed backbone forgets least, and the
# penalty's ablation sits between C-LoRA and the plain LoRAs on both counts.
#
# Do not read more into it than that. It is one seed of a 4-task run; a task's test set is 125 images, so one
# image is 0.8 points; and `clora` forgetting *less* than the frozen backbone says its head happened to do better,
# not that its backbone un-forgot anything. Run this section on chapter 04's CPU folder (10 tasks) to see whether
# the ordering holds.

# %%
fig = interference.static()
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
interference

# %% [markdown]
# ## 5. Where is accuracy lost?
#
# Last, the accuracy itself. Pick a task with the slider: its accuracy after each later task, for every method,
# with the frozen backbone (dashed grey) and the joint upper bound (dotted black). Below it, the accuracy
# matrices of methods A and B: row t is after training task t, column j is task j's classes.
#
# **What to look for.** A curve that falls away from the frozen line is a backbone that forgot; a curve that
# falls *with* the frozen line is a head that forgot.

# %%
# NBVAL_IGNORE_OUTPUT
forgetting = ForgettingExplorer(results)
forgetting.b.value = "clora" if "clora" in forgetting.b.options else forgetting.b.value
print("points lost per old task (max over the stream - end), tasks 1..T-1:")
for r in results:
    if r["method"] != "joint":
        print(f"{r['label']:<18}" + "  ".join(f"{v:5.1f}" for v in an.forgetting_per_task(r)))

# %%
fig = forgetting.static()
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
forgetting

# %% [markdown]
# ## 6. Change one knob
#
# Each exercise changes one setting of C-LoRA, asks you to predict a picture, reruns C-LoRA alone with that
# setting (into its own folder, the other settings as in the runs above) and puts it beside the original. The
# helper below does the rerun; at CI size it takes seconds, at the CPU scale a minute or two. The solutions quote
# what we measured when we ran each exercise at this notebook's CI size (one seed): predict before you read them.

# %%
KNOBS = Path(tempfile.mkdtemp(prefix="clora_ch05_knobs_")) if SMOKE else RUNS.parent / "ch05_knobs"
clora_cfg = Config.from_dict(every["clora"].config) if "clora" in every else Config(**OWN)


def rerun(**knobs):
    """Train C-LoRA with `knobs` changed (e.g. lambda_orth=0.0); return its analysis.Run."""
    name = "clora_" + "_".join(f"{k}={v}" for k, v in knobs.items())
    cfg = dataclasses.replace(clora_cfg, method="clora", device=device, **knobs)
    run(cfg, KNOBS / name, progress=False, log=lambda s: None)
    return an.load_run(KNOBS / name, name)


print("reruns go to", "a temporary folder" if SMOKE else KNOBS)

# %% [markdown]
# **Exercise 1 — `orth_side`.** The kit penalises both sides of R_delta; third-party restatements of the paper
# give only the left side. Predict: with `orth_side="left"`, which of the two share curves in the routing figure
# (left, right) stays low and which rises? Then run
#
# ```python
# left = rerun(orth_side="left")
# RoutingExplorer({"clora": continual["clora"], "left only": left})
# ```
#
# <details><summary>Solution</summary>
#
# Only the penalised side is pushed out of R_old's kept subspace: the **left** share (U_oldᵀ R_delta) stays low,
# the **right** share (R_delta V_old) is free and rises to the level `clora_no_orth` shows. When we ran this
# exercise at this notebook's CI size (one seed): left 16 %, right 70 % (mean over tasks 2–4 and layers), against
# 41 % and 47 % for `clora`. Chapter 02 shows why one side is not enough: with the stop-gradient, the old route
# B·R_old·A stays exactly unchanged only if both R_deltaᵀR_old = 0 and R_old R_deltaᵀ = 0. Its accuracy
# (`left.results`) hardly differed at this size (forgetting 3.5 against 2.9 points: a few test images).
# </details>
#
# **Exercise 2 — `lambda_orth`.** Section 3 showed C-LoRA's routing share well above 0. Predict, for
# `lambda_orth=1000` (ten times the default): the routing share, and the interference on older tasks, relative to
# `clora` and `clora_no_orth`. Then run `strong = rerun(lambda_orth=1000.0)`, and look at
# `RoutingExplorer({"clora": continual["clora"], "λ=1000": strong})` and
# `InterferenceExplorer({"clora": continual["clora"], "λ=1000": strong}, base, images)`.
#
# <details><summary>Solution</summary>
#
# The natural guess, "ten times the penalty, a much smaller share", is not what we measured at the CI size: the
# share stayed at 42 % / 50 % (left / right; `clora` 41 % / 47 %) and the interference at 0.15 % (`clora` 0.16 %).
# Why: R_delta starts at 0 and the penalty's gradient, 2λ·U_old U_oldᵀ R_delta (and its right twin), is
# proportional to R_delta itself, so it is weak while R_delta is small; AdamW then scales each coordinate's step
# to about the learning rate whatever λ is, and 15 steps per task leave R_delta small. Turning λ from 0 to 100
# matters (section 3); from 100 to 1000, at this size, hardly. Longer tasks (chapter 04's CPU scale) give the
# penalty more steps to act: try it there.
# </details>
#
# **Exercise 3 — `detach_old`.** Without the stop-gradient (`detach_old=False`), A and B also receive gradient
# through the old route. Predict which figure moves most: overlap, routing or interference? Run
# `free = rerun(detach_old=False)` and compare it with `clora` in the overlap and interference explorers.
#
# <details><summary>Solution</summary>
#
# The routing penalty still acts, so the routing figure changes little (we measured shares of 42 % / 50 %). What
# changes is how far the shared A and B travel: with the old route's gradient flowing into them, B's span moves
# more from task to task, so the column-space overlap between tasks drops (0.77 against 0.85), and the old route
# B·R_old·A itself drifts, which shows as interference on older tasks about twice `clora`'s (0.31 % against
# 0.16 %); forgetting was 5.1 against 2.9 points. Lower overlap here is *not* better: it means the directions old
# tasks rely on moved.
# </details>
#
# **Exercise 4 — `rank`.** Predict C-LoRA's column-space overlap at `rank=2` and at `rank=16`, and the random
# level k/d for each (k = the rank, d = the layer width, 128 for `vit_tiny`). Run `r2 = rerun(rank=2)` and
# `r16 = rerun(rank=16)`, and build `OverlapExplorer({"rank 2": r2}, k=2)` and `OverlapExplorer({"rank 16": r16}, k=16)`.
#
# <details><summary>Solution</summary>
#
# All of C-LoRA's tasks share span(B), whatever the rank, so its overlap stays high at both ranks (we measured
# 0.95 at rank 2, 0.84 at rank 16), while the random level moves from 2/128 ≈ 0.02 to 16/128 ≈ 0.13. What grows
# with the rank is the room *inside* span(B): R is r × r, so there are more directions for a new task's routing
# outside R_old's kept subspaces. At rank 2, R_old's effective rank after task 4 was 1.6 and R_delta's share
# inside it 63–66 %: no room left to be orthogonal in. At rank 16: effective rank 8.9, share 24–28 %.
# </details>
#
# **Exercise 5 — `orth_energy`.** `orth_energy` is the share of R_old's energy whose singular directions the
# penalty protects. Predict the routing share and R_old's effective rank after the last task for `orth_energy=0.5`
# and `0.99`. Run both and compare them in the routing explorer.
#
# <details><summary>Solution</summary>
#
# The share is measured against each run's own kept subspace, so it mostly tracks how big that subspace is: with
# 0.5 only R_old's leading direction or two are kept, and the share fell to 5–7 %; with 0.99 nearly every direction
# R_old uses is kept, and it rose to 64–70 %. Compare the share with its random level (kept dimensions / r), not
# across runs. R_old's effective rank after task 4 hardly moved (5.2 and 5.1, against 5.1 for 0.95): at this size
# the tasks are too short for the protected set to change where the routing goes. Accuracy did not separate
# either (forgetting 3.5 and 3.7 points).
# </details>

# %% [markdown]
# ## Summary
#
# - **Overlap:** C-LoRA's tasks write to almost the same output directions (high column-space overlap), because
#   all of them share B. That is by design; a stack of per-task LoRAs sits near the random level k/d instead.
# - **Routing:** C-LoRA separates tasks inside the r × r routing matrix: the penalty keeps each new R_delta mostly
#   out of the directions R_old already uses, which `clora_no_orth` does not.
# - **Interference:** the change a new update makes on old tasks' inputs is the quantity that decides forgetting.
#   In the stored CI run C-LoRA's is more than ten times smaller than one shared LoRA's, and the four methods'
#   forgetting comes out in the same order as their interference (one seed, a small run).
# - **Forgetting:** read it against the frozen line. Only what lies beyond it is the backbone's doing.
# - **Low interference is not headroom.** Little interference buys little forgetting, but not accuracy above the
#   frozen backbone: in the kit's headroom study (chapter 04, section 7; docs/headroom_study.md) the paper's C-LoRA stays within
#   about 1 point of the frozen backbone on all four protocols (at most +0.06 of the gap). What takes part of the
#   headroom (on `synthetic_inverted`, and on Fashion-MNIST with a 4-class first task or 1000 images per class) is
#   a first-task warm start with drift-compensated head alignment, and it helps one shared LoRA at least as much
#   as C-LoRA (0.51 vs 0.29, 0.31 vs 0.27 and 0.42 vs 0.36 of the gap, with overlapping spreads over seeds).
#   Where C-LoRA's protection shows is forgetting with many steps per task: with 1000 images per class one shared
#   LoRA with the warm start forgets 12.2 points, C-LoRA with it 9.7. Use the explorers on such runs (`compare(["clora_warm_drift", "seq_lora_warm_drift"], ...)`): in
#   `clora_warm_drift`'s tuning run on inverted (seed 0) the first task's update B R_delta A has Frobenius norm 13.8 (summed
#   over layers) and every later task's 0.011–0.015.
#
# All other numbers in this notebook are from the CI-sized run the banner names: 4 tasks, 20 classes, 3 epochs, one
# seed. They illustrate the views; they are not a benchmark result. Point `RUNS` at chapter 04's CPU or GPU
# folder for numbers worth quoting.
#
# ## References
#
# - X. Zhang, L. Bai, X. Yang, J. Liang. *C-LoRA: Continual Low-Rank Adaptation for Pre-trained Models.*
#   arXiv:2502.17920, 2025.
# - E. J. Hu et al. *LoRA: Low-Rank Adaptation of Large Language Models.* ICLR 2022.
# - Y.-S. Liang, W.-J. Li. *InfLoRA: Interference-Free Low-Rank Adaptation for Continual Learning.* CVPR 2024
#   (designs the down-projection from old tasks' inputs, the side routing-orthogonality leaves open).
# - G. Zhang et al. *SLCA: Slow Learner with Classifier Alignment for Continual Learning on a Pre-trained Model.*
#   ICCV 2023 (the head alignment every method here uses).
# - O. Roy, M. Vetterli. *The effective rank: a measure of effective dimensionality.* EUSIPCO 2007.
# - A. Björck, G. H. Golub. *Numerical methods for computing angles between linear subspaces.* Math. Comp. 1973
#   (principal angles).

# %%
print("all cells ran")

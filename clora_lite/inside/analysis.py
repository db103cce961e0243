"""Looking inside a continual run: what each task's update did to the weights, and to old tasks' features.

Everything here reads *snapshots*: one flat dict {"<layer>.<tensor>" -> tensor} per task holding every adapter's
declared tensors (`adapters.snapshot`), taken right after training task t and before end_task (so for
C-LoRA R_delta is task t's routing and R_old that of tasks < t). A run folder stores them as
OUT/adapters/task_XX.pt; in a notebook, `snapshot(learner)` takes one from a model in memory. A layer is named
by its prefix, e.g. "backbone.blocks.0.attn.q" (d_out, d_in are that Linear's shapes, r the adapter rank).

Definitions used throughout (all stated here once):
- cumulative update C_t (d_out, d_in): what the adapters add to W0 after task t. Each adapter layer class
  declares how its tensors make its update (`update_from`); for a method whose learner folds each task's
  adapter into W0 (`folds_into_base`: lora_per_task, InfLoRA) C_t is the sum of the snapshots' updates, for the
  others it is what snapshot t holds. The per-task update is dW_t = C_t - C_{t-1} (C_{-1} = 0).
- effective rank: exp of the Shannon entropy of the normalised singular values p_i = sigma_i / sum_j sigma_j
  (Roy & Vetterli 2007): k for k equal singular values, between 1 and k otherwise, 0 for the zero matrix.
- subspace overlap of two updates: the mean of cos^2 of the principal angles between their top-k column
  spaces (side="col", output directions) or row spaces (side="row", input directions) = ||U1^T U2||_F^2 / k.
  1 = same subspace, 0 = orthogonal; two random k-dim subspaces of R^d give about k / d.
- routing share: the fraction of R_delta's energy inside R_old's kept subspaces (the leading singular vectors of
  R_old holding `orth_energy` of its energy, clora.energy_basis): left ||U^T R_delta||^2 / ||R_delta||^2, right
  ||R_delta V||^2 / ||R_delta||^2. This is what C-LoRA's orthogonality penalty drives to 0.
- interference of task t on task j <= t at one layer: ||dW_t X_j^T||_F / ||W_{t-1} X_j^T||_F, where X_j (tokens,
  d_in) are that layer's inputs for task j's images in the backbone as it was before task t (W0 + C_{t-1} in
  every adapted layer), and W_{t-1} = W0 + C_{t-1} (bias left out). The relative change task t makes to the
  layer's output on old inputs, which routing-side orthogonality does not control directly. It mixes the
  update's size with its selectivity; `selectivity` separates them.
- selectivity of task t's update: mean_{j<t} interference(t, j) / interference(t, t), its effect on older
  tasks' inputs relative to its effect on its own task's inputs. 1: old inputs are changed as much as the new
  task's (the update is not selective, only its size matters); 0: old inputs are left alone.
"""
import copy
from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import NamedTuple
import warnings

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..adapters import energy_basis, snapshot  # noqa: F401  (snapshot: re-exported for notebooks)
from ..continual.config import Config, load_benchmark
from ..methods import METHODS


class LowRank(NamedTuple):
    """An update held as factors, dW = L @ R with L (d_out, m), R (m, d_in) and m small (a few times r), so a
    ViT-B/16's per-task updates stay megabytes, not gigabytes, and their SVDs cost O(d m^2), not O(d^3)."""
    L: torch.Tensor
    R: torch.Tensor

    def dense(self) -> torch.Tensor:
        """(d_out, d_in)."""
        return self.L @ self.R

    def __sub__(self, other: "LowRank") -> "LowRank":
        return LowRank(torch.cat([self.L, -other.L], 1), torch.cat([self.R, other.R], 0))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., d_in) -> dW x, (..., d_out)."""
        return F.linear(F.linear(x, self.R.to(x)), self.L.to(x))


def svd(M) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD (U (d_out, q), s (q,), Vh (q, d_in)) of a dense matrix or a LowRank, in float64.
    For L @ R: L = Q_l T_l, R^T = Q_r T_r (QR), then the small core T_l T_r^T gives the SVD exactly."""
    if not isinstance(M, LowRank):
        return torch.linalg.svd(M.double(), full_matrices=False)
    Ql, Tl = torch.linalg.qr(M.L.double())
    Qr, Tr = torch.linalg.qr(M.R.double().T)
    u, s, vh = torch.linalg.svd(Tl @ Tr.T)
    return Ql @ u, s, vh @ Qr.T


@dataclass
class Run:
    """The per-task adapter snapshots of one run, and what is needed to read them."""
    method: str
    scale: float                      # s = alpha / r
    snapshots: list                   # T flat dicts {name -> tensor}, one per task
    config: dict = field(default_factory=dict)
    results: dict | None = None       # results.json, if any
    name: str = ""                    # a label for figures (the folder name, say)

    @classmethod
    def from_config(cls, config: dict, snapshots: list, results: dict | None = None, name: str = "") -> "Run":
        """config: Config.to_dict() (method, rank, alpha: None means alpha = rank, so scale 1)."""
        alpha = config.get("alpha")
        scale = 1.0 if alpha is None else alpha / config["rank"]
        return cls(config["method"], scale, snapshots, config, results, name or config["method"])

    @property
    def layers(self) -> list[str]:
        """Names of the adapted layers, in model order ("backbone.blocks.0.attn.q", ...)."""
        if not self.snapshots:
            return []
        return list(dict.fromkeys(n.rsplit(".", 1)[0] for n in self.snapshots[0] if n.endswith(".lora_A")))

    @property
    def num_tasks(self) -> int:
        return len(self.snapshots)

    @property
    def learner(self):
        """The method's Learner class: it declares the adapter layer class and whether updates add up."""
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} is not allowed: use one of {', '.join(METHODS)}")
        return METHODS[self.method]

    def update(self, t: int, layer: str) -> "LowRank":
        """The update snapshot t holds at `layer`, in float64, from the layer class's own `update_from`."""
        snap, prefix = self.snapshots[t], layer + "."
        tensors = {k[len(prefix):]: v.double() for k, v in snap.items() if k.startswith(prefix)}
        scale = float(tensors.pop("scale", self.scale))   # snapshots of older versions hold no scale
        if self.learner.layer is None:
            raise ValueError(f"method={self.method!r} has no adapter layers: its runs have no updates to read")
        return LowRank(*self.learner.layer.update_from(tensors, scale))


def load_run(path, name: str = "") -> Run:
    """Read a run folder: config.json, results.json (if there) and adapters/task_XX.pt (in task order)."""
    path = Path(path)
    config = json.loads((path / "config.json").read_text())
    results = json.loads((path / "results.json").read_text()) if (path / "results.json").exists() else None
    files = sorted((path / "adapters").glob("task_*.pt"))
    snaps = [torch.load(f, map_location="cpu", weights_only=True) for f in files]
    name = name or path.name
    if results is not None:
        results.setdefault("label", name)   # figures name a run by its folder (ablations share a method)
    return Run.from_config(config, snaps, results, name)


def load_runs(out) -> dict:
    """{folder name -> Run} for every run folder right under `out` (a compare or demo folder: OUT/<name>/)."""
    return {p.name: load_run(p) for p in sorted(Path(out).iterdir()) if (p / "config.json").exists()}


def has_adapters(run: Run) -> bool:
    return run.method in METHODS and run.learner.layer is not None and bool(run.layers)


# ---------- updates ----------

def cumulative_update(run: Run, t: int) -> dict:
    """{layer -> C_t as a LowRank (d_out, d_in)}: everything the adapters add to W0 after task t ({} for t < 0)."""
    if t < 0:
        return {}
    if not run.learner.folds_into_base:
        return {L: run.update(t, L) for L in run.layers}
    parts = [[run.update(i, L) for i in range(t + 1)] for L in run.layers]
    return {L: LowRank(torch.cat([p.L for p in ps], 1), torch.cat([p.R for p in ps], 0))
            for L, ps in zip(run.layers, parts)}


def task_updates(run: Run) -> list[dict]:
    """[ {layer -> dW_t as a LowRank (d_out, d_in)} for t in 0..T-1 ], dW_t = C_t - C_{t-1}, in float64."""
    if run.learner.folds_into_base:
        return [{L: run.update(t, L) for L in run.layers} for t in range(run.num_tasks)]
    cum = [cumulative_update(run, t) for t in range(run.num_tasks)]
    return [{L: c[L] - cum[t - 1][L] if t else c[L] for L in c} for t, c in enumerate(cum)]


def effective_rank(M) -> float:
    """exp(entropy of sigma_i / sum sigma) of a matrix M (m, n), dense or LowRank; 0 for M = 0."""
    s = svd(M)[1]
    if s.sum() <= 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def top_basis(M, k: int, side: str = "col", rtol: float = 1e-8) -> torch.Tensor:
    """Orthonormal basis of the span of M's (dense or LowRank, (m, n)) top-k left (side="col": (m, k')) or right
    (side="row": (n, k')) singular vectors; k' = min(k, numerical rank): a zero matrix gives an empty basis."""
    U, s, Vh = svd(M)
    k = min(k, int((s > rtol * s[0]).sum()) if len(s) and s[0] > 0 else 0)
    return U[:, :k] if side == "col" else Vh[:k].T


def subspace_overlap(U1: torch.Tensor, U2: torch.Tensor) -> float:
    """Mean cos^2 of the principal angles between span(U1) (d, k1) and span(U2) (d, k2), both orthonormal:
    ||U1^T U2||_F^2 / min(k1, k2). NaN if either is empty."""
    k = min(U1.shape[1], U2.shape[1])
    if k == 0:
        return float("nan")
    return float((U1.T @ U2).pow(2).sum() / k)


def overlap_matrix(updates: list[dict], k: int = 4, side: str = "col") -> tuple[dict, np.ndarray]:
    """updates: [ {layer -> dW_t (d_out, d_in), dense or LowRank} ] (T tasks). Returns ({layer -> (T, T)
    overlap}, (T, T) mean over layers, NaN-aware). Entry [t, u] is the overlap of task t's and task u's top-k subspaces (1 on the diagonal)."""
    if side not in ("col", "row"):
        raise ValueError(f"side={side!r} is not allowed: use 'col' or 'row'")
    T = len(updates)
    per_layer = {}
    for L in (updates[0] if updates else {}):
        bases = [top_basis(u[L], k, side) for u in updates]
        per_layer[L] = np.array([[subspace_overlap(bases[a], bases[b]) for b in range(T)] for a in range(T)])
    return per_layer, _mean_over_layers(per_layer, (T, T))


def _mean_over_layers(per_layer: dict, shape) -> np.ndarray:
    if not per_layer:
        return np.full(shape, np.nan)
    stack = np.stack(list(per_layer.values()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a cell NaN in every layer stays NaN, quietly
        return np.nanmean(stack, 0)


def mean_offdiag(M: np.ndarray) -> float:
    """Mean of the off-diagonal entries of a square matrix (NaN ignored): e.g. overlap between different tasks."""
    mask = ~np.eye(len(M), dtype=bool)
    vals = M[mask]
    vals = vals[~np.isnan(vals)]
    return float(vals.mean()) if len(vals) else float("nan")


# ---------- routing weights (C-LoRA) ----------

def routing_share(R_old: torch.Tensor, R_delta: torch.Tensor, energy: float = 0.95) -> tuple[float, float]:
    """(left, right) share of ||R_delta||_F^2 inside R_old's kept left / right singular subspaces, R (r, r).
    NaN when R_old = 0 (nothing kept yet) or R_delta = 0."""
    U, V = energy_basis(R_old.double(), energy)
    total = R_delta.double().pow(2).sum()
    if U.shape[1] == 0 or total <= 0:
        return float("nan"), float("nan")
    D = R_delta.double()
    return float((U.T @ D).pow(2).sum() / total), float((D @ V).pow(2).sum() / total)


def routing_history(run: Run, energy: float | None = None) -> dict:
    """For each adapted layer of a C-LoRA run, the routing matrices after every task, as numpy arrays:
    {layer -> {"R_old": (T, r, r), "R_delta": (T, r, r), "sv_old": (T, r), "sv_delta": (T, r),
               "erank_old": (T,), "erank_delta": (T,), "share_left": (T,), "share_right": (T,),
               "kept": (T,), "size": (T,)}}.
    kept: how many singular directions of R_old are kept (0 while R_old = 0): a random R_delta would put
    kept / r of its energy inside them, the chance level of the shares. size: ||R_delta||_F / ||R_old||_F (NaN
    while R_old = 0), because the penalty, quadratic in R_delta, can be lowered by shrinking R_delta as well
    as by turning it. energy: R_old's kept energy fraction (default: the run's orth_energy, else 0.95)."""
    if not run.layers or f"{run.layers[0]}.R_old" not in run.snapshots[0]:
        raise ValueError(f"method={run.method!r} has no routing matrices: routing weights exist for C-LoRA runs")
    energy = energy or run.config.get("orth_energy", 0.95)
    out = {}
    for L in run.layers:
        old = [s[f"{L}.R_old"].double() for s in run.snapshots]
        new = [s[f"{L}.R_delta"].double() for s in run.snapshots]
        shares = np.array([routing_share(o, d, energy) for o, d in zip(old, new)])
        out[L] = {"R_old": torch.stack(old).numpy(), "R_delta": torch.stack(new).numpy(),
                  "sv_old": torch.stack([torch.linalg.svdvals(o) for o in old]).numpy(),
                  "sv_delta": torch.stack([torch.linalg.svdvals(d) for d in new]).numpy(),
                  "erank_old": np.array([effective_rank(o) for o in old]),
                  "erank_delta": np.array([effective_rank(d) for d in new]),
                  "share_left": shares[:, 0], "share_right": shares[:, 1],
                  "kept": np.array([energy_basis(o, energy)[0].shape[1] for o in old]),
                  "size": np.array([float(d.norm() / o.norm()) if o.norm() > 0 else np.nan for o, d in zip(old, new)])}
    return out


# ---------- interference on old tasks' inputs ----------

def module_name(layer: str) -> str:
    """Snapshot layer name -> the name of that Linear inside a bare backbone ("backbone.blocks.0.attn.q" ->
    "blocks.0.attn.q"): snapshots come from the Learner, whose backbone sits under "backbone."."""
    return layer.removeprefix("backbone.")


@torch.no_grad()
def backbone_at(base: nn.Module, update: dict) -> nn.Module:
    """A copy of the plain backbone `base` (adapted layers are nn.Linear holding W0) with W0 + C added to
    each layer named in `update` {layer -> C (d_out, d_in), dense or LowRank}."""
    model = copy.deepcopy(base)
    for L, C in update.items():
        lin = model.get_submodule(module_name(L))
        lin.weight += (C.dense() if isinstance(C, LowRank) else C).to(lin.weight)
    return model


@torch.no_grad()
def update_norms(model: nn.Module, images: torch.Tensor, updates: dict, batch: int = 256) -> tuple[dict, dict]:
    """Run `images` (N, 3, H, W), prepared for `model`, through `model`; at each layer L of `updates`
    {layer -> dW (d_out, d_in), dense or LowRank} sum ||dW x||^2 and ||W x||^2 over every token x it reads.
    Returns ({layer -> sum ||dW x||^2}, {layer -> sum ||W x||^2}) as floats. Hooks only: no inputs are stored."""
    num, den = dict.fromkeys(updates, 0.0), dict.fromkeys(updates, 0.0)
    hooks = []
    for L, dW in updates.items():
        lin = model.get_submodule(module_name(L))
        apply = dW.apply if isinstance(dW, LowRank) else lambda x, dW=dW: F.linear(x, dW.to(x))

        def hook(mod, inp, out, L=L, apply=apply):
            num[L] += float(apply(inp[0]).double().pow(2).sum())
            wx = out - mod.bias if mod.bias is not None else out   # W x, the layer's output without its bias
            den[L] += float(wx.double().pow(2).sum())
        hooks.append(lin.register_forward_hook(hook))
    try:
        for chunk in images.split(batch):
            model(chunk)
    finally:
        for h in hooks:
            h.remove()
    return num, den


def interference(run: Run, base: nn.Module, images: list, device="cpu") -> tuple[dict, np.ndarray]:
    """How much task t's update changes the layer outputs on task j's inputs, for j <= t.

    base: the plain pre-trained backbone (W0 in every adapted layer, e.g. vit.build(name, pretrained=True));
    images: T tensors (n_j, 3, H, W), task j's test images, already prepared (normalised) for `base`.
    Returns ({layer -> (T, T) ratio ||dW_t X_j|| / ||W_{t-1} X_j||}, (T, T) mean over layers); NaN for j > t.
    Row t is measured in the backbone as it was before task t (W0 + C_{t-1}): the state task t's update disturbs."""
    T, ups = run.num_tasks, task_updates(run)
    per_layer = {L: np.full((T, T), np.nan) for L in run.layers}
    base = base.to(device).eval()
    for t in range(T):
        model = backbone_at(base, cumulative_update(run, t - 1))
        for j in range(t + 1):
            num, den = update_norms(model, images[j].to(device), ups[t])
            for L in run.layers:
                per_layer[L][t, j] = np.sqrt(num[L] / den[L]) if den[L] > 0 else np.nan
    return per_layer, _mean_over_layers(per_layer, (T, T))


def selectivity(M: np.ndarray) -> np.ndarray:
    """M: (T, T) interference (row t = task t's update, column j <= t = whose inputs). Returns (T,): for t >= 1
    the mean of row t's finite entries left of the diagonal divided by M[t, t]; NaN for t = 0 (no older task),
    for M[t, t] = 0 (the update did nothing to its own inputs) and where nothing is finite."""
    M = np.asarray(M, float)
    out = np.full(len(M), np.nan)
    for t in range(1, len(M)):
        old = M[t, :t][np.isfinite(M[t, :t])]
        if len(old) and np.isfinite(M[t, t]) and M[t, t] > 0:
            out[t] = old.mean() / M[t, t]
    return out


def task_images(bench, base: nn.Module, per_task: int = 32) -> list:
    """[ (n, 3, H, W) float ] for each task: `per_task` of its test images, evenly spaced over the split (so
    every class shows up), prepared for the backbone `base` (its .prepare: resize and normalise)."""
    out = []
    for t in range(len(bench.tasks)):
        x, _ = bench.split(t, part="test")
        idx = torch.linspace(0, len(x) - 1, min(per_task, len(x))).long()
        out.append(base.prepare(x[idx].cpu()))
    return out


def task_images_of(config: dict, base: nn.Module, per_task: int = 32) -> list:
    """task_images for the benchmark a run's config.json names (re-reads the benchmark: seconds to minutes)."""
    return task_images(load_benchmark(Config.from_saved(config)), base, per_task)


# ---------- accuracy and forgetting (results.json) ----------

def acc_matrix(results: dict) -> np.ndarray:
    """results["acc_matrix"] (T ragged rows, row t = accuracy (%) on tasks 0..t after task t) -> (T, T) array,
    NaN above the diagonal. Column j is task j's accuracy curve over the stream."""
    R = results["acc_matrix"]
    T = max(len(r) for r in R)
    out = np.full((len(R), T), np.nan)
    for i, row in enumerate(R):
        out[i, :len(row)] = row
    return out


def forgetting_per_task(results: dict) -> np.ndarray:
    """(T-1,) points lost per task j < T-1: max_{j<=t<T-1} acc[t][j] - acc[T-1][j] (metrics.forgetting's terms)."""
    M = acc_matrix(results)
    T = len(M)
    return np.array([np.nanmax(M[j:T - 1, j]) - M[T - 1, j] for j in range(T - 1)])


# ---------- storage ----------

def layer_shapes(run: Run) -> list[tuple[int, int]]:
    """(d_out, d_in) of every adapted layer of a run, read off its first snapshot's lora_B and lora_A."""
    s = run.snapshots[0]
    return [(s[f"{L}.lora_B"].shape[0], s[f"{L}.lora_A"].shape[1]) for L in run.layers]


def stored_adapter_params(shapes: list, rank: int, tasks: int) -> dict:
    """Adapter numbers kept after 1..`tasks` tasks, as (tasks,) arrays: "clora": one A, B and r x r routing per
    layer, flat; "lora_per_task": one A, B per layer per task if the adapters are kept apart (to reweight or drop
    one), growing linearly (summed with fixed weights they fold into W0 instead and cost nothing to serve: that is
    how the kit runs lora_per_task, and `Learner.stored_params` counts it so); "seq_lora": one A, B per layer
    (flat, but it keeps no earlier task). shapes: [(d_out, d_in)]."""
    lora = sum(rank * (d_in + d_out) for d_out, d_in in shapes)
    n = np.arange(1, tasks + 1)
    return {"clora": np.full(tasks, lora + rank * rank * len(shapes)), "lora_per_task": lora * n,
            "seq_lora": np.full(tasks, lora)}

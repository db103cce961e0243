"""Figures of what happens inside the adapters (the quantities of analysis.py): subspace overlap between tasks'
updates, C-LoRA's routing matrices, interference of new updates with old tasks' inputs. Plotly figures for the
explorers, matplotlib twins for the PNGs, and `save_inside_figures` for a comparison folder.

Every function takes named matrices {method label -> array} so two (or more) methods sit side by side with one
colour scale (routing matrices excepted: each on its own). Tasks are numbered from 1 on every axis.
"""
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

from . import analysis as an
from .plots import heatmap, imshow, method_color, plot_params, side_by_side, task_ticks

if TYPE_CHECKING:   # for annotations only: plotly is imported where a plotly figure is made
    import plotly.graph_objects as go

OVERLAP_CBAR = "mean cos² of principal angles (0–1)"
INTERFERENCE_CBAR = "‖ΔW_t X_j‖ / ‖W X_j‖ (%)"
SIDES = {"col": "column spaces (output directions)", "row": "row spaces (input directions)"}
SV_COLORS = {"R_old": "#555555", "R_delta": "#f4a582"}   # not method colours: these bars are matrices, not methods


def _finite_max(mats, floor=1e-12) -> float:
    vals = np.concatenate([np.ravel(m) for m in mats])
    vals = vals[np.isfinite(vals)]
    return float(max(vals.max(), floor)) if len(vals) else 1.0


# ---------- overlap ----------

def overlap_figure(matrices: dict, side: str = "col", chance: float | None = None) -> "go.Figure":
    """matrices: {method -> (T, T) overlap of tasks' updates}, heatmaps side by side (plotly). The subplot titles
    give the mean over pairs of different tasks; `chance` (k / d) is what random subspaces would give."""
    fig = side_by_side(len(matrices), [f"{n}: mean between tasks {an.mean_offdiag(M):.2f}" for n, M in matrices.items()])
    for i, M in enumerate(matrices.values(), 1):
        fig.add_trace(heatmap(M, OVERLAP_CBAR, 0, 1, showscale=i == 1), 1, i)
        fig.update_xaxes(title_text="task u (its update)", **task_ticks(len(M)), row=1, col=i)
        fig.update_yaxes(title_text="task t (its update)", autorange="reversed", **task_ticks(len(M)), row=1, col=i)
    note = f" · random subspaces ≈ {chance:.2f}" if chance is not None else ""
    fig.update_layout(title=f"Overlap of tasks' updates: {SIDES[side]}{note}")
    return fig


def plot_overlap(by_side: dict, chance: dict | None = None):
    """by_side: {"col"|"row" -> {method -> (T, T)}}: one row of heatmaps per side (matplotlib Figure)."""
    names = list(next(iter(by_side.values())))
    fig, axes = plt.subplots(len(by_side), len(names), figsize=(4.3 * len(names), 3.7 * len(by_side)), squeeze=False)
    for row, (side, mats) in zip(axes, by_side.items()):
        for ax, (name, M) in zip(row, mats.items()):
            im = imshow(ax, M, OVERLAP_CBAR, 0, 1)
            if chance and side in chance:   # the random level, marked on the colour scale
                im.colorbar.ax.axhline(chance[side], color="w", lw=2, ls="--")
            ax.set_title(f"{name}: {side} spaces, mean off-diag {an.mean_offdiag(M):.2f}", fontsize=9)
            ax.set_xlabel("task u (its update)")
            ax.set_ylabel("task t (its update)")
    note = f"\n(random subspaces ≈ {', '.join(f'{v:.2f}' for v in chance.values())}: dashed on the colour bar)" if chance else ""
    fig.suptitle("Overlap of different tasks' updates, mean over adapted layers" + note, fontsize=10)
    fig.tight_layout()
    return fig


def plot_overlap_summary(by_side: dict, chance: dict):
    """by_side: {"col"|"row" -> {method -> (T, T) overlap}}, chance: {side -> k / d}. One panel per side: each
    method's mean overlap between different tasks as a bar in its colour, the random level dashed. Returns the
    Figure."""
    fig, axes = plt.subplots(1, len(by_side), figsize=(5.2 * len(by_side), 3.6), squeeze=False)
    for ax, (side, mats) in zip(axes[0], by_side.items()):
        names = list(mats)
        vals = [an.mean_offdiag(M) for M in mats.values()]
        ax.bar(range(len(names)), vals, color=[method_color(n) for n in names])
        for i, v in enumerate(vals):
            ax.text(i, v + 0.02, f"{v:.2f}", ha="center", fontsize=8)
        ax.axhline(chance[side], color="k", ls="--", lw=1, label=f"random subspaces, k/d = {chance[side]:.2f}")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set(ylim=(0, 1.08), ylabel="mean cos² of principal angles", title=SIDES[side])
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Overlap between different tasks' updates (mean over pairs and adapted layers)", fontsize=10)
    fig.tight_layout()
    return fig


# ---------- routing ----------

def _share(h: dict, t: int) -> str:
    shares = [v for v in (h["share_left"][t], h["share_right"][t]) if not np.isnan(v)]   # NaN: no old subspace yet
    if not shares:
        return "–"
    chance = f" (random {100 * h['kept'][t] / h['R_old'].shape[1]:.0f} %)" if "kept" in h else ""
    return f"{100 * np.mean(shares):.0f} %{chance}"


def _limit(M: np.ndarray) -> float:
    """The half-range of a symmetric colour scale for M; 1 for an all-zero M (R_old before the first task
    ends), whose scale would otherwise read ±1e-12."""
    lim = _finite_max([np.abs(M)], floor=0.0)
    return lim if lim > 0 else 1.0


def _routing_title(h: dict, t: int) -> str:
    size = f", ‖R_delta‖ / ‖R_old‖ {100 * h['size'][t]:.0f} %" if "size" in h and np.isfinite(h["size"][t]) else ""
    return (f"eff. rank R_old {h['erank_old'][t]:.1f}, R_delta {h['erank_delta'][t]:.1f}{size}; "
            f"R_delta energy inside R_old's kept subspaces {_share(h, t)}")


def routing_figure(hists: dict, t: int) -> "go.Figure":
    """hists: {method -> one layer's analysis.routing_history entry}. One row per method: R_old and R_delta
    after task t (heatmaps, each on its own symmetric colour scale, effective ranks in their titles) and their
    singular values (bars, titled with the share of R_delta's energy inside R_old's kept subspaces)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    def zero(h, key):
        return " = 0" if not np.any(h[key][t]) else ""
    titles = [s for n, h in hists.items() for s in (
        f"{n}: R_old (tasks < {t + 1}){zero(h, 'R_old')}, eff. rank {h['erank_old'][t]:.1f}",
        f"R_delta (task {t + 1}){zero(h, 'R_delta')}, eff. rank {h['erank_delta'][t]:.1f}",
        f"R_delta inside R_old's: {_share(h, t)}")]   # short: the panel's title must fit its width
    fig = make_subplots(len(hists), 3, subplot_titles=titles, horizontal_spacing=0.16, vertical_spacing=0.22)
    for row, (name, h) in enumerate(hists.items(), 1):
        r = h["R_old"].shape[1]
        for col, key in ((1, "R_old"), (2, "R_delta")):
            # each matrix on its own symmetric scale: a new task's R_delta is often far smaller than R_old
            lim, zero = _limit(h[key][t]), not np.any(h[key][t])
            trace = heatmap(h[key][t], "weight", -lim, lim, "RdBu", 0, fmt=".2g" if r <= 6 else None)
            trace.showscale = not zero   # an all-zero matrix has no scale to show (its title says "= 0")
            cell = fig.get_subplot(row, col)
            trace.colorbar.update(x=cell.xaxis.domain[1] + 0.005, y=sum(cell.yaxis.domain) / 2,
                                  len=cell.yaxis.domain[1] - cell.yaxis.domain[0], thickness=10)
            fig.add_trace(trace, row, col)
            fig.update_xaxes(title_text="column j (from A)", row=row, col=col)
            fig.update_yaxes(title_text="row i (to B)", autorange="reversed", row=row, col=col)
        for key, color in (("sv_old", SV_COLORS["R_old"]), ("sv_delta", SV_COLORS["R_delta"])):
            fig.add_trace(go.Bar(x=np.arange(1, r + 1), y=h[key][t], name=key.replace("sv_", "R_"),
                                 marker_color=color, showlegend=row == 1), row, 3)
        fig.update_xaxes(title_text="singular value index", dtick=1, row=row, col=3)
        fig.update_yaxes(title_text="singular value", row=row, col=3)
    fig.update_annotations(font_size=12)
    fig.update_layout(title=f"Routing matrices after task {t + 1}", barmode="group", height=330 * len(hists) + 60,
                      margin=dict(t=90, l=60, r=30, b=80), legend=dict(orientation="h", y=-0.18, x=1, xanchor="right"))
    return fig


def plot_routing(hists: dict, t: int):
    """matplotlib twin of `routing_figure`, plus, over the tasks, the share of R_delta's energy inside R_old's
    kept subspaces (what the orthogonality penalty fights) with its chance level kept / r, and the size
    ||R_delta|| / ||R_old|| (the other way to lower the penalty). Returns the Figure."""
    # two rows of three panels per method (not five in a row): the figure stays narrow enough for its titles to
    # be read where a notebook shows it scaled to the page width
    grid = plt.subplots(2 * len(hists), 3, figsize=(13, 7.2 * len(hists)), squeeze=False)
    fig, axes = grid[0], [list(grid[1][2 * i]) + list(grid[1][2 * i + 1][:2]) for i in range(len(hists))]
    for i in range(len(hists)):
        grid[1][2 * i + 1][2].remove()
    # one size axis for every row, so a small R_delta looks small next to a large one
    size_top = max(10.0, 1.1 * max(np.nanmax(100 * h["size"], initial=0) for h in hists.values()))
    for row, (name, h) in zip(axes, hists.items()):
        for ax, key, title in ((row[0], "R_old", f"{name}: R_old (tasks < {t + 1})"),
                               (row[1], "R_delta", f"R_delta (task {t + 1})")):
            lim = _limit(h[key][t])   # own symmetric scale, as in routing_figure: the title says how big
            title += " = 0" if not np.any(h[key][t]) else f"\nown colour scale, max |entry| {lim:.2g}"
            imshow(ax, h[key][t], "routing weight", -lim, lim, "RdBu", fmt=None, ticks=False)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # whole indices, not half-steps
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("column j (from A)")
            ax.set_ylabel("row i (to B)")
        r = h["R_old"].shape[1]
        row[2].bar(np.arange(1, r + 1) - 0.2, h["sv_old"][t], 0.4, label="R_old", color=SV_COLORS["R_old"])
        row[2].bar(np.arange(1, r + 1) + 0.2, h["sv_delta"][t], 0.4, label="R_delta", color=SV_COLORS["R_delta"])
        row[2].set(xlabel="singular value index", ylabel="singular value")
        row[2].set_title(_routing_title(h, t).replace("; ", "\n").replace(", ‖", ",\n‖"), fontsize=9)
        row[2].legend(fontsize=8)
        x, color = np.arange(1, len(h["share_left"]) + 1), method_color(name)
        row[3].plot(x, 100 * h["share_left"], "o-", color=color, label="left (U_oldᵀ R_delta)")
        row[3].plot(x, 100 * h["share_right"], "s--", color=color, label="right (R_delta V_old)")
        chance = np.where(h["kept"] > 0, 100 * h["kept"] / h["R_old"].shape[1], np.nan)
        row[3].plot(x, chance, ":", color="k", label="a random R_delta (kept / r)")
        row[3].set(xlabel="task", ylabel="share of ‖R_delta‖² (%)", ylim=(0, 100))
        row[3].set_title(f"{name}: R_delta's energy inside R_old's kept subspaces", fontsize=10)
        row[3].legend(fontsize=8)
        row[4].plot(x, 100 * h["size"], "o-", color=color)
        row[4].set(xlabel="task", ylabel="‖R_delta‖ / ‖R_old‖ (%)", ylim=(0, size_top))
        row[4].set_title("size of the new routing against the old", fontsize=10)
        for ax in row[3:]:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlim(0.7, len(x) + 0.3)
    fig.tight_layout()
    return fig


# ---------- interference ----------

def interference_figure(matrices: dict) -> "go.Figure":
    """matrices: {method -> (T, T) analysis.interference ratio}, shown in percent side by side (plotly): row t,
    column j <= t is how much task t's update changes the layer outputs on task j's inputs."""
    pct = {n: 100 * np.asarray(M, float) for n, M in matrices.items()}
    zmax = _finite_max(pct.values())
    fig = side_by_side(len(pct), [f"{n}: mean on older tasks {_mean_below(M):.1f} %" for n, M in pct.items()])
    for i, M in enumerate(pct.values(), 1):
        fig.add_trace(heatmap(M, INTERFERENCE_CBAR, 0, zmax, "Magma", showscale=i == 1, fmt=".1f"), 1, i)
        fig.update_xaxes(title_text="task j (whose inputs)", **task_ticks(len(M)), row=1, col=i)
        fig.update_yaxes(title_text="task t (whose update)", autorange="reversed", **task_ticks(len(M)), row=1, col=i)
    fig.update_layout(title="Interference: relative change of a layer's output on each task's inputs")
    return fig


def _mean_below(M: np.ndarray) -> float:
    """Mean of the entries strictly below the diagonal (the effect of later tasks on earlier ones)."""
    vals = M[np.tril_indices(len(M), -1)]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if len(vals) else float("nan")


def plot_interference(matrices: dict):
    """matplotlib twin of `interference_figure`. Returns the Figure."""
    pct = {n: 100 * np.asarray(M, float) for n, M in matrices.items()}
    zmax = _finite_max(pct.values())
    fig, axes = plt.subplots(1, len(pct), figsize=(4.3 * len(pct), 3.8), squeeze=False)
    for ax, (name, M) in zip(axes[0], pct.items()):
        imshow(ax, M, INTERFERENCE_CBAR, 0, zmax, "magma", fmt=".1f")
        ax.set_title(f"{name}: older tasks {_mean_below(M):.1f} %", fontsize=9)
        ax.set_xlabel("task j (whose inputs)")
        ax.set_ylabel("task t (whose update)")
    fig.suptitle("Interference ‖ΔW_t X_j‖ / ‖W_{t-1} X_j‖, mean over adapted layers")
    fig.tight_layout()
    return fig


def plot_selectivity(matrices: dict, ax=None):
    """matrices: {method -> (T, T) analysis.interference}. For each method, in its colour, analysis.selectivity
    over tasks 2..T: task t's effect on older tasks' inputs / its effect on its own. 1 (dashed): an update changes
    old inputs as much as its own, so interference is only its size; 0: it leaves old inputs alone. Returns ax."""
    ax = ax or plt.subplots(figsize=(6, 3.8))[1]
    top = 1.2
    for i, (name, M) in enumerate(matrices.items()):
        s = an.selectivity(M)
        ax.plot(np.arange(2, len(s) + 1), s[1:], marker="osD^vP*X"[i % 8], color=method_color(name), label=name)
        top = max(top, 1.1 * np.nanmax(s, initial=0))
    ax.axhline(1, color="k", ls="--", lw=1, label="not selective (old = own)")
    ax.set(xlabel="task t (whose update)", ylabel="effect on older tasks / on task t", ylim=(0, top))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Selectivity: mean below the diagonal / diagonal, per row", fontsize=10)
    return ax


# ---------- a comparison folder ----------

def chance_overlap(run: an.Run, k: int, side: str) -> float:
    """Mean cos² two random k-dim subspaces would share, k / d, d the mean layer dimension on that side."""
    d = np.mean([s[f"{L}.lora_B"].shape[0] if side == "col" else s[f"{L}.lora_A"].shape[1]
                 for s in run.snapshots[:1] for L in run.layers])
    return min(1.0, k / d)


def _save(fig, path: Path, dpi=90) -> Path:
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def save_inside_figures(run_dirs: dict, out: Path, bench=None, per_task: int = 32, k: int | None = None,
                        device="cpu") -> list[Path]:
    """Static PNGs into `out` for the runs in run_dirs {label -> run folder} that have adapter snapshots:
    overlap.png (every such method, column and row spaces), routing.png (C-LoRA-like runs: first adapted layer,
    last task), interference.png (needs the test images: `bench` if given, else the benchmark is re-read from
    the first run's config; `per_task` images per task), stored_params.png. Returns the paths written.
    k: subspace size for the overlap (default: the runs' rank). device: where the interference passes run (the
    run's own device: on a GPU they cost seconds, on a CPU at ViT-B/16 size tens of minutes)."""
    from ..backbone import vit
    out = Path(out)
    runs = {n: an.load_run(p, n) for n, p in run_dirs.items()}
    runs = {n: r for n, r in runs.items() if an.has_adapters(r) and r.num_tasks > 1}
    if not runs:
        return []
    paths, first = [], next(iter(runs.values()))
    k = k or first.config.get("rank", 4)
    updates = {n: an.task_updates(r) for n, r in runs.items()}
    by_side = {s: {n: an.overlap_matrix(u, k, s)[1] for n, u in updates.items()} for s in ("col", "row")}
    chance = {s: chance_overlap(first, k, s) for s in by_side}
    paths.append(_save(plot_overlap(by_side, chance), out / "overlap.png"))
    routed = {n: an.routing_history(r)[r.layers[0]] for n, r in runs.items() if f"{r.layers[0]}.R_old" in r.snapshots[0]}
    if routed:
        paths.append(_save(plot_routing(routed, first.num_tasks - 1), out / "routing.png"))
    base = vit.build(first.config["backbone"], pretrained=first.config.get("pretrained", False))
    images = an.task_images(bench, base, per_task) if bench is not None else an.task_images_of(first.config, base, per_task)
    inter = {n: an.interference(r, base, images, device)[1] for n, r in runs.items()}
    paths.append(_save(plot_interference(inter), out / "interference.png"))
    shapes = an.layer_shapes(first)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    plot_params(an.stored_adapter_params(shapes, first.config.get("rank", 8), max(10, first.num_tasks)), ax)
    fig.tight_layout()
    paths.append(_save(fig, out / "stored_params.png"))
    return paths

"""Figures of accuracy, forgetting and storage: matplotlib for the PNGs a run writes, plotly for the explorers.

Conventions shared with figures.py: tasks are numbered from 1 on every axis; a results dict is a run's
results.json (method, acc_matrix: T ragged rows in percent, seen_acc), optionally with a "label" for the legend.
Wherever accuracies of methods are compared, the frozen backbone (method "frozen") is drawn dashed grey and the
joint upper bound (method "joint", one row holding every task) dotted black, when those results are passed in.
Plotly is imported inside the plotly functions: the PNGs a run writes need matplotlib only.
"""
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

from .analysis import acc_matrix

if TYPE_CHECKING:   # for annotations only: plotly is imported where a plotly figure is made
    import plotly.graph_objects as go

MARKERS = "osD^vP*Xh<>"

# One colour per method in every figure of every chapter, so a learner can follow a method from plot to plot.
# Presets and variants of a method ("clora_no_orth", "clora_warm_drift") take their method's colour unless named.
# Hex codes (matplotlib's tab10 where it has one): matplotlib and plotly both read them; plotly rejects "tab:blue".
METHOD_COLORS = {
    "frozen": "#7f7f7f", "joint": "#000000", "finetune": "#d62728", "seq_lora": "#ff7f0e",
    "lora_per_task": "#8c564b", "clora": "#1f77b4", "clora_no_orth": "#8fbce6", "clora_warm_drift": "#000080",
    "inflora": "#2ca02c", "sdlora": "#9467bd", "first_session": "#bcbd22", "ncm": "#17becf",
    "seq_lora_warm_drift": "#b35900", "clora_no_stopgrad": "#006d77", "clora_left": "#d4a017",
}
OTHER_COLOR = "#e377c2"   # a name no method or preset starts with


def method_color(name: str) -> str:
    """The colour of method or preset `name` (its method's for an unnamed variant, e.g. "clora_left")."""
    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    base = max((m for m in METHOD_COLORS if name.startswith(m + "_")), key=len, default=None)
    return METHOD_COLORS[base] if base else OTHER_COLOR


def label(results: dict) -> str:
    return results.get("label", results["method"])


def _is_ref(results: dict) -> bool:
    return results["method"] in ("frozen", "joint")


# ---------- shared heatmap helpers ----------

def task_ticks(n: int) -> dict:
    """Plotly axis settings that number n tasks 1..n."""
    return dict(tickmode="array", tickvals=list(range(n)), ticktext=[str(i + 1) for i in range(n)])


def heatmap(M: np.ndarray, colorbar: str, zmin=None, zmax=None, colorscale="Viridis", zmid=None,
            showscale=True, fmt=".2f") -> "go.Heatmap":
    """A plotly heatmap of M (rows, cols), values written on the cells unless fmt is None (NaN cells blank)."""
    import plotly.graph_objects as go
    kw = {}
    if fmt is not None:
        kw = dict(text=[[("" if np.isnan(v) else format(v, fmt)) for v in row] for row in np.asarray(M, float)],
                  texttemplate="%{text}")
    return go.Heatmap(z=M, zmin=zmin, zmax=zmax, zmid=zmid, colorscale=colorscale, showscale=showscale,
                      colorbar=dict(title=dict(text=colorbar, side="right")), **kw)


def side_by_side(n: int, titles: list, height=360) -> "go.Figure":
    """A row of n plotly subplots titled `titles`, the width left to the page."""
    from plotly.subplots import make_subplots
    fig = make_subplots(1, n, subplot_titles=titles, horizontal_spacing=0.12)
    # the width follows the page (autosize); a fixed one would be cut off in a narrow notebook
    fig.update_layout(height=height, margin=dict(t=70, l=60, r=30, b=50))
    return fig


def imshow(ax, M: np.ndarray, colorbar: str, vmin=None, vmax=None, cmap="viridis", fmt=".2f", ticks=True):
    """matplotlib twin of `heatmap`: M on ax with a labelled colorbar, values on the cells if it is small and
    fmt is not None; ticks numbered from 1 (tasks) if `ticks`, else the matplotlib default (indices from 0)."""
    im = ax.imshow(M, vmin=vmin, vmax=vmax, cmap=cmap)
    if ticks:
        ax.set_xticks(range(M.shape[1]), [str(j + 1) for j in range(M.shape[1])])
        ax.set_yticks(range(M.shape[0]), [str(t + 1) for t in range(M.shape[0])])
    if fmt is not None and M.size <= 100:
        for (i, j), v in np.ndenumerate(M):
            if not np.isnan(v):
                ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=8, color=text_color(im.cmap(im.norm(v))))
    ax.figure.colorbar(im, ax=ax, fraction=0.046).set_label(colorbar)   # also sets im.colorbar
    return im


def text_color(rgba) -> str:
    """Black or white, whichever reads better on the colour rgba (components in 0..1): black where the cell's
    relative luminance (sRGB, WCAG 2) is above 0.179, the level where both give the same contrast ratio.
    Read off the colour itself, so it holds for any colour map (magma's and viridis's bright ends are yellow)."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    return "k" if 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] > 0.179 else "w"


# ---------- accuracy matrices ----------

def plot_acc_matrix(results: dict, ax=None):
    """acc_matrix[t][j] of one run (accuracy on task j after task t) as a heatmap (matplotlib)."""
    ax = ax or plt.subplots(figsize=(4.2, 3.6))[1]
    imshow(ax, acc_matrix(results), "accuracy (%)", 0, 100, fmt=".0f")
    ax.set_xlabel("evaluated on task j")
    ax.set_ylabel("after training task t")
    ax.set_title(f"{label(results)}: acc_matrix[t][j] (%)")
    return ax


def _reference_note(refs: list) -> str:
    return "   ".join(f"{'frozen backbone' if r['method'] == 'frozen' else 'joint upper bound'}: "
                       f"{r['seen_acc'][-1]:.1f} %" for r in refs)


def acc_matrix_figure(all_results: list) -> "go.Figure":
    """Accuracy matrices acc_matrix[t][j] (%) of the non-reference methods side by side (plotly); the frozen backbone's
    and the joint upper bound's final accuracy over all classes are written under the title."""
    runs = [r for r in all_results if not _is_ref(r)]
    fig = side_by_side(len(runs), [f"{label(r)} (last {r['seen_acc'][-1]:.1f} %)" for r in runs])
    for i, r in enumerate(runs, 1):
        M = acc_matrix(r)
        fig.add_trace(heatmap(M, "accuracy (%)", 0, 100, showscale=i == 1, fmt=".0f"), 1, i)
        fig.update_xaxes(title_text="evaluated on task j", **task_ticks(M.shape[1]), row=1, col=i)
        fig.update_yaxes(title_text="after training task t", autorange="reversed", **task_ticks(M.shape[0]),
                         row=1, col=i)
    refs = _reference_note([r for r in all_results if _is_ref(r)])
    fig.update_layout(title=dict(text="Accuracy on each task after each task (%)" + (f"<br><sup>{refs}</sup>"
                                                                                     if refs else "")))
    return fig


# ---------- accuracy over the stream ----------

def plot_curves(all_results: list, ax=None):
    """Accuracy over all seen classes (A_t) after each task, one line per method (matplotlib)."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for i, r in enumerate(all_results):
        A = r["seen_acc"]
        if len(A) == 1:   # joint: one number, drawn as a dotted level
            ax.axhline(A[0], ls=":", color=METHOD_COLORS["joint"], label=f"{label(r)} (upper bound, end of stream)")
        elif r["method"] == "frozen":
            ax.plot(range(1, len(A) + 1), A, ls="--", color=METHOD_COLORS["frozen"], marker=".",
                    label=f"{label(r)} backbone")
        else:
            ax.plot(range(1, len(A) + 1), A, marker=MARKERS[i % len(MARKERS)], alpha=0.85, markerfacecolor="none",
                    label=label(r), color=method_color(label(r)))
    ax.set_xlabel("tasks learned")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy on all seen classes (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Class-incremental accuracy over the task stream")
    return ax


def task_curve(results: dict, task: int) -> tuple[np.ndarray, np.ndarray]:
    """(tasks learned, accuracy on `task` in %) over the stream, from the task's own training on (1-based x).
    For joint (one row holding every task) a single point at the end of the stream."""
    M = acc_matrix(results)
    if len(M) == 1:
        return np.array([M.shape[1]]), M[0, task:task + 1]
    return np.arange(task + 1, len(M) + 1), M[task:, task]


def accuracy_range(arrays: list, pad: float = 3.0) -> tuple:
    """(low, high) of an accuracy axis (%) that shows the data of `arrays` (any shapes, NaN ignored): whole tens
    around [min - pad, max + pad], within 0..100. A 0-100 axis flattens curves that all sit between 75 and 90."""
    v = np.concatenate([np.ravel(np.asarray(a, float)) for a in arrays] or [np.zeros(0)])
    v = v[np.isfinite(v)]
    if not len(v):
        return 0.0, 100.0
    return max(0.0, 10 * np.floor((v.min() - pad) / 10)), min(100.0, 10 * np.ceil((v.max() + pad) / 10))


def _range_note(low: float) -> str:
    return f"; axis from {low:.0f}" if low > 0 else ""


def forgetting_figure(all_results: list, task: int = 0) -> "go.Figure":
    """Accuracy on one task's test classes after each task (plotly), one line per method: how fast it is
    forgotten. Frozen backbone dashed grey, joint upper bound (its accuracy on that task) a dotted level."""
    import plotly.graph_objects as go
    fig = go.Figure()
    T = max(len(r["acc_matrix"]) for r in all_results)
    for i, r in enumerate(all_results):
        x, y = task_curve(r, task)
        if r["method"] == "joint":
            fig.add_trace(go.Scatter(x=[1, T], y=[y[0], y[0]], mode="lines", name=f"{label(r)} (upper bound, end of stream)",
                                     line=dict(dash="dot", color=METHOD_COLORS["joint"])))
        elif r["method"] == "frozen":
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"{label(r)} backbone",
                                     line=dict(dash="dash", color=METHOD_COLORS["frozen"])))
        else:
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label(r),
                                     marker=dict(symbol=i % 20), line=dict(color=method_color(label(r)))))
    # one y range for every task of the slider (the whole accuracy matrices): no jump when the slider moves
    lo, hi = accuracy_range([acc_matrix(r) for r in all_results])
    fig.update_layout(title=f"Forgetting: accuracy on task {task + 1}'s classes as later tasks are learned",
                      xaxis=dict(title="tasks learned", dtick=1, range=[0.7, T + 0.3]),   # fixed: no jump on a move
                      yaxis=dict(title=f"accuracy on task {task + 1} (%{_range_note(lo)})", range=[lo, hi]),
                      height=380, margin=dict(t=60, l=60, r=20, b=50))
    return fig


def plot_forgetting(all_results: list, task: int = 0, ax=None):
    """matplotlib twin of `forgetting_figure`."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    T = max(len(r["acc_matrix"]) for r in all_results)
    for i, r in enumerate(all_results):
        x, y = task_curve(r, task)
        if r["method"] == "joint":
            ax.hlines(y[0], 1, T, ls=":", color=METHOD_COLORS["joint"], label=f"{label(r)} (upper bound, end of stream)")
        elif r["method"] == "frozen":
            ax.plot(x, y, ls="--", color=METHOD_COLORS["frozen"], marker=".", label=f"{label(r)} backbone")
        else:
            ax.plot(x, y, marker=MARKERS[i % len(MARKERS)], markerfacecolor="none", label=label(r),
                    color=method_color(label(r)))
    ax.set_xlabel("tasks learned")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    lo, hi = accuracy_range([acc_matrix(r) for r in all_results])   # as forgetting_figure: every task's range
    ax.set_ylabel(f"accuracy on task {task + 1} (%{_range_note(lo)})")
    ax.set_ylim(lo, hi)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Forgetting of task {task + 1}")
    return ax


# ---------- storage ----------

PARAM_LABELS = {"clora": "clora (one A, B, R per layer)", "lora_per_task": "lora_per_task (one A, B per task)",
                "seq_lora": "seq_lora (one A, B: keeps no old task)"}


def params_figure(params: dict) -> "go.Figure":
    """Stored adapter parameters after 1..T tasks (plotly); params: analysis.stored_adapter_params(...)."""
    import plotly.graph_objects as go
    fig = go.Figure()
    for name, counts in params.items():
        fig.add_trace(go.Scatter(x=np.arange(1, len(counts) + 1), y=counts, mode="lines+markers", name=name,
                                 line=dict(dash="dash" if name == "seq_lora" else "solid", color=method_color(name))))
    fig.update_layout(title="What must be stored to serve every task learned so far",
                      xaxis=dict(title="tasks learned", dtick=1),
                      yaxis=dict(title="stored adapter parameters (count)", rangemode="tozero"),
                      height=360)
    return fig


def plot_params(params: dict, ax=None):
    """matplotlib twin of `params_figure`."""
    ax = ax or plt.subplots(figsize=(5.5, 3.6))[1]
    for i, (name, counts) in enumerate(params.items()):
        ax.plot(np.arange(1, len(counts) + 1), counts, marker=MARKERS[i], label=PARAM_LABELS.get(name, name),
                color=method_color(name), ls="--" if name == "seq_lora" else "-",
                markersize=4 if name == "seq_lora" else 6)
    ax.set_xlabel("tasks learned")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("stored adapter parameters (count)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Adapter storage: C-LoRA flat, a stack of LoRAs grows", fontsize=10)
    return ax


# ---------- PNGs for a run folder ----------

def save_figures(all_results: list, out) -> list:
    """accuracy_curves.png, forgetting.png (task 1's accuracy over the stream) and acc_matrices.png in folder
    `out`; returns their paths."""
    paths = []
    for name, plot in (("accuracy_curves.png", plot_curves), ("forgetting.png", plot_forgetting)):
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        plot(all_results, ax=ax)
        fig.tight_layout()
        paths.append(out / name)
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    mats = [r for r in all_results if len(r["acc_matrix"]) > 1]
    if mats:
        cols = min(4, len(mats))
        rows = -(-len(mats) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
        for ax, r in zip(axes.flat, mats):
            plot_acc_matrix(r, ax)
        for ax in list(axes.flat)[len(mats):]:
            ax.axis("off")
        fig.tight_layout()
        paths.append(out / "acc_matrices.png")
        fig.savefig(paths[-1], dpi=90)
        plt.close(fig)
    return paths

"""Figures: accuracy matrices and accuracy-over-tasks curves (matplotlib, saved as PNG)."""
import matplotlib.pyplot as plt
import numpy as np


def acc_matrix_array(results: dict) -> np.ndarray:
    """results["acc_matrix"] (ragged rows) -> (T, T) array with NaN above the diagonal."""
    R = results["acc_matrix"]
    T = max(len(r) for r in R)
    out = np.full((len(R), T), np.nan)
    for i, row in enumerate(R):
        out[i, :len(row)] = row
    return out


def plot_acc_matrix(results: dict, ax=None):
    ax = ax or plt.subplots(figsize=(4.2, 3.6))[1]
    M = acc_matrix_array(results)
    im = ax.imshow(M, vmin=0, vmax=100, cmap="viridis")
    ax.set_xlabel("evaluated on task j")
    ax.set_ylabel("after training task t")
    ax.set_title(f"{results['method']}: R[t][j] (%)")
    ax.set_xticks(range(M.shape[1]), [str(j + 1) for j in range(M.shape[1])])
    ax.set_yticks(range(M.shape[0]), [str(t + 1) for t in range(M.shape[0])])
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    return ax


def plot_curves(all_results: list, ax=None):
    """Accuracy over all seen classes (A_t) after each task, one line per method."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    markers = "osD^vP*Xh<>"
    for i, r in enumerate(all_results):
        A = r["seen_acc"]
        if len(A) == 1:   # joint: one number, drawn as a dashed level
            ax.axhline(A[0], ls="--", color="gray", label=f"{r['label'] if 'label' in r else r['method']} (upper bound)")
        else:
            ax.plot(range(1, len(A) + 1), A, marker=markers[i % len(markers)], alpha=0.85, markerfacecolor="none",
                    label=r.get("label", r["method"]))
    ax.set_xlabel("tasks learned")
    ax.set_ylabel("accuracy on all seen classes (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Class-incremental accuracy over the task stream")
    return ax


def save_figures(all_results: list, out) -> list:
    """accuracy_curves.png and acc_matrices.png in folder `out`; returns their paths."""
    paths = []
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    plot_curves(all_results, ax)
    fig.tight_layout()
    paths.append(out / "accuracy_curves.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    mats = [r for r in all_results if len(r["acc_matrix"]) > 1]
    if mats:
        cols = min(4, len(mats))
        rows = -(-len(mats) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
        for ax, r in zip(axes.flat, mats):
            plot_acc_matrix({**r, "method": r.get("label", r["method"])}, ax)
        for ax in list(axes.flat)[len(mats):]:
            ax.axis("off")
        fig.tight_layout()
        paths.append(out / "acc_matrices.png")
        fig.savefig(paths[-1], dpi=90)
        plt.close(fig)
    return paths

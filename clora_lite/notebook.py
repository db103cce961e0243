"""What the chapters share: their size toggle, where their runs live, and the notebook's setup.

CLORA_SMOKE=1 (set by the test suite) shrinks every heavy notebook cell so CI runs a chapter in seconds on
2 CPU cores; unset, the notebooks run at full scale (on a Colab GPU, say). Use `pick(full, smoke)`.
CLORA_SCALE ("ci" | "cpu" | "gpu_quick" | "gpu") overrides the scale `scale()` picks; CLORA_RUNS is where
`runs_folder` puts runs.
"""
import os
from pathlib import Path
import sys
import tempfile

SMOKE = os.environ.get("CLORA_SMOKE", "0") == "1"
SCALES = ("ci", "cpu", "gpu_quick", "gpu")
DRIVE = Path("/content/drive")   # where Colab mounts Google Drive


def pick(full, smoke):
    """`smoke` under CLORA_SMOKE=1, else `full`."""
    return smoke if SMOKE else full


def on_colab() -> bool:
    return "google.colab" in sys.modules


def scale() -> str:
    """The chapters' scale: $CLORA_SCALE if set; else "ci" under CLORA_SMOKE=1, "gpu_quick" (sized for one free
    Colab session) with a CUDA device, "cpu"."""
    import torch
    chosen = os.environ.get("CLORA_SCALE") or ("ci" if SMOKE else "gpu_quick" if torch.cuda.is_available() else "cpu")
    if chosen not in SCALES:
        raise ValueError(f"CLORA_SCALE={chosen!r} is not allowed: use {', '.join(SCALES)}")
    return chosen


def runs_root() -> Path:
    """Where chapters keep their run folders: $CLORA_RUNS if set; on Colab, a folder on Google Drive (mounted here),
    so that a new session finds the runs of the last one and resumes them; else ./runs."""
    if os.environ.get("CLORA_RUNS"):
        return Path(os.environ["CLORA_RUNS"])
    if on_colab():
        from google.colab import drive
        drive.mount(str(DRIVE))
        return DRIVE / "MyDrive" / "clora_lite_runs"
    return Path("runs")


def runs_folder(name: str, scale: str) -> Path:
    """The folder for a chapter's runs, `runs_root() / f"{name}_{scale}"`, created. Chapters 04 and 05 both ask
    for runs_folder("ch04", scale), so 05 finds 04's runs. At the "ci" scale with no $CLORA_RUNS it is a fresh
    temporary folder: every test run starts from nothing."""
    if scale == "ci" and not os.environ.get("CLORA_RUNS") and not on_colab():
        return Path(tempfile.mkdtemp(prefix=f"clora_{name}_"))
    folder = runs_root() / f"{name}_{scale}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def plotly_renderer() -> str:
    """The plotly renderer for where this kernel runs: $PLOTLY_RENDERER if set; "colab" on Colab; otherwise
    "plotly_mimetype", which JupyterLab and VS Code both draw, and which stores the figure as data (no 5 MB of
    plotly.js in the saved notebook)."""
    if os.environ.get("PLOTLY_RENDERER"):
        return os.environ["PLOTLY_RENDERER"]
    return "colab" if "google.colab" in sys.modules else "plotly_mimetype"


def banner() -> str:
    """One line saying which scale produced the outputs below it (printed by every chapter's first cell)."""
    if SMOKE:
        return ("Outputs: CI size (CLORA_SMOKE=1): tiny runs that finish in about a minute on 2 CPU cores. "
                "Numbers are illustrative; unset CLORA_SMOKE for the full size.")
    return "Outputs: full size (CLORA_SMOKE unset)."


def runtime() -> str:
    """Device, torch version and how to get a GPU on Colab, in one line."""
    import torch
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    hint = "" if torch.cuda.is_available() else " (on Colab: Runtime > Change runtime type > GPU, then rerun)"
    return f"device: {device}{hint} | torch {torch.__version__} | {torch.get_num_threads()} CPU threads"


def setup_notebook(seed: int = 0) -> None:
    """Seed torch, pick the plotly renderer for this front end, keep stored PNGs small."""
    import torch
    try:
        import plotly.io as pio
        pio.renderers.default = plotly_renderer()
    except ImportError:
        pass
    try:
        import matplotlib
        matplotlib.rcParams["figure.dpi"] = 72   # small PNGs keep a stored notebook well under 1 MB
    except ImportError:
        pass
    torch.manual_seed(seed)


def strip_widget_state(path) -> None:
    """Drop the stored widget state (it holds every rendered frame) from a notebook file, in place."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


if __name__ == "__main__":   # python -m clora_lite.notebook strip-widget-state NOTEBOOK.ipynb
    if len(sys.argv) != 3 or sys.argv[1] != "strip-widget-state":
        sys.exit("usage: python -m clora_lite.notebook strip-widget-state NOTEBOOK.ipynb")
    strip_widget_state(sys.argv[2])

"""Settings the notebooks share, read in one place.

CLORA_SMOKE=1 (set by the test suite) shrinks every heavy notebook cell so CI runs a chapter in seconds on
2 CPU cores; unset, the notebooks run at full scale (on a Colab GPU, say). Use `pick(full, smoke)`.
"""
import os

SMOKE = os.environ.get("CLORA_SMOKE", "0") == "1"


def pick(full, smoke):
    """`smoke` under CLORA_SMOKE=1, else `full`."""
    return smoke if SMOKE else full


def setup_notebook(seed: int = 0) -> None:
    """Seed torch, use plotly's mimetype renderer (figures as data, no 5 MB plotly.js per notebook)."""
    import torch
    os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype")
    try:
        import plotly.io as pio
        pio.renderers.default = os.environ["PLOTLY_RENDERER"]
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


if __name__ == "__main__":   # python -m clora_lite.settings strip-widget-state NOTEBOOK.ipynb
    import sys
    if len(sys.argv) != 3 or sys.argv[1] != "strip-widget-state":
        sys.exit("usage: python -m clora_lite.settings strip-widget-state NOTEBOOK.ipynb")
    strip_widget_state(sys.argv[2])

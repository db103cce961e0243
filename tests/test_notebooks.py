"""Notebook hygiene: each .ipynb has a .py twin with the same cells, stays small, embeds no plotly.js,
and stores outputs from an executed run. (pytest --nbval re-runs them and compares the outputs.)"""
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_BYTES = 1_000_000


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


def cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_pair_in_sync(path):
    twin = path.with_suffix(".py")
    assert twin.exists(), f"{path.name} has no jupytext twin {twin.name}"
    assert cells(jupytext.read(path)) == cells(jupytext.read(twin)), \
        f"{path.name} and {twin.name} differ: run `make notebooks` (or jupytext --sync)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_small_and_no_embedded_plotly(path):
    text = path.read_text()
    assert len(text.encode()) < MAX_BYTES, f"{path.name} is {len(text.encode()):,} bytes"
    for marker in ("cdn.plot.ly", "plotly-latest", "window.PlotlyConfig"):
        assert marker not in text, f"{path.name} embeds plotly.js ({marker}); use the plotly_mimetype renderer"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_come_from_a_run(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), "store the outputs of an executed run"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "run top to bottom, once"
    assert all(not any(o.get("output_type") == "error" for o in c.outputs) for c in code)

"""Interactive explorers (ipywidgets 8): thin widget code over the tested figure functions of viz and figures.

Each explorer holds a row of controls (method A and B side by side, adapted block and projection, a task slider
with continuous_update=False) and plotly views; a control change recomputes the figure from cached analysis
results and replaces the view in place. `.widget` is the VBox (an explorer also displays itself), `.figures`
the plotly figures shown now, `.static()` a matplotlib Figure of the same view: show it above the explorer, so a
notebook read on GitHub or nbviewer (no widgets there) still shows the picture.

How plotly gets drawn: each view is an ipywidgets Output whose `outputs` are set to a mime bundle directly (no
`with out:` capture, which made nbconvert hang in chapter 01; no go.FigureWidget, which needs anywidget since
plotly 6). The bundle is chosen by where the kernel runs (settings.plotly_renderer()): on Colab, which has no plotly mime
renderer, HTML that loads plotly.js from its CDN; elsewhere application/vnd.plotly.v1+json, drawn by JupyterLab's
plotly extension (shipped inside the plotly package) and by VS Code, and stored as data, never as plotly.js.
"""
import json
import re

import ipywidgets as widgets
import numpy as np

from . import analysis as an
from . import figures, plots
from ..notebook import plotly_renderer

ALL = "all (mean)"


def mime_bundle(fig) -> dict:
    """The display data of a plotly figure for this kernel's front end (settings.plotly_renderer())."""
    if plotly_renderer() == "colab":
        return {"text/html": fig.to_html(include_plotlyjs="cdn", full_html=False)}
    return {"application/vnd.plotly.v1+json": {**json.loads(fig.to_json()), "config": {"responsive": True}},
            "text/plain": f"<plotly figure: {fig.layout.title.text}>"}


def block_of(layer: str) -> str:
    m = re.search(r"blocks\.(\d+)\.", layer)
    return m.group(1) if m else "-"


def proj_of(layer: str) -> str:
    return layer.rsplit(".", 1)[-1]


def select(layers: list, block: str, proj: str) -> list:
    """The layers matching a block number and a projection name (ALL matches any)."""
    return [L for L in layers if block in (ALL, block_of(L)) and proj in (ALL, proj_of(L))]


def mean_of(per_layer: dict, layers: list) -> np.ndarray:
    """NaN-aware mean of the chosen layers' matrices."""
    return an._mean_over_layers({L: per_layer[L] for L in layers}, next(iter(per_layer.values())).shape)


class Explorer:
    """Controls above `n_views` plotly views; subclasses implement `draw() -> list of go.Figure`."""

    def __init__(self, controls: list, n_views: int = 1):
        self.controls = controls
        self.views = [widgets.Output() for _ in range(n_views)]
        self.figures = [None] * n_views
        for c in controls:
            c.observe(lambda change: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox(controls, layout=widgets.Layout(flex_flow="row wrap")), *self.views])
        self.update()

    def update(self) -> None:
        for i, fig in enumerate(self.draw()):
            self.figures[i] = fig
            self.views[i].outputs = ({"output_type": "display_data", "data": mime_bundle(fig), "metadata": {}},)

    def draw(self) -> list:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kw):
        return self.widget._repr_mimebundle_(**kw)


def method_pickers(names: list) -> tuple:
    """Dropdowns for method A and B, preset to the first two names (B = A shows one method)."""
    a = widgets.Dropdown(options=names, value=names[0], description="method A")
    b = widgets.Dropdown(options=names, value=names[min(1, len(names) - 1)], description="method B")
    return a, b


def layer_pickers(layers: list, allow_all: bool = True) -> tuple:
    """Dropdowns for the adapted block and projection (q, k, v, ...); ALL averages over them."""
    blocks = sorted(set(map(block_of, layers)), key=lambda b: (len(b), b))
    projs = list(dict.fromkeys(map(proj_of, layers)))
    extra = [ALL] if allow_all else []
    return (widgets.Dropdown(options=extra + blocks, description="block"),
            widgets.Dropdown(options=extra + projs, description="projection"))


def task_slider(T: int, description: str = "task") -> widgets.IntSlider:
    """1..T, firing only on release: each move recomputes a figure."""
    return widgets.IntSlider(value=T, min=1, max=T, description=description, continuous_update=False)


def _pair(a, b) -> list:
    return [a.value] if a.value == b.value else [a.value, b.value]


class OverlapExplorer(Explorer):
    """Which directions do the tasks' updates use? Overlap matrices of two methods side by side, for a chosen
    block / projection (or their mean), column or row spaces. runs: {label -> analysis.Run} with adapters."""

    def __init__(self, runs: dict, k: int | None = None):
        self.runs = {n: r for n, r in runs.items() if an.has_adapters(r)}
        if not self.runs:
            raise ValueError("no run with adapter snapshots to explore")
        first = next(iter(self.runs.values()))
        self.k = k or first.config.get("rank", 4)
        self._cache = {}
        self.a, self.b = method_pickers(list(self.runs))
        self.block, self.proj = layer_pickers(first.layers)
        self.side = widgets.ToggleButtons(options=[("column spaces", "col"), ("row spaces", "row")], value="col")
        super().__init__([self.a, self.b, self.block, self.proj, self.side])

    def per_layer(self, name: str, side: str) -> dict:
        """{layer -> (T, T) overlap} of run `name` on `side`, computed once (the explorer and the chapter's
        tables share it)."""
        if (name, side) not in self._cache:
            self._cache[name, side] = an.overlap_matrix(an.task_updates(self.runs[name]), self.k, side)[0]
        return self._cache[name, side]

    def mean(self, name: str, side: str) -> np.ndarray:
        """(T, T) overlap of run `name` on `side`, mean over all its adapted layers."""
        per_layer = self.per_layer(name, side)
        return mean_of(per_layer, list(per_layer))

    def matrices(self) -> dict:
        out = {}
        for name in _pair(self.a, self.b):
            per_layer = self.per_layer(name, self.side.value)
            out[name] = mean_of(per_layer, select(list(per_layer), self.block.value, self.proj.value))
        return out

    def chance(self) -> float:
        return figures.chance_overlap(self.runs[self.a.value], self.k, self.side.value)

    def draw(self):
        return [figures.overlap_figure(self.matrices(), self.side.value, self.chance())]

    def static(self):
        return figures.plot_overlap({self.side.value: self.matrices()}, {self.side.value: self.chance()})


class RoutingExplorer(Explorer):
    """How does the routing matrix fill up? R_old, R_delta and their singular values after the slider's task,
    for one adapted layer, two C-LoRA-like runs side by side. runs: {label -> analysis.Run}."""

    def __init__(self, runs: dict, energy: float | None = None):
        self.hists = {n: an.routing_history(r, energy) for n, r in runs.items()
                      if an.has_adapters(r) and f"{r.layers[0]}.R_old" in r.snapshots[0]}
        if not self.hists:
            raise ValueError("no run with routing matrices (C-LoRA) to explore")
        layers = list(next(iter(self.hists.values())))
        T = min(len(h[layers[0]]["R_old"]) for h in self.hists.values())
        self.a, self.b = method_pickers(list(self.hists))
        self.block, self.proj = layer_pickers(layers, allow_all=False)
        self.task = task_slider(T, "after task")
        super().__init__([self.a, self.b, self.block, self.proj, self.task])

    def layer_views(self) -> dict:
        out = {}
        for name in _pair(self.a, self.b):
            hist = self.hists[name]
            out[name] = hist[select(list(hist), self.block.value, self.proj.value)[0]]
        return out

    def draw(self):
        return [figures.routing_figure(self.layer_views(), self.task.value - 1)]

    def static(self):
        return figures.plot_routing(self.layer_views(), self.task.value - 1)


class InterferenceExplorer(Explorer):
    """Which old tasks does a new update disturb? ||dW_t X_j|| / ||W X_j|| of two methods side by side, for a
    block / projection or their mean. base: the plain pre-trained backbone; images: per task (n, 3, H, W),
    prepared (analysis.task_images). A method's matrices are computed the first time it is shown."""

    def __init__(self, runs: dict, base, images: list, device="cpu"):
        self.runs = {n: r for n, r in runs.items() if an.has_adapters(r)}
        if not self.runs:
            raise ValueError("no run with adapter snapshots to explore")
        self.base, self.images, self.device, self._cache = base, images, device, {}
        self.a, self.b = method_pickers(list(self.runs))
        self.block, self.proj = layer_pickers(next(iter(self.runs.values())).layers)
        super().__init__([self.a, self.b, self.block, self.proj])

    def per_layer(self, name: str) -> dict:
        """{layer -> (T, T) interference} of run `name`, computed once (forward passes: the costly part)."""
        if name not in self._cache:
            self._cache[name] = an.interference(self.runs[name], self.base, self.images, self.device)[0]
        return self._cache[name]

    def mean(self, name: str) -> np.ndarray:
        """(T, T) interference of run `name`, mean over all its adapted layers."""
        per_layer = self.per_layer(name)
        return mean_of(per_layer, list(per_layer))

    def matrices(self) -> dict:
        out = {}
        for name in _pair(self.a, self.b):
            per_layer = self.per_layer(name)
            out[name] = mean_of(per_layer, select(list(per_layer), self.block.value, self.proj.value))
        return out

    def draw(self):
        return [figures.interference_figure(self.matrices())]

    def static(self):
        return figures.plot_interference(self.matrices())


class ForgettingExplorer(Explorer):
    """Where is accuracy lost? The slider's task's accuracy over the stream for every method (frozen backbone
    and joint upper bound drawn too), and the accuracy matrices of methods A and B side by side.
    all_results: results dicts (results.json), with an optional "label"."""

    def __init__(self, all_results: list):
        self.results = list(all_results)
        self.by_label = {plots.label(r): r for r in self.results}
        compared = [n for n, r in self.by_label.items() if r["method"] not in ("frozen", "joint")]
        if not compared:
            raise ValueError("no continual run among the results (only frozen / joint)")
        T = max(len(r["acc_matrix"]) for r in self.results)
        self.task = task_slider(T, "task")
        self.task.value = 1
        self.a, self.b = method_pickers(compared)
        super().__init__([self.task, self.a, self.b], n_views=2)

    def draw(self):
        refs = [r for r in self.results if r["method"] in ("frozen", "joint")]
        pair = [self.by_label[n] for n in _pair(self.a, self.b)]
        return [plots.forgetting_figure(self.results, self.task.value - 1), plots.acc_matrix_figure(pair + refs)]

    def static(self):
        return plots.plot_forgetting(self.results, self.task.value - 1).figure

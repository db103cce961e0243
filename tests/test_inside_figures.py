"""Figures (data and axis titles, not pixels) and explorers (built and driven without a browser)."""
import json

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from clora_lite.backbone import vit
from clora_lite.inside import analysis as an
from clora_lite.inside import explorers as ex
from clora_lite.inside import figures, plots

T, R, D_IN, D_OUT = 3, 2, 6, 6
LAYERS = ["backbone.blocks.0.attn.q", "backbone.blocks.0.attn.v", "backbone.blocks.1.attn.q"]


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def clora_run(name="clora", seed=0):
    snaps, R_old = [], {L: torch.zeros(R, R, dtype=torch.float64) for L in LAYERS}
    for t in range(T):
        snap = {}
        for i, L in enumerate(LAYERS):
            s = seed + 10 * t + i
            snap |= {f"{L}.lora_A": rand(R, D_IN, seed=s), f"{L}.lora_B": rand(D_OUT, R, seed=s + 1),
                     f"{L}.R_old": R_old[L].clone(), f"{L}.R_delta": rand(R, R, seed=s + 2)}
            R_old[L] = R_old[L] + snap[f"{L}.R_delta"]
        snaps.append(snap)
    return an.Run.from_config({"method": "clora", "rank": R, "alpha": None}, snaps, results(name, "clora"), name)


def seq_run(name="seq_lora"):
    snaps = [{k: v for L in LAYERS for k, v in ((f"{L}.lora_A", rand(R, D_IN, seed=50 + t)),
                                                (f"{L}.lora_B", rand(D_OUT, R, seed=60 + t)))} for t in range(T)]
    return an.Run.from_config({"method": "seq_lora", "rank": R, "alpha": None}, snaps, results(name, "seq_lora"), name)


def results(label, method, base=80.0):
    if method == "joint":
        return {"method": "joint", "label": label, "acc_matrix": [[90.0, 91.0, 92.0]], "seen_acc": [91.0]}
    rows = [[base - 10 * (t - j) + j for j in range(t + 1)] for t in range(T)]
    return {"method": method, "label": label, "acc_matrix": rows, "seen_acc": [float(np.mean(r)) for r in rows]}


ALL_RESULTS = [results("frozen", "frozen", 60.0), results("seq_lora", "seq_lora", 70.0), results("clora", "clora"),
               results("joint", "joint")]


class TinyViT(nn.Module):
    """Two blocks with attn.q / attn.v Linear layers, reading (N, 2 tokens, 6)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.blocks = nn.ModuleList(nn.ModuleDict({"attn": nn.ModuleDict({"q": nn.Linear(6, 6), "v": nn.Linear(6, 6)})})
                                    for _ in range(2))
        self.double()

    def forward(self, x):
        for b in self.blocks:
            x = x + b["attn"]["q"](x) * 0.1 + b["attn"]["v"](x) * 0.1
        return x


def images():
    return [rand(4, 2, 6, seed=90 + t) for t in range(T)]


# ---------- plots.py: accuracy, forgetting, storage ----------

def test_acc_matrix_figure_data_axes_and_references():
    fig = plots.acc_matrix_figure(ALL_RESULTS)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2                                  # frozen and joint are references, not panels
    np.testing.assert_allclose(heat[1].z, an.acc_matrix(ALL_RESULTS[2]))
    assert fig.layout.xaxis.title.text == "evaluated on task j" and fig.layout.yaxis.title.text == "after training task t"
    assert "frozen backbone: " in fig.layout.title.text and "joint upper bound: 91.0 %" in fig.layout.title.text


def test_forgetting_figure_curves_and_reference_lines():
    fig = plots.forgetting_figure(ALL_RESULTS, task=1)
    by = {t.name: t for t in fig.data}
    np.testing.assert_allclose(by["clora"].y, [81.0, 71.0])      # R[1][1], R[2][1]
    np.testing.assert_array_equal(by["clora"].x, [2, 3])
    assert by["frozen backbone"].line.dash == "dash"
    assert list(by["joint (upper bound, end of stream)"].y) == [91.0, 91.0] and by["joint (upper bound, end of stream)"].line.dash == "dot"
    assert list(by["joint (upper bound, end of stream)"].x) == [1, T]             # a level over the whole stream
    # the data span 40..92 %: the axis shows 30..100 and says it does not start at 0
    assert fig.layout.yaxis.title.text == "accuracy on task 2 (%; axis from 30)"
    assert tuple(fig.layout.yaxis.range) == (30, 100) and fig.layout.xaxis.title.text == "tasks learned"
    ax = plots.plot_forgetting(ALL_RESULTS, task=1)
    assert ax.get_ylabel() == "accuracy on task 2 (%; axis from 30)" and len(ax.get_legend().texts) == 4
    assert ax.get_ylim() == (30, 100)
    plt.close(ax.figure)


def test_accuracy_range_shows_the_data_and_stays_in_0_100():
    assert plots.accuracy_range([np.array([76.0, 89.5]), np.array([[80.0, np.nan]])]) == (70, 100)
    assert plots.accuracy_range([np.array([2.0, 40.0])]) == (0, 50)
    assert plots.accuracy_range([np.array([np.nan])]) == (0, 100)


def test_cell_text_is_dark_on_bright_cells_of_any_colour_map():
    for cmap, bright, dark in (("viridis", 1.0, 0.0), ("magma", 1.0, 0.0), ("RdBu", 0.5, 0.0)):
        fig, ax = plt.subplots()
        plots.imshow(ax, np.array([[bright, dark]]), "x", 0, 1, cmap)
        assert [t.get_color() for t in ax.texts] == ["k", "w"], cmap   # yellow / white cells: black text
        plt.close(fig)


def test_params_figure_flat_for_clora_growing_for_stack():
    params = an.stored_adapter_params([(6, 6)], rank=2, tasks=4)
    fig = plots.params_figure(params)
    by = {t.name: t for t in fig.data}
    assert len(set(by["clora"].y)) == 1 and list(by["lora_per_task"].y) == [24, 48, 72, 96]
    assert fig.layout.yaxis.title.text == "stored adapter parameters (count)"


def test_save_figures_writes_pngs(tmp_path):
    paths = plots.save_figures(ALL_RESULTS, tmp_path)
    assert [p.name for p in paths] == ["accuracy_curves.png", "forgetting.png", "acc_matrices.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


# ---------- figures.py: overlap, routing, interference ----------

def test_overlap_figure_data_and_titles():
    mats = {"clora": np.array([[1, 0.2], [0.2, 1]]), "seq_lora": np.array([[1, 0.8], [0.8, 1]])}
    fig = figures.overlap_figure(mats, "row", chance=0.1)
    np.testing.assert_allclose(fig.data[1].z, mats["seq_lora"])
    assert (fig.data[0].zmin, fig.data[0].zmax) == (0, 1)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["clora: mean between tasks 0.20", "seq_lora: mean between tasks 0.80"]
    assert fig.layout.xaxis.title.text == "task u (its update)" and "row spaces" in fig.layout.title.text
    assert "random subspaces ≈ 0.10" in fig.layout.title.text
    assert fig.data[0].colorbar.title.text == figures.OVERLAP_CBAR


def test_routing_figure_panels():
    h = an.routing_history(clora_run())[LAYERS[0]]
    fig = figures.routing_figure({"clora": h}, t=2)
    np.testing.assert_allclose(fig.data[1].z, h["R_delta"][2])
    np.testing.assert_allclose(fig.data[2].y, h["sv_old"][2])
    assert fig.layout.xaxis3.title.text == "singular value index" and fig.layout.yaxis3.title.text == "singular value"
    assert "eff. rank" in fig.layout.annotations[0].text and "inside R_old" in fig.layout.annotations[2].text
    lim = np.abs(h["R_old"][2]).max()          # each matrix on its own symmetric scale
    assert fig.data[0].zmax == pytest.approx(lim) and fig.data[0].zmin == pytest.approx(-lim)
    mpl = figures.plot_routing({"clora": h, "again": h}, t=2)
    assert mpl.axes[3].get_ylabel() == "share of ‖R_delta‖² (%)" and len(mpl.axes) >= 8
    plt.close(mpl)


def test_routing_of_a_zero_R_old_shows_no_meaningless_scale():
    h = an.routing_history(clora_run())[LAYERS[0]]
    fig = figures.routing_figure({"clora": h}, t=0)                # R_old = 0 before task 1 ends
    assert (fig.data[0].zmin, fig.data[0].zmax) == (-1, 1) and fig.data[0].showscale is False
    assert "R_old (tasks < 1) = 0" in fig.layout.annotations[0].text and fig.data[1].showscale is not False
    mpl = figures.plot_routing({"clora": h}, t=0)
    assert mpl.axes[0].get_title().endswith("= 0") and mpl.axes[0].images[0].get_clim() == (-1, 1)
    plt.close(mpl)


def test_routing_plot_draws_the_chance_level_and_the_size():
    h = an.routing_history(clora_run())[LAYERS[0]]
    mpl = figures.plot_routing({"clora": h}, t=2)
    panels = [ax for ax in mpl.axes if ax.get_ylabel() in ("share of ‖R_delta‖² (%)", "‖R_delta‖ / ‖R_old‖ (%)")]
    share, size = panels
    chance = next(ln for ln in share.lines if ln.get_label() == "a random R_delta (kept / r)")
    np.testing.assert_allclose(chance.get_ydata()[1:], 100 * h["kept"][1:] / R)
    np.testing.assert_allclose(size.lines[0].get_ydata()[1:], 100 * h["size"][1:])
    assert "random" in figures.routing_figure({"clora": h}, t=2).layout.annotations[2].text
    plt.close(mpl)


def test_overlap_summary_bars_and_chance_line():
    mats = {"clora": np.array([[1, 0.8], [0.8, 1]]), "lora_per_task": np.array([[1, 0.1], [0.1, 1]])}
    fig = figures.plot_overlap_summary({"col": mats, "row": mats}, {"col": 0.06, "row": 0.05})
    ax = fig.axes[1]
    np.testing.assert_allclose([b.get_height() for b in ax.patches], [0.8, 0.1])
    assert [matplotlib.colors.to_hex(b.get_facecolor()) for b in ax.patches] == [
        plots.method_color("clora"), plots.method_color("lora_per_task")]
    assert ax.lines[0].get_ydata()[0] == 0.05 and "random" in ax.get_legend().texts[0].get_text()
    plt.close(fig)


def test_selectivity_plot_is_the_analysis_ratio():
    M = np.array([[0.1, np.nan, np.nan], [0.05, 0.2, np.nan], [0.3, 0.1, 0.4]])
    ax = figures.plot_selectivity({"clora": M, "seq_lora": 2 * M})
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.25, 0.5])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.25, 0.5])   # scale-free: twice the size, same ratio
    assert list(ax.lines[0].get_xdata()) == [2, 3] and ax.lines[2].get_ydata()[0] == 1
    assert matplotlib.colors.to_hex(ax.lines[0].get_color()) == plots.method_color("clora")
    plt.close(ax.figure)


def test_interference_figure_percent_and_below_diagonal_mean():
    M = np.array([[0.1, np.nan], [0.05, 0.2]])
    fig = figures.interference_figure({"clora": M})
    np.testing.assert_allclose(fig.data[0].z, 100 * M)
    assert fig.layout.annotations[0].text == "clora: mean on older tasks 5.0 %"
    assert fig.layout.yaxis.title.text == "task t (whose update)"


def test_save_inside_figures_from_run_folders(tmp_path, monkeypatch):
    dirs = {}
    for run in (clora_run(), seq_run()):
        d = tmp_path / run.name
        (d / "adapters").mkdir(parents=True)
        cfg = {**run.config, "backbone": "tiny", "pretrained": False}
        (d / "config.json").write_text(json.dumps(cfg))
        (d / "results.json").write_text(json.dumps(run.results))
        for t, s in enumerate(run.snapshots):
            torch.save(s, d / "adapters" / f"task_{t:02d}.pt")
        dirs[run.name] = d
    (tmp_path / "frozen").mkdir()
    (tmp_path / "frozen" / "config.json").write_text(json.dumps({"method": "frozen", "rank": 2, "alpha": None}))
    dirs["frozen"] = tmp_path / "frozen"
    monkeypatch.setattr(vit, "build", lambda name, pretrained=False: TinyViT())
    monkeypatch.setattr(an, "task_images", lambda bench, base, n: images())
    out = tmp_path / "figs"
    out.mkdir()
    paths = figures.save_inside_figures(dirs, out, bench=object())
    assert [p.name for p in paths] == ["overlap.png", "routing.png", "interference.png", "stored_params.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert set(an.load_runs(tmp_path)) == {"clora", "seq_lora", "frozen"}


# ---------- explorers ----------

def shown(view) -> dict:
    (out,) = view.outputs
    return out["data"]


def test_plotly_bundle_is_data_not_plotly_js(monkeypatch):
    monkeypatch.delenv("PLOTLY_RENDERER", raising=False)
    fig = plots.params_figure(an.stored_adapter_params([(6, 6)], 2, 3))
    bundle = ex.mime_bundle(fig)
    assert set(bundle) == {"application/vnd.plotly.v1+json", "text/plain"}
    assert "cdn.plot.ly" not in json.dumps(bundle) and bundle["application/vnd.plotly.v1+json"]["data"]
    monkeypatch.setitem(__import__("sys").modules, "google.colab", object())
    bundle = ex.mime_bundle(fig)
    assert set(bundle) == {"text/html"} and "cdn.plot.ly" in bundle["text/html"]   # Colab: plotly.js from its CDN


def test_overlap_explorer_updates_in_place():
    runs = {"clora": clora_run(), "seq_lora": seq_run(), "frozen": an.Run("frozen", 1.0, [])}
    e = ex.OverlapExplorer(runs)
    assert e.a.options == ("clora", "seq_lora")               # frozen has nothing to show
    assert [a.text.split(":")[0] for a in e.figures[0].layout.annotations] == ["clora", "seq_lora"]
    before = np.array(e.figures[0].data[0].z)
    e.block.value, e.proj.value = "1", "q"                    # one layer instead of the mean
    want = an.overlap_matrix(an.task_updates(runs["clora"]), R, "col")[0][LAYERS[2]]
    np.testing.assert_allclose(e.figures[0].data[0].z, want)
    assert not np.allclose(before, want)
    e.side.value = "row"
    assert "row spaces" in shown(e.views[0])["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
    e.b.value = "clora"                                       # A = B: one panel
    assert len(e.figures[0].data) == 1
    plt.close(e.static())


def test_routing_explorer_task_slider_and_layer():
    runs = {"clora": clora_run(), "clora_b": clora_run("clora_b", seed=7), "seq_lora": seq_run()}
    e = ex.RoutingExplorer(runs)
    assert e.task.continuous_update is False and e.task.max == T and e.a.options == ("clora", "clora_b")
    hist = an.routing_history(runs["clora"])
    np.testing.assert_allclose(e.figures[0].data[0].z, hist[LAYERS[0]]["R_old"][T - 1])
    e.task.value = 2
    e.proj.value = "v"
    np.testing.assert_allclose(e.figures[0].data[1].z, hist[LAYERS[1]]["R_delta"][1])
    assert "after task 2" in e.figures[0].layout.title.text
    plt.close(e.static())
    with pytest.raises(ValueError, match="no run with routing matrices"):
        ex.RoutingExplorer({"seq_lora": seq_run()})


def test_interference_explorer_builds_and_switches_method():
    runs = {"clora": clora_run(), "seq_lora": seq_run()}
    e = ex.InterferenceExplorer(runs, TinyViT(), images())
    z0 = np.array(e.figures[0].data[1].z)
    assert np.isnan(z0[0, 2]) and np.all(np.isfinite(np.diag(z0)))
    e.b.value = "clora"
    assert len(e.figures[0].data) == 1 and set(e._cache) == {"clora", "seq_lora"}
    np.testing.assert_allclose(e.mean("seq_lora"), an.interference(runs["seq_lora"], TinyViT(), images())[1])
    plt.close(e.static())


def test_forgetting_explorer_slider_and_methods():
    e = ex.ForgettingExplorer(ALL_RESULTS)
    assert e.task.value == 1 and e.task.continuous_update is False and e.a.options == ("seq_lora", "clora")
    e.task.value = 3
    clora = next(t for t in e.figures[0].data if t.name == "clora")
    np.testing.assert_allclose(clora.y, [82.0])
    assert len([t for t in e.figures[1].data if t.type == "heatmap"]) == 2
    assert "<plotly figure" in shown(e.views[1])["text/plain"]
    plt.close(e.static())

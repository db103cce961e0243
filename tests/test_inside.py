"""analysis.py on constructed matrices whose angles, ranks, energies and ratios are known in closed form."""
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import clora_lite
from clora_lite.continual import metrics
from clora_lite.inside import analysis as an

D = torch.float64


def e(i, d=6):
    v = torch.zeros(d, dtype=D)
    v[i] = 1.0
    return v


# ---------- subspaces, ranks ----------

@pytest.mark.parametrize("theta", [0.0, 0.3, math.pi / 4, 1.2, math.pi / 2])
def test_overlap_of_span_rotated_by_known_angle_is_cos2(theta):
    U1 = torch.stack([e(0), e(1)], 1)
    U2 = torch.stack([math.cos(theta) * e(0) + math.sin(theta) * e(2),
                      math.cos(theta) * e(1) + math.sin(theta) * e(3)], 1)
    assert an.subspace_overlap(U1, U2) == pytest.approx(math.cos(theta) ** 2, abs=1e-12)


def test_overlap_is_mean_over_principal_angles_and_basis_free():
    a, b = 0.4, 1.1
    U1 = torch.stack([e(0), e(1)], 1)
    U2 = torch.stack([math.cos(a) * e(0) + math.sin(a) * e(2), math.cos(b) * e(1) + math.sin(b) * e(3)], 1)
    Q, _ = torch.linalg.qr(torch.randn(2, 2, dtype=D))   # another orthonormal basis of the same span
    want = (math.cos(a) ** 2 + math.cos(b) ** 2) / 2
    assert an.subspace_overlap(U1 @ Q, U2) == pytest.approx(want, abs=1e-12)
    assert math.isnan(an.subspace_overlap(U1, U2[:, :0]))


def test_top_basis_spans_leading_singular_vectors():
    Q1, _ = torch.linalg.qr(torch.randn(8, 8, dtype=D))
    Q2, _ = torch.linalg.qr(torch.randn(5, 5, dtype=D))
    M = Q1[:, :3] @ torch.diag(torch.tensor([5.0, 3.0, 1.0], dtype=D)) @ Q2[:, :3].T   # (8, 5), rank 3
    P = lambda U: U @ U.T
    torch.testing.assert_close(P(an.top_basis(M, 2, "col")), P(Q1[:, :2]))
    torch.testing.assert_close(P(an.top_basis(M, 2, "row")), P(Q2[:, :2]))
    assert an.top_basis(M, 10, "col").shape == (8, 3)      # capped at the numerical rank
    assert an.top_basis(torch.zeros(4, 3, dtype=D), 2).shape == (4, 0)


def test_low_rank_svd_equals_dense_svd():
    L, R = rand(9, 4, seed=1), rand(4, 7, seed=2)
    M = an.LowRank(L, R) - an.LowRank(rand(9, 2, seed=3), rand(2, 7, seed=4))    # (9, 7), rank 6, as factors
    U, s, Vh = an.svd(M)
    torch.testing.assert_close(s[:6], torch.linalg.svdvals(M.dense())[:6])
    torch.testing.assert_close(U @ torch.diag(s) @ Vh, M.dense())
    x = rand(3, 7, seed=5)
    torch.testing.assert_close(M.apply(x), x @ M.dense().T)
    assert an.effective_rank(M) == pytest.approx(an.effective_rank(M.dense()))


def test_effective_rank_closed_forms():
    assert an.effective_rank(torch.diag(torch.tensor([2.0, 2.0, 2.0, 0.0]))) == pytest.approx(3.0)
    p = np.array([3.0, 1.0]) / 4
    assert an.effective_rank(torch.diag(torch.tensor([3.0, 1.0]))) == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert an.effective_rank(torch.zeros(3, 3)) == 0.0
    Q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=D))   # rotation- and scale-invariant
    assert an.effective_rank(7 * Q @ torch.diag(torch.tensor([3.0, 1.0, 0, 0], dtype=D))) == pytest.approx(
        np.exp(-(p * np.log(p)).sum()))


def test_routing_share_counts_energy_inside_kept_subspaces():
    R_old = torch.diag(torch.tensor([3.0, 2.0, 0.0, 0.0], dtype=D))   # keeps e0, e1 on both sides at 95 %
    R_delta = torch.zeros(4, 4, dtype=D)
    R_delta[0, 2] = 1.0    # row 0: inside the left kept subspace; column 2: outside the right one
    R_delta[3, 3] = 1.0    # outside both
    assert an.routing_share(R_old, R_delta) == pytest.approx((0.5, 0.0))
    R_delta[2, 1] = 1.0    # column 1: inside the right kept subspace
    assert an.routing_share(R_old, R_delta) == pytest.approx((1 / 3, 1 / 3))
    R_weak = torch.diag(torch.tensor([10.0, 0.1, 0, 0], dtype=D))     # at 90 % only e0 is kept
    R_delta = torch.diag(torch.tensor([0.0, 2.0, 0, 0], dtype=D))
    assert an.routing_share(R_weak, R_delta, energy=0.9) == pytest.approx((0.0, 0.0))
    assert all(math.isnan(v) for v in an.routing_share(torch.zeros(4, 4), R_delta))


# ---------- snapshots and update rules ----------

def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


def clora_snapshots(T=3, r=2, d_in=5, d_out=4, layers=("backbone.blocks.0.attn.q",)):
    snaps, R_old = [], {L: torch.zeros(r, r, dtype=D) for L in layers}
    for t in range(T):
        snap = {}
        for i, L in enumerate(layers):
            snap |= {f"{L}.lora_A": rand(r, d_in, seed=10 * t + i), f"{L}.lora_B": rand(d_out, r, seed=100 + 10 * t + i),
                     f"{L}.R_old": R_old[L].clone(), f"{L}.R_delta": rand(r, r, seed=200 + 10 * t + i)}
            R_old[L] = R_old[L] + snap[f"{L}.R_delta"]
        snaps.append(snap)
    return snaps


def test_clora_rule_and_scale_from_config():
    snaps = clora_snapshots()
    run = an.Run.from_config({"method": "clora", "rank": 2, "alpha": 6}, snaps)
    assert run.scale == 3.0 and run.layers == ["backbone.blocks.0.attn.q"] and run.num_tasks == 3
    L = run.layers[0]
    C = lambda s: 3.0 * s[f"{L}.lora_B"] @ (s[f"{L}.R_old"] + s[f"{L}.R_delta"]) @ s[f"{L}.lora_A"]
    ups = an.task_updates(run)
    torch.testing.assert_close(ups[0][L].dense(), C(snaps[0]))
    torch.testing.assert_close(ups[2][L].dense(), C(snaps[2]) - C(snaps[1]))
    assert an.Run.from_config({"method": "clora", "rank": 2, "alpha": None}, snaps).scale == 1.0


def test_lora_per_task_sums_and_seq_lora_differences():
    snaps = [{"l.lora_A": rand(2, 5, seed=t), "l.lora_B": rand(4, 2, seed=9 + t)} for t in range(3)]
    own = [s["l.lora_B"] @ s["l.lora_A"] for s in snaps]
    stack = an.Run.from_config({"method": "lora_per_task", "rank": 2, "alpha": 4}, snaps)
    torch.testing.assert_close(an.cumulative_update(stack, 2)["l"].dense(), 2.0 * sum(own))
    torch.testing.assert_close(an.task_updates(stack)[1]["l"].dense(), 2.0 * own[1])
    seq = an.Run.from_config({"method": "seq_lora", "rank": 2, "alpha": None}, snaps)
    torch.testing.assert_close(an.task_updates(seq)[1]["l"].dense(), own[1] - own[0])
    assert an.cumulative_update(seq, -1) == {}
    with pytest.raises(ValueError, match="method='ewc' is not allowed"):
        an.cumulative_update(an.Run("ewc", 1.0, snaps), 0)


def test_update_of_a_method_without_adapters_is_a_one_line_error():
    snaps = [{"l.lora_A": rand(2, 5, seed=0), "l.lora_B": rand(4, 2, seed=1)}]
    with pytest.raises(ValueError, match="method='finetune'"):
        an.cumulative_update(an.Run("finetune", 1.0, snaps), 0)


def test_scale_in_a_snapshot_wins_over_the_config():
    """Snapshots carry each layer's scale; the config's alpha is only the fallback for older snapshots."""
    snap = {"l.lora_A": rand(2, 5, seed=0), "l.lora_B": rand(4, 2, seed=1)}
    own = snap["l.lora_B"] @ snap["l.lora_A"]
    run = an.Run.from_config({"method": "seq_lora", "rank": 2, "alpha": 4},
                             [{**snap, "l.scale": torch.tensor(0.5, dtype=D)}])
    torch.testing.assert_close(run.update(0, "l").dense(), 0.5 * own)
    torch.testing.assert_close(an.Run.from_config({"method": "seq_lora", "rank": 2, "alpha": 4}, [snap])
                               .update(0, "l").dense(), 2.0 * own)


@pytest.mark.parametrize("kind", ["lora", "clora"])
def test_snapshot_of_a_model_gives_its_delta_weight(kind):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 4)).double()
    adapters = clora_lite.add_adapters(model, kind=kind, rank=2, targets=("0", "1"), alpha=4)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_()
    snap = an.snapshot(model)
    assert {n.rsplit(".", 1)[-1] for n in snap} == ({"lora_A", "lora_B", "scale"}
                                                   | ({"R_old", "R_delta"} if kind == "clora" else set()))
    run = an.Run.from_config({"method": "clora" if kind == "clora" else "seq_lora", "rank": 2, "alpha": 4}, [snap])
    assert run.layers == ["0", "1"]
    for L, a in zip(run.layers, adapters):
        torch.testing.assert_close(an.cumulative_update(run, 0)[L].dense(), a.delta_weight().detach())


def test_load_run_reads_a_folder(tmp_path):
    snaps = clora_snapshots(T=2)
    (tmp_path / "adapters").mkdir()
    for t, s in enumerate(snaps):
        torch.save(s, tmp_path / "adapters" / f"task_{t:02d}.pt")
    (tmp_path / "config.json").write_text(json.dumps({"method": "clora", "rank": 2, "alpha": 4, "orth_energy": 0.9}))
    (tmp_path / "results.json").write_text(json.dumps({"method": "clora", "acc_matrix": [[90.0], [80.0, 85.0]]}))
    run = an.load_run(tmp_path)
    assert (run.method, run.scale, run.num_tasks, run.name) == ("clora", 2.0, 2, tmp_path.name)
    assert run.results["acc_matrix"][1] == [80.0, 85.0] and an.has_adapters(run)
    torch.testing.assert_close(run.snapshots[1]["backbone.blocks.0.attn.q.R_old"], snaps[1]["backbone.blocks.0.attn.q.R_old"])


# ---------- overlap, routing, interference on runs ----------

def rank1_run(pairs, method="lora_per_task"):
    """Each task's own update u v^T (rank 1) on one layer "l" of a stack-of-LoRAs run."""
    snaps = [{"l.lora_A": v[None], "l.lora_B": u[:, None]} for u, v in pairs]
    return an.Run.from_config({"method": method, "rank": 1, "alpha": None}, snaps)


def test_overlap_matrix_col_and_row_sides():
    th = 0.7
    run = rank1_run([(e(0), e(0)), (math.cos(th) * e(0) + math.sin(th) * e(1), e(1)), (e(2), e(0))])
    per_layer, mean = an.overlap_matrix(an.task_updates(run), k=1, side="col")
    want = np.array([[1, np.cos(th) ** 2, 0], [np.cos(th) ** 2, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(per_layer["l"], want, atol=1e-12)
    np.testing.assert_allclose(mean, want, atol=1e-12)
    _, rows = an.overlap_matrix(an.task_updates(run), k=1, side="row")
    np.testing.assert_allclose(rows, [[1, 0, 1], [0, 1, 0], [1, 0, 1]], atol=1e-12)
    assert an.mean_offdiag(want) == pytest.approx(2 * np.cos(th) ** 2 / 6)


def test_routing_history_on_a_clora_run():
    snaps = clora_snapshots(T=3, r=3)
    hist = an.routing_history(an.Run.from_config({"method": "clora", "rank": 3, "alpha": None}, snaps))
    h = hist["backbone.blocks.0.attn.q"]
    assert h["R_old"].shape == (3, 3, 3) and h["sv_delta"].shape == (3, 3)
    np.testing.assert_allclose(h["R_old"][2], (snaps[2]["backbone.blocks.0.attn.q.R_old"]).numpy())
    assert h["erank_old"][0] == 0.0 and 1.0 <= h["erank_delta"][1] <= 3.0
    assert math.isnan(h["share_left"][0]) and 0 < h["share_left"][1] <= 1   # no R_old yet, then a random share
    assert h["kept"][0] == 0 and 1 <= h["kept"][2] <= 3                         # nothing kept while R_old = 0
    R_d, R_o = (snaps[2][f"backbone.blocks.0.attn.q.{n}"] for n in ("R_delta", "R_old"))
    assert math.isnan(h["size"][0]) and h["size"][2] == pytest.approx(float(R_d.norm() / R_o.norm()))
    with pytest.raises(ValueError, match="routing weights exist for C-LoRA runs"):
        an.routing_history(rank1_run([(e(0), e(0))], "seq_lora"))


class Chain(nn.Module):
    """x (N, 6) -> blocks.0.q -> blocks.0.k: a two-layer 'backbone' with W0 = I and no bias."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.ModuleDict({"q": nn.Linear(6, 6, bias=False), "k": nn.Linear(6, 6, bias=False)})])
        with torch.no_grad():
            for lin in self.blocks[0].values():
                lin.weight.copy_(torch.eye(6))
        self.double()

    def forward(self, x):
        return self.blocks[0]["k"](self.blocks[0]["q"](x))


def test_interference_closed_form_in_the_backbone_before_task_t():
    a, b = 0.5, 0.3
    q, k = "backbone.blocks.0.q", "backbone.blocks.0.k"
    zero = {"lora_A": e(0)[None], "lora_B": torch.zeros(6, 1, dtype=D)}
    # task 0 adds a e1 e0^T to q (e0 -> e0 + a e1); task 1 adds b e1 e1^T to k.
    snaps = [{f"{q}.lora_A": e(0)[None], f"{q}.lora_B": a * e(1)[:, None], **{f"{k}.{n}": v for n, v in zero.items()}},
             {f"{k}.lora_A": e(1)[None], f"{k}.lora_B": b * e(1)[:, None], **{f"{q}.{n}": v for n, v in zero.items()}}]
    run = an.Run.from_config({"method": "lora_per_task", "rank": 1, "alpha": None}, snaps)
    images = [2.0 * e(0)[None], 3.0 * e(1)[None]]    # task 0 reads e0, task 1 reads e1
    per_layer, mean = an.interference(run, Chain(), images)
    # Before task 1, k reads q(e0) = e0 + a e1, so task 1's update on k moves task 0's output by a b.
    np.testing.assert_allclose(per_layer[k], [[0, np.nan], [a * b / np.sqrt(1 + a * a), b]], atol=1e-12)
    np.testing.assert_allclose(per_layer[q], [[a, np.nan], [0, 0]], atol=1e-12)
    np.testing.assert_allclose(mean[1, 0], a * b / np.sqrt(1 + a * a) / 2)


def test_selectivity_closed_forms():
    M = np.array([[0.1, np.nan, np.nan], [0.05, 0.2, np.nan], [0.3, 0.1, 0.4]])
    np.testing.assert_allclose(an.selectivity(M), [np.nan, 0.25, 0.5])
    assert np.isnan(an.selectivity(np.array([[0.0, np.nan], [0.0, 0.0]]))[1])    # no effect on its own inputs


@pytest.mark.parametrize("reads, want", [(e(1), 0.0), ((e(0) + e(1)) / math.sqrt(2), 1.0), (e(0), None)])
def test_selectivity_of_an_update_that_reads_only_the_new_task_s_inputs(reads, want):
    """Task 0's images give layer q the input e0, task 1's e1 (same norm). Task 1's update reads `reads`:
    e1 only (perfectly selective, 0), both equally (no selectivity, 1), e0 only (no effect on its own: NaN)."""
    q, k = "backbone.blocks.0.q", "backbone.blocks.0.k"
    zero = {"lora_A": e(0)[None], "lora_B": torch.zeros(6, 1, dtype=D)}
    snaps = [{f"{L}.{n}": v for L in (q, k) for n, v in zero.items()},
             {f"{q}.lora_A": reads[None], f"{q}.lora_B": 0.4 * e(2)[:, None], **{f"{k}.{n}": v for n, v in zero.items()}}]
    run = an.Run.from_config({"method": "lora_per_task", "rank": 1, "alpha": None}, snaps)
    per_layer, _ = an.interference(run, Chain(), [e(0)[None], e(1)[None]])
    s = an.selectivity(per_layer[q])[1]
    assert math.isnan(s) if want is None else s == pytest.approx(want, abs=1e-12)


# ---------- accuracy and storage ----------

def test_forgetting_per_task_matches_metrics():
    results = {"acc_matrix": [[90.0], [70.0, 88.0], [75.0, 60.0, 80.0]]}
    M = an.acc_matrix(results)
    assert M.shape == (3, 3) and np.isnan(M[0, 1]) and M[2, 1] == 60.0
    np.testing.assert_allclose(an.forgetting_per_task(results), [15.0, 28.0])
    assert an.forgetting_per_task(results).mean() == pytest.approx(metrics.forgetting(results["acc_matrix"]))


def test_stored_params_flat_for_clora_and_growing_for_a_stack():
    model = Chain()
    shapes = [tuple(m.weight.shape) for n, m in model.named_modules()
              if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in ("q", "k")]
    assert shapes == [(6, 6), (6, 6)]
    p = an.stored_adapter_params(shapes, rank=2, tasks=4)
    np.testing.assert_array_equal(p["clora"], [2 * (2 * 12 + 4)] * 4)
    np.testing.assert_array_equal(p["lora_per_task"], [48, 96, 144, 192])
    np.testing.assert_array_equal(p["seq_lora"], [48] * 4)


def test_one_colour_per_method_and_its_variants():
    from clora_lite.inside.plots import METHOD_COLORS, method_color
    from clora_lite.methods import METHODS
    assert all(m in METHOD_COLORS for m in METHODS)   # every method has its own colour ...
    assert len({METHOD_COLORS[m] for m in METHODS}) == len(METHODS)   # ... and no two share one
    assert method_color("clora_x") == method_color("clora") and method_color("seq_lora_x") == "#ff7f0e"
    ablations = ["clora", "clora_no_orth", "clora_no_stopgrad", "clora_left"]   # chapter 04 plots them together
    assert len({method_color(m) for m in ablations}) == len(ablations)
    assert method_color("unknown") == "#e377c2"
    import plotly.graph_objects as go   # plotly must accept every colour (it rejects matplotlib's "tab:blue")
    for c in [*METHOD_COLORS.values(), method_color("unknown")]:
        go.Scatter(line=dict(color=c))

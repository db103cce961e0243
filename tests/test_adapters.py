"""Exact algebra of LoRALinear and CLoRALinear. Every check compares against an independent formula."""
import pytest
import torch
from torch import nn

import clora_lite
from clora_lite import CLoRALinear, LoRALinear, from_loras
from clora_lite.adapters import clora as clora_module   # the module (clora_lite.adapters.clora), for monkeypatch


def make_base(d_in=12, d_out=10, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Linear(d_in, d_out).to(dtype)


def randomize(layer, seed=1, routing=True):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (layer.lora_A, layer.lora_B):
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
        if routing and isinstance(layer, CLoRALinear):
            layer.R_old.copy_(torch.randn(layer.R_old.shape, generator=g, dtype=p.dtype))
            layer.R_delta.copy_(torch.randn(layer.R_delta.shape, generator=g, dtype=p.dtype))
            layer.refresh_projectors()
    return layer


def x_batch(d_in=12, n=5, seed=2):
    return torch.randn(n, 3, d_in, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------- LoRALinear ----------

def test_lora_zero_at_init_and_formula():
    base = make_base()
    layer = LoRALinear(base, rank=4, alpha=8)
    x = x_batch()
    assert torch.equal(layer(x), base(x))
    assert layer.scale == 2.0
    randomize(layer)
    want = x @ base.weight.T + base.bias + 2.0 * x @ (layer.lora_B @ layer.lora_A).T
    torch.testing.assert_close(layer(x), want)
    assert not base.weight.requires_grad and layer.lora_A.requires_grad


def test_lora_merge_matches():
    layer = randomize(LoRALinear(make_base(), rank=3))
    x = x_batch()
    merged = layer.merged()
    assert type(merged) is nn.Linear
    torch.testing.assert_close(merged(x), layer(x))
    torch.testing.assert_close(merged.weight - layer.base.weight, layer.delta_weight())


def test_lora_gradcheck():
    layer = randomize(LoRALinear(make_base(6, 5), rank=2))
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    f = lambda x, A, B: torch.func.functional_call(layer, {"lora_A": A, "lora_B": B}, (x,))
    assert torch.autograd.gradcheck(f, (x, layer.lora_A, layer.lora_B))


@pytest.mark.parametrize("rank", [0, -1, 11, 2.5, True])
def test_bad_rank_is_one_line_error(rank):
    for cls in (LoRALinear, CLoRALinear):
        with pytest.raises(ValueError, match=r"rank=.* is not allowed") as e:
            cls(make_base(12, 10), rank=rank)
        assert "\n" not in str(e.value)


# ---------- CLoRALinear ----------

def test_clora_zero_at_init_but_routing_gets_gradient():
    base = make_base()
    layer = CLoRALinear(base, rank=4)
    x = x_batch()
    y = layer(x)
    assert torch.equal(y, base(x))
    assert torch.count_nonzero(layer.R_old) == 0 and torch.count_nonzero(layer.R_delta) == 0
    y.pow(2).sum().backward()
    assert layer.R_delta.grad.abs().sum() > 0
    # R_delta = 0: A and B get no gradient at all through the new route and none through the old one.
    assert torch.count_nonzero(layer.lora_A.grad) == 0 and torch.count_nonzero(layer.lora_B.grad) == 0


def test_clora_routing_gradient_formula():
    """dL/dR_delta = s * B^T G A^T summed over tokens, G = dL/dy."""
    layer = CLoRALinear(make_base(), rank=4, alpha=2)
    randomize(layer, routing=False)
    x = x_batch().reshape(-1, 12)
    G = torch.randn(x.shape[0], 10, dtype=torch.float64)
    (layer(x) * G).sum().backward()
    want = layer.scale * layer.lora_B.T @ G.T @ x @ layer.lora_A.T
    torch.testing.assert_close(layer.R_delta.grad, want)


@pytest.mark.parametrize("detach_old", [True, False])
def test_clora_forward_formula(detach_old):
    base = make_base()
    layer = randomize(CLoRALinear(base, rank=4, alpha=6, detach_old=detach_old))
    x = x_batch()
    R = layer.R_old + layer.R_delta
    want = x @ base.weight.T + base.bias + 1.5 * x @ (layer.lora_B @ R @ layer.lora_A).T
    torch.testing.assert_close(layer(x), want)
    torch.testing.assert_close(layer.delta_weight(), 1.5 * layer.lora_B @ R @ layer.lora_A)


def grads_with_zero_delta(detach_old):
    layer = randomize(CLoRALinear(make_base(), rank=4, detach_old=detach_old))
    with torch.no_grad():
        layer.R_delta.zero_()
    layer(x_batch()).pow(2).sum().backward()
    return layer.lora_A.grad, layer.lora_B.grad


def test_detach_old_stops_gradient_of_old_route():
    gA, gB = grads_with_zero_delta(detach_old=True)
    assert torch.count_nonzero(gA) == 0 and torch.count_nonzero(gB) == 0
    gA, gB = grads_with_zero_delta(detach_old=False)
    assert gA.abs().sum() > 0 and gB.abs().sum() > 0


def test_detach_old_gradients_flow_only_through_delta():
    """With detach_old, A's and B's gradients equal those of a layer whose R_old route is removed."""
    layer = randomize(CLoRALinear(make_base(), rank=4))
    only_new = CLoRALinear(make_base(), rank=4)
    only_new.load_state_dict(layer.state_dict())
    with torch.no_grad():
        only_new.R_old.zero_()
    G = torch.randn(5, 3, 10, dtype=torch.float64)
    for m in (layer, only_new):
        (m(x_batch()) * G).sum().backward()
    torch.testing.assert_close(layer.lora_A.grad, only_new.lora_A.grad)
    torch.testing.assert_close(layer.lora_B.grad, only_new.lora_B.grad)


def test_detach_old_keeps_input_gradient_of_old_route():
    layer = randomize(CLoRALinear(make_base(), rank=4))
    x = x_batch().requires_grad_(True)
    G = torch.randn(5, 3, 10, dtype=torch.float64)
    (layer(x) * G).sum().backward()
    W = layer.base.weight + layer.delta_weight()
    torch.testing.assert_close(x.grad, G @ W)


def test_consolidate_keeps_outputs_and_moves_routing():
    layer = randomize(CLoRALinear(make_base(), rank=4))
    x = x_batch()
    before, R_sum = layer(x), (layer.R_old + layer.R_delta).clone()
    layer.consolidate()
    torch.testing.assert_close(layer(x), before)
    torch.testing.assert_close(layer.R_old, R_sum)
    assert torch.count_nonzero(layer.R_delta) == 0


def test_orthogonality_loss_cases():
    layer = CLoRALinear(make_base(), rank=6, orth_energy=1.0)
    with torch.no_grad():
        layer.R_delta.copy_(torch.randn(6, 6, dtype=torch.float64))
    assert layer.orthogonality_loss().item() == 0.0  # R_old = 0

    Q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    U, V = Q[:, :3], Q[:, 3:]  # R_old lives on span(U) x span(U); R_delta on the complement
    with torch.no_grad():
        layer.R_old.copy_(U @ torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)) @ U.T)
        layer.refresh_projectors()
        layer.R_delta.copy_(V @ torch.randn(3, 3, dtype=torch.float64) @ V.T)
    assert layer.orthogonality_loss().item() < 1e-20

    with torch.no_grad():
        layer.R_delta.copy_(U @ torch.randn(3, 3, dtype=torch.float64) @ V.T)  # overlaps on the left only
    left_only = layer.orthogonality_loss().item()
    assert left_only > 0.1
    want = (U.T @ layer.R_delta).pow(2).sum() + (layer.R_delta @ U).pow(2).sum()
    torch.testing.assert_close(layer.orthogonality_loss(), want)
    layer.orth_side = "right"
    assert layer.orthogonality_loss().item() < 1e-20  # its rows avoid span(U): the right side can't see it
    layer.orth_side = "left"
    assert layer.orthogonality_loss().item() == pytest.approx(left_only)


def test_energy_truncation_drops_weak_directions():
    layer = CLoRALinear(make_base(), rank=4, orth_energy=0.9)
    with torch.no_grad():
        layer.R_old.copy_(torch.diag(torch.tensor([10.0, 0.1, 0.0, 0.0], dtype=torch.float64)))
        layer.refresh_projectors()
        layer.R_delta.zero_()
        layer.R_delta[1, 1] = 1.0  # along the weak direction: outside the kept 90 % of the energy
    assert layer.orthogonality_loss().item() == 0.0
    with torch.no_grad():
        layer.R_delta[0, 1] = 1.0
    assert layer.orthogonality_loss().item() == pytest.approx(1.0)


def test_orthogonality_loss_reads_hand_set_R_old_without_extra_svds(monkeypatch):
    """A reader sets R_old by hand (no refresh_projectors()): the loss must see it at once, and recompute the
    projectors only when R_old has changed (the per-step cost stays one r x r product per side)."""
    layer = CLoRALinear(make_base(), rank=4, orth_energy=1.0)
    U = torch.eye(4, dtype=torch.float64)[:, :2]
    with torch.no_grad():
        layer.R_delta.copy_(torch.randn(4, 4, dtype=torch.float64))
        layer.R_old.copy_(U @ U.T)                      # in place, as a notebook would
    want = lambda: (U.T @ layer.R_delta).pow(2).sum() + (layer.R_delta @ U).pow(2).sum()
    torch.testing.assert_close(layer.orthogonality_loss(), want())
    svds = []
    real = clora_module.energy_basis
    monkeypatch.setattr(clora_module, "energy_basis", lambda *a: svds.append(1) or real(*a))
    for _ in range(5):
        layer.orthogonality_loss()
    assert not svds                                     # unchanged R_old: no recomputation
    layer.R_old = torch.zeros(4, 4, dtype=torch.float64)   # assignment replaces the buffer
    assert layer.orthogonality_loss().item() == 0.0 and len(svds) == 1
    with torch.no_grad():
        layer.R_old[0, 0] = 1.0                         # indexing writes in place too
    assert layer.orthogonality_loss().item() == pytest.approx(
        layer.R_delta[0].pow(2).sum().item() + layer.R_delta[:, 0].pow(2).sum().item())


def sgd_on_A_B(orth_side, steps=20):
    """Train A and B only (R_delta fixed) with SGD; return the change of the old route B R_old A. At every step,
    check that A's and B's gradients come through R_delta alone (detach_old): dL/dA = s (B R_delta)^T G^T x and
    dL/dB = s G^T x (R_delta A)^T with G = dL/dy, whatever R_old holds."""
    torch.manual_seed(0)
    layer = CLoRALinear(make_base(), rank=6)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    U, V = Q[:, :3], Q[:, 3:]
    with torch.no_grad():
        layer.R_old.copy_(U @ torch.randn(3, 3, dtype=torch.float64) @ U.T)
        if orth_side == "both":   # R_delta^T R_old = 0 and R_old R_delta^T = 0
            layer.R_delta.copy_(V @ torch.randn(3, 3, dtype=torch.float64) @ V.T)
        else:                     # left side only: U^T R_delta = 0, its rows overlap R_old's
            layer.R_delta.copy_(V @ torch.randn(3, 6, dtype=torch.float64))
    layer.R_delta.requires_grad_(False)
    old_route = lambda: (layer.lora_B @ layer.R_old @ layer.lora_A).detach().clone()
    start, A0, B0 = old_route(), layer.lora_A.detach().clone(), layer.lora_B.detach().clone()
    opt = torch.optim.SGD([layer.lora_A, layer.lora_B], lr=0.01)
    for step in range(steps):
        x = torch.randn(32, 12, dtype=torch.float64)
        y = layer(x)
        y.retain_grad()
        loss = (y - torch.randn(32, 10, dtype=torch.float64)).pow(2).mean()
        opt.zero_grad(); loss.backward()
        G, s, B, A, Rd = y.grad, layer.scale, layer.lora_B.detach(), layer.lora_A.detach(), layer.R_delta.detach()
        torch.testing.assert_close(layer.lora_A.grad, s * (B @ Rd).T @ G.T @ x)
        torch.testing.assert_close(layer.lora_B.grad, s * G.T @ x @ (Rd @ A).T)
        opt.step()
    # training did move A and B (else an unchanged old route below would prove nothing)
    assert (layer.lora_A - A0).abs().max() > 1e-3 and (layer.lora_B - B0).abs().max() > 1e-3
    return (old_route() - start).abs().max().item(), start.abs().max().item()


def test_both_sided_orthogonality_freezes_old_route_exactly():
    change, size = sgd_on_A_B("both")
    assert change < 1e-12 * max(size, 1.0)
    change, size = sgd_on_A_B("left")
    assert change > 1e-3 * size


def test_clora_merge_matches():
    layer = randomize(CLoRALinear(make_base(), rank=4, alpha=3))
    x = x_batch()
    torch.testing.assert_close(layer.merged()(x), layer(x))


def test_from_loras_is_the_lora_mixture():
    base = make_base()
    g = torch.Generator().manual_seed(3)
    loras = [(torch.randn(r, 12, generator=g, dtype=torch.float64),
              torch.randn(10, r, generator=g, dtype=torch.float64)) for r in (2, 3, 1)]
    weights = [0.5, -1.0, 2.0]
    layer = from_loras(base, loras, weights)
    x = x_batch()
    want = base(x) + sum(w * x @ (B @ A).T for (A, B), w in zip(loras, weights))
    torch.testing.assert_close(layer(x), want)
    assert layer.rank == 6 and torch.count_nonzero(layer.R_old - torch.diag(torch.diagonal(layer.R_old))) == 0


@pytest.mark.parametrize("detach_old", [True, False])
def test_clora_gradcheck(detach_old):
    """float64 gradcheck. With detach_old the gradients of A and B are deliberately not the derivative of
    the output (the old route is cut), so for them the check runs with R_old = 0, where the two agree."""
    layer = randomize(CLoRALinear(make_base(6, 5), rank=3, detach_old=detach_old))
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    names = ("R_delta", "lora_A", "lora_B")
    f = lambda x, *p: torch.func.functional_call(layer, dict(zip(names, p)), (x,))
    if detach_old:
        assert torch.autograd.gradcheck(f, (x, layer.R_delta))
        with torch.no_grad():
            layer.R_old.zero_()
    assert torch.autograd.gradcheck(f, (x, layer.R_delta, layer.lora_A, layer.lora_B))


def test_bad_orth_options():
    with pytest.raises(ValueError, match="orth_side='top' is not allowed"):
        CLoRALinear(make_base(), 4, orth_side="top")
    with pytest.raises(ValueError, match="orth_energy=1.5 is not allowed"):
        CLoRALinear(make_base(), 4, orth_energy=1.5)


# ---------- model-level helpers ----------

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(nn.ModuleDict({"q": nn.Linear(8, 8), "k": nn.Linear(8, 8),
                                                   "v": nn.Linear(8, 8), "fc1": nn.Linear(8, 8)})
                                    for _ in range(2))

    def forward(self, x):
        for b in self.blocks:
            x = b["fc1"](b["q"](x) + b["k"](x) * b["v"](x))
        return x


@pytest.mark.parametrize("kind", ["lora", "clora"])
def test_add_adapters_targets_and_freezing(kind):
    model = Tiny().double()
    adapters = clora_lite.add_adapters(model, kind=kind, rank=2, targets=("q", "v"))
    assert len(adapters) == 4
    assert isinstance(model.blocks[0]["q"], (LoRALinear, CLoRALinear))
    assert type(model.blocks[0]["k"]) is nn.Linear
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    want = {"lora_A", "lora_B"} | ({"R_delta"} if kind == "clora" else set())
    assert {n.rsplit(".", 1)[-1] for n in trainable} == want
    assert len(trainable) == 4 * len(want)


def test_model_helpers_consolidate_merge_orth():
    model = Tiny().double()
    adapters = clora_lite.add_adapters(model, rank=2)
    for i, a in enumerate(adapters):
        randomize(a, seed=i)
    x = torch.randn(3, 8, dtype=torch.float64)
    y = model(x)
    assert clora_lite.orthogonality_loss(model).item() > 0
    clora_lite.consolidate(model)
    torch.testing.assert_close(model(x), y)
    assert clora_lite.orthogonality_loss(model).item() == 0.0  # R_delta = 0 after consolidation
    clora_lite.merge_adapters(model)
    assert not clora_lite.adapters_of(model)
    torch.testing.assert_close(model(x), y)


def test_add_adapters_bad_input():
    with pytest.raises(ValueError, match="matched no nn.Linear"):
        clora_lite.add_adapters(Tiny(), targets=("nope",))
    with pytest.raises(ValueError, match="kind='dora' is not allowed"):
        clora_lite.add_adapters(Tiny(), kind="dora")


def test_remove_adapters_unwraps_without_merging():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    plain = [m.weight.clone() for m in model if isinstance(m, nn.Linear)]
    x = torch.randn(5, 8)
    before = model(x)
    adapters = clora_lite.add_adapters(model, kind="lora", rank=2, targets=("0", "2"))
    with torch.no_grad():
        for a in adapters:
            a.lora_B.normal_()
    assert not torch.allclose(model(x), before)
    clora_lite.remove_adapters(model)
    assert all(type(m) in (nn.Linear, nn.ReLU) for m in model)
    torch.testing.assert_close(model(x), before)
    assert all(torch.equal(m.weight, w) for m, w in zip([model[0], model[2]], plain))


# ---------- the adapter-layer interface: declared tensors, update_from, fold_into_base, snapshot ----------

@pytest.mark.parametrize("cls", [LoRALinear, CLoRALinear])
def test_update_from_is_the_merged_update(cls):
    """Every adapter layer class declares the tensors of its update and how they make it (dW = L @ R): what the
    analysis reads back from snapshots, so it must be exactly what merging adds to W0."""
    layer = randomize(cls(make_base(), rank=3, alpha=6))
    tensors = layer.adapter_tensors()
    assert tuple(tensors) == cls.adapter_tensor_names
    L, R = cls.update_from({k: v.detach() for k, v in tensors.items()}, layer.scale)
    assert L.shape[0] == 10 and R.shape[1] == 12 and L.shape[1] == R.shape[0]
    torch.testing.assert_close(L @ R, layer.merged().weight - layer.base.weight)
    x = x_batch()
    torch.testing.assert_close(layer(x), layer.base(x) + x @ (L @ R).T)


@pytest.mark.parametrize("reinit_A", [True, False])
def test_fold_into_base_keeps_the_function_and_starts_a_fresh_adapter(reinit_A):
    layer = randomize(LoRALinear(make_base(), rank=3, alpha=6))
    x = x_batch()
    before, A, W = layer(x).detach(), layer.lora_A.detach().clone(), layer.base.weight.detach().clone()
    dW = layer.delta_weight().detach()
    layer.fold_into_base(reinit_A=reinit_A)
    torch.testing.assert_close(layer(x), before)
    torch.testing.assert_close(layer.base.weight, W + dW)
    assert torch.count_nonzero(layer.lora_B) == 0
    assert torch.equal(layer.lora_A, A) != reinit_A


def test_snapshot_holds_every_declared_tensor_and_the_scale():
    model = nn.Sequential(nn.Linear(12, 12), nn.Linear(12, 10)).double()
    adapters = clora_lite.add_adapters(model, kind="clora", rank=2, targets=("0", "1"), alpha=6)
    for i, a in enumerate(adapters):
        randomize(a, seed=i)
    snap = clora_lite.snapshot(model)
    assert set(snap) == {f"{n}.{k}" for n in ("0", "1") for k in (*CLoRALinear.adapter_tensor_names, "scale")}
    assert snap["1.scale"].item() == 3.0 and snap["0.lora_A"].data_ptr() != adapters[0].lora_A.data_ptr()
    for n, a in zip(("0", "1"), adapters):
        tensors = {k: snap[f"{n}.{k}"] for k in CLoRALinear.adapter_tensor_names}
        L, R = CLoRALinear.update_from(tensors, float(snap[f"{n}.scale"]))
        torch.testing.assert_close(L @ R, a.delta_weight().detach())

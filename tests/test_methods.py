"""The peers: InfLoRA with its input-subspace helpers (methods/inflora.py) and SD-LoRA (methods/sdlora.py), and
both through the loop. Every method's shared contract (learns, frozen weights, resume, checkpoints, analysis) is
in test_contract.py."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from clora_lite.backbone import vit
from clora_lite.continual import Config, run
from clora_lite.errors import NeedsTaskData
from clora_lite.methods import inflora as ins
from clora_lite.methods import sdlora


def energy_share(M: torch.Tensor, C: torch.Tensor) -> float:
    """Fraction of C's energy (squared singular values) that span(M) holds: 1 - |(I - MM^T) C|^2 / |C|^2."""
    C = C.double()
    return float(1 - (ins.project_off(C, M.double()) ** 2).sum() / (C ** 2).sum())


def cfg(**kw):
    base = dict(method="inflora", rank=4, alpha=None, targets=("q", "k", "v"), align_head=False, head="linear",
                head_lr=1e-2, lr=1e-2, detach_old=True, orth_energy=0.95, orth_side="both", lambda_orth=100.0,
                routing_lr=None, tasks=3)
    base.update(kw)
    return SimpleNamespace(**base)


def small_vit():
    torch.manual_seed(0)
    return vit.ViT(vit.ViTConfig(image_size=16, patch=8, dim=32, depth=2, heads=2, mlp_dim=64))


def batches_of(x):
    return lambda: iter(x.split(8))


# ---------------------------------------------------------------- InfLoRA's input subspaces

def test_input_covariance_is_the_mean_outer_product_over_all_tokens():
    lin = nn.Linear(5, 3)
    model = nn.Sequential(lin)
    x = torch.randn(4, 7, 5)
    C = ins.input_covariances(model, {"l": lin}, [x[:2], x[2:]])["l"]
    flat = x.reshape(-1, 5).double()
    torch.testing.assert_close(C, flat.T @ flat / len(flat))
    with pytest.raises(ValueError, match="saw no input"):
        ins.input_covariances(model, {"l": lin}, [])


def test_grow_basis_holds_the_threshold_energy_and_grows():
    torch.manual_seed(0)
    d = 20
    X1 = torch.randn(200, 4) @ torch.randn(4, d) + 0.05 * torch.randn(200, d)   # mostly a 4-dim subspace
    C1 = (X1.T @ X1 / 200).double()
    M = ins.grow_basis(torch.zeros(d, 0, dtype=torch.float64), C1, 0.95)
    assert 1 <= M.shape[1] <= 4
    torch.testing.assert_close(M.T @ M, torch.eye(M.shape[1], dtype=torch.float64))
    # first task, as the official code: the leading directions whose cumulative share stays below the threshold
    U = torch.linalg.svd(C1).U
    k = M.shape[1]
    assert energy_share(M, C1) < 0.95 <= energy_share(U[:, :k + 1], C1)
    X2 = torch.randn(200, 3) @ torch.randn(3, d)    # another subspace
    C2 = (X2.T @ X2 / 200).double()
    M2 = ins.grow_basis(M, C2, 0.97)
    assert M2.shape[1] > M.shape[1]
    torch.testing.assert_close(M2[:, :M.shape[1]], M)                       # old directions kept as they were
    torch.testing.assert_close(M2.T @ M2, torch.eye(M2.shape[1], dtype=torch.float64))
    assert energy_share(M2, C2) >= 0.97
    Z = ins.padded(M2, d)                                                    # the fixed-shape buffer form
    assert Z.shape == (d, d)
    torch.testing.assert_close(ins.basis_of(Z), M2)
    torch.testing.assert_close(Z @ Z.T, M2 @ M2.T)


def test_threshold_rises_from_095_towards_1():
    assert ins.threshold_at(0, 10) == pytest.approx(0.95)
    assert ins.threshold_at(5, 10) == pytest.approx(0.975)
    assert ins.threshold_at(9, 10) < 1.0


# ---------------------------------------------------------------- InfLoRA

def test_inflora_designs_A_off_the_protected_subspace_merges_and_grows():
    torch.manual_seed(0)
    learner = ins.InfLoRA(small_vit(), 6, cfg())
    x0, x1 = torch.randn(24, 3, 16, 16), torch.randn(24, 3, 16, 16) + 1.0
    learner.begin_task(0, [0, 1])
    with pytest.raises(NeedsTaskData, match="prepare_task"):
        learner.param_groups()
    learner.prepare_task(batches_of(x0))
    layers = list(learner.adapters.values())
    assert len(layers) == 4   # k and v of 2 blocks
    for m in layers:
        A = m.lora_A.double() * 3 ** 0.5
        torch.testing.assert_close(A @ A.T, torch.eye(4, dtype=torch.float64), atol=1e-5, rtol=0)   # orthonormal rows
        assert not m.lora_A.requires_grad and m.lora_B.requires_grad
    trained = {id(p) for g in learner.param_groups() for p in g["params"]}
    assert trained == {id(p) for p in learner.head.parameters()} | {id(m.lora_B) for m in layers}
    with torch.no_grad():
        for m in layers:
            m.lora_B.normal_()   # stands in for training
    learner.end_task()
    k0 = [ins.basis_of(m.input_basis).shape[1] for m in layers]
    assert all(k >= 1 for k in k0)

    before = learner.backbone(x0[:4])
    learner.begin_task(1, [2, 3])          # merge the trained branch into W0, new branch at B = 0
    torch.testing.assert_close(learner.backbone(x0[:4]), before, atol=1e-5, rtol=1e-4)
    learner.prepare_task(batches_of(x1))
    for m in layers:
        # the new A reads nothing of the protected input subspace
        assert (m.lora_A.double() @ m.input_basis.double()).abs().max() < 1e-5
    learner.end_task()
    k1 = [ins.basis_of(m.input_basis).shape[1] for m in layers]
    assert all(b >= a for a, b in zip(k0, k1)) and sum(k1) > sum(k0)


# ---------------------------------------------------------------- SD-LoRA

def sdlora_learner(tasks=3):
    from clora_lite.methods import make_learner
    return make_learner(small_vit(), 6, cfg(method="sdlora", tasks=tasks))


def test_sdlora_old_pairs_enter_as_unit_directions_times_their_magnitude():
    learner = sdlora_learner()
    m = next(iter(learner.adapters.values()))
    with torch.no_grad():
        nn.init.normal_(m.lora_B)
        A0, B0 = m.lora_A.clone(), m.lora_B.clone()
        learner.begin_task(0, [0, 1])
        learner.begin_task(1, [2, 3])          # task 0's pair is frozen into slot 0, a fresh pair starts
        assert torch.equal(m.lora_B, torch.zeros_like(m.lora_B)) and not torch.equal(m.lora_A, A0)
        assert learner.magnitudes[0] == 0.8 and learner.magnitudes[1] > 0 and learner.magnitudes[2:].eq(0.8).all()
        learner.magnitudes.copy_(torch.tensor([0.0, 1.7, 0.0, 0.0]))   # only task 0's direction, magnitude 1.7
        direction = (B0 @ A0) / (B0.norm() * A0.norm())
        torch.testing.assert_close(m.delta_weight(), 1.7 * direction)
        x = torch.randn(5, m.base.in_features)
        torch.testing.assert_close(m(x), m.base(x) + 1.7 * x @ direction.T)
        learner.magnitudes.copy_(torch.tensor([0.5, 1.3, 0.7, 0.2]))
        nn.init.normal_(m.lora_B)
        torch.testing.assert_close(m(x), m.merged()(x), atol=1e-5, rtol=1e-5)   # merging keeps the function


def test_sdlora_handover_keeps_a_layers_update():
    torch.manual_seed(0)
    m = sdlora.SDLoRALinear(nn.Linear(12, 10), rank=3, num_tasks=2)
    m.__dict__["magnitudes"] = torch.tensor([0.8, 0.0, 0.0])
    with torch.no_grad():
        nn.init.normal_(m.lora_B)
        before = m.delta_weight().clone()
        kept = m.finish_task(0)
        m.magnitudes[1] = kept
    torch.testing.assert_close(m.delta_weight(), before)   # the fresh pair adds 0 (B = 0); task 0 is unchanged


def test_sdlora_magnitudes_load_into_a_fresh_learner_and_reach_every_layer():
    """The magnitudes live once, on the learner; a checkpoint loaded into a new learner drives all its layers."""
    learner = sdlora_learner()
    with torch.no_grad():
        for m in learner.adapters.values():
            nn.init.normal_(m.lora_B)
        learner.begin_task(0, [0, 1])
        learner.begin_task(1, [2, 3])
        for m in learner.adapters.values():
            nn.init.normal_(m.lora_B)
        learner.magnitudes.copy_(torch.tensor([0.3, 1.9, 0.0, 0.0]))
    fresh = sdlora_learner()
    fresh.begin_task(0, [0, 1])
    fresh.begin_task(1, [2, 3])
    fresh.load_state_dict(learner.state_dict())
    x = torch.randn(2, 3, 16, 16)
    assert all(m.magnitudes is fresh.magnitudes for m in fresh.adapters.values())
    torch.testing.assert_close(fresh.backbone(x), learner.backbone(x))


def test_sdlora_trains_only_the_current_pair_the_magnitudes_and_the_head():
    learner = sdlora_learner()
    learner.begin_task(0, [0, 1])
    trained = {id(p) for g in learner.param_groups() for p in g["params"]}
    names = {n for n, p in learner.named_parameters() if id(p) in trained}
    assert names == {"magnitudes", "head.weight", "head.bias"} | {
        f"backbone.blocks.{b}.attn.{t}.lora_{x}" for b in range(2) for t in "qv" for x in "AB"}
    frozen = learner.stored_params()
    learner.begin_task(1, [2, 3])
    per_task = sum(m.lora_A.numel() + m.lora_B.numel() for m in learner.adapters.values())
    assert learner.stored_params() == frozen + per_task   # every task's pair is kept apart


def test_sdlora_old_coefficients_are_magnitudes_over_the_pair_norms():
    r, T = 2, 3
    g = torch.Generator().manual_seed(0)
    old_A, old_B = torch.randn(T * r, 5, generator=g), torch.randn(4, T * r, generator=g)
    old_A[2 * r:], old_B[:, 2 * r:] = 0, 0                     # task 2's slot unused
    mags = torch.tensor([0.8, 1.5, 0.4, 0.9])
    c = sdlora.SDLoRALinear.old_coefficients(old_A, old_B, mags)
    want = [mags[1 + i] / (old_B[:, i * r:(i + 1) * r].norm() * old_A[i * r:(i + 1) * r].norm()) for i in range(2)]
    torch.testing.assert_close(c, torch.stack([want[0], want[0], want[1], want[1], torch.tensor(0.), torch.tensor(0.)]))


# ---------------------------------------------------------------- through the loop (the loop calls prepare_task)

@pytest.mark.parametrize("method,kw", [("inflora", {"first_lr_scale": 2.0}), ("sdlora", {"drift_ridge": 1.0})])
def test_new_methods_run_through_the_loop(method, kw):
    """With a validation split, the warm start and drift compensation: the run is deterministic, and the validation
    accuracy counts exactly the held-out images (2 of each class's 6: 8 in all, so a multiple of 12.5 %)."""
    cfg = Config(method=method, benchmark="synthetic_inverted", tasks=2, classes=4, train_per_class=6,
                 test_per_class=3, val_fraction=0.34, epochs=1, batch=4, align_steps=2, device="cpu", **kw)
    res = run(cfg, out=None, progress=False, log=lambda *a: None)
    again = run(cfg, out=None, progress=False, log=lambda *a: None)
    assert res["acc_matrix"] == again["acc_matrix"] and res["val_acc_matrix"] == again["val_acc_matrix"]
    assert [len(r) for r in res["acc_matrix"]] == [1, 2] == [len(r) for r in res["val_acc_matrix"]]
    assert res["val_last_acc"] == res["val_acc_matrix"][-1][0] / 2 + res["val_acc_matrix"][-1][1] / 2
    assert (res["val_last_acc"] * 8 / 100) == pytest.approx(round(res["val_last_acc"] * 8 / 100), abs=1e-9)


def test_first_session_adapts_on_the_first_task_only(tmp_path):
    cfg = Config(method="first_session", benchmark="synthetic", tasks=3, classes=6, train_per_class=16,
                 test_per_class=8, epochs=1, batch=8, align_steps=5, device="cpu")
    run(cfg, tmp_path, progress=False, log=lambda s: None)
    snaps = [torch.load(tmp_path / "adapters" / f"task_{t:02d}.pt", weights_only=True) for t in range(3)]
    b = [k for k in snaps[0] if k.endswith("lora_B")]
    assert b and all(snaps[0][k].abs().sum() > 0 for k in b)          # task 1 trained the adapter
    assert all(torch.equal(snaps[0][k], s[k]) for s in snaps[1:] for k in snaps[0])   # later tasks did not


def test_ncm_scores_by_cosine_to_the_class_means_and_needs_the_statistics():
    from clora_lite.errors import ConfigError
    from clora_lite.methods import NCM
    learner = NCM(vit.build("vit_tiny"), 3, Config(method="ncm"))
    feats = torch.randn(30, learner.backbone.dim, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(3).repeat_interleave(10)
    learner.record_class_stats(feats + 3 * torch.eye(3, feats.shape[1])[labels], labels)
    query = torch.randn(5, feats.shape[1])
    expected = torch.stack([torch.nn.functional.cosine_similarity(query, m[None], dim=1)
                            for m in learner.class_mean], 1)
    assert torch.allclose(learner.logits(query), expected, atol=1e-6)
    assert learner.param_groups() == [] and learner.trainable_params() == 0
    with pytest.raises(ConfigError, match="method='ncm' is not allowed with align_head off"):
        Config.from_dict({"method": "ncm", "align_head": False})

"""Every family of the zoo, dense and convolutional, with exact float64 Jacobians (docs/replication.md §1):
orthogonal a.e. where it should be, partial isometries, the limit layer's ε bound, PSO subspaces."""

import dataclasses

import pytest
import torch

from orthojac.config import RunConfig
from orthojac.nets.models import _pso_basis, build_model
from orthojac.spectra import jacobian_matrix

DENSE_N, CONV_C, SIDE = 10, 3, 5


def _body(seed=0, bias_scale=1.0, **settings):
    """The body of a network built by the zoo, in float64, biases drawn at random."""
    cfg = RunConfig(depth=settings.pop("depth", 1), width=DENSE_N, channels=CONV_C, seed=seed, **settings)
    body = build_model(cfg).body.double()
    gen = torch.Generator().manual_seed(100 + seed)
    with torch.no_grad():
        for layer in body:
            if bias_scale and hasattr(layer, "bias"):
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen, dtype=torch.float64) * bias_scale)
    return cfg, body


def _point(cfg, seed=0):
    shape = (DENSE_N,) if cfg.arch == "dense" else (CONV_C, SIDE, SIDE)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2


def _jacobian(f, x):
    return jacobian_matrix(f, x, chunk_size=None)


ORTHOGONAL_CASES = [
    dict(family="fold", activation="relu"),
    dict(family="fold", activation="relu_k", k=2),
    dict(family="fold", activation="relu_k", k=3),
    dict(family="fold", activation="relu_k", k=3, breakpoints="-0.3,0.1,2"),
    dict(family="fold", activation="relu_k", k=2, breakpoint_mode="learnable"),
    dict(family="fold", activation="relu", width_mid=2),
    dict(family="fold", activation="relu_k", k=3, width_mid=3),
    dict(family="orthoff", activation="abs"),
    dict(family="orthoff", activation="sigma_k", k=1),
    dict(family="orthoff", activation="sigma_k", k=3),
    dict(family="orthoff", activation="sigma_k", k=4, breakpoints="-2,-0.5,0,1.5"),
    dict(family="limit", activation="relu", delta=0.0),
]


@pytest.mark.parametrize("arch", ["dense", "conv"])
@pytest.mark.parametrize("case", ORTHOGONAL_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("seed", [0, 1])
def test_orthogonal_families_have_orthogonal_jacobians(arch, case, seed):
    cfg, body = _body(seed, arch=arch, init="cayley" if seed else "haar", **case)
    jacobians = [_jacobian(body, _point(cfg, 10 * seed + p)) for p in range(4)]
    for J in jacobians:
        assert (torch.linalg.svdvals(J) - 1).abs().max() < 1e-6
    # Not a trivial case: at some point J is neither ±I, and J changes from point to point.
    eye = torch.eye(jacobians[0].shape[0], dtype=torch.float64)
    assert max(min((J - eye).abs().max(), (J + eye).abs().max()) for J in jacobians) > 0.1
    assert max((J - jacobians[0]).abs().max() for J in jacobians) > 1e-3


@pytest.mark.parametrize("arch", ["dense", "conv"])
@pytest.mark.parametrize("activation,k", [("relu", 1), ("relu_k", 3)])
def test_partial_has_singular_values_zero_or_one(arch, activation, k):
    cfg, body = _body(2, arch=arch, family="partial", activation=activation, k=k)
    sigma = torch.linalg.svdvals(_jacobian(body, _point(cfg, 2)))
    distance = torch.minimum(sigma.abs(), (sigma - 1).abs())
    assert distance.max() < 1e-6
    assert (sigma > 0.5).any() and (sigma < 0.5).any()


def test_non_orthogonal_activation_is_detected():
    """The check can fail: fold with tanh (ρ' ∉ {0, 1}) is not orthogonal."""
    cfg, body = _body(3, arch="dense", family="fold", activation="tanh")
    sigma = torch.linalg.svdvals(_jacobian(body, _point(cfg, 3)))
    assert (sigma - 1).abs().max() > 1e-2


@pytest.mark.parametrize("arch", ["dense", "conv"])
@pytest.mark.parametrize("activation,k", [("relu", 1), ("relu_k", 2)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_limit_layer_stays_inside_its_epsilon_bound(arch, activation, k, seed):
    measured, bounds = [], []
    for delta in (0.0, 0.01, 0.1, 0.5):
        cfg, body = _body(seed, arch=arch, family="limit", activation=activation, k=k, delta=delta,
                          bias_scale=0.5)
        x = _point(cfg, seed) / 2
        eps = (torch.linalg.svdvals(_jacobian(body, x)) - 1).abs().max().item()
        bound = body[0].epsilon_bound(x)
        # + 1e-6: the zoo stores weights in float32, so B Bᵀ = I only to about 1e-7.
        assert eps <= bound + 1e-6, (delta, eps, bound)
        measured.append(eps)
        bounds.append(bound)
    assert measured[0] < 1e-6 and bounds[0] == 0.0  # δ = 0 is fold
    assert all(e > 0 for e in measured[1:])
    assert bounds[1] < 0.1  # not vacuous at small δ
    assert bounds[1] / 0.01 == pytest.approx(bounds[3] / 0.5)  # linear in δ: → 0 with δ
    assert all(e > b / 20 for e, b in zip(measured[1:], bounds[1:]))  # within a factor 20


def _subspace_basis(cfg):
    """Columns spanning V in the body's flattened input space."""
    n, d = (DENSE_N if cfg.arch == "dense" else CONV_C), cfg.pso_d
    rows = _pso_basis(cfg)[:d] if cfg.pso_strategy == "bias" else torch.eye(n, dtype=torch.float64)[:d]
    if cfg.arch == "dense":
        return rows.T
    # V = {x: every pixel's channel vector in span(rows)}: basis rows[i] ⊗ e_pixel.
    pixels = torch.eye(SIDE * SIDE, dtype=torch.float64)
    return torch.einsum("ic,pq->cpiq", rows, pixels).reshape(n * SIDE * SIDE, d * SIDE * SIDE)


@pytest.mark.parametrize("arch", ["dense", "conv"])
@pytest.mark.parametrize("strategy", ["bias", "block"])
def test_pso_subspace_is_isometric_and_persists(arch, strategy):
    cfg, body = _body(4, arch=arch, family="pso", activation="relu", pso_strategy=strategy, pso_d=2,
                      depth=3, bias_scale=0)
    with torch.no_grad():  # a bias that leaves part of the other units active
        for layer in body:
            inner = layer.inner if strategy == "block" else layer
            inner.bias[cfg.pso_d if strategy == "bias" else 0:] = -0.3
    basis = _subspace_basis(cfg)
    for seed in (0, 1):
        x = _point(cfg, seed)
        J = _jacobian(body, x)  # the whole stack: V must persist through every layer
        v = basis @ torch.randn(basis.shape[1], generator=torch.Generator().manual_seed(seed),
                                dtype=torch.float64)
        assert torch.linalg.norm(J @ v).item() == pytest.approx(torch.linalg.norm(v).item(), rel=1e-6)
        assert torch.linalg.svdvals(J @ basis).sub(1).abs().max() < 1e-6
        # The check can fail: off V the stack is not an isometry (the other units are partial).
        complement = torch.linalg.svd(basis, full_matrices=True).U[:, basis.shape[1]:]
        assert torch.linalg.svdvals(J @ complement).min() < 0.5


def test_pso_without_subspace_is_not_isometric_on_it():
    """d units without the large bias: the same V is not preserved."""
    cfg, body = _body(4, arch="dense", family="pso", activation="relu", pso_d=2, depth=3,
                      pso_bias=-5.0, bias_scale=0)
    J = _jacobian(body, _point(cfg, 0))
    assert torch.linalg.svdvals(J @ _subspace_basis(cfg)).min() < 0.5


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_hard_regime_keeps_the_jacobian_orthogonal_after_training_steps(arch):
    cfg, body = _body(5, arch=arch, family="fold", activation="relu", regime="hard", kernel_size=3)
    x = _point(cfg, 5)
    before = _jacobian(body, x)
    opt = torch.optim.SGD(body.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        body(torch.randn((4, *x.shape), dtype=torch.float64)).square().sum().backward()
        opt.step()
    J = _jacobian(body, x)
    assert (J - before).abs().max() > 1e-3  # the weights moved
    assert (torch.linalg.svdvals(J) - 1).abs().max() < 1e-6


def test_hard_keeps_the_initial_weights():
    init = _body(6, arch="dense", family="fold", regime="init")[1][0].B.weight
    hard = _body(6, arch="dense", family="fold", regime="hard")[1][0].B.weight
    assert torch.allclose(init, hard, atol=1e-6)
    conv = _body(6, arch="conv", family="fold", regime="hard")[1][0].B.weight
    assert conv.shape == (CONV_C, CONV_C, 3, 3) and conv[:, :, 0].abs().max() == 0


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_baseline_initialisations(arch):
    wide = dict(width=400, channels=40, depth=1, arch=arch, family="plain")
    def weight(**s):
        return build_model(RunConfig(**{**wide, **s})).body[0].W.weight.detach().double()
    fan_in = 400 if arch == "dense" else 40 * 9
    assert weight(init_scheme="he").std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
    assert weight(init_scheme="glorot").std().item() == pytest.approx((1 / fan_in) ** 0.5, rel=0.05)
    assert weight(init_scheme="gaussian", sigma_w=1.3).std().item() == pytest.approx(1.3 / fan_in**0.5, rel=0.05)
    q = weight(init_scheme="orthogonal", gain=1.1)
    m = q.reshape(q.shape[0], -1) if arch == "dense" else q[:, :, 1, 1]
    assert torch.allclose(m @ m.T, 1.21 * torch.eye(m.shape[0], dtype=m.dtype), atol=1e-5)
    bias = build_model(RunConfig(**wide, init_scheme="gaussian", sigma_b=0.5)).body[0].bias
    assert bias.std().item() == pytest.approx(0.5, rel=0.3)


def test_resnet_baseline_options():
    cfg = RunConfig(arch="dense", width=8, depth=2, family="resnet")
    body = build_model(cfg).body.double()
    x = torch.randn(3, 8, dtype=torch.float64)
    assert torch.equal(body(x), x)  # zero-initialised last layer: identity at the start
    normed = build_model(dataclasses.replace(cfg, norm="batch")).body.double()
    assert isinstance(normed[0].norm, torch.nn.BatchNorm1d)
    assert (normed(x) - x).abs().max() > 1e-3


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="width_mid"):
        build_model(RunConfig(family="fold", width_mid=99))
    with pytest.raises(ValueError, match="needs activation"):
        build_model(RunConfig(family="orthoff", activation="relu"))
    with pytest.raises(ValueError, match="pso_d"):
        build_model(RunConfig(family="pso", pso_d=99, channels=4))
    for regime in ("hard", "soft"):
        with pytest.raises(ValueError, match=f"regime {regime}"):
            build_model(RunConfig(family="plain", regime=regime))

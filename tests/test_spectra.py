"""Jacobian spectra: exact (chunked jacrev + svdvals) against matrix-free Lanczos, known spectra
of linear networks, stochastic Lanczos quadrature, per-layer gradient norms, and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from orthojac import spectra
from orthojac.run.checkpoint import atomic_save
from orthojac.config import RunConfig
from orthojac.nets.models import build_model
from orthojac.nets.orthogonal import haar
from orthojac.spectra.free import extreme_singular_values, spectral_density


def _perturbed_fold(width=48, depth=3, noise=0.05, seed=0) -> nn.Module:
    """A dense fold body whose weights are nudged off orthogonality: σ_i spread around 1."""
    cfg = RunConfig(arch="dense", family="fold", width=width, depth=depth, bias_init=0.0, seed=seed)
    model = build_model(cfg).double()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.body.parameters():
            p.add_(noise * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.body


def _linear(weights):
    def f(x):
        for w in weights:
            x = x @ w.T
        return x
    return f


def test_lanczos_extremes_agree_with_exact_svd():
    body = _perturbed_fold()
    x = torch.randn(48, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact = spectra.jacobian_spectrum(body, x, chunk_size=16)
    assert exact.max() / exact.min() > 1.2  # a spread spectrum, not the trivial all-ones case
    free = extreme_singular_values(body, x, generator=torch.Generator().manual_seed(0))
    assert abs(free.sigma_max / exact.max().item() - 1) < 1e-3
    assert abs(free.sigma_min / exact.min().item() - 1) < 1e-3


def test_deep_linear_orthogonal_network_has_all_singular_values_one():
    gen = torch.Generator().manual_seed(0)
    f = _linear([haar(40, gen) for _ in range(50)])
    x = torch.randn(40, dtype=torch.float64)
    sigma = spectra.jacobian_spectrum(f, x, chunk_size=7)
    assert sigma.shape == (40,)
    assert (sigma - 1).abs().max() < 1e-10
    free = extreme_singular_values(f, x)
    assert abs(free.sigma_max - 1) < 1e-8 and abs(free.sigma_min - 1) < 1e-8


def test_gaussian_linear_network_matches_numpy_svd():
    gen = torch.Generator().manual_seed(1)
    weights = [torch.randn(30, 30, generator=gen, dtype=torch.float64) / 30 ** 0.5 for _ in range(4)]
    sigma = spectra.jacobian_spectrum(_linear(weights), torch.zeros(30, dtype=torch.float64), chunk_size=8)
    product = np.linalg.multi_dot([w.numpy() for w in reversed(weights)])
    np.testing.assert_allclose(sigma.numpy(), np.linalg.svd(product, compute_uv=False), rtol=1e-10)


@pytest.mark.parametrize("arch, family, channels", [("conv", "fold", 2), ("conv", "resnet", 2), ("dense", "fold", 1)])
def test_gradient_norms_are_the_bits_of_a_full_backward_and_leave_the_weights_alone(arch, family, channels):
    """The gradient norms take the gradients at the layer inputs only: the same bits as a
    `.backward()` that also fills every weight's gradient (how the committed reference's rows were
    computed), in float64 as its P1 cells are; and no parameter's `.grad` is touched."""
    cfg = RunConfig(arch=arch, family=family, channels=channels, width=16, depth=3, bias_init=-0.5, seed=0)
    model = build_model(cfg).double().eval()
    gen = torch.Generator().manual_seed(4)
    images = torch.randn(12, 1, 28, 28, dtype=torch.float64, generator=gen)
    labels = torch.randint(0, 10, (12,), generator=gen)
    rows = spectra.gradient_norms(model, images, labels)
    assert all(p.grad is None for p in model.parameters())
    inputs, h = [], model.embed(images).detach().requires_grad_(True)
    for layer in model.body:
        inputs.append(h)
        h = layer(h)
        h.retain_grad()
    inputs.append(h)
    nn.functional.cross_entropy(model.readout(h), labels).backward()
    assert [r["value"] for r in rows] == [x.grad.norm().item() for x in inputs]


def test_stochastic_lanczos_quadrature_matches_exact_moments():
    body = _perturbed_fold(width=64, noise=0.03)
    x = torch.randn(64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = spectra.jacobian_spectrum(body, x) ** 2
    nodes, weights = spectral_density(body, x, probes=100, steps=12, generator=torch.Generator().manual_seed(0))
    assert abs(weights.sum().item() - 1) < 1e-12
    # Gauss quadrature is exact on these polynomials: what is left is Hutchinson's sampling error.
    for k, tol in ((1, 0.05), (2, 0.10)):
        estimate = (weights * nodes ** (2 * k)).sum().item()
        assert abs(estimate / (exact ** k).mean().item() - 1) < tol


def test_gradient_norms_match_autograd_at_every_layer_input():
    cfg = RunConfig(arch="dense", family="plain", width=16, depth=3, seed=0)
    model = build_model(cfg).double()
    images = torch.randn(5, 1, 28, 28, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 4])
    rows = spectra.gradient_norms(model, images, labels)
    assert [r["layer"] for r in rows] == [0, 1, 2, 3]
    h = model.embed(images).detach().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(images) * 0 + model.readout(model.body(h)), labels)
    (g0,) = torch.autograd.grad(loss, h)
    out = model.body(h.detach()).detach().requires_grad_(True)
    (gl,) = torch.autograd.grad(nn.functional.cross_entropy(model.readout(out), labels), out)
    assert abs(rows[0]["value"] - g0.norm().item()) < 1e-12
    assert abs(rows[-1]["value"] - gl.norm().item()) < 1e-12


@pytest.mark.parametrize("arch, chunk", [("dense", 7), ("dense", None), ("conv", 100), ("conv", 1)])
def test_jacobian_over_copies_is_the_jacobian(arch, chunk):
    """`jacobian_matrix(copies=True)` (a backward pass over a batch of copies of the point, cotangent
    e_i on copy i) gives the Jacobian the vmapped route gives, in float64, for chunk sizes that do and
    do not divide the dimension, and for a body with batch normalisation (resnet, eval mode); and the
    rows are where they belong: a Jacobian with two rows swapped is far from it."""
    for family in ("fold", "resnet"):
        cfg = RunConfig(arch=arch, family=family, channels=1, width=20, depth=3, bias_init=-0.5, seed=2)
        model = build_model(cfg).double().eval()
        with torch.no_grad():
            point = model.embed(torch.randn(1, 1, 28, 28, dtype=torch.float64,
                                            generator=torch.Generator().manual_seed(3)))[0]
        vmapped = spectra.jacobian_matrix(model.body, point, chunk)
        copies = spectra.jacobian_matrix(model.body, point, chunk, copies=True)
        torch.testing.assert_close(copies, vmapped, rtol=1e-12, atol=1e-12)
        assert (copies[[1, 0]] - vmapped[:2]).abs().max() > 1e-3


@pytest.mark.parametrize("family", ["fold", "plain", "resnet"])
def test_one_channel_spectra_take_the_batch_as_channels_with_the_jacobians_bits(family):
    """The spectrum stage asks the body's one-channel convolutions for orthojac.nets.one_channel's
    route (`use_depthwise(model.body)`): the points (the lift, left to torch) and a Jacobian at one
    image by vmap are the same to the bit (one group: torch's own convolution); the stage's Jacobian,
    over a batch of copies of the point, and the gradient norms over a batch run as a convolution
    of the batch as channels (groups = the batch) and are torch's up to rounding."""
    from orthojac.nets import one_channel
    cfg = RunConfig(arch="conv", family=family, channels=1, depth=2, init="cayley", bias_init=-0.5, seed=0)
    models = {name: build_model(cfg).eval() for name in ("torch", "depthwise")}
    models["depthwise"].load_state_dict(models["torch"].state_dict())
    one_channel.use_depthwise(models["depthwise"].body)
    gen = torch.Generator().manual_seed(1)
    images, labels = torch.randn(6, 1, 28, 28, generator=gen), torch.randint(0, 10, (6,), generator=gen)
    assert not models["depthwise"].lift.fused
    with torch.no_grad():
        points = {n: m.embed(images[:2]) for n, m in models.items()}
    assert torch.equal(points["torch"], points["depthwise"])
    point = points["torch"][0]
    jacobians = {n: spectra.jacobian_matrix(m.body, point, 256) for n, m in models.items()}
    assert torch.equal(jacobians["torch"], jacobians["depthwise"])
    # The stage's own route for this body: the rows over a batch of copies of the point.
    assert one_channel.on_depthwise_route(models["depthwise"].body, point)
    assert not one_channel.on_depthwise_route(models["torch"].body, point)
    copies = spectra.jacobian_matrix(models["depthwise"].body, point, 256, copies=True)
    torch.testing.assert_close(copies, jacobians["torch"], rtol=1e-6, atol=1e-6)
    routes, real = [], spectra.jacobian_matrix

    def recording(f, x, chunk_size=256, copies=False):
        routes.append(copies)
        return real(f, x, chunk_size, copies)

    spectra.jacobian_matrix = recording
    try:
        sigma, note = spectra.singular_values(models["depthwise"].body, point, "exact", 256)
        spectra.singular_values(models["torch"].body, point, "exact", 256)
    finally:
        spectra.jacobian_matrix = real
    assert routes == [True, False]
    # the σ of the copies' Jacobian (plain's has silent units: zero rows, left out of its SVD)
    assert note == "" and torch.equal(sigma, spectra.exact_singular_values(copies))
    exact = torch.linalg.svdvals(copies.double())  # float64's σ of the same float32 matrix
    torch.testing.assert_close(sigma.double(), exact, rtol=0, atol=1e-5 * exact[0].item())
    groups = {}
    for name, model in models.items():
        seen = []
        hooks = [m.register_forward_hook(lambda m, a, o: seen.append(m.takes_depthwise(a[0])))
                 for m in model.body.modules() if hasattr(m, "takes_depthwise")]
        norms = spectra.gradient_norms(model, images, labels)
        for hook in hooks:
            hook.remove()
        groups[name] = (seen, [r["value"] for r in norms])
    assert groups["depthwise"][0] and all(groups["depthwise"][0]) and not any(groups["torch"][0])
    np.testing.assert_allclose(groups["depthwise"][1], groups["torch"][1], rtol=1e-5)


def test_the_jacobian_over_copies_is_taken_only_where_the_depthwise_route_pays():
    """`one_channel.on_depthwise_route` (found by a review): a one-channel body asked for the route,
    in eval mode, float32, on a CPU; not in float64 (torch's grouped convolution is no faster there,
    and the copies took twice as long), not for regime hard's delta kernels (never on the route),
    not for a body with a module in training mode (batch normalisation would mix the copies), not
    for two channels or a dense body, and not for a plain function (no modules to ask)."""
    from orthojac.nets import one_channel

    def body(**settings):
        model = build_model(RunConfig(**({"arch": "conv", "channels": 1, "depth": 2, "bias_init": -0.5}
                                         | settings))).eval()
        one_channel.use_depthwise(model.body)
        return model.body

    x = torch.randn(1, 28, 28)
    assert one_channel.on_depthwise_route(body(), x)
    assert one_channel.on_depthwise_route(body(family="resnet"), x)
    assert not one_channel.on_depthwise_route(body().double(), x.double())
    assert not body()[0].B.takes_depthwise(torch.randn(3, 1, 28, 28, dtype=torch.float64))
    assert not one_channel.on_depthwise_route(body(regime="hard"), x)
    # batch normalisation in training mode normalises over the copies: they would give a wrong Jacobian
    normed = body(family="resnet", norm="batch")
    assert one_channel.on_depthwise_route(normed, x)
    assert not one_channel.on_depthwise_route(normed.train(), x)
    wrong = spectra.jacobian_matrix(normed, x, 256, copies=True) - spectra.jacobian_matrix(normed, x, 256)
    assert wrong.abs().max() > 1e-3
    assert not one_channel.on_depthwise_route(body(family="resnet").train(), x)
    assert not one_channel.on_depthwise_route(body(channels=2), torch.randn(2, 28, 28))
    assert not one_channel.on_depthwise_route(body(arch="dense", width=16), torch.randn(16))
    assert not one_channel.on_depthwise_route(lambda v: 2 * v, x)
    sigma, note = spectra.singular_values(lambda v: 2 * v, torch.randn(5), "exact", 2)
    assert note == "" and torch.allclose(sigma, torch.full((5,), 2.0))


def test_the_stage_measures_at_torchs_points_with_several_points_in_float32(tmp_path, idx_folder, monkeypatch):
    """`orthojac spectra --points 2 --dtype float32` on a one-channel network (found by a review:
    routing the lift moved the points, lifted all in one call, in their last bits): the points the
    stage measures at are torch's to the bit, and its σ are torch's up to float32's rounding. The
    lift takes the batch as channels only afterwards, for the gradient norms' batch."""
    cfg = RunConfig(arch="conv", family="plain", channels=1, depth=2, bias_init=-0.5, seed=3)
    weights = tmp_path / "init.pt"
    atomic_save({"model": build_model(cfg).state_dict(), "config": cfg.to_dict(),
                 "normalisation": {"mean": 0.2, "std": 0.3}}, weights)
    seen = {}
    real = spectra.spectra

    def recording(model, images, *args):
        with torch.no_grad():
            seen["points"], seen["images"] = model.embed(images), images
        seen["lift routed at the points"] = model.lift.fused
        return real(model, images, *args)

    real_norms = spectra.gradient_norms

    def recording_norms(model, images, labels):
        seen["lift routed for the gradient norms"] = model.lift.fused
        return real_norms(model, images, labels)

    monkeypatch.setattr(spectra, "spectra", recording)
    monkeypatch.setattr(spectra, "gradient_norms", recording_norms)
    body = tmp_path / "body.csv"
    spectra.main(["--weights", str(weights), "--data-dir", str(idx_folder), "--points", "2", "--dtype", "float32",
                  "--grad-batch", "8", "--no-layers", "--out-body", str(body), "--out-layers", str(tmp_path / "l.csv")])
    model = build_model(cfg).eval()
    with torch.no_grad():
        points = model.embed(seen["images"])
    assert torch.equal(seen["points"], points)
    assert not seen["lift routed at the points"] and seen["lift routed for the gradient norms"]
    table = pd.read_csv(body)
    for p, point in enumerate(points):
        expected = torch.linalg.svdvals(spectra.jacobian_matrix(model.body, point, 256))
        np.testing.assert_allclose(table[table["point"] == p]["sigma"], expected.numpy(), rtol=1e-4, atol=1e-5)


def test_cli_exact_and_lanczos_write_consistent_tables(tmp_path, idx_folder):
    data = idx_folder
    cfg = RunConfig(arch="conv", family="fold", channels=1, depth=2, bias_init=0.0)
    weights = tmp_path / "init.pt"
    atomic_save({"model": build_model(cfg).state_dict(), "config": cfg.to_dict(),
                 "normalisation": {"mean": 0.2, "std": 0.3}}, weights)
    tables = {}
    for method in ("exact", "lanczos"):
        body, layers = tmp_path / f"{method}.body.csv", tmp_path / f"{method}.layers.csv"
        spectra.main(["--weights", str(weights), "--data-dir", str(data), "--points", "1",
                      "--method", method, "--grad-batch", "8", "--out-body", str(body),
                      "--out-layers", str(layers)])
        tables[method] = (pd.read_csv(body), pd.read_csv(layers))
    exact_body, exact_layers = tables["exact"]
    free_body, free_layers = tables["lanczos"]
    assert len(exact_body) == 784 and list(free_body["index"]) == [0, 783]
    assert (exact_body["sigma"] - 1).abs().max() < 1e-10  # fold at init: orthogonal (P1)
    assert (free_body["sigma"] - 1).abs().max() < 1e-8
    for layers in (exact_layers, free_layers):
        grads = layers[layers["metric"] == "grad_norm"]
        assert list(grads["layer"]) == [0, 1, 2] and grads["point"].isna().all()
        assert (grads["value"] > 0).all()
        assert layers.loc[layers["metric"] == "defect", "value"].max() < 1e-8
    for table in (exact_body, exact_layers, free_body, free_layers):  # the P1 judge reads the precision
        assert (table["dtype"] == "float64").all()
    body32 = tmp_path / "f32.body.csv"
    spectra.main(["--weights", str(weights), "--data-dir", str(data), "--points", "1", "--method", "exact",
                  "--dtype", "float32", "--grad-batch", "0", "--no-layers", "--out-body", str(body32),
                  "--out-layers", str(tmp_path / "f32.layers.csv")])
    assert (pd.read_csv(body32)["dtype"] == "float32").all()


def test_diverged_network_gives_nan_rows_not_a_crash():
    cfg = RunConfig(arch="dense", family="fold", width=8, depth=2)
    model = build_model(cfg).double()
    with torch.no_grad():
        model.body[0].bias.fill_(float("nan"))
    body, layers = spectra.spectra(model, torch.randn(2, 1, 28, 28, dtype=torch.float64), 8, True)
    assert len(body) == 2 and all(np.isnan(r["sigma"]) for r in body) and layers == []


def test_a_diagonal_jacobians_singular_values_are_read_off_its_diagonal():
    """`exact_singular_values`' first shortcut (from SHORTCUT_DIM rows on): a diagonal Jacobian's σ
    are |J_ii|, sorted, exactly (in float32 and float64, with negative, zero and signed-zero
    entries, and for the identity: a fold body whose units are all silent); LAPACK's σ of the same
    matrix agree to within two units in the last place (on the AMD EPYC this was measured on, to
    the bit)."""
    n = spectra.SHORTCUT_DIM + 88
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        d = torch.randn(n, dtype=dtype, generator=gen)
        d[::7] = 0.0
        d[1::11] = -0.0
        eps = torch.finfo(dtype).eps
        for jacobian in (torch.diag(d), torch.eye(n, dtype=dtype)):
            sigma = spectra.exact_singular_values(jacobian)
            assert sigma.dtype == dtype
            assert torch.equal(sigma, torch.diagonal(jacobian).abs().sort(descending=True).values)
            torch.testing.assert_close(sigma, torch.linalg.svdvals(jacobian), rtol=2 * eps, atol=eps)
    # a full diagonal with entries off it (a trained fold body: I + a perturbation) is not diagonal
    # (found by a review: a test on the diagonal alone let a check of the diagonal alone pass)
    near = torch.eye(n, dtype=torch.float64) + 0.05 * torch.randn(n, n, dtype=torch.float64, generator=gen)
    lapack = torch.linalg.svdvals(near)
    torch.testing.assert_close(spectra.exact_singular_values(near), lapack, rtol=0, atol=1e-12 * lapack[0].item())


def test_zero_rows_and_columns_are_left_out_of_the_svd_and_give_exact_zeros():
    """The second shortcut: a Jacobian with zero rows and columns (a ReLU body's silent units) has
    the σ of the matrix without them, to rounding, and exact zeros for the rest; below
    SHORTCUT_DIM rows the SVD is the whole matrix's, to the bit (the dense bodies' spectra of the
    committed reference)."""
    n = spectra.SHORTCUT_DIM + 88
    gen = torch.Generator().manual_seed(1)
    jacobian = torch.randn(n, n, dtype=torch.float64, generator=gen)
    jacobian[torch.randperm(n, generator=gen)[:n - 150]] = 0.0  # 150 rows left
    jacobian[:, torch.randperm(n, generator=gen)[:n - 220]] = 0.0  # 220 columns left
    sigma = spectra.exact_singular_values(jacobian)
    lapack = torch.linalg.svdvals(jacobian)
    assert sigma.shape == (n,) and torch.equal(sigma, sigma.sort(descending=True).values)
    torch.testing.assert_close(sigma, lapack, rtol=0, atol=1e-12 * lapack[0].item())
    assert int((sigma[:150] > 0).sum()) == 150 and int((sigma[150:] == 0).sum()) == n - 150
    # rectangular: min(rows, columns) values, the zeros after the kept block's
    wide = torch.cat([jacobian, torch.randn(n, 60, dtype=torch.float64, generator=gen)], 1)
    wide[:, -60:][jacobian.abs().sum(1) == 0] = 0.0
    sigma_wide = spectra.exact_singular_values(wide)
    lapack_wide = torch.linalg.svdvals(wide)
    assert sigma_wide.shape == (n,) and int((sigma_wide == 0).sum()) == n - 150
    torch.testing.assert_close(sigma_wide, lapack_wide, rtol=0, atol=1e-12 * lapack_wide[0].item())
    small = jacobian[:100, :100].clone()
    small[3] = 0.0
    assert torch.equal(spectra.exact_singular_values(small), torch.linalg.svdvals(small))
    assert torch.equal(spectra.exact_singular_values(torch.zeros(n, n)), torch.zeros(n))
    assert torch.equal(spectra.exact_singular_values(torch.zeros(n, n + 5)), torch.zeros(n))
    # a non-finite Jacobian is LAPACK's to judge, as below the threshold (it refuses a NaN)
    broken = torch.diag(torch.ones(n, dtype=torch.float64))
    broken[0, 0] = float("nan")
    with pytest.raises(torch.linalg.LinAlgError):
        spectra.exact_singular_values(broken)

"""Soft regularisers: zero exactly on orthogonal weights, positive otherwise, gradients, the exact
convolution defect against the unrolled operator, and Hlav's listing variant (docs/replication.md §2–3)."""

import pytest
import torch
import torch.nn.functional as F

from orthojac.config import RunConfig
from orthojac.nets.layers import ConvOperator
from orthojac.nets.models import build_model, orthogonal_operators
from orthojac.nets.orthogonal import delta_orthogonal_, orthogonal_matrix
from orthojac.nets.regularisers import (conv_operator_defect, dense_defect, listing_defect,
                                   operator_defect, regularisation)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _unrolled(weight, height, width):
    """The dense (C_out·H·W) × (C_in·H·W) matrix of the zero-padded convolution."""
    c_in = weight.shape[1]
    n = c_in * height * width
    basis = torch.eye(n, dtype=weight.dtype).reshape(n, c_in, height, width)
    return F.conv2d(basis, weight, padding=weight.shape[-1] // 2).reshape(n, -1).T


@pytest.mark.parametrize("c_out,c_in,k,h,w", [(2, 3, 3, 5, 6), (3, 3, 3, 7, 9), (2, 2, 5, 6, 11),
                                              (2, 2, 1, 4, 4), (3, 2, 3, 3, 3), (2, 4, 5, 12, 10)])
@pytest.mark.parametrize("gain", [1.0, 1.3])
def test_conv_defect_equals_the_unrolled_operators(c_out, c_in, k, h, w, gain):
    weight = torch.randn(c_out, c_in, k, k, generator=_gen(k + h), dtype=torch.float64)
    matrix = _unrolled(weight, h, w)
    expected = dense_defect(matrix, gain)
    got = conv_operator_defect(weight, h, w, gain)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    # and the gradients, through the kernel, agree with those through the unrolled operator
    weight.requires_grad_(True)
    (g_conv,) = torch.autograd.grad(conv_operator_defect(weight, h, w, gain), weight)
    (g_dense,) = torch.autograd.grad(dense_defect(_unrolled(weight, h, w), gain), weight)
    torch.testing.assert_close(g_conv, g_dense, rtol=1e-10, atol=1e-10)


def test_conv_defect_gradcheck():
    weight = torch.randn(2, 2, 3, 3, generator=_gen(1), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: conv_operator_defect(w, 5, 6, 1.2), (weight,))


@pytest.mark.parametrize("m,n", [(6, 6), (3, 7)])
@pytest.mark.parametrize("gain", [1.0, 1.5])
def test_dense_defect_zero_on_orthogonal_positive_otherwise(m, n, gain):
    q = gain * orthogonal_matrix(m, n, "haar", _gen(2))
    assert dense_defect(q, gain).item() < 1e-24
    assert listing_defect(q, gain).item() == pytest.approx((m - 1) / m)  # the listing is not zero
    assert dense_defect(q * 1.01, gain).item() > 1e-4
    assert dense_defect(torch.randn(m, n, generator=_gen(3), dtype=torch.float64), gain).item() > 0.1


@pytest.mark.parametrize("c_out,c_in,k", [(4, 4, 3), (2, 4, 3), (3, 3, 5), (3, 3, 1)])
def test_conv_defect_zero_on_delta_orthogonal_positive_otherwise(c_out, c_in, k):
    weight = delta_orthogonal_(torch.empty(c_out, c_in, k, k, dtype=torch.float64), "cayley", _gen(4))
    assert conv_operator_defect(weight, 28, 28).item() < 1e-20
    assert conv_operator_defect(1.2 * weight, 28, 28, gain=1.2).item() < 1e-20
    if k > 1:  # an off-centre tap breaks orthogonality of the operator
        bumped = weight.clone()
        bumped[0, 0, 0, 0] = 1e-3
        assert conv_operator_defect(bumped, 28, 28).item() > 1e-6


def test_dense_gradient_has_the_closed_form():
    """∇_W ‖WWᵀ/g² − I‖² = (4/g²)(WWᵀ/g² − I) W."""
    w = torch.randn(4, 6, generator=_gen(5), dtype=torch.float64, requires_grad=True)
    g = 1.1
    (grad,) = torch.autograd.grad(dense_defect(w, g), w)
    w = w.detach()
    closed = 4 / g**2 * (w @ w.T / g**2 - torch.eye(4, dtype=torch.float64)) @ w
    torch.testing.assert_close(grad, closed, rtol=1e-12, atol=1e-12)


def test_listing_variant_differs_from_eq11_as_the_spec_says():
    """Listing: mean((G − 1)²) with G = WWᵀ/g²; eq. (11): Σ (G − I)². Expanding,
    n² · listing = eq11 − 2 Σ_{i≠j} G_ij + n(n − 1): the all-ones matrix instead of I, and a mean."""
    n, g = 5, 1.1
    w = torch.randn(n, n, generator=_gen(6), dtype=torch.float64)
    gram = w @ w.T / g**2
    off_diagonal = gram.sum() - gram.diagonal().sum()
    expected = (dense_defect(w, g) - 2 * off_diagonal + n * (n - 1)) / n**2
    assert listing_defect(w, g).item() == pytest.approx(expected.item(), rel=1e-12)
    assert listing_defect(w, g).item() != pytest.approx(dense_defect(w, g).item(), rel=1e-3)


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_model_hook_sums_the_defects_of_the_orthogonal_operators(arch):
    cfg = RunConfig(arch=arch, family="limit", width=6, channels=2, depth=2, regime="soft", alpha=0.5)
    model = build_model(cfg).double()
    ops = orthogonal_operators(model.body)
    assert len(ops) == 4  # B and M of each limit layer
    gen = _gen(7)
    for op in ops:  # redrawn in float64: the zoo's float32 weights are orthogonal to ~1e-7 only
        op.init_orthogonal_("haar", gen)
    assert regularisation(model, "soft", 0.5, 1.0).item() < 1e-20
    assert regularisation(model, "init", 0.5, 1.0) is None and regularisation(model, "hard", 0.5, 1.0) is None
    with torch.no_grad():
        ops[0].weight.mul_(1.1)
    penalty = regularisation(model, "soft", 0.5, 1.0)
    assert penalty.item() == pytest.approx(0.5 * operator_defect(ops[0], 1.0, (28, 28)).item())
    assert penalty.item() > 0
    penalty.backward()
    assert ops[0].weight.grad.abs().sum() > 0 and ops[1].weight.grad.abs().max() < 1e-12
    gain = regularisation(model, "soft_gain", 0.5, 1.1).item()
    assert gain > 0 and gain != pytest.approx(penalty.item())
    assert regularisation(model, "soft_gain_listing", 0.5, 1.0).item() > 0
    assert isinstance(ops[0], ConvOperator) == (arch == "conv")


@pytest.mark.parametrize("gain", [1.0, 1.3])
def test_batched_dense_defects_are_the_sum_of_each_weights(gain):
    """The soft penalty's batched form (weights of one shape stacked: `dense_defects`) has the
    value and the gradients of Σ `dense_defect`, over weights of two shapes."""
    from orthojac.nets.regularisers import dense_defects

    gen = _gen(5)
    weights = [torch.randn(7, 7, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    weights.append(torch.randn(3, 7, generator=gen, dtype=torch.float64, requires_grad=True))
    batched = dense_defects(weights, gain)
    each = torch.stack([dense_defect(w, gain) for w in weights]).sum()
    assert batched.item() == pytest.approx(each.item(), rel=1e-13) and batched.item() > 1
    for a, b in zip(torch.autograd.grad(batched, weights), torch.autograd.grad(each, weights)):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)

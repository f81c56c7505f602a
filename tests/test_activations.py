"""relu_k, sigma_k, abs: the formulas of docs/replication.md §1, slopes, breakpoints."""

import pytest
import torch

from orthojac.nets.activations import ACTIVATIONS, default_breakpoints, make_activation, parse_breakpoints


def _slopes(act, z):
    z = z.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(act(z).sum(), z)
    return g


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_relu_k_is_the_alternating_sum(k):
    z = torch.linspace(-3, 3, 601, dtype=torch.float64)
    t = default_breakpoints(k)
    expected = sum((-1) ** j * torch.relu(z - tj) for j, tj in enumerate(t))
    torch.testing.assert_close(make_activation("relu_k", k=k)(z), expected, rtol=0, atol=1e-12)
    slopes = set(_slopes(make_activation("relu_k", k=k), z).tolist())
    assert slopes <= {0.0, 1.0} and len(slopes) == 2
    assert set(_slopes(make_activation("sigma_k", k=k), z).tolist()) == {-1.0, 1.0}


def test_k1_cases_and_abs():
    z = torch.linspace(-2, 2, 41, dtype=torch.float64)
    assert torch.equal(make_activation("relu_k", k=1)(z), torch.relu(z))
    assert torch.equal(make_activation("sigma_k", k=1)(z), -z.abs())
    assert torch.equal(make_activation("abs")(z), z.abs())
    assert default_breakpoints(3) == [-1.0, 0.0, 1.0]


def test_learnable_breakpoints_per_channel_are_sorted_and_trained():
    act = make_activation("relu_k", k=2, breakpoints=[-0.5, 0.5], learnable=True, channels=3,
                          channel_dims=2).double()
    assert act.breakpoints.shape == (3, 2) and act.breakpoints.requires_grad
    with torch.no_grad():
        act.breakpoints[1] = torch.tensor([0.5, -0.5], dtype=torch.float64)  # unsorted on purpose
    z = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    out = act(z)
    fixed = make_activation("relu_k", k=2, breakpoints=[-0.5, 0.5])
    assert torch.equal(out, fixed(z))  # sorting restores the same function on every channel
    out.sum().backward()
    assert act.breakpoints.grad.abs().sum() > 0


def test_bad_breakpoints_are_named():
    with pytest.raises(ValueError, match="2 breakpoints"):
        make_activation("relu_k", k=3, breakpoints=[0.0, 1.0])
    with pytest.raises(ValueError, match="increase"):
        make_activation("relu_k", k=2, breakpoints=[1.0, 0.0])
    with pytest.raises(ValueError, match="comma-separated"):
        parse_breakpoints("1;2")
    with pytest.raises(ValueError, match="unknown activation"):
        make_activation("gelu")
    assert parse_breakpoints("") is None and parse_breakpoints("-1,0.5") == [-1.0, 0.5]
    assert set(ACTIVATIONS) == {"relu", "relu_k", "abs", "sigma_k", "tanh", "hardtanh"}


@pytest.mark.parametrize("breakpoints", [None, [2.0]])
def test_one_fixed_breakpoint_takes_the_short_path_with_the_same_numbers(breakpoints):
    """ReLU_1 with a fixed breakpoint computes ReLU(z − t_0) directly: the general sum's values
    and gradients, bit for bit (σ_1 of orthoff200 goes through it)."""
    z = torch.randn(64, 33, generator=torch.Generator().manual_seed(0)) * 3
    short = make_activation("sigma_k", k=1, breakpoints=breakpoints)
    results = []
    for fn in (short, lambda v: v - 2 * (torch.relu(v.unsqueeze(-1) - short.relu_k.breakpoints)
                                          * short.relu_k.signs).sum(-1)):
        zi = z.clone().requires_grad_(True)
        out = fn(zi)
        (grad,) = torch.autograd.grad((out * torch.linspace(-1, 1, 33)).sum(), zi)
        results.append((out, grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])

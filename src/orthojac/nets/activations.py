"""Activations, by the names the paper uses (docs/replication.md §1).

- `relu`, `tanh`, `hardtanh`: the usual ones (baselines; Hlav §3 for tanh/hard-tanh).
- `relu_k`: ReLU_k(z) = Σ_{j=0}^{k−1} (−1)^j ReLU(z − t_j), breakpoints t_0 < … < t_{k−1}; slopes
  alternate 0, 1, 0, 1, … so ρ' ∈ {0, 1} a.e. (named in summary, Mechanism 2 and Critical path;
  the definition is orthojac's reading, docs/replication.md §1).
- `sigma_k`: σ_k(z) = z − 2 ReLU_k(z); slopes alternate +1, −1, … so σ' ∈ {±1} a.e. (docs/replication.md §1).
- `abs`: |z| (summary: "activations like σ(x) = |x|").

Breakpoints (`choice`, docs/replication.md §1): `linspace(−1, 1, k)` for k ≥ 2 and t_0 = 0 for k = 1, so that
ReLU_1 = ReLU and σ_1 = −|z| exactly. They are fixed, or learnable per channel; learnable ones are
sorted in the forward pass, because unsorted breakpoints would give slopes outside {0, 1}.
"""

from __future__ import annotations

import torch
from torch import nn


def default_breakpoints(k: int) -> list[float]:
    """t_j = linspace(−1, 1, k) for k ≥ 2, and t_0 = 0 for k = 1 (`choice`, see module docstring)."""
    if k < 1:
        raise ValueError(f"relu_k/sigma_k need k ≥ 1, got k={k}")
    return [0.0] if k == 1 else torch.linspace(-1, 1, k, dtype=torch.float64).tolist()


class ReLUk(nn.Module):
    """ReLU_k(z) = Σ_{j=0}^{k−1} (−1)^j ReLU(z − t_j) (docs/replication.md §1).

    `channels` > 0 with `learnable` gives each channel its own breakpoints (a (C, k) parameter);
    `channel_dims` is the number of trailing dimensions after the channel axis (2 for images).
    """

    def __init__(self, k: int = 1, breakpoints: list[float] | None = None, learnable: bool = False,
                 channels: int = 0, channel_dims: int = 0):
        super().__init__()
        t = torch.tensor(default_breakpoints(k) if breakpoints is None else list(breakpoints))
        if t.numel() != k:
            raise ValueError(f"relu_k: got {t.numel()} breakpoints {t.tolist()} for k={k}")
        if not bool((t[1:] > t[:-1]).all()):
            raise ValueError(f"relu_k: breakpoints must increase strictly, got {t.tolist()}")
        self.k, self.channel_dims = k, channel_dims
        if learnable:
            if channels < 1:
                raise ValueError("learnable breakpoints need the number of channels")
            self.breakpoints = nn.Parameter(t.repeat(channels, 1))
        else:
            self.register_buffer("breakpoints", t)
        # The slopes' signs (−1)^j, on the module's device from the start: a tensor built in the
        # forward pass would be copied to the GPU (a host sync) at every step. Not persistent:
        # state_dicts and checkpoints keep their keys.
        self.register_buffer("signs", torch.tensor([(-1.0) ** j for j in range(k)]), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        t = self.breakpoints
        if t.dim() == 1 and self.k == 1:
            # One fixed breakpoint: ReLU(z − t_0), the sum below without its size-1 axis (the same
            # numbers, forward and backward, in two kernels instead of five on a k-fold tensor).
            return torch.relu(z - t.to(z.dtype))
        if t.dim() == 2:  # per channel: (C, k) → broadcast against (N, C, *spatial)
            t = torch.sort(t, dim=1).values
            t = t.reshape(t.shape[0], *([1] * self.channel_dims), self.k)
        return (torch.relu(z.unsqueeze(-1) - t.to(z.dtype)) * self.signs.to(z.dtype)).sum(-1)


class SigmaK(nn.Module):
    """σ_k(z) = z − 2 ReLU_k(z) (docs/replication.md §1): slopes +1, −1, …; σ_1 = −|z|."""

    def __init__(self, **relu_k):
        super().__init__()
        self.relu_k = ReLUk(**relu_k)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z - 2 * self.relu_k(z)


class Abs(nn.Module):
    """σ(z) = |z| (summary, Method)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.abs()


def _plain(cls):
    return lambda **_: cls()


ACTIVATIONS = {
    "relu": _plain(nn.ReLU),
    "relu_k": ReLUk,
    "abs": _plain(Abs),
    "sigma_k": SigmaK,
    "tanh": _plain(nn.Tanh),
    "hardtanh": _plain(nn.Hardtanh),
}

# Activations whose derivative is in {0, 1} (fold, partial, limit) or {−1, +1} (orthoff) a.e.
SLOPES_01 = {"relu", "relu_k"}
SLOPES_PM1 = {"abs", "sigma_k"}


def make_activation(name: str, k: int = 1, breakpoints: list[float] | None = None,
                    learnable: bool = False, channels: int = 0, channel_dims: int = 0) -> nn.Module:
    """The activation `name`; k, breakpoints and learnable apply to relu_k and sigma_k only."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; have {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name](k=k, breakpoints=breakpoints, learnable=learnable, channels=channels,
                             channel_dims=channel_dims)


def parse_breakpoints(text: str) -> list[float] | None:
    """'' → None (the default breakpoints); '-1,0,1' → [-1.0, 0.0, 1.0]."""
    if not text.strip():
        return None
    try:
        return [float(t) for t in text.split(",")]
    except ValueError as err:
        raise ValueError(f"breakpoints: expected comma-separated numbers, got {text!r}") from err

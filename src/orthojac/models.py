"""Networks: lift → L body layers → head, and the model zoo (name → body-layer constructor).

Convolutional: lift conv 1→C (3×3), L body layers on C×28×28, global mean-pool, linear head
(spec §5). Dense: flatten 784 → lift linear 784→n, L body layers on R^n, linear head. The body is
what the Jacobian spectrum is measured on.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .activations import make_activation
from .config import RunConfig
from .layers import ConvOperator, DenseOperator, Fold, Plain, Residual


def _operator(cfg: RunConfig, n_out: int | None = None) -> nn.Module:
    n = cfg.channels if cfg.arch == "conv" else cfg.width
    if cfg.arch == "conv":
        return ConvOperator(n_out or n, n, cfg.kernel_size)
    return DenseOperator(n_out or n, n)


def _he_(op: nn.Module, gen: torch.Generator, gain: float = 2.0) -> None:
    """Gaussian weights with variance gain / fan_in (He et al. 2015 for gain 2)."""
    fan_in = op.weight[0].numel()
    with torch.no_grad():
        op.weight.copy_(torch.randn(op.weight.shape, generator=gen) * math.sqrt(gain / fan_in))


def fold_layer(cfg: RunConfig, gen: torch.Generator) -> nn.Module:
    op = _operator(cfg)
    op.init_orthogonal_(cfg.init, gen)
    return Fold(op, make_activation(cfg.activation), cfg.bias_init)


def plain_layer(cfg: RunConfig, gen: torch.Generator) -> nn.Module:
    op = _operator(cfg)
    _he_(op, gen)
    return Plain(op, make_activation(cfg.activation), 0.0)


def resnet_layer(cfg: RunConfig, gen: torch.Generator) -> nn.Module:
    op1, op2 = _operator(cfg), _operator(cfg)
    _he_(op1, gen)
    nn.init.zeros_(op2.weight)
    return Residual(op1, op2, make_activation(cfg.activation))


MODELS = {
    "fold": fold_layer,
    "plain": plain_layer,
    "resnet": resnet_layer,
}


class Network(nn.Module):
    def __init__(self, lift: nn.Module, body: nn.Sequential, head: nn.Module, arch: str):
        super().__init__()
        self.lift, self.body, self.head, self.arch = lift, body, head, arch

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 1, 28, 28) → body input: (N, C, 28, 28) or (N, n)."""
        return self.lift(images if self.arch == "conv" else images.flatten(1))

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h.mean(dim=(2, 3)) if self.arch == "conv" else h)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.readout(self.body(self.embed(images)))


def build_model(cfg: RunConfig) -> Network:
    """The network of a run, initialised deterministically from `cfg.seed`."""
    if cfg.family not in MODELS:
        raise ValueError(f"unknown family {cfg.family!r}; have {sorted(MODELS)}")
    if cfg.depth < 1:
        raise ValueError(f"depth must be ≥ 1, got {cfg.depth}")
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # the lift and the head use PyTorch's default initialisers
    if cfg.arch == "conv":
        lift = nn.Conv2d(1, cfg.channels, 3, padding=1)
        head = nn.Linear(cfg.channels, 10)
    else:
        lift = nn.Linear(28 * 28, cfg.width)
        head = nn.Linear(cfg.width, 10)
    body = nn.Sequential(*(MODELS[cfg.family](cfg, gen) for _ in range(cfg.depth)))
    return Network(lift, body, head, cfg.arch)

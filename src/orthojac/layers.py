"""Layer families of the paper and the baselines, each dense or convolutional.

Every family is written against a linear operator B with an adjoint Bᵀ: a matrix (dense) or a
stride-1 'same' convolution whose adjoint is the transposed convolution with the same kernel
(REPLICATION.md §1.1). Notation: D = diag(ρ'(Bx + b)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .orthogonal import delta_orthogonal_, orthogonal_matrix


class DenseOperator(nn.Module):
    """x ↦ B x with B ∈ R^{m×n}; adjoint y ↦ Bᵀ y."""

    def __init__(self, n_out: int, n_in: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y @ self.weight

    def init_orthogonal_(self, construction: str, generator: torch.Generator | None = None) -> None:
        with torch.no_grad():
            self.weight.copy_(orthogonal_matrix(*self.weight.shape, construction, generator))


class ConvOperator(nn.Module):
    """x ↦ B ⋆ x, a stride-1 zero-padded k×k convolution; adjoint: conv_transpose2d, same kernel."""

    def __init__(self, c_out: int, c_in: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for a 'same' convolution, got {kernel_size}")
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel_size, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=self.padding)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(y, self.weight, padding=self.padding)

    def init_orthogonal_(self, construction: str, generator: torch.Generator | None = None) -> None:
        delta_orthogonal_(self.weight, construction, generator)


def _bias_shape(op: nn.Module) -> tuple[int, ...]:
    c = op.weight.shape[0]
    return (c, 1, 1) if isinstance(op, ConvOperator) else (c,)


class Fold(nn.Module):
    """The paper's modified ResNet layer: F(x) = x − 2 Bᵀ ρ(Bx + b).

    Jacobian I − 2 BᵀDB, orthogonal a.e. when B Bᵀ = I and ρ' ∈ {0, 1} a.e. (ReLU, ReLU_k)
    (summary, Method; Theorem 2.6). The bias starts at the constant `bias_init`: with zero bias a
    depth-200 network stays at chance, with −2 each layer starts near the identity (spec §5).
    """

    def __init__(self, op: nn.Module, activation: nn.Module, bias_init: float = 0.0):
        super().__init__()
        self.B = op
        self.rho = activation
        self.bias = nn.Parameter(torch.full(_bias_shape(op), float(bias_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - 2 * self.B.adjoint(self.rho(self.B(x) + self.bias))


class Plain(nn.Module):
    """Standard feedforward layer x ↦ ρ(Wx + b) with no skip connection (the P3 baseline)."""

    def __init__(self, op: nn.Module, activation: nn.Module, bias_init: float = 0.0):
        super().__init__()
        self.W = op
        self.rho = activation
        self.bias = nn.Parameter(torch.full(_bias_shape(op), float(bias_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rho(self.W(x) + self.bias)


class Residual(nn.Module):
    """Standard residual block x ↦ x + W₂ ρ(W₁x + b₁) + b₂ with W₂ zero-initialised (the
    "Fixup"/"ReZero" fix that makes an unnormalised deep ResNet a fair baseline: `choice`)."""

    def __init__(self, op1: nn.Module, op2: nn.Module, activation: nn.Module):
        super().__init__()
        self.W1, self.W2 = op1, op2
        self.rho = activation
        self.b1 = nn.Parameter(torch.zeros(_bias_shape(op1)))
        self.b2 = nn.Parameter(torch.zeros(_bias_shape(op2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.W2(self.rho(self.W1(x) + self.b1)) + self.b2

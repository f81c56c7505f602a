"""Orthogonal matrices and delta-orthogonal convolution kernels.

Constructions (docs/replication.md §2): the summary names "Cayley transform or identity"
(`cayley`, `identity`: stated, summary "Architecture Onboarding"); `haar` (QR of a Gaussian with
the sign correction of Mezzadri 2007) and `expm` (exponential of a skew-symmetric matrix) are
`choice`. A delta-orthogonal kernel (Xiao et al. 2018) is zero except for its centre tap, which is
an orthogonal C×C matrix: the convolution is then an orthogonal operator on zero-padded images.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _skew(n: int, generator: torch.Generator | None, scale: float = 1.0) -> torch.Tensor:
    a = torch.randn(n, n, generator=generator, dtype=torch.float64) * scale
    return (a - a.T) / 2


def haar(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Haar-distributed orthogonal matrix: Q of a Gaussian's QR, columns signed by diag(R)."""
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


def cayley(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Cayley transform Q = (I − S)(I + S)⁻¹ of a random skew-symmetric S (summary: "Cayley")."""
    s = _skew(n, generator)
    eye = torch.eye(n, dtype=torch.float64)
    return torch.linalg.solve(eye + s, eye - s, left=False)


def expm(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Matrix exponential of a random skew-symmetric matrix."""
    return torch.linalg.matrix_exp(_skew(n, generator))


def identity(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The identity (summary: "Cayley transform or identity")."""
    return torch.eye(n, dtype=torch.float64)


CONSTRUCTIONS = {"haar": haar, "cayley": cayley, "expm": expm, "identity": identity}


def orthogonal_matrix(
    rows: int, cols: int, construction: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A rows×cols matrix with orthonormal rows (rows ≤ cols) or columns (rows ≥ cols), float64."""
    if construction not in CONSTRUCTIONS:
        raise ValueError(f"unknown orthogonal construction {construction!r}; have {sorted(CONSTRUCTIONS)}")
    q = CONSTRUCTIONS[construction](max(rows, cols), generator)
    return q[:rows, :cols]


def random_weight(rows: int, cols: int, weights: str, sigma_w2: float, generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A random rows×cols weight with E[W Wᵀ] = σ_w² I on its smaller side (Hlav §3: "random
    Gaussian matrices" vs "random orthogonal matrices"): N(0, σ_w²/cols) entries (`gaussian`), or
    σ_w times Haar orthonormal rows or columns (`orthogonal`)."""
    if weights == "gaussian":
        return torch.randn(rows, cols, generator=generator, dtype=dtype) * math.sqrt(sigma_w2 / cols)
    if weights == "orthogonal":
        return math.sqrt(sigma_w2) * orthogonal_matrix(rows, cols, "haar", generator).to(dtype)
    raise ValueError(f"unknown weights {weights!r}; have ['gaussian', 'orthogonal']")


def delta_orthogonal_(
    weight: torch.Tensor, construction: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fill a (C_out, C_in, k, k) kernel in place: zero but for an orthogonal centre tap."""
    c_out, c_in, kh, kw = weight.shape
    with torch.no_grad():
        weight.zero_()
        centre = orthogonal_matrix(c_out, c_in, construction, generator)
        weight[:, :, kh // 2, kw // 2] = centre.to(weight.dtype)
    return weight


def orthogonal_operators(module: nn.Module) -> list[nn.Module]:
    """The operators that their layer wants orthogonal (those whose `orthogonal` flag is set)."""
    return [m for m in module.modules() if getattr(m, "orthogonal", False)]

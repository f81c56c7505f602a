"""Soft orthogonality regularisers (docs/replication.md §2–3) and the `regularisation(model)` hook.

- `soft` (summary, Critical path; α ∈ {0, 0.001}: summary, First 3 experiments): α ‖BBᵀ − I‖²_F.
- `soft_gain` (Hlav eq. 11): λ ‖BBᵀ/g² − I‖²_F; g = 1 is `soft`.
- `soft_gain_listing` (Hlav's code listing, docs/replication.md §3): λ · mean((WWᵀ/g² − 1)²). Keras kernels are
  (in, out), so the listing's KᵀK is WWᵀ for a PyTorch weight W (out, in). It subtracts 1 from
  every entry (the all-ones matrix, not I) and averages instead of summing; on an orthogonal n×n
  W it is (n − 1)/n, not 0.

Convolutions: B is the operator R^{C_in×H×W} → R^{C_out×H×W} of a stride-1 zero-padded k×k
convolution on the run's image size (28×28: `choice`, the body's size; zero padding makes the
operator depend on H×W). `conv_operator_defect` computes ‖BBᵀ − I‖²_F exactly from the kernel,
without forming B. The listing variant for a convolution takes W = the kernel as a
C_out × (C_in·k·k) matrix (`choice`: what Keras code would do).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ConvOperator
from .orthogonal import orthogonal_operators


def dense_defect(weight: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """‖WWᵀ/g² − I‖²_F for W ∈ R^{m×n} (Hlav eq. 11; g = 1: the summary's soft penalty)."""
    gram = weight @ weight.T / gain**2
    return (gram - torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)).square().sum()


class _DenseDefects(torch.autograd.Function):
    """Σ_l ‖W_l W_lᵀ/g² − I‖²_F over weights of one shape, stacked: one batched product for the
    Gram matrices forward and one for the gradient, ∂/∂W_l = (4/g²) E_l W_l with E_l = W_l W_lᵀ/g² − I
    (symmetric), where autograd would take three products and a dozen elementwise kernels per
    weight (benchmarks/cpu_speed.py, regime soft). Equal to the sum of `dense_defect` up to the
    order of the sums."""

    @staticmethod
    def forward(ctx, gain: float, *weights: torch.Tensor) -> torch.Tensor:
        w = torch.stack(weights)
        e = torch.bmm(w, w.mT)
        if gain != 1.0:
            e.div_(gain**2)
        e.diagonal(dim1=-2, dim2=-1).sub_(1)
        ctx.gain = gain
        ctx.save_for_backward(w, e)
        flat = e.view(-1)
        return torch.dot(flat, flat)  # one pass, no squared copy

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        w, e = ctx.saved_tensors
        grad = torch.bmm(e, w).mul_(g * (4 / ctx.gain**2))
        return (None, *grad.unbind(0))


def dense_defects(weights: list[torch.Tensor], gain: float = 1.0) -> torch.Tensor:
    """Σ ‖WWᵀ/g² − I‖²_F over dense weights, those of one shape in one batched call (`_DenseDefects`)."""
    by_shape: dict[tuple, list[torch.Tensor]] = {}
    for w in weights:
        by_shape.setdefault((tuple(w.shape), w.dtype, w.device), []).append(w)
    return torch.stack([_DenseDefects.apply(gain, *group) for group in by_shape.values()]).sum()


def listing_defect(weight: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """mean((WWᵀ/g² − 1)²): Hlav's code listing `K.mean(K.square(KᵀK/g² − 1))` (docs/replication.md §3)."""
    w = weight.reshape(weight.shape[0], -1)
    return (w @ w.T / gain**2 - 1).square().mean()


def _axis_classes(size: int, r: int) -> list[tuple[int, int]]:
    """Positions along one axis grouped by how the image edge cuts their neighbourhood of radius
    2r: each position within 2r of an edge alone, the interior as one class. (position, count)."""
    edge = [p for p in range(size) if p < 2 * r or p >= size - 2 * r]
    interior = size - len(edge)
    return [(p, 1) for p in edge] + ([(2 * r, interior)] if interior > 0 else [])


@functools.lru_cache(maxsize=64)
def _axis_masks(size: int, r: int, dtype, device):
    """For each class: count, mask over kernel taps u ∈ [−r, r] (p + u inside), mask over
    shifts d ∈ [−2r, 2r] (p + d inside). Cached: the soft penalty needs them at every step, and
    building them from Python lists on a GPU would copy them from the host (a sync) each time.
    Constants, never written to."""
    classes = _axis_classes(size, r)
    taps = torch.arange(-r, r + 1, device=device)
    shifts = torch.arange(-2 * r, 2 * r + 1, device=device)
    pos = torch.tensor([p for p, _ in classes], device=device)
    count = torch.tensor([c for _, c in classes], dtype=dtype, device=device)
    tap_mask = ((pos[:, None] + taps) >= 0) & ((pos[:, None] + taps) < size)
    shift_mask = ((pos[:, None] + shifts) >= 0) & ((pos[:, None] + shifts) < size)
    return count, tap_mask.to(dtype), shift_mask.to(dtype)


def conv_operator_defect(weight: torch.Tensor, height: int, width: int, gain: float = 1.0) -> torch.Tensor:
    """‖BBᵀ/g² − I‖²_F of the zero-padded stride-1 convolution B with kernel `weight`
    (C_out, C_in, k, k) on H×W images, exactly.

    (BBᵀ)[(o,p),(o',p+d)] = Σ_c Σ_{u: p+u inside} w[o,c,u] w[o',c,u−d] for p + d inside, else the
    entry does not exist. Which taps u and shifts d survive depends on p only through its distance
    to the edges, separately per axis, so positions fall into (4r+1)² classes (r = k//2) on images
    of at least 4r+1 pixels a side; per class the entries are a masked autocorrelation of the kernel
    (one conv2d), and the classes' squared defects are summed with their pixel counts.
    """
    c_out, _, k, _ = weight.shape
    r = k // 2
    w = weight / gain
    cy, ty, sy = _axis_masks(height, r, w.dtype, w.device)
    cx, tx, sx = _axis_masks(width, r, w.dtype, w.device)
    tap = ty[:, None, :, None] * tx[None, :, None, :]  # (Y, X, k, k)
    masked = w[None, None] * tap[:, :, None, None]  # (Y, X, C_out, C_in, k, k)
    n_y, n_x = tap.shape[:2]
    gram = F.conv2d(masked.reshape(n_y * n_x * c_out, *w.shape[1:]), w, padding=2 * r)
    gram = gram.reshape(n_y, n_x, c_out, c_out, 4 * r + 1, 4 * r + 1)
    eye = torch.zeros_like(gram[0, 0])
    eye[:, :, 2 * r, 2 * r] = torch.eye(c_out, dtype=w.dtype, device=w.device)
    shift = sy[:, None, None, None, :, None] * sx[None, :, None, None, None, :]
    per_class = ((gram - eye).square() * shift).sum(dim=(2, 3, 4, 5))
    return (per_class * cy[:, None] * cx[None, :]).sum()


def operator_defect(op: nn.Module, gain: float, image_size: tuple[int, int]) -> torch.Tensor:
    """‖BBᵀ/g² − I‖²_F of a dense or convolutional operator (convolutions on `image_size`)."""
    if isinstance(op, ConvOperator):
        return conv_operator_defect(op.weight, *image_size, gain=gain)
    return dense_defect(op.weight, gain)


def regularisation(model: nn.Module, regime: str, alpha: float, gain: float) -> torch.Tensor | None:
    """The regime's penalty summed over the body's orthogonal operators; None for init and hard.

    soft: α Σ ‖BBᵀ − I‖²; soft_gain: α Σ ‖BBᵀ/g² − I‖² (eq. 11); soft_gain_listing: α Σ of the
    listing's mean((WWᵀ/g² − 1)²).
    """
    if regime in ("init", "hard"):
        return None
    ops = orthogonal_operators(model.body)
    if regime in ("soft", "soft_gain"):
        g = 1.0 if regime == "soft" else gain
        dense = [op.weight for op in ops if not isinstance(op, ConvOperator)]
        terms = [operator_defect(op, g, model.image_size) for op in ops if isinstance(op, ConvOperator)]
        if dense:
            terms.append(dense_defects(dense, g))
    elif regime == "soft_gain_listing":
        terms = [listing_defect(op.weight, gain) for op in ops]
    else:
        raise ValueError(f"unknown regime {regime!r}")
    if not terms:
        raise ValueError(f"regime {regime!r}: the body has no orthogonal weights to regularise")
    return alpha * torch.stack(terms).sum()

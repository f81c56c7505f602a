"""Networks: lift → L body layers → head, and the model zoo (name → body-layer constructor).

Convolutional: lift conv 1→C (3×3), L body layers on C×28×28, global mean-pool, linear head
(docs/replication.md §5). Dense: flatten 784 → lift linear 784→n, L body layers on R^n, linear head. The body is
what the Jacobian spectrum is measured on.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .activations import SLOPES_01, SLOPES_PM1, make_activation, parse_breakpoints
from ..config import GAUSSIAN_CONTROL, RunConfig
from .layers import (BlockIdentity, ConvOperator, DeltaConvOperator, DenseOperator, Fold, Limit,
                     OrthFF, Partial, Plain, Residual)
from . import native  # noqa: F401  (registers the compiled bodies with fused.run_body)
from .fused import fused_body
from .one_channel import ConvLift
from .orthogonal import orthogonal_matrix, orthogonal_operators

IMAGE_SIZE = (28, 28)


def _n(cfg: RunConfig) -> int:
    return cfg.channels if cfg.arch == "conv" else cfg.width


def _mid(cfg: RunConfig) -> int:
    n = _n(cfg)
    m = cfg.width_mid or n
    if not 1 <= m <= n:
        raise ValueError(f"width_mid={cfg.width_mid} must be in 1..{n} (rows of B ≤ its columns)")
    return m


def _operator(cfg: RunConfig, n_out: int, n_in: int, kernel_size: int | None = None,
              orthogonal: bool = False) -> nn.Module:
    if cfg.arch == "dense":
        return DenseOperator(n_out, n_in)
    k = cfg.kernel_size if kernel_size is None else kernel_size
    hard = orthogonal and cfg.regime == "hard"
    return (DeltaConvOperator if hard else ConvOperator)(n_out, n_in, k)


def _orthogonal(cfg: RunConfig, gen: torch.Generator, n_out: int, n_in: int,
                kernel_size: int | None = None) -> nn.Module:
    """The operator a layer wants orthogonal, from `cfg.init`; `gaussian` is the control that is
    not: i.i.d. N(0, 1/n_in) entries (E[BBᵀ] = I, but BBᵀ ≠ I), dense only, regime init only. With
    the bias at −2 a fold layer with it still starts as the identity (its units are silent), so
    the control separates "each layer starts as the identity" from "every Jacobian is orthogonal"
    (docs/replication.md §4)."""
    op = _operator(cfg, n_out, n_in, kernel_size, orthogonal=True)
    if cfg.init == GAUSSIAN_CONTROL:
        if cfg.arch != "dense" or cfg.regime != "init":
            raise ValueError(f"init {GAUSSIAN_CONTROL!r} (the non-orthogonal control) needs arch dense and "
                             f"regime init, got arch {cfg.arch!r}, regime {cfg.regime!r}")
        with torch.no_grad():
            op.weight.copy_(torch.randn(op.weight.shape, generator=gen, dtype=torch.float64) / math.sqrt(n_in))
        return op
    op.init_orthogonal_(cfg.init, gen)
    return op


def _activation(cfg: RunConfig, channels: int, allowed: set[str] | None = None) -> nn.Module:
    if allowed is not None and cfg.activation not in allowed:
        raise ValueError(f"family {cfg.family!r} needs activation in {sorted(allowed)}, "
                         f"got {cfg.activation!r}")
    return make_activation(cfg.activation, k=cfg.k, breakpoints=parse_breakpoints(cfg.breakpoints),
                           learnable=cfg.breakpoint_mode == "learnable", channels=channels,
                           channel_dims=2 if cfg.arch == "conv" else 0)


def _fans(op: nn.Module) -> tuple[int, int]:
    w = op.weight
    field = w[0, 0].numel()
    return w.shape[1] * field, w.shape[0] * field


def _baseline_init_(cfg: RunConfig, op: nn.Module, bias: torch.Tensor, gen: torch.Generator) -> None:
    """init_scheme: he N(0, 2/fan_in); glorot N(0, 2/(fan_in+fan_out)); gaussian N(0, σ_w²/fan_in)
    with b ~ N(0, σ_b²) (Hlav §3, Pennington et al. 2017); orthogonal: gain · Q (Saxe et al. 2013),
    delta-orthogonal for convolutions. Biases start at zero except for gaussian."""
    fan_in, fan_out = _fans(op)
    if cfg.init_scheme == "orthogonal":
        op.init_orthogonal_(cfg.init, gen, cfg.gain)
        return
    variance = {"he": 2 / fan_in, "glorot": 2 / (fan_in + fan_out),
                "gaussian": cfg.sigma_w**2 / fan_in}[cfg.init_scheme]
    with torch.no_grad():
        op.weight.copy_(torch.randn(op.weight.shape, generator=gen) * math.sqrt(variance))
        if cfg.init_scheme == "gaussian":
            bias.copy_(torch.randn(bias.shape, generator=gen) * cfg.sigma_b)


def fold_layer(cfg: RunConfig, gen: torch.Generator) -> nn.Module:
    """x − 2Bᵀρ(Bx + b), B square or with orthonormal rows (width_mid)."""
    op = _orthogonal(cfg, gen, _mid(cfg), _n(cfg))
    return Fold(op, _activation(cfg, _mid(cfg)), cfg.bias_init)


def orthoff_layer(cfg: RunConfig, gen: torch.Generator) -> nn.Module:
    """Aᵀσ(Bx + b), A and B orthogonal from `init`: independent, or A = B at initialisation
    (`ab_init` equal; trained apart). With A = B, σ_1(z) = z − 2ReLU(z − t) and b = 0 the layer is
    x − 2BᵀReLU(Bx − t): the `fold` layer with bias −t, the identity where Bx < t (docs/replication.md §5)."""
    if cfg.width_mid:
        raise ValueError("orthoff needs square A, B: width_mid must be 0")
    n = _n(cfg)
    b = _orthogonal(cfg, gen, n, n)
    a = _orthogonal(cfg, gen, n, n)
    if cfg.ab_init == "equal":
        a.load_state_dict(b.state_dict())
    return OrthFF(a, b, _activation(cfg, n, SLOPES_PM1), cfg.bias_init)


def partial_layer(cfg: RunConfig, gen: torch.Generator) -> nn.Module:
    """AᵀReLU(Bx + b) with relu / relu_k."""
    n, m = _n(cfg), _mid(cfg)
    b = _orthogonal(cfg, gen, m, n)
    a = _orthogonal(cfg, gen, m, n)
    return Partial(a, b, _activation(cfg, m, SLOPES_01), cfg.bias_init)


def limit_layer(cfg: RunConfig, gen: torch.Generator) -> nn.Module:
    """x − 2Bᵀ[s(x) ⊙ ρ(Bx + b)], s(x) = 1 + δ tanh(Mx), M orthogonal (1×1 for convolutions)."""
    n, m = _n(cfg), _mid(cfg)
    b = _orthogonal(cfg, gen, m, n)
    modulation = _orthogonal(cfg, gen, m, n, kernel_size=1)
    return Limit(b, modulation, _activation(cfg, m, SLOPES_01), cfg.delta, cfg.bias_init)


def _pso_basis(cfg: RunConfig) -> torch.Tensor:
    """The network's shared orthogonal P: V = span of its first d rows. Drawn from its own
    generator seeded by the run's seed, so that every layer sees the same V."""
    return orthogonal_matrix(_n(cfg), _n(cfg), "haar", torch.Generator().manual_seed(cfg.seed))


def _set_matrix_(op: nn.Module, matrix: torch.Tensor) -> None:
    with torch.no_grad():
        if isinstance(op, DenseOperator):
            op.weight.copy_(matrix)
        elif isinstance(op, DeltaConvOperator):
            op.centre.copy_(matrix)
        else:
            op.weight.zero_()
            r = op.padding
            op.weight[:, :, r, r] = matrix.to(op.weight.dtype)


def pso_layer(cfg: RunConfig, gen: torch.Generator) -> nn.Module:
    """A `partial` layer with a persistent isometric subspace V of dimension d = pso_d (docs/replication.md §1.3).

    `bias`: B = blockdiag(I_d, Q_B) P and A = blockdiag(I_d, Q_A) P (Q_A, Q_B: (n−d)×(n−d)
    orthogonal from `init`; P orthogonal, shared by all layers), so A and B share their first d
    rows P_{:d}, which span V; those units get bias β = pso_bias, the others bias_init. Then
    J v = v on V, and the layer maps V-coordinates c ↦ c + β·1 (the bias passes through), so the
    pre-activations of the d units grow by β per layer and the units stay active at every depth: V
    persists. (A different rotation of P_{:d} per layer would turn that drift negative within a
    few layers.) `block`: the first d coordinates (channels) pass through an identity path and a
    `partial` layer acts on the other n − d.
    """
    n, d = _n(cfg), cfg.pso_d
    if not 0 <= d <= n:
        raise ValueError(f"pso_d={d} must be in 0..{n}")
    if cfg.width_mid:
        raise ValueError("pso needs square A, B: width_mid must be 0")
    act = _activation(cfg, n if cfg.pso_strategy == "bias" else n - d, SLOPES_01)
    if cfg.pso_strategy == "block":
        if d == n:
            raise ValueError(f"pso block strategy needs pso_d < {n}")
        inner = Partial(_orthogonal(cfg, gen, n - d, n - d), _orthogonal(cfg, gen, n - d, n - d),
                        act, cfg.bias_init)
        return BlockIdentity(d, inner)
    p = _pso_basis(cfg)
    r = torch.eye(d, dtype=torch.float64)
    ops = []
    for _ in range(2):
        q = orthogonal_matrix(n - d, n - d, cfg.init, gen)
        op = _operator(cfg, n, n, orthogonal=True)
        _set_matrix_(op, torch.block_diag(r, q) @ p)
        op.orthogonal = True
        ops.append(op)
    layer = Partial(ops[1], ops[0], act, cfg.bias_init)
    with torch.no_grad():
        layer.bias[:d] = cfg.pso_bias
    return layer


def plain_layer(cfg: RunConfig, gen: torch.Generator) -> nn.Module:
    """ρ(Wx + b), W from init_scheme (the P3 and Hlav H4/H5 baseline)."""
    op = _operator(cfg, _n(cfg), _n(cfg), orthogonal=cfg.init_scheme == "orthogonal")
    layer = Plain(op, _activation(cfg, _n(cfg)), 0.0)
    _baseline_init_(cfg, op, layer.bias, gen)
    return layer


def resnet_layer(cfg: RunConfig, gen: torch.Generator) -> nn.Module:
    """x + W₂ρ(N(W₁x + b₁)) + b₂; W₁ from init_scheme; W₂ zero when norm is none, else like W₁."""
    n = _n(cfg)
    orth = cfg.init_scheme == "orthogonal"
    op1, op2 = _operator(cfg, n, n, orthogonal=orth), _operator(cfg, n, n, orthogonal=orth)
    norm = None
    if cfg.norm == "batch":
        norm = nn.BatchNorm2d(n) if cfg.arch == "conv" else nn.BatchNorm1d(n)
    layer = Residual(op1, op2, _activation(cfg, n), norm)
    _baseline_init_(cfg, op1, layer.b1, gen)
    if norm is None:
        _set_matrix_(op2, torch.zeros(n, n))  # also clears a full kernel's off-centre taps
    else:
        _baseline_init_(cfg, op2, layer.b2, gen)
    return layer


MODELS = {
    "fold": fold_layer,
    "orthoff": orthoff_layer,
    "partial": partial_layer,
    "limit": limit_layer,
    "pso": pso_layer,
    "plain": plain_layer,
    "resnet": resnet_layer,
}


class Network(nn.Module):
    image_size = IMAGE_SIZE

    def __init__(self, lift: nn.Module, body: nn.Sequential, head: nn.Module, arch: str):
        super().__init__()
        self.lift, self.body, self.head, self.arch = lift, body, head, arch

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 1, 28, 28) → body input: (N, C, 28, 28) or (N, n), in the images' dtype (under
        bf16 autocast the lift's output is cast back to fp32: the body's stream stays fp32)."""
        return self.lift(images if self.arch == "conv" else images.flatten(1)).to(images.dtype)

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h.mean(dim=(2, 3)) if self.arch == "conv" else h)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.embed(images)
        out = fused_body(self.body, x)  # the fast path of a dense fold/ReLU body, one node for all layers
        return self.readout(self.body(x) if out is None else out)


def build_model(cfg: RunConfig) -> Network:
    """The network of a run, initialised deterministically from `cfg.seed`."""
    if cfg.family not in MODELS:
        raise ValueError(f"unknown family {cfg.family!r}; have {sorted(MODELS)}")
    if cfg.depth < 1:
        raise ValueError(f"depth must be ≥ 1, got {cfg.depth}")
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # the lift and the head use PyTorch's default initialisers
    if cfg.arch == "conv":
        lift = ConvLift(1, cfg.channels, 3, padding=1)
        head = nn.Linear(cfg.channels, 10)
    else:
        lift = nn.Linear(28 * 28, cfg.width)
        head = nn.Linear(cfg.width, 10)
    body = nn.Sequential(*(MODELS[cfg.family](cfg, gen) for _ in range(cfg.depth)))
    ops = orthogonal_operators(body)
    if cfg.regime != "init" and not ops:
        raise ValueError(f"regime {cfg.regime}: family {cfg.family!r} with init_scheme "
                         f"{cfg.init_scheme!r} has no orthogonal weights to constrain")
    if cfg.regime == "hard":
        for op in ops:
            op.make_hard_()
    return Network(lift, body, head, cfg.arch)

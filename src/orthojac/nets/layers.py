"""Layer families of the paper and the baselines, each dense or convolutional.

Every family is written against a linear operator B with an adjoint Bᵀ: a matrix (dense) or a
stride-1 'same' convolution whose adjoint is the transposed convolution with the same kernel
(docs/replication.md §1.1). Notation: u = Bx + b, D = diag(ρ'(u)). Operators that a layer wants
orthogonal carry `orthogonal = True` (set by `init_orthogonal_`): the soft regularisers
(orthojac.nets.regularisers) penalise exactly those.

Precision (bf16 autocast, orthojac.run.fastpath): the stream x that a layer passes on stays in x's dtype
(fp32) — the branch Bᵀρ(Bx + b) is computed in bf16 and added in fp32 — so that 200 layers do not
round x to bf16 200 times. Without autocast every cast below is the identity (no copy, no rounding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from . import fused as _fused
from . import one_channel
from .activations import Abs, SigmaK
from .fused import DenseFoldReLU
from .orthogonal import delta_orthogonal_, orthogonal_matrix


class _Cayley(torch.autograd.Function):
    """Q = base · (I − A/2)⁻¹(I + A/2), A = S − Sᵀ with S the strictly lower triangle of X: torch's
    Cayley parametrisation (torch.nn.utils.parametrizations.orthogonal), the same map, computed as
    Q = 2P − base with P = base M⁻¹ and M = I − A/2 (since M⁻¹(I + A/2) = 2M⁻¹ − I). Forward: one
    LU factorisation of M and one solve with n right-hand sides. Backward, from Q's gradient G:
        ∂A = Pᵀ G M⁻ᵀ = Pᵀ (M⁻¹ Gᵀ)ᵀ   (one solve with the same LU, one product),
        ∂X = strict lower triangle of (∂A − ∂Aᵀ)   (X's diagonal and upper triangle do not enter).
    Equal to torch's map and its autograd gradient up to rounding (tests/test_layers.py)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        s = x.tril(-1)
        m = (s.mT - s).mul_(0.5)  # −A/2
        m.diagonal().add_(1)  # M = I − A/2
        lu, pivots, _ = torch.linalg.lu_factor_ex(m)  # M is invertible: A skew, I − A/2 has |eigenvalues| ≥ 1
        p_t = torch.linalg.lu_solve(lu, pivots, base.mT, adjoint=True)  # Mᵀ Pᵀ = baseᵀ
        ctx.save_for_backward(lu, pivots, p_t)
        return p_t.mT.mul(2).sub_(base)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        lu, pivots, p_t = ctx.saved_tensors
        da = p_t @ torch.linalg.lu_solve(lu, pivots, g.mT).mT
        return (da - da.mT).tril_(-1), None


class CayleyOrthogonal(nn.Module):
    """Regime `hard`'s parametrisation of a square weight (`DenseOperator.make_hard_`): weight =
    base · Cayley(A(X)) (`_Cayley`), with the weight's orthogonal value at registration kept as
    the buffer `base` and X starting at −I (A = 0), as torch's orthogonal parametrisation with
    trivialisation does, so a checkpoint's keys are the same."""

    def __init__(self):
        super().__init__()
        self.register_buffer("base", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Cayley.apply(x, self.base)

    @torch.no_grad()
    def right_inverse(self, q: torch.Tensor) -> torch.Tensor:
        """As torch's: a weight that is not orthogonal to within 10·n·eps (e.g. gain ≠ 1) is
        replaced by the Q of its QR decomposition with diag(R) ≥ 0 before it becomes the base."""
        eye = torch.eye(q.shape[0], dtype=q.dtype, device=q.device)
        if torch.allclose(q.mT @ q, eye, atol=10.0 * q.shape[0] * torch.finfo(q.dtype).eps):
            base = q.clone(memory_format=torch.contiguous_format)
        else:
            reflectors, tau = torch.geqrf(q)
            base = torch.linalg.householder_product(reflectors, tau)
            base *= reflectors.diagonal().sgn().unsqueeze(-2)
        self.base = base
        return -eye


class DenseOperator(nn.Module):
    """x ↦ B x with B ∈ R^{m×n}; adjoint y ↦ Bᵀ y."""

    orthogonal = False

    def __init__(self, n_out: int, n_in: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y @ self.weight

    def init_orthogonal_(self, construction: str, generator: torch.Generator | None = None,
                         gain: float = 1.0) -> None:
        """B = gain · Q, Q with orthonormal rows (or columns) from `construction`."""
        with torch.no_grad():
            self.weight.copy_(gain * orthogonal_matrix(*self.weight.shape, construction, generator))
        self.orthogonal = True

    def make_hard_(self) -> None:
        """Regime `hard`: B stays on the orthogonal group (or, rectangular, the Stiefel manifold),
        parametrised by the Cayley transform with trivialisation: the current orthogonal value is
        kept as the base, B = base · Cayley(A), A skew-symmetric, A = 0 at the start. Square B
        takes `CayleyOrthogonal` (the same map as torch's orthogonal parametrisation with
        orthogonal_map="cayley", written by hand: one LU factorisation a step, reused by the
        backward pass; benchmarks/cpu_speed.py); a rectangular B, torch's. Cayley, not torch's
        default matrix exponential: both keep B exactly orthogonal, and at depth 200, width 128 a
        step costs 0.36 s with torch's Cayley against 1.06 s with the exponential (one thread)."""
        m, n = self.weight.shape
        if m == n:
            parametrize.register_parametrization(self, "weight", CayleyOrthogonal(), unsafe=True)
        else:
            parametrizations.orthogonal(self, "weight", orthogonal_map="cayley")


class ConvOperator(nn.Module):
    """x ↦ B ⋆ x, a stride-1 zero-padded k×k convolution; adjoint: conv_transpose2d, same kernel."""

    orthogonal = False
    fused = False  # set by orthojac.run.fastpath.prepare_model (lever `fused_layers`)

    def __init__(self, c_out: int, c_in: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for a 'same' convolution, got {kernel_size}")
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel_size, kernel_size))

    def takes_depthwise(self, x: torch.Tensor) -> bool:
        """Whether this call runs as a depthwise convolution of the batch
        (`one_channel.takes_depthwise`), a plain kernel (not regime hard's `DeltaConvOperator`)."""
        return type(self) is ConvOperator and one_channel.takes_depthwise(self, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.takes_depthwise(x):
            return one_channel.batch_depthwise(x, self.weight)
        return F.conv2d(x, self.weight, padding=self.padding)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if self.takes_depthwise(y):
            return one_channel.batch_depthwise(y, self.weight, adjoint=True)
        return F.conv_transpose2d(y, self.weight, padding=self.padding)

    def init_orthogonal_(self, construction: str, generator: torch.Generator | None = None,
                         gain: float = 1.0) -> None:
        """Delta-orthogonal kernel (Xiao et al. 2018) with centre tap gain · Q."""
        delta_orthogonal_(self.weight, construction, generator)
        with torch.no_grad():
            self.weight.mul_(gain)
        self.orthogonal = True


class DeltaConvOperator(ConvOperator):
    """A k×k convolution whose kernel is zero but for its centre tap, the parameter `centre`.

    Regime `hard` for convolutions (`choice`): torch's orthogonal parametrisation acts on the centre
    matrix, so the operator stays exactly orthogonal on zero-padded images; the off-centre taps stay
    zero, which makes a k×k layer a 1×1 convolution in effect. No cheap parametrisation keeps a
    general k×k operator orthogonal, and we do not claim one.
    """

    def __init__(self, c_out: int, c_in: int, kernel_size: int = 3):
        nn.Module.__init__(self)
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for a 'same' convolution, got {kernel_size}")
        self.padding, self.kernel_size = kernel_size // 2, kernel_size
        self.centre = nn.Parameter(torch.empty(c_out, c_in))

    @property
    def weight(self) -> torch.Tensor:
        p = self.padding
        return F.pad(self.centre[:, :, None, None], (p, p, p, p))

    def init_orthogonal_(self, construction: str, generator: torch.Generator | None = None,
                         gain: float = 1.0) -> None:
        with torch.no_grad():
            self.centre.copy_(gain * orthogonal_matrix(*self.centre.shape, construction, generator))
        self.orthogonal = True

    def make_hard_(self) -> None:
        parametrizations.orthogonal(self, "centre")


def _bias_shape(op: nn.Module) -> tuple[int, ...]:
    c = op.weight.shape[0]
    return (c, 1, 1) if isinstance(op, ConvOperator) else (c,)


def _bias(op: nn.Module, bias_init: float) -> nn.Parameter:
    return nn.Parameter(torch.full(_bias_shape(op), float(bias_init)))


class Fold(nn.Module):
    """The paper's modified ResNet layer: F(x) = x − 2 Bᵀ ρ(Bx + b).

    Jacobian I − 2 BᵀDB, orthogonal a.e. when B Bᵀ = I_m (square B, or B ∈ R^{m×n}, m ≤ n, with
    orthonormal rows) and ρ' ∈ {0, 1} a.e. (ReLU, ReLU_k) (summary, Method Summary; Theorem 2.6). The bias
    starts at the constant `bias_init`: with zero bias a depth-200 network stays at chance, with −2
    each layer starts near the identity (docs/replication.md §5).
    """

    fused = False  # set by orthojac.run.fastpath.prepare_model (lever `fused_layers`)

    def __init__(self, op: nn.Module, activation: nn.Module, bias_init: float = 0.0):
        super().__init__()
        self.B = op
        self.rho = activation
        self.bias = _bias(op, bias_init)

    def takes_fused_path(self, x: torch.Tensor) -> bool:
        """Whether this call goes through `fused.DenseFoldReLU`: asked for (`fused`), in a
        `fused.hand_written_context`, a plain dense operator (no parametrisation) with ReLU
        (`fused_kernel`). Anything else (spectra: eval mode with gradients; conv, relu_k, regime
        hard, bf16) takes the module's plain code."""
        return self.fused and _fused.hand_written_context(x, self.training) and self.fused_kernel() is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.takes_fused_path(x):
            return DenseFoldReLU.apply(x, self.B.weight, self.bias)[0]
        return x - 2 * self.B.adjoint(self.rho(self.B(x) + self.bias)).to(x.dtype)

    def fused_kernel(self):
        """(kernel, params) for `fused_body`, or None: a dense operator with ReLU."""
        if type(self.B) is DenseOperator and type(self.rho) is nn.ReLU:
            return _fused.FoldReLU, (self.B.weight, self.bias)
        return None


class OrthFF(nn.Module):
    """The paper's modified feedforward layer (`orthoff`): F(x) = Aᵀ σ(Bx + b).

    Jacobian Aᵀ D B, orthogonal a.e. when A, B are orthogonal and σ' ∈ {−1, +1} a.e. (abs, σ_k)
    (summary, Method Summary and Mechanism 2; docs/replication.md §1). With ReLU it is the partial isometry `Partial`.
    """

    def __init__(self, op_a: nn.Module, op_b: nn.Module, activation: nn.Module, bias_init: float = 0.0):
        super().__init__()
        self.A, self.B = op_a, op_b
        self.sigma = activation
        self.bias = _bias(op_b, bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # No skip connection: the output is the convolution's, rounded once (to bf16 under
        # autocast) and passed on in x's dtype.
        return self.A.adjoint(self.sigma(self.B(x) + self.bias)).to(x.dtype)

    fused = False  # set by orthojac.run.fastpath.prepare_model (lever `fused_layers`)

    def fused_kernel(self):
        """(kernel, params) for `fused_body`, or None: dense operators with σ_1 (one fixed
        breakpoint) or |·|."""
        if type(self) is not OrthFF or type(self.A) is not DenseOperator or type(self.B) is not DenseOperator:
            return None
        if type(self.sigma) is Abs:
            return _fused.OrthFFAbs, (self.A.weight, self.B.weight, self.bias)
        relu_k = getattr(self.sigma, "relu_k", None)
        if type(self.sigma) is SigmaK and relu_k.k == 1 and relu_k.breakpoints.dim() == 1:
            return _fused.OrthFFSigma1, (self.A.weight, self.B.weight, self.bias, relu_k.breakpoints)
        return None


class Partial(OrthFF):
    """Partial isometry (`partial`): F(x) = Aᵀ ReLU(Bx + b) (docs/replication.md §1; abstract v2).

    Jacobian Aᵀ D B with D ∈ {0, 1}: its singular values are in {0, 1} (1 on the active units).
    Persistent subspace (docs/replication.md §1.3, strategy `bias`, `choice`): give the first d units a large
    positive bias and tie A's first d rows to B's; then J v = v for v ∈ V = span of those rows
    wherever those units are active.
    """

    def fused_kernel(self):
        """(kernel, params) for `fused.fused_body`, or None: dense operators with ReLU."""
        if type(self.A) is DenseOperator and type(self.B) is DenseOperator and type(self.sigma) is nn.ReLU:
            return _fused.PartialReLU, (self.A.weight, self.B.weight, self.bias)
        return None


class Limit(nn.Module):
    """The paper's limit model (`limit`, orthojac's construction, `choice`: docs/replication.md §1.2):

        F(x) = x − 2 Bᵀ [ s(x) ⊙ ρ(Bx + b) ],   s(x) = 1 + δ tanh(Mx),

    M ∈ R^{m×n} with orthonormal rows (a 1×1 convolution for images), ρ' ∈ {0, 1}. δ = 0 is `fold`.

    Bound (Theorem 4.2's form, derived here). With u = Bx + b, t = tanh(Mx), D = diag(ρ'(u)):
        J = (I − 2BᵀDB) − 2δ Bᵀ [diag(t) D B + diag(ρ(u) ⊙ (1 − t²)) M] = J₀ + E.
    J₀ is orthogonal (as for `fold`), and by Weyl's inequality |σ_i(J) − 1| ≤ ‖E‖₂ with
    ‖B‖₂ = ‖M‖₂ = 1, so
        ε(x) = max_i |σ_i(J) − 1| ≤ 2δ ( max_i |t_i| D_ii + max_i |ρ(u_i)| (1 − t_i²) ).
    Both terms are ≤ 1 + ‖ρ(u)‖_∞, so ε ≤ 2δ(1 + ‖ρ(u)‖_∞): small when δ (the Lipschitz constant of
    the modulation) and the activations (the bias) are small, as the summary states. For a
    convolution B must be an orthogonal operator (delta-orthogonal kernel); `epsilon_bound`
    computes the pointwise bound at x, using the maxima over all units and pixels.
    """

    def __init__(self, op: nn.Module, modulation: nn.Module, activation: nn.Module, delta: float,
                 bias_init: float = 0.0):
        super().__init__()
        self.B, self.M = op, modulation
        self.rho = activation
        self.delta = float(delta)
        self.bias = _bias(op, bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 1 + self.delta * torch.tanh(self.M(x))
        return x - 2 * self.B.adjoint(s * self.rho(self.B(x) + self.bias)).to(x.dtype)

    fused = False  # set by orthojac.run.fastpath.prepare_model (lever `fused_layers`)

    def fused_kernel(self):
        """(kernel, params) for `fused.fused_body`, or None: dense operators with ReLU."""
        if type(self.B) is DenseOperator and type(self.M) is DenseOperator and type(self.rho) is nn.ReLU:
            return _fused.LimitReLU(self.delta), (self.B.weight, self.bias, self.M.weight)
        return None

    def epsilon_bound(self, x: torch.Tensor) -> float:
        """2δ (max |t| D + max |ρ(u)| (1 − t²)) at a single input x (no batch axis)."""
        with torch.enable_grad():
            u = (self.B(x.unsqueeze(0)) + self.bias).detach().requires_grad_(True)
            rho_u = self.rho(u)
            (slope,) = torch.autograd.grad(rho_u.sum(), u)  # ρ' elementwise: D's diagonal
        with torch.no_grad():
            t = torch.tanh(self.M(x.unsqueeze(0)))
            terms = (t.abs() * slope.abs()).max() + (rho_u.abs() * (1 - t**2)).max()
        return 2 * self.delta * terms.item()


class BlockIdentity(nn.Module):
    """PSO strategy `block` (docs/replication.md §1.3, `choice`): F(x) = [x_{:d}; G(x_{d:})].

    The first d coordinates (channels) pass through an identity path; G is a layer on the rest. As a
    linear map B = blockdiag(I_d, Q). Jacobian blockdiag(I_d, J_G): an isometry on V = span(e_1…e_d),
    the same V in every layer, so V persists through any depth.
    """

    def __init__(self, d: int, inner: nn.Module):
        super().__init__()
        self.d, self.inner = d, inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, : self.d], self.inner(x[:, self.d :])], dim=1)


class Plain(nn.Module):
    """Standard feedforward layer x ↦ ρ(Wx + b) with no skip connection: the baseline of claim
    P3 (summary, Executive Summary: standard deep networks) and of Hlav's H4/H5 (thesis §3)."""

    def __init__(self, op: nn.Module, activation: nn.Module, bias_init: float = 0.0):
        super().__init__()
        self.W = op
        self.rho = activation
        self.bias = _bias(op, bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rho(self.W(x) + self.bias)

    fused = False  # set by orthojac.run.fastpath.prepare_model (lever `fused_layers`)

    def fused_kernel(self):
        """(kernel, params) for `fused_body`, or None: a dense operator with ReLU."""
        if type(self.W) is DenseOperator and type(self.rho) is nn.ReLU:
            return _fused.PlainReLU, (self.W.weight, self.bias)
        return None


class Residual(nn.Module):
    """Standard residual block x ↦ x + W₂ ρ(N(W₁x + b₁)) + b₂ (He et al. 2016, pre-activation-free
    form). What makes an unnormalised deep ResNet a fair baseline (`choice`): W₂ zero-initialised
    ("Fixup"/"ReZero": every block starts as the identity), or a normalisation layer N (batch norm)."""

    def __init__(self, op1: nn.Module, op2: nn.Module, activation: nn.Module,
                 norm: nn.Module | None = None):
        super().__init__()
        self.W1, self.W2 = op1, op2
        self.rho = activation
        self.norm = norm if norm is not None else nn.Identity()
        self.b1 = nn.Parameter(torch.zeros(_bias_shape(op1)))
        self.b2 = nn.Parameter(torch.zeros(_bias_shape(op2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.W2(self.rho(self.norm(self.W1(x) + self.b1))) + self.b2

    fused = False  # set by orthojac.run.fastpath.prepare_model (lever `fused_layers`)

    def fused_kernel(self):
        """(kernel, params) for `fused_body`, or None: dense operators, ReLU, no normalisation."""
        if (type(self.W1) is DenseOperator and type(self.W2) is DenseOperator and type(self.rho) is nn.ReLU
                and type(self.norm) is nn.Identity):
            return _fused.ResidualReLU, (self.W1.weight, self.b1, self.W2.weight, self.b2)
        return None

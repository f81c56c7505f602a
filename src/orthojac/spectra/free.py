"""Matrix-free Jacobian spectra: for dimensions where the dense Jacobian does not fit.

Both methods see the Jacobian J = ∂f(x)/∂x only through products: v ↦ Jv (forward mode,
`torch.func.jvp`) and u ↦ Jᵀu (reverse mode, one `torch.func.vjp` whose graph is kept). They run the
Lanczos iteration on the symmetric positive semi-definite operator A = JᵀJ, whose eigenvalues are
the squared singular values σ_i² of J.

- `extreme_singular_values`: σ_max and σ_min from the extreme Ritz values of A, with full
  reorthogonalisation (Golub & Van Loan, *Matrix Computations*, §10.1); the iteration stops when
  the residual bound |β_k s_{k,i}| of both extreme Ritz pairs is below `tol` relative to the
  largest Ritz value, so each returned θ is within that bound of an eigenvalue of A.
- `spectral_density`: stochastic Lanczos quadrature (Golub & Meurant 1994; Ubaru, Chen & Saad
  2017): for each random probe v, the k-step Lanczos tridiagonal T = Q Θ Qᵀ gives the Gauss
  quadrature vᵀg(A)v / vᵀv ≈ Σ_j Q_{1j}² g(θ_j), exact for polynomials g of degree ≤ 2k − 1;
  averaged over probes it estimates the spectral density (1/n) Σ_i δ(λ − σ_i²).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def jtj_operator(f, x: torch.Tensor):
    """v ↦ JᵀJ v for the Jacobian of f at a single input x (any shape; v flat, of x.numel())."""
    x = x.detach()

    def flat(v):
        return f(v.reshape(x.shape).unsqueeze(0)).reshape(-1)

    x_flat = x.reshape(-1)
    _, vjp = torch.func.vjp(flat, x_flat)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        # jvp recomputes the forward pass: `linearize` would cache it but traces through FX,
        # which is slower to set up than the handful of products a spectrum needs.
        return vjp(torch.func.jvp(flat, (x_flat,), (v,))[1])[0]

    return matvec, x_flat.numel()


def _lanczos(matvec, v0: torch.Tensor, steps: int, tol: float = 0.0):
    """Lanczos with full reorthogonalisation from v0. Returns (Ritz values θ ascending, eigenvector
    matrix S of T, last β). With tol > 0, stops once both extreme Ritz pairs have a residual bound
    |β s_{k,i}| ≤ tol · θ_max. Also returns (converged, residual): whether it stopped so, or on an
    invariant subspace, rather than after `steps` steps; the larger relative residual bound of the
    two extreme pairs at the last step (NaN before the second step or with tol = 0)."""
    n = v0.numel()
    q = v0 / v0.norm()
    basis = [q]
    alphas, betas = [], []
    theta = s = None
    beta = torch.zeros((), dtype=v0.dtype, device=v0.device)
    converged, relative = False, float("nan")
    for k in range(min(steps, n)):
        w = matvec(basis[-1])
        alphas.append(torch.dot(basis[-1], w))
        qs = torch.stack(basis)
        w = w - qs.T @ (qs @ w)  # full reorthogonalisation, twice ("twice is enough": Parlett)
        w = w - qs.T @ (qs @ w)
        beta = w.norm()
        t = torch.diag(torch.stack(alphas))
        if betas:
            off = torch.stack(betas)
            t = t + torch.diag(off, 1) + torch.diag(off, -1)
        theta, s = torch.linalg.eigh(t)
        scale = theta.abs().max()
        if beta <= 1e-12 * max(scale.item(), 1e-300) or k + 1 == n:
            converged = True  # an invariant subspace (or all of it): θ are exact eigenvalues
            break
        if tol > 0 and k >= 1:
            residual = (beta * s[-1, [0, -1]]).abs()
            relative = (residual / scale).max().item()
            if (residual <= tol * scale).all():
                converged = True
                break
        betas.append(beta)
        basis.append(w / beta)
    return theta, s, beta, (converged, relative)


@dataclass
class Extremes:
    """σ_max, σ_min, the Lanczos steps taken, and whether the iteration converged (both extreme
    Ritz pairs within `tol`, or an invariant subspace) before `max_steps`; `residual`: the larger
    relative residual bound of the two at the last step (NaN before the second step)."""

    sigma_max: float
    sigma_min: float
    steps: int
    converged: bool = True
    residual: float = float("nan")


def extreme_singular_values(f, x: torch.Tensor, max_steps: int = 300, tol: float = 1e-10,
                            generator: torch.Generator | None = None) -> Extremes:
    """σ_max and σ_min of ∂f(x)/∂x by Lanczos on JᵀJ (see the module docstring)."""
    matvec, n = jtj_operator(f, x)
    v0 = torch.randn(n, generator=generator, dtype=torch.float64).to(dtype=x.dtype, device=x.device)
    theta, _, _, (converged, residual) = _lanczos(matvec, v0, max_steps, tol)
    lam = theta.clamp_min(0)
    return Extremes(lam[-1].sqrt().item(), lam[0].sqrt().item(), len(theta), converged, residual)


def spectral_density(f, x: torch.Tensor, probes: int = 8, steps: int = 30,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stochastic Lanczos quadrature of the density of the singular values of ∂f(x)/∂x.

    Returns (nodes σ_j, weights w_j), weights summing to 1: the density is ≈ Σ_j w_j δ(σ − σ_j).
    Probes are Rademacher vectors (Hutchinson's estimator)."""
    matvec, n = jtj_operator(f, x)
    nodes, weights = [], []
    for _ in range(probes):
        v = torch.randint(0, 2, (n,), generator=generator).to(dtype=x.dtype, device=x.device) * 2 - 1
        theta, s, _, _ = _lanczos(matvec, v, steps)
        nodes.append(theta.clamp_min(0).sqrt())
        weights.append(s[0] ** 2 / probes)
    return torch.cat(nodes), torch.cat(weights)

"""Hand-written forward and backward passes of whole dense bodies: the CPU training fast path
(lever `fused_layers`, orthojac.run.fastpath; benchmarks/cpu_speed.py).

`DenseBody` takes every layer of a dense body as one autograd node: its forward pass is a loop
over the layers without autograd, its backward pass the same loop reversed, each layer in the
kernels of its family's `Kernel`. What it removes is the interpreter's and autograd's work around
the matrix products (one node and one `Function.apply` for the body instead of a module call and
several nodes a layer), which on one CPU thread is a third of a depth-200, width-128 step.

The families' kernels:
- `FoldReLU` (`fold` with ReLU): x ↦ x − 2 Wᵀ ReLU(W x + b) in six matrix products (the bias, the
  skip connection, the factor −2 and the sum of W's two gradients folded into them) and three
  elementwise kernels. With h = ReLU(Wx + b) and the output's gradient g:
      ∂x = g + [(−2g) Wᵀ ⊙ 1(h > 0)] W,   ∂W = hᵀ(−2g) + ∂uᵀ x,   ∂b = Σ_N ∂u,
  ∂u = (−2g) Wᵀ ⊙ 1(h > 0). Equal to autograd's result up to the order of the sums (the last
  bits); the same bits as `DenseFoldReLU`, one node a layer, which the CPU reference was made with.
- `PlainReLU`, `ResidualReLU`, `OrthFFSigma1`, `OrthFFAbs`, `PartialReLU`, `LimitReLU` (`plain`,
  `resnet` without normalisation, `orthoff` with σ_1 or |·|, `partial`, `pso` (strategy `bias`) and
  `limit` with ReLU): the kernels autograd runs for the module's own code,
  in its order (the same products with the same operands' layouts, the same elementwise kernels),
  so a body trains to the same bits with or without this node (tests/test_layers.py).
A node saves per layer what autograd would. The old-style `forward(ctx, …)` is kept on purpose:
with a separate `setup_context` torch binds `forward`'s signature with `inspect` on every `apply`
(≈ 0.1 ms a call on a 2 GHz core).
"""

from __future__ import annotations

import dataclasses

import torch

threshold_backward = torch.ops.aten.threshold_backward


class Kernel:
    """One layer's forward (x, params → output, the tensors its backward needs) and backward
    (g, params, saved, whether g is this node's own → ∂x, the params' gradients)."""

    @staticmethod
    def forward(x, *params):
        raise NotImplementedError

    @staticmethod
    def backward(g, params, saved, own_g: bool):
        raise NotImplementedError


class FoldReLU(Kernel):
    @staticmethod
    def forward(x, weight, bias):
        h = torch.addmm(bias, x, weight.t()).relu_()
        return torch.addmm(x, h, weight, alpha=-2), (x, h)  # x − 2 h W in one product

    @staticmethod
    def backward(g, params, saved, own_g):
        weight, (x, h) = params[0], saved
        # −2 g Wᵀ in one product (beta = 0: the zero "input" is neither read nor copied)
        du = threshold_backward(torch.addmm(g.new_zeros(()), g, weight.t(), beta=0, alpha=-2), h, 0)
        dw = torch.mm(du.t(), x).addmm_(h.t(), g, alpha=-2)  # before ∂x, which may overwrite g
        dx = g.addmm_(du, weight) if own_g else torch.addmm(g, du, weight)
        return dx, (dw, du.sum(0))


class PlainReLU(Kernel):
    """ρ(x Wᵀ + b), as `layers.Plain` with a dense operator and ReLU."""

    @staticmethod
    def forward(x, weight, bias):
        r = torch.mm(x, weight.t()).add_(bias).relu_()
        return r, (x, r)

    @staticmethod
    def backward(g, params, saved, own_g):
        weight, (x, r) = params[0], saved
        du = threshold_backward(g, r, 0)
        return torch.mm(du, weight), (torch.mm(du.t(), x), du.sum(0))


class ResidualReLU(Kernel):
    """x + ρ(x W₁ᵀ + b₁) W₂ᵀ + b₂, as `layers.Residual` with dense operators, ReLU, no normalisation."""

    @staticmethod
    def forward(x, w1, b1, w2, b2):
        r = torch.mm(x, w1.t()).add_(b1).relu_()
        return torch.add(x, torch.mm(r, w2.t())).add_(b2), (x, r)

    @staticmethod
    def backward(g, params, saved, own_g):
        (w1, _, w2, _), (x, r) = params, saved
        da = threshold_backward(torch.mm(g, w2), r, 0)
        dx = torch.mm(da, w1).add_(g)
        return dx, (torch.mm(da.t(), x), da.sum(0), torch.mm(g.t(), r), g.sum(0))


class OrthFFSigma1(Kernel):
    """Aᵀσ_1(Bx + b) with σ_1(u) = u − 2 ReLU(u − t₀), as `layers.OrthFF` with dense operators and
    `activations.SigmaK` (k = 1, a fixed breakpoint): params (A, B, b, t₀)."""

    @staticmethod
    def forward(x, a, b, bias, t0):
        u = torch.mm(x, b.t()).add_(bias)
        r = torch.relu(u - t0)
        s = u - 2 * r
        return torch.mm(s, a), (x, r, s)

    @staticmethod
    def backward(g, params, saved, own_g):
        (a, b, _, _), (x, r, s) = params, saved
        ds = torch.mm(g, a.t())
        du = threshold_backward(ds.neg() * 2, r, 0).add_(ds)
        return torch.mm(du, b), (torch.mm(s.t(), g), torch.mm(du.t(), x), du.sum(0), None)


class OrthFFAbs(Kernel):
    """Aᵀ|Bx + b|, as `layers.OrthFF` with dense operators and `activations.Abs`: params (A, B, b)."""

    @staticmethod
    def forward(x, a, b, bias):
        u = torch.mm(x, b.t()).add_(bias)
        s = u.abs()
        return torch.mm(s, a), (x, u, s)

    @staticmethod
    def backward(g, params, saved, own_g):
        (a, b, _), (x, u, s) = params, saved
        du = torch.mm(g, a.t()) * u.sgn()
        return torch.mm(du, b), (torch.mm(s.t(), g), torch.mm(du.t(), x), du.sum(0))


class PartialReLU(Kernel):
    """Aᵀ ReLU(Bx + b), as `layers.Partial` (pso's strategy `bias` too) with dense operators:
    params (A, B, b)."""

    @staticmethod
    def forward(x, a, b, bias):
        r = torch.mm(x, b.t()).add_(bias).relu_()
        return torch.mm(r, a), (x, r)

    @staticmethod
    def backward(g, params, saved, own_g):
        (a, b, _), (x, r) = params, saved
        du = threshold_backward(torch.mm(g, a.t()), r, 0)
        return torch.mm(du, b), (torch.mm(r.t(), g), torch.mm(du.t(), x), du.sum(0))


@dataclasses.dataclass(frozen=True)
class LimitReLU(Kernel):
    """x − 2 Bᵀ[s ⊙ ReLU(Bx + b)], s = 1 + δ tanh(Mx), as `layers.Limit` with dense operators and
    ReLU: params (B, b, M); δ is the kernel's (one δ for the body). x's gradient sums its three
    paths in the order autograd's engine delivers them (the skip connection, then B's, then M's)."""

    delta: float

    def forward(self, x, b, bias, m):
        t = torch.tanh(torch.mm(x, m.t()))
        s = 1 + self.delta * t
        r = torch.mm(x, b.t()).add_(bias).relu_()
        q = s * r
        return x - 2 * torch.mm(q, b), (x, t, s, r, q)

    def backward(self, g, params, saved, own_g):
        (b, _, m), (x, t, s, r, q) = params, saved
        dy = g.neg() * 2
        dq = torch.mm(dy, b.t())
        du = threshold_backward(dq * s, r, 0)
        dm = torch.ops.aten.tanh_backward((dq * r) * self.delta, t)
        db = torch.mm(q.t(), dy).add_(torch.mm(du.t(), x))
        dx = torch.add(g, torch.mm(du, b)).add_(torch.mm(dm, m))
        return dx, (db, du.sum(0), torch.mm(dm.t(), x))


def body_forward(kernel: Kernel | type[Kernel], x: torch.Tensor, layers_params) -> torch.Tensor:
    """The body's output without gradients (evaluation): the layers in turn, nothing kept."""
    for params in layers_params:
        x = kernel.forward(x, *params)[0]
    return x


class DenseBody(torch.autograd.Function):
    """apply(kernel, per_layer, x, *params): a body of len(params) / per_layer layers of one
    `kernel`, params layer after layer, as one autograd node."""

    @staticmethod
    def forward(ctx, kernel: Kernel | type[Kernel], per_layer: int, x: torch.Tensor, *params: torch.Tensor):
        saved = []
        for i in range(0, len(params), per_layer):
            x, keep = kernel.forward(x, *params[i:i + per_layer])
            saved.append(keep)
        ctx.kernel, ctx.per_layer, ctx.per_saved = kernel, per_layer, len(saved[0])
        ctx.save_for_backward(*params, *(t for keep in saved for t in keep))
        return x

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        tensors, per, kept = ctx.saved_tensors, ctx.per_layer, ctx.per_saved
        depth = (len(tensors)) // (per + kept)
        params, saved = tensors[:depth * per], tensors[depth * per:]
        grads: list = [None] * len(params)
        for i in reversed(range(depth)):
            g, grads[i * per:(i + 1) * per] = ctx.kernel.backward(
                g, params[i * per:(i + 1) * per], saved[i * kept:(i + 1) * kept], i < depth - 1)
        return (None, None, g, *grads)


def _unhooked(module: torch.nn.Module) -> bool:
    return not any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


def hand_written_context(x: torch.Tensor, training: bool) -> bool:
    """Whether a call on x may take a hand-written node: training with gradients or evaluating
    without (orthojac.run.train's evaluation; not spectra: eval mode with gradients), on a batch of
    vectors, outside autocast and any torch.func transform (PackedModels)."""
    return ((training or not torch.is_grad_enabled()) and x.dim() == 2
            and not torch.is_autocast_enabled(x.device.type)
            and torch._C._functorch.peek_interpreter_stack() is None)


def fused_body(body: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor | None:
    """The body's output through one hand-written autograd node (`fused.DenseBody`; without
    gradients a plain loop), or None, and the layers run one by one: only in a
    `hand_written_context`, and every layer is of one class, asked for it (`fused`, set by
    orthojac.run.fastpath.prepare_model), unhooked, and gives the same kernel (`fused_kernel`, in orthojac.nets.layers:
    dense fold/ReLU, plain/ReLU, resnet/ReLU without normalisation, orthoff with σ_1 or |·|,
    partial/pso/limit with ReLU)."""
    layers = list(body) if hand_written_context(x, body.training) else []
    if not layers:
        return None
    cls = type(layers[0])
    kernel, params = None, []
    for layer in layers:
        if type(layer) is not cls or not getattr(layer, "fused", False) or not _unhooked(layer):
            return None
        found = layer.fused_kernel()
        if found is None or (kernel is not None and found[0] != kernel):
            return None
        kernel = found[0]
        params.append(found[1])
    if not torch.is_grad_enabled():
        return body_forward(kernel, x, params)
    return DenseBody.apply(kernel, len(params[0]), x, *(p for layer in params for p in layer))


class DenseFoldReLU(torch.autograd.Function):
    """One dense fold/ReLU layer as one autograd node (`layers.Fold` called alone): returns
    (output, h), h not differentiable."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
        out, (_, h) = FoldReLU.forward(x, weight, bias)
        ctx.save_for_backward(x, weight, h)
        ctx.mark_non_differentiable(h)
        return out, h

    @staticmethod
    def backward(ctx, g: torch.Tensor, _h: torch.Tensor | None):
        x, weight, h = ctx.saved_tensors
        dx, (dw, db) = FoldReLU.backward(g, (weight,), (x, h), False)
        return dx, dw, db

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
  On a CPU in fp32 `run_body` hands a fold body to orthojac.nets.native where its library is built
  (`COMPILED`): the same products from C, the same bits, without ATen's work around each; so too a
  plain, partial, orthoff (σ_1 or |·|) and limit body.
- `PlainReLU`, `ResidualReLU`, `OrthFFSigma1`, `OrthFFAbs`, `PartialReLU`, `LimitReLU` (`plain`,
  `resnet` without normalisation, `orthoff` with σ_1 or |·|, `partial`, `pso` (strategy `bias`) and
  `limit` with ReLU): the kernels autograd runs for the module's own code,
  in its order (the same products with the same operands' layouts, the same elementwise kernels),
  so a body trains to the same bits with or without this node (tests/test_layers.py).
- `Affine`, `AffineTanh`, `AffineReLU`: the hidden layers of the thesis' dense networks (H3's deep
  linear, H5's deep tanh and ReLU networks, orthojac.thesis.dense.DenseNet: `nn.Linear` then φ),
  in autograd's kernels too (tests/test_hlav_depth.py).

`TanhRNN` is H1's tanh RNN (orthojac.thesis.rnn) over all its time steps as one node, in the kernels
of torch's CPU `nn.RNN` and of autograd for them (tests/test_hlav.py).

One-channel convolutions take a route of their own, orthojac.nets.one_channel (the same lever).

A node saves per layer what autograd would, and is differentiable once: a gradient of a gradient
through it raises (`once_differentiable`) rather than come out wrong. The old-style `forward(ctx, …)` is kept on purpose:
with a separate `setup_context` torch binds `forward`'s signature with `inspect` on every `apply`
(≈ 0.1 ms a call on a 2 GHz core).
"""

from __future__ import annotations

import dataclasses

import torch
from torch.autograd.function import once_differentiable

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


class AffineActivation(Kernel):
    """φ(x Wᵀ + b), as `nn.Linear` then φ's module: a hidden layer of DenseNet; a subclass names φ
    and its derivative as autograd computes it from φ's output."""

    @staticmethod
    def phi(u):
        raise NotImplementedError

    @staticmethod
    def phi_backward(g, y):
        raise NotImplementedError

    @classmethod
    def forward(cls, x, weight, bias):
        y = cls.phi(torch.addmm(bias, x, weight.t()))
        return y, (x, y)

    @classmethod
    def backward(cls, g, params, saved, own_g):
        weight, (x, y) = params[0], saved
        du = cls.phi_backward(g, y)
        return torch.mm(du, weight), (torch.mm(du.t(), x), du.sum(0))


class Affine(AffineActivation):
    """x Wᵀ + b, as `nn.Linear` alone: a hidden layer of the thesis' deep linear network (DenseNet
    with φ(x) = x, H3)."""

    @staticmethod
    def phi(u):
        return u

    @staticmethod
    def phi_backward(g, y):
        return g


class AffineTanh(AffineActivation):
    """tanh(x Wᵀ + b), as `nn.Linear` then `nn.Tanh` (H5)."""

    phi = staticmethod(torch.tanh)
    phi_backward = staticmethod(torch.ops.aten.tanh_backward)


class AffineReLU(AffineActivation):
    """ReLU(x Wᵀ + b), as `nn.Linear` then `nn.ReLU` (H5)."""

    phi = staticmethod(torch.relu)

    @staticmethod
    def phi_backward(g, y):
        return threshold_backward(g, y, 0)


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
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        tensors, per, kept = ctx.saved_tensors, ctx.per_layer, ctx.per_saved
        depth = (len(tensors)) // (per + kept)
        params, saved = tensors[:depth * per], tensors[depth * per:]
        grads: list = [None] * len(params)
        for i in reversed(range(depth)):
            g, grads[i * per:(i + 1) * per] = ctx.kernel.backward(
                g, params[i * per:(i + 1) * per], saved[i * kept:(i + 1) * kept], i < depth - 1)
        return (None, None, g, *grads)


def unhooked(module: torch.nn.Module) -> bool:
    return not any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


def hand_written_context(x: torch.Tensor, training: bool, dim: int = 2) -> bool:
    """Whether a call on x may take a hand-written node: training with gradients or evaluating
    without (orthojac.run.train's evaluation; not spectra: eval mode with gradients), on a batch of
    vectors (`dim` 2; 3 for a batch of sequences), outside autocast and any torch.func transform
    (PackedModels)."""
    return ((training or not torch.is_grad_enabled()) and x.dim() == dim
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
        if type(layer) is not cls or not getattr(layer, "fused", False) or not unhooked(layer):
            return None
        found = layer.fused_kernel()
        if found is None or (kernel is not None and found[0] != kernel):
            return None
        kernel = found[0]
        params.append(found[1])
    return run_body(kernel, params, x)


# Bodies compiled from C, by kernel class: class → f(kernel, x, layers_params), the body's output or None
# where it does not apply. orthojac.nets.native registers its families' when imported (orthojac.nets.models does).
COMPILED: dict = {}


def run_body(kernel: Kernel | type[Kernel], layers_params: list, x: torch.Tensor) -> torch.Tensor:
    """Layers of one `kernel` (their params, layer after layer) through one `DenseBody` node, or
    without gradients a plain loop (`body_forward`); through the kernel's compiled body where one is
    registered and applies (`COMPILED`: a fold, plain, partial, orthoff or limit body on a CPU,
    orthojac.nets.native, the same bits). The caller checks the `hand_written_context` and that nothing is hooked (`fused_body`;
    orthojac.thesis.dense.DenseNet)."""
    compiled = COMPILED.get(kernel if isinstance(kernel, type) else type(kernel))
    out = compiled(kernel, x, layers_params) if compiled is not None else None
    if out is not None:
        return out
    if not torch.is_grad_enabled():
        return body_forward(kernel, x, layers_params)
    return DenseBody.apply(kernel, len(layers_params[0]), x, *(p for layer in layers_params for p in layer))


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
    @once_differentiable
    def backward(ctx, g: torch.Tensor, _h: torch.Tensor | None):
        x, weight, h = ctx.saved_tensors
        dx, (dw, db) = FoldReLU.backward(g, (weight,), (x, h), False)
        return dx, dw, db


def rnn_projection(x: torch.Tensor, w_ih: torch.Tensor, b_ih: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`TanhRNN`'s x rows, time-major (T·batch × inputs), and all T steps' projection plus b_ih (T, batch, hidden)."""
    rows = x.transpose(0, 1).contiguous().view(x.shape[1] * x.shape[0], x.shape[2])
    return rows, torch.mm(rows, w_ih.t()).view(x.shape[1], x.shape[0], -1).add(b_ih)


def tanh_rnn_gradients(du_all: torch.Tensor, rows: torch.Tensor, db_hh: torch.Tensor, dw_steps: list) -> tuple:
    """`TanhRNN`'s gradients from all steps' ∂u (T, batch, hidden), b_hh's and W_hh's step terms (last step first)."""
    dw_ih = torch.mm(du_all.view(-1, du_all.shape[2]).t(), rows)
    return (dw_ih, dw_steps[0], du_all.sum([0, 1], keepdim=True).view(-1), db_hh, *dw_steps[1:])


class TanhRNN(torch.autograd.Function):
    """apply(x, w_ih, w_hh, b_ih, b_hh, *w_hh_again): the last hidden state h_T of a one-layer tanh RNN
    from h_0 = 0, h_t = tanh(W_hh h_{t−1} + b_hh + W_ih x_t + b_ih), x (batch, T, inputs), as one
    autograd node (H1, orthojac.thesis.rnn).

    Its kernels are those torch's CPU `rnn_tanh` runs and autograd runs for them, in their order: the
    input's projection for all steps in one product (x's rows in time-major order) plus b_ih, then each
    step addmm(b_hh, h, W_hhᵀ) += the step's projection, tanh; backward, step after step from the last,
    tanh's gradient, ∂h_{t−1} = ∂u W_hh, ∂W_hh's step term ∂uᵀ h_{t−1}, b_hh's ∂u summed over the batch.
    W_hh's T step terms reach its gradient through T edges (`w_hh_again`: W_hh again, T − 1 times), the
    last step's first, so that autograd's engine adds them to whatever else reached W_hh (a penalty on
    it) in the order it adds autograd's own step terms: the same bits as `nn.RNN` (tests/test_hlav.py).
    Saves the hidden states, not the T outputs `nn.RNN` stacks."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, *w_hh_again):
        rows, projected = rnn_projection(x, w_ih, b_ih)
        hidden = [x.new_zeros(x.shape[0], w_hh.shape[0])]
        for p in projected.unbind(0):
            hidden.append(torch.addmm(b_hh, hidden[-1], w_hh.t()).add_(p).tanh())
        ctx.save_for_backward(rows, w_hh, *hidden)
        return hidden[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        rows, w_hh, *hidden = ctx.saved_tensors
        steps = len(hidden) - 1
        du_steps, dw_steps, db_hh = [None] * steps, [], None
        for t in reversed(range(steps)):
            du = torch.ops.aten.tanh_backward(g, hidden[t + 1])
            du_steps[t] = du
            if t > 0:
                g = torch.mm(du, w_hh)
            dw_steps.append(torch.mm(du.t(), hidden[t]))
            db = du.sum(0, keepdim=True).view(-1)
            db_hh = db if db_hh is None else db_hh + db
        return (None, *tanh_rnn_gradients(torch.stack(du_steps), rows, db_hh, dw_steps))

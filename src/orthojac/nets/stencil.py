"""One-channel convolutions as shifted multiply-adds: the CPU fast path's node for
config/quick.yaml's depth sweep (C = 1; lever `fused_layers`, orthojac.run.fastpath).

`StencilConv` is a 'same' zero-padded convolution (`layers.ConvOperator`, and `ConvLift`, the
convolutional networks' image lift) or its transpose (`ConvOperator.adjoint`) as k² shifted
multiply-adds of the padded batch, where oneDNN's one-channel kernels run at under 1 GFLOP/s on a
CPU (benchmarks/cpu_speed.py's quick_fold8 row: a depth-8 fold step 248 → 71 ms). Unlike the
nodes of orthojac.nets.fused it sums in another order than torch's kernels: torch's values up to
rounding (tests/test_layers.py), not its bits, for finite weights (an infinite weight times the zero
padding is NaN at the border, where torch's is ±inf: non-finite either way, a diverged run either
way). It is differentiable once and has no forward-mode or batched (vmap) rule: a Jacobian of a
network in training mode through it raises; spectra take eval mode, where it is declined. No run
of the committed CPU reference takes it: its convolutional runs have two channels, where oneDNN is
faster and `takes_stencil` declines.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .fused import hand_written_context


def _shifted(padded: torch.Tensor, channel: int, k: int, h: int, w: int, flip: bool):
    """The k² windows (H × W) of one channel of a zero-padded batch, tap (i, j) after tap, as views;
    `flip`: the window of tap (i, j) starts at (k − 1 − i, k − 1 − j) (the adjoint's)."""
    plane = padded[:, channel]
    for i in range(k):
        a = k - 1 - i if flip else i
        rows = plane[:, a:a + h]
        for j in range(k):
            b = k - 1 - j if flip else j
            yield rows[:, :, b:b + w]


def _stencil(x: torch.Tensor, weight: torch.Tensor, adjoint: bool) -> torch.Tensor:
    """F.conv2d(x, weight, padding=k // 2) (stride 1, zero padding, no bias) as k²·O·C multiply-adds
    of shifted images, out[:, o] = Σ_{c,i,j} w[o, c, i, j] · x_pad[:, c, i:i+H, j:j+W]; or, `adjoint`,
    F.conv_transpose2d(x, weight, padding=k // 2),
    out[:, c] = Σ_{o,i,j} w[o, c, i, j] · x_pad[:, o, k−1−i : k−1−i+H, k−1−j : k−1−j+W]."""
    n, _, h, w = x.shape
    o, c, k = weight.shape[0], weight.shape[1], weight.shape[2]
    p = k // 2
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    taps = weight.detach().reshape(o, c, k * k).unbind(0)
    out = x.new_empty(n, c if adjoint else o, h, w)
    for target in range(out.shape[1]):
        y = out[:, target]
        first = True
        for source in range(o if adjoint else c):
            tap = taps[source][target] if adjoint else taps[target][source]
            for window, t in zip(_shifted(padded, source, k, h, w, adjoint), tap.unbind(0)):
                if first:
                    torch.mul(window, t, out=y)
                    first = False
                else:
                    y.addcmul_(window, t)
    return out


def correlate_weight_grad(x: torch.Tensor, g: torch.Tensor, k: int) -> torch.Tensor:
    """The gradient of ⟨g, conv2d(x, w)⟩ in w (`_stencil`): dw[o, c, i, j] = Σ g[:, o] · x_pad[:, c, i:i+H, j:j+W]."""
    h, w = x.shape[2:]
    o, c, p = g.shape[1], x.shape[1], k // 2
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    return torch.stack([torch.mul(g[:, oi], window).sum() for oi in range(o) for ci in range(c)
                        for window in _shifted(padded, ci, k, h, w, False)]).view(o, c, k, k)


class StencilConv(torch.autograd.Function):
    """apply(x, weight, adjoint): `ConvOperator`'s convolution (F.conv2d, stride 1, 'same' zero
    padding) or, `adjoint`, its transpose (F.conv_transpose2d with the same kernel) as shifted
    multiply-adds (`_stencil`), for one input and one output channel, where
    oneDNN's kernels are slowest: a depth-8 fold body at C = 1 (config/quick.yaml's depth sweep) spent
    three quarters of its step in them (benchmarks/cpu_speed.py's quick_fold8 row: 248 → 71 ms a
    step). Equal to torch's up to the order of its sums. Backward: the other stencil on g for the
    input; for the weight `correlate_weight_grad` (⟨g, conv_transpose2d(y, w)⟩ = ⟨conv2d(g, w), y⟩
    for the adjoint); each only where asked for (the lift's images ask for none)."""

    @staticmethod
    def forward(ctx, x, weight, adjoint: bool):
        ctx.save_for_backward(x, weight)
        ctx.adjoint = adjoint
        return _stencil(x, weight, adjoint)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        adjoint, k = ctx.adjoint, weight.shape[2]
        dx = _stencil(g, weight, not adjoint) if ctx.needs_input_grad[0] else None
        if not ctx.needs_input_grad[1]:
            return dx, None, None
        return dx, correlate_weight_grad(g, x, k) if adjoint else correlate_weight_grad(x, g, k), None


def takes_stencil(module: torch.nn.Module, x: torch.Tensor) -> bool:
    """Whether a convolution module's call on x runs as a `StencilConv`: asked
    for (its `fused`, set by orthojac.run.fastpath.prepare_model), on a CPU, one input and one output
    channel (where they beat oneDNN's kernels; at two channels they lose), in a
    `hand_written_context` (training, or evaluating without gradients; spectra keep torch's
    convolutions)."""
    return (getattr(module, "fused", False) and x.device.type == "cpu" and module.weight.shape[:2] == (1, 1)
            and hand_written_context(x, module.training, dim=4))


class ConvLift(nn.Conv2d):
    """The first layer of a convolutional network, images (1 channel) to the body's C: nn.Conv2d
    (3×3, stride 1, 'same' zero padding, a bias), which at C = 1 runs as `StencilConv` plus
    the bias where `takes_stencil` says so."""

    fused = False  # set by orthojac.run.fastpath.prepare_model (lever `fused_layers`)

    def is_same_convolution(self) -> bool:
        """Whether this module is a convolution `StencilConv` computes: an odd square kernel, stride 1,
        no dilation, one group, zero padding of half the kernel ('same')."""
        k = self.kernel_size[0]
        return (self.kernel_size == (k, k) and k % 2 == 1 and self.stride == (1, 1) and self.dilation == (1, 1)
                and self.groups == 1 and self.padding_mode == "zeros" and self.padding == (k // 2, k // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_same_convolution() and takes_stencil(self, x):
            out = StencilConv.apply(x, self.weight, False)
            return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)
        return super().forward(x)

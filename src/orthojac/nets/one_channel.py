"""One-channel convolutions as one depthwise convolution of the batch: the CPU fast path's route
for config/quick.yaml's depth sweep (C = 1; lever `fused_layers`, orthojac.run.fastpath).

A 'same' zero-padded convolution with one input and one output channel (`layers.ConvOperator`'s B,
and `ConvLift`, the convolutional networks' image lift) or its transpose (`ConvOperator.adjoint`,
Bᵀ) runs on a CPU as `batch_depthwise`: the N images (N, 1, H, W) laid out as the N channels of one
image (1, N, H, W), the kernel expanded to (N, 1, k, k), `groups = N`. It is torch's own
convolution, so autograd, forward mode and vmap treat it as any; oneDNN computes it with its
depthwise kernels, where its one-channel kernels ran at under 1 GFLOP/s (benchmarks/cpu_speed.py's
quick_fold8 row: a depth-8 fold step 290 ms with them, 71 ms as shifted multiply-adds, 43 ms as a
depthwise convolution). Its values are torch's up to rounding (tests/test_layers.py): the weight's
gradient sums over the batch in another order. No run of the committed CPU reference takes it: its
convolutional runs have two channels, where `takes_depthwise` declines. The spectrum stage takes it
for the body in float32 (`use_depthwise`): the Jacobian's rows, computed over a batch of copies of
the point (`on_depthwise_route`), and its gradient norms over a batch are torch's values up to
rounding; the points, the lift's, are torch's to the bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def batch_depthwise(x: torch.Tensor, weight: torch.Tensor, adjoint: bool = False,
                    bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.conv2d(x, weight, bias, padding=k // 2) or, `adjoint`, F.conv_transpose2d(x, weight, bias,
    padding=k // 2) (stride 1, zero padding) for x (N, 1, H, W), weight (1, 1, k, k), k odd, and
    bias (1,) or None, as one convolution of the batch as channels with `groups = N` (the bias
    expanded to the N channels, added inside the convolution as torch adds it). For N = 1 this is
    torch's own call, the same bits."""
    n, k = x.shape[0], weight.shape[-1]
    conv = F.conv_transpose2d if adjoint else F.conv2d
    out = conv(x.reshape(1, n, *x.shape[2:]), weight.expand(n, 1, k, k),
               None if bias is None else bias.expand(n), padding=k // 2, groups=n)
    return out.view(x.shape)


def takes_depthwise(module: torch.nn.Module, x: torch.Tensor) -> bool:
    """Whether a convolution module's call on x runs as `batch_depthwise`: asked for (its `fused`,
    set by orthojac.run.fastpath.prepare_model for training, by `use_depthwise` for the spectra), on
    a CPU, in float32 (oneDNN's depthwise kernels; in float64 torch's own grouped convolution is no
    faster than its one-channel kernel: benchmarks/README.md, "The spectra's Jacobian"), one input
    and one output channel, a batch of at least one one-channel image (an empty batch or a wrong
    channel count is left to torch, and its error), outside a torch.func transform (PackedModels'
    vmap, whose batch is not the images'). A single image is one group: torch's own convolution,
    the same bits."""
    return (getattr(module, "fused", False) and x.device.type == "cpu" and x.dtype == torch.float32
            and module.weight.shape[:2] == (1, 1) and x.dim() == 4 and x.shape[0] > 0 and x.shape[1] == 1
            and torch._C._functorch.peek_interpreter_stack() is None)


def use_depthwise(module: nn.Module) -> None:
    """Ask the convolutions of `module` (`ConvLift`, `layers.ConvOperator`: the modules with a
    `takes_depthwise` of their own) to take `batch_depthwise` where `takes_depthwise` allows. The spectrum stage asks
    it of the body (orthojac.spectra.main): its Jacobians run over copies of a point
    (`on_depthwise_route`), its gradient norms a batch of images with gradients. Of the lift only
    once the points are measured (the lift of all the points' images in one call): they stay
    torch's to the bit."""
    for m in module.modules():
        if callable(getattr(m, "takes_depthwise", None)):
            m.fused = True


def on_depthwise_route(module, x: torch.Tensor) -> bool:
    """Whether the Jacobian of `module` at the single input x (an image of C channels, no batch
    dimension) is computed over a batch of copies of x (`orthojac.spectra.jacobian_matrix(copies=
    True)`): `module` is a module in eval mode throughout (then each image of a batch is its own:
    batch normalisation uses its running statistics) holding a convolution that runs a batch of
    copies of x as `batch_depthwise` (its `takes_depthwise`: asked for, on a CPU, float32, one
    channel, not regime hard's). There vmap's batched backward would run torch's one-channel kernels
    over the copies (benchmarks/README.md, "The spectra's Jacobian"); anywhere else the copies would
    gain nothing, or, in float64, take twice as long."""
    if not isinstance(module, nn.Module) or any(m.training for m in module.modules()):
        return False
    copies = x.unsqueeze(0).expand(2, *x.shape)
    return any(callable(getattr(m, "takes_depthwise", None)) and m.takes_depthwise(copies)
               for m in module.modules())


class ConvLift(nn.Conv2d):
    """The first layer of a convolutional network, images (1 channel) to the body's C: nn.Conv2d
    (3×3, stride 1, 'same' zero padding, a bias), which at C = 1 runs as `batch_depthwise` with its
    bias where `takes_depthwise` says so."""

    fused = False  # set by orthojac.run.fastpath.prepare_model (lever `fused_layers`)

    def is_same_convolution(self) -> bool:
        """Whether this module is a convolution `batch_depthwise` computes: an odd square kernel,
        stride 1, no dilation, one group, zero padding of half the kernel ('same')."""
        k = self.kernel_size[0]
        return (self.kernel_size == (k, k) and k % 2 == 1 and self.stride == (1, 1) and self.dilation == (1, 1)
                and self.groups == 1 and self.padding_mode == "zeros" and self.padding == (k // 2, k // 2))

    def takes_depthwise(self, x: torch.Tensor) -> bool:
        """Whether this call runs as `batch_depthwise`: a convolution it computes, where the
        module-level `takes_depthwise` allows."""
        return self.is_same_convolution() and takes_depthwise(self, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.takes_depthwise(x):
            return batch_depthwise(x, self.weight, bias=self.bias)
        return super().forward(x)

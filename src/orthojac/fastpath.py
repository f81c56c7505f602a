"""The training fast path's levers (docs/replication.md §5): precision, memory layout,
`torch.compile` (optionally with CUDA graphs), the fused Adam, and packing K runs of the same shape
into one process.

Why: a depth-200, C = 32 network at batch 128 is bound by kernel launches (≈ 800 kernels a step),
not arithmetic (docs/replication.md §5). The data set is already resident on the device (orthojac.train
`prepare_data`). Each lever is a runtime setting, not experiment data: it changes the numbers only
by rounding, and `FastPath` is recorded in each run's config.json. Every lever defaults to on for
CUDA and off for CPU, where the reference path (eager fp32) stays bit-identical and resumable.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

PRECISIONS = ("fp32", "tf32", "bf16")


@dataclass(frozen=True)
class FastPath:
    """precision: fp32 (TF32 off), tf32 (TF32 matmuls and convolutions on CUDA), bf16 (autocast to
    bfloat16; the soft penalty and the optimiser stay fp32). channels_last: NHWC activations.
    compile: torch.compile the network. cuda_graphs: compile mode "reduce-overhead" (CUDA graphs).
    fused_adam: Adam's single-kernel implementation."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    fused_adam: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per lever; None means "the device's default" (see `resolve`)."""
    onoff = argparse.BooleanOptionalAction
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="arithmetic precision (default: bf16 autocast on CUDA, fp32 on CPU: "
                        "CPU bf16 is slower without AMX and the CPU path is the bit-exact reference)")
    parser.add_argument("--channels-last", action=onoff, default=None,
                        help="NHWC memory layout for convolutional networks (default: on for CUDA)")
    parser.add_argument("--compile", action=onoff, default=None,
                        help="torch.compile the network (default: on for CUDA, off for CPU)")
    parser.add_argument("--cuda-graphs", action=onoff, default=None,
                        help="with --compile, capture CUDA graphs (mode reduce-overhead; "
                        "default: on for CUDA)")
    parser.add_argument("--fused-adam", action=onoff, default=None,
                        help="Adam's fused implementation (default: on for CUDA)")


def resolve(args: argparse.Namespace, device: torch.device) -> FastPath:
    """The levers from the flags; those not given take the device's default (all on for CUDA,
    all off for CPU). CUDA graphs need compile and CUDA."""
    cuda = device.type == "cuda"

    def pick(value, default):
        return default if value is None else value

    compile_ = pick(args.compile, cuda)
    graphs = pick(args.cuda_graphs, cuda)
    if graphs and not (compile_ and cuda):
        raise ValueError("--cuda-graphs needs --compile and a CUDA device")
    return FastPath(precision=pick(args.precision, "bf16" if cuda else "fp32"),
                    channels_last=pick(args.channels_last, cuda), compile=compile_,
                    cuda_graphs=graphs, fused_adam=pick(args.fused_adam, cuda))


def set_backends(fast: FastPath) -> None:
    """Precision in one place: TF32 only when asked for; plain fp32 otherwise, so that CPU and GPU
    fp32 runs compare."""
    tf32 = fast.precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def autocast(fast: FastPath, device: torch.device):
    """The context the forward pass and the loss run in: bf16 autocast, or nothing."""
    if fast.precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(fast: FastPath, model: nn.Module) -> torch.memory_format:
    conv = getattr(model, "arch", "conv") == "conv"
    return torch.channels_last if fast.channels_last and conv else torch.contiguous_format


def prepare_model(model: nn.Module, fast: FastPath):
    """Put `model`'s weights in the fast layout and return the callable that trains it: the module
    itself or its compiled version (which shares its parameters, so `model.state_dict()` and the
    checkpoints keep their keys)."""
    model.to(memory_format=memory_format(fast, model))
    if not fast.compile:
        return model
    return torch.compile(model, mode="reduce-overhead" if fast.cuda_graphs else None)


def to_layout(x: torch.Tensor, fast: FastPath, model: nn.Module) -> torch.Tensor:
    """A batch of images in the model's layout (data stays NCHW in memory; this is one copy)."""
    return x.contiguous(memory_format=memory_format(fast, model)) if x.dim() == 4 else x


def make_optimiser(params, lr: float, fast: FastPath) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, fused=True if fast.fused_adam else None)


class PackedModels(nn.Module):
    """K networks of the same shape (e.g. seeds or regimes of one grid) as one: their parameters
    stacked along a new leading axis, the forward pass `torch.func.vmap` over
    `functional_call`. Input (K, N, …) → logits (K, N, 10): one launch per layer for all K
    networks, so that small networks fill the GPU.

    Batch norm (running statistics written in place) and parametrisations (regime `hard`) are
    not supported; constant buffers (fixed breakpoints) are stacked like the parameters.
    """

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        if not models:
            raise ValueError("PackedModels needs at least one network")
        for m in models:
            if any(isinstance(mod, nn.modules.batchnorm._BatchNorm) for mod in m.modules()):
                raise ValueError("PackedModels: batch-normalised networks are not supported")
            if any(hasattr(mod, "parametrizations") for mod in m.modules()):
                raise ValueError("PackedModels: parametrised networks (regime hard) not supported")
        params, buffers = stack_module_state(models)
        self.names, self.buffer_names = list(params), list(buffers)
        self.stacked = nn.ParameterList(nn.Parameter(params[n]) for n in self.names)
        for i, n in enumerate(self.buffer_names):
            self.register_buffer(f"buffer_{i}", buffers[n])
        self.base = [copy.deepcopy(models[0]).to("meta")]  # a list: not a submodule of self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base, names = self.base[0], self.names + self.buffer_names
        buffers = tuple(getattr(self, f"buffer_{i}") for i in range(len(self.buffer_names)))

        def one(tensors, xi):
            return functional_call(base, dict(zip(names, tensors)), (xi,))

        return torch.vmap(one)(tuple(self.stacked) + buffers, x)

    def unpack(self, k: int) -> dict[str, torch.Tensor]:
        """Network k's parameters, as its state_dict."""
        return {n: p[k].detach() for n, p in zip(self.names, self.stacked)}

"""The training fast path's levers (docs/replication.md §5): precision, memory layout,
`torch.compile` (optionally with CUDA graphs), the fused Adam, and packing K runs of the same shape
into one process.

Why: a depth-200, C = 32 network at batch 128 is bound by kernel launches (≈ 800 kernels a step),
not arithmetic (docs/replication.md §5). The data set is already resident on the device (orthojac.run.train
`prepare_data`). Each lever is a runtime setting, not experiment data: it changes the numbers only
by rounding, and `FastPath` is recorded in each run's config.json. Every lever defaults to on for
CUDA and off for CPU, where the reference path (eager fp32) stays deterministic and resumable —
but for the fused Adam, on for both: on one CPU thread it is one kernel for all parameters instead
of a dozen foreach kernels (a depth-200 fold step: Adam 21.6 → 4.7 ms), deterministic, resumable,
and with it the finiteness test stays in `DivergenceGuard`; and the hand-written layers
(`fused_layers`), on wherever nothing is compiled (benchmarks/cpu_speed.py).
The environment variable ORTHOJAC_FAST_PATH holds flags that act as the defaults (e.g.
"--no-compile --no-cuda-graphs --precision fp32" for an eager run under Snakemake); flags given on
the command line win.

What a step does not do on the fast path, so that the host never waits for the GPU within an
epoch: copy constants to the device (ReLU_k's signs are a buffer, the soft penalty's edge masks are
cached), read the loss back (`DivergenceGuard` keeps the finiteness test on the device; with the
fused Adam a non-finite loss skips the step there), or compile a second time for the smaller last
batch of an epoch (the batch dimension is marked dynamic: one compiled graph for every batch size,
unless a kernel's choice depends on it — on a CPU oneDNN convolutions take batches of 16 and more,
and dynamo then compiles one graph either side of 16; CUDA graphs record one graph per batch size,
two in a run; benchmarks/gpu_check.py counts both on the GPU).

Regime `hard` runs without CUDA graphs: a convolution's orthogonal parametrisation (torch's,
`matrix_exp`) reads a norm back to the host on CUDA to choose its degree, which a CUDA graph cannot
capture, and a dense weight's Cayley map (orthojac.nets.layers.CayleyOrthogonal: an LU factorisation a
step) has not been checked inside one on a GPU. `FastPath.note` says so in config.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import shlex
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.func import functional_call, stack_module_state

from . import optimisers

PRECISIONS = ("fp32", "tf32", "bf16")
ENV = "ORTHOJAC_FAST_PATH"
CHECK_EVERY = 50  # steps between the reads of `DivergenceGuard` (and at each epoch's end)
HARD_NO_GRAPHS = ("regime hard: CUDA graphs off (torch's orthogonal parametrisation of a convolution calls "
                  "matrix_exp, which on CUDA syncs with the host and cannot be captured; a dense weight's "
                  "Cayley map has not been checked inside a CUDA graph)")


@dataclass(frozen=True)
class FastPath:
    """precision: fp32 (TF32 off), tf32 (TF32 matmuls and convolutions on CUDA), bf16 (autocast to
    bfloat16; the soft penalty and the optimiser stay fp32). channels_last: NHWC activations.
    compile: torch.compile the network. cuda_graphs: compile mode "reduce-overhead" (CUDA graphs).
    fused_adam: Adam's single-kernel implementation (and with it the finiteness test on the
    device, `DivergenceGuard`). note: why a lever is not at its default (e.g. regime hard).
    fused_layers: dense bodies whose forward and backward are written by hand, one autograd node
    for all layers, for training and evaluation (orthojac.nets.fused: fold/ReLU, plain/ReLU,
    resnet/ReLU without normalisation, orthoff with σ_1 or |·|; a fold/ReLU body in fp32 on a CPU
    from C where orthojac.nets.native is built, the same bits), where they apply, and one-channel
    convolutions as one depthwise convolution of the batch on a CPU (orthojac.nets.one_channel); on by
    default without compile."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    fused_adam: bool = True
    note: str = ""
    fused_layers: bool = True

    def to_dict(self) -> dict:
        """The levers, and the TF32 API this torch is set through (`tf32_api`)."""
        return {**asdict(self), "tf32_api": tf32_api()}


def tf32_api() -> str:
    """`fp32_precision` where the running torch has it (2.9 and later; inductor reads it there),
    else the legacy `allow_tf32` flags. Only one of the two is ever set: torch raises when it finds
    them mixed."""
    return "fp32_precision" if hasattr(torch.backends, "fp32_precision") else "allow_tf32"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per lever; None means "the device's default" (see `resolve`). Flags in the
    environment variable ORTHOJAC_FAST_PATH become the defaults."""
    _add_lever_flags(parser)
    parser.set_defaults(**environment_defaults())


def _add_lever_flags(parser: argparse.ArgumentParser) -> None:
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
                        help="Adam's fused implementation (default: on, CPU and CUDA)")
    parser.add_argument("--fused-layers", action=onoff, default=None,
                        help="train dense bodies (fold/ReLU, plain/ReLU, resnet/ReLU, orthoff with σ_1 or "
                        "|·|) through their hand-written forward and backward, one node for all layers "
                        "(orthojac.nets.fused), and one-channel convolutions on a CPU as one depthwise "
                        "convolution of the batch (default: on without --compile)")


def environment_defaults() -> dict:
    """The levers that ORTHOJAC_FAST_PATH sets, as argparse defaults; a bad flag there is an
    error naming the variable."""
    text = os.environ.get(ENV, "")
    if not text.strip():
        return {}
    inner = argparse.ArgumentParser(prog=ENV, add_help=False, exit_on_error=False)
    _add_lever_flags(inner)
    try:
        values, unknown = inner.parse_known_args(shlex.split(text))
    except argparse.ArgumentError as err:
        raise ValueError(f"{ENV}={text!r}: {err}") from err
    if unknown:
        raise ValueError(f"{ENV}={text!r}: not a fast-path flag: {' '.join(unknown)}")
    return {k: v for k, v in vars(values).items() if v is not None}


def resolve(args: argparse.Namespace, device: torch.device, regime: str | None = None) -> FastPath:
    """The levers from the flags; those not given take the device's default (all on for CUDA;
    on a CPU all off but the fused Adam). CUDA graphs need compile and CUDA. Regime `hard` defaults to no CUDA graphs
    (see the module docstring) and refuses them when asked for."""
    cuda = device.type == "cuda"

    def pick(value, default):
        return default if value is None else value

    compile_ = pick(args.compile, cuda)
    hard = regime == "hard"
    if hard and args.cuda_graphs:
        raise ValueError(f"--cuda-graphs: {HARD_NO_GRAPHS}")
    graphs = pick(args.cuda_graphs, cuda and not hard)
    if graphs and not (compile_ and cuda):
        raise ValueError("--cuda-graphs needs --compile and a CUDA device")
    note = HARD_NO_GRAPHS if hard and cuda and compile_ else ""
    return FastPath(precision=pick(args.precision, "bf16" if cuda else "fp32"),
                    channels_last=pick(args.channels_last, cuda), compile=compile_,
                    cuda_graphs=graphs, fused_adam=pick(args.fused_adam, True), note=note,
                    fused_layers=pick(args.fused_layers, not compile_))


def set_backends(fast: FastPath) -> None:
    """Precision in one place: TF32 only when asked for; plain fp32 otherwise, so that CPU and GPU
    fp32 runs compare. Through `fp32_precision` (cuBLAS matmuls, cuDNN convolutions and RNNs, and
    cuDNN as a whole, which inductor reads) where torch has it, else through the legacy flags
    (`tf32_api`); never both. The CPU's settings (oneDNN) are left alone."""
    tf32 = fast.precision == "tf32"
    if tf32_api() == "fp32_precision":
        mode = "tf32" if tf32 else "ieee"
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
        torch.backends.cudnn.rnn.fp32_precision = mode
    else:
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
    for module in model.modules():
        if hasattr(module, "fused"):
            module.fused = fast.fused_layers
    if not fast.compile:
        return model
    compiled = torch.compile(model, mode="reduce-overhead" if fast.cuda_graphs else None)

    def forward(x: torch.Tensor) -> torch.Tensor:
        # The batch dimension is dynamic from the first call: the smaller last batch of an epoch
        # reuses the compiled graph instead of compiling a second one (CUDA graphs record one
        # graph per batch size all the same). "maybe": a batch of one stays allowed.
        torch._dynamo.maybe_mark_dynamic(x, 0)
        return compiled(x)

    return forward


def weights_once(fast: FastPath):
    """A context in which each parametrised weight (regime hard) is computed once, however often
    the layers read it: a fold layer reads B twice (Bx and Bᵀ·), and without the cache each read
    computes the Cayley map again, forward and backward (torch.nn.utils.parametrize.cached; the
    gradients of both reads meet at the one cached value). Not under torch.compile, which traces
    the parametrisation itself."""
    return contextlib.nullcontext() if fast.compile else parametrize.cached()


def to_layout(x: torch.Tensor, fast: FastPath, model: nn.Module) -> torch.Tensor:
    """A batch of images in the model's layout (data stays NCHW in memory; this is one copy)."""
    return x.contiguous(memory_format=memory_format(fast, model)) if x.dim() == 4 else x


def make_optimiser(params, lr: float, fast: FastPath) -> torch.optim.Adam:
    """torch's Adam (fused with lever `fused_adam`), without the import of torch._dynamo its
    first call pays (orthojac.run.optimisers)."""
    return optimisers.adam(params, lr=lr, fused=True if fast.fused_adam else None)


class DivergenceGuard:
    """The finiteness test of the loss, kept on the device: no `.item()` per step.

    orthojac.run.train ends a run as `diverged` at the first step whose loss is not finite, with that
    step not taken. Here each step ORs "loss not finite" into a flag on the device and hands the
    flag to the fused Adam as `found_inf`, which then leaves the parameters, its moments and its
    step count untouched; the flag is sticky, so no later step moves the weights either, and the
    steps taken before it are counted on the device. `check()`, called every few steps and before
    every checkpoint, reads both back in one transfer: the diverged step and the final weights are
    those of the per-step test, exactly.
    """

    def __init__(self, optimiser: torch.optim.Optimizer, device: torch.device, start_step: int = 0):
        if not all(group.get("fused") for group in optimiser.param_groups):
            raise ValueError("DivergenceGuard needs the fused Adam (its found_inf skips a step)")
        self.found_inf = torch.zeros((), device=device)
        self.taken = torch.zeros((), device=device)  # steps taken since `base`
        self.base = start_step
        optimiser.found_inf = self.found_inf

    def observe(self, loss: torch.Tensor) -> None:
        """Before the optimiser step on `loss`."""
        torch.maximum(self.found_inf, (~torch.isfinite(loss.detach())).float(), out=self.found_inf)
        self.taken.add_(1 - self.found_inf)

    def check(self, global_step: int) -> int | None:
        """After `global_step` steps in all: the first step whose loss was not finite, or None.
        One host sync."""
        found, taken = torch.stack([self.found_inf, self.taken]).tolist()
        if found:
            return self.base + int(taken)
        self.taken.zero_()
        self.base = global_step
        return None


def divergence_guard(optimiser: torch.optim.Optimizer, fast: FastPath,
                     device: torch.device, start_step: int = 0) -> DivergenceGuard | None:
    """A `DivergenceGuard` with the fused Adam (the default), None otherwise (the per-step
    test, one sync a step). Both end a run at the same step with the same weights."""
    return DivergenceGuard(optimiser, device, start_step) if fast.fused_adam else None


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

"""Dense bodies compiled from C: the CPU training fast path's fastest bodies (issue 24;
benchmarks/native_body.py).

`fused.DenseBody` runs a body's products and elementwise kernels through ATen, whose dispatch and
allocations around each kernel cost a depth-200 step several milliseconds on one CPU thread, more
the more kernels a layer has (benchmarks/README.md, "The fold body compiled from C" and "The other
families' bodies compiled from C"). `native_body.c` makes, for each `FAMILIES` entry, the
products of its `fused` kernel (FoldReLU, PlainReLU, PartialReLU, OrthFFSigma1, OrthFFAbs), in its
order and with its operands' layouts, on the `sgemm_` that torch's own products call (MKL,
exported by libtorch_cpu), and between them the kernel's elementwise steps, each rounded once, as
torch's kernel rounds it. Its results are therefore `DenseBody`'s bits: the output, the input's and
the weights' gradients, and the biases' gradients, which torch still sums (a bias's terms summed
over the batch, layer by layer, as the kernel's backward does). A NaN goes through as through
torch's ReLU, `threshold_backward` and `sgn`, so a diverging run stops where it did.

The library is built on first use with the system's C compiler ($CC, else `cc` or `gcc`) against
the running torch's libtorch_cpu, into a cache keyed by the source, the compiler command and torch
(`$ORTHOJAC_CACHE`, else `$XDG_CACHE_HOME/orthojac`, else `~/.cache/orthojac`; a build lands there
by atomic renames with the hash of its bytes, so jobs building side by side are safe, and a cached
build that does not match its hash is built again; where the cache is not writable, each process
builds a private copy). Before it is used, a self-check runs a small body of every family (3 layers,
rectangular weights where the family has them, a NaN) both ways and compares every result bit for
bit. A body takes the library only where torch's own products are sgemm_'s: fp32 at full precision
(`exact_fp32_products`; a lower `torch.set_float32_matmul_precision` sends them through oneDNN).
Without a compiler, without `sgemm_` in torch, when the build or the self-check fails, or with
ORTHOJAC_NATIVE=0, every body takes `DenseBody`: the same numbers, slower. `state()` says which
and why; each run records it in its config.json (orthojac.run.train, `environment.native_body`).
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import dataclasses
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch.autograd.function import once_differentiable

from . import fused
from .native_build import CacheUnwritable, build, cache_dir, compiler

ENV_SWITCH = "ORTHOJAC_NATIVE"

_state: dict = {}


def _load() -> tuple[ctypes.CDLL | None, str]:
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return None, f"off ({ENV_SWITCH}=0)"
    cc = compiler()
    if cc is None:
        return None, "off: no C compiler ($CC, cc or gcc)"
    if shutil.which(cc[0]) is None:
        return None, f"off: no C compiler ({cc[0]} not found)"
    private = None
    try:
        try:
            path = build(cc, cache_dir())
            where = str(path)
        except CacheUnwritable as error:  # a private build for this process, removed once loaded
            private = Path(tempfile.mkdtemp(prefix="orthojac-native-"))
            path = build(cc, private)
            where = f"built for this process alone: the cache is not writable ({error})"
        lib = ctypes.CDLL(str(path))
    except (OSError, RuntimeError, subprocess.SubprocessError, CacheUnwritable) as error:
        return None, f"off: build failed: {error}"
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
    for family in FAMILIES.values():
        for name in ("forward", "forward_eval", "backward"):
            getattr(lib, f"{family.name}_{name}").restype = None
    lib.scratch_floats.restype = ctypes.c_size_t
    try:
        problem = self_check(lib)
    except Exception as error:  # noqa: BLE001 (any failure of the check turns the library off)
        problem = f"raised {error!r}"
    if problem:
        return None, f"off: self-check failed: {problem}"
    return lib, f"on ({where})"


def library() -> ctypes.CDLL | None:
    """The built and self-checked library, or None (`state()` says why); once per process."""
    if "lib" not in _state:
        _state["lib"], _state["why"] = _load()
    return _state["lib"]


def state() -> str:
    """"on (path)" or "off: reason", after `library()` has been asked."""
    library()
    return _state["why"]


def used() -> str:
    """What this process's bodies took: `state()` once a CPU fp32 body of a compiled family has asked
    for the library, else "not asked" (no such body ran)."""
    return _state.get("why", "not asked")


def _ptr(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


def _ptrs(tensors) -> ctypes.Array:
    """The tensors' addresses as a C array (through array.array: half the time of ctypes' own
    conversion, for the thousands of buffers of a step)."""
    held = array.array("Q", [t.data_ptr() for t in tensors])
    return (ctypes.c_void_p * len(held)).from_buffer(held)


def _plain(t: torch.Tensor) -> bool:
    """fp32 on a CPU, dense and contiguous, its values its memory (no lazy negation)."""
    return (t.dtype == torch.float32 and t.device.type == "cpu" and t.layout == torch.strided
            and t.is_contiguous() and not t.is_neg())


def exact_fp32_products() -> bool:
    """Whether torch's fp32 products are sgemm_'s: no lower precision asked of them
    (`torch.set_float32_matmul_precision`, the fp32_precision settings), which would send addmm
    through oneDNN's bf16 or TF32 route where the CPU has one."""
    if torch.get_float32_matmul_precision() != "highest":
        return False
    mkldnn = getattr(torch.backends, "mkldnn", None)
    for holder in (torch.backends, mkldnn, getattr(mkldnn, "matmul", None)):
        if getattr(holder, "fp32_precision", "none") not in ("none", "ieee"):
            return False
    return True


@contextlib.contextmanager
def off():
    """Within: every body takes `fused.DenseBody` (benchmarks and tests compare the two)."""
    before = _state.get("off", False)
    _state["off"] = True
    try:
        yield
    finally:
        _state["off"] = before



@dataclasses.dataclass(frozen=True)
class Family:
    """A dense body's family as native_body.c computes it: its C functions' prefix `name`, the
    `fused` kernel whose bits it gives, each layer's parameters' shapes for a width n and hidden width
    m (`shapes`; m is the first parameter's rows, n its columns), the nb × m buffers a layer keeps for
    its backward pass (`saved`), whether the backward pass reads the layer's output (`output_read`),
    whether the input's gradient is built in place (`in_place`), and where each parameter's
    gradient comes from (`grads`: ("c", k) the k-th buffer the C backward pass fills a layer, ("sum", k)
    the k-th nb × m buffer it fills, summed over the batch by torch, None for none)."""

    name: str
    kernel: type
    shapes: Callable[[int, int], tuple]
    saved: int
    grads: tuple
    output_read: bool = False
    in_place: bool = False

    @property
    def per_layer(self) -> int:
        return len(self.grads)

    @property
    def c_grads(self) -> list[int]:
        """The parameters (by place in a layer) whose gradients the C backward pass fills, in its order."""
        return sorted((i for i, g in enumerate(self.grads) if g and g[0] == "c"), key=lambda i: self.grads[i][1])

    @property
    def sums(self) -> int:
        return sum(1 for g in self.grads if g and g[0] == "sum")


FAMILIES = {f.name: f for f in (
    Family("fold", fused.FoldReLU, lambda n, m: ((m, n), (m,)), saved=1, grads=(("c", 0), ("sum", 0)),
           in_place=True),
    Family("plain", fused.PlainReLU, lambda n, m: ((n, n), (n,)), saved=0, grads=(("c", 0), ("sum", 0)),
           output_read=True),
    Family("partial", fused.PartialReLU, lambda n, m: ((m, n), (m, n), (m,)), saved=1,
           grads=(("c", 0), ("c", 1), ("sum", 0))),
    Family("sigma1", fused.OrthFFSigma1, lambda n, m: ((m, n), (m, n), (m,), (1,)), saved=1,
           grads=(("c", 0), ("c", 1), ("sum", 0), None)),
    Family("abs", fused.OrthFFAbs, lambda n, m: ((m, n), (m, n), (m,)), saved=1,
           grads=(("c", 0), ("c", 1), ("sum", 0))),
)}
BY_KERNEL = {f.kernel: f for f in FAMILIES.values()}


def usable(family: Family, x: torch.Tensor, layers_params: list) -> bool:
    """Whether a `family` body of these layers (each its kernel's parameters) on x can take the library:
    fp32 on a CPU, everything dense, contiguous and non-empty, every layer of the family's shapes for
    the first layer's (m, n), torch's products at full fp32 (`exact_fp32_products`)."""
    if x.dim() != 2 or not _plain(x) or not layers_params or layers_params[0][0].dim() != 2:
        return False
    m, n = layers_params[0][0].shape
    if x.shape[1] != n or x.shape[0] < 1 or m < 1 or n < 1:
        return False
    shapes = family.shapes(n, m)
    for layer in layers_params:
        if len(layer) != len(shapes):
            return False
        for p, shape in zip(layer, shapes):
            if p is None or tuple(p.shape) != shape or not _plain(p):
                return False
    return not _state.get("off") and exact_fp32_products() and library() is not None


class NativeBody(torch.autograd.Function):
    """apply(lib, family, x, *params): a dense body of one `Family` through native_body.c (`lib`), as one
    autograd node, params layer after layer as `fused.DenseBody` takes them, and DenseBody's bits.
    Saves each layer's input, what the family's backward reads (`saved`, the output where
    `output_read`) and the parameters; allocates as DenseBody does, a tensor a buffer (one buffer for a
    whole pass came back as fresh pages each step: ≈ 2,500 page faults a depth-200 fold step)."""

    @staticmethod
    def forward(ctx, lib: ctypes.CDLL, family: Family, x: torch.Tensor, *params: torch.Tensor):
        depth = len(params) // family.per_layer
        (m, n), nb = params[0].shape, x.shape[0]
        ys = [x.new_empty(nb, n) for _ in range(depth)]
        saved = [x.new_empty(nb, m) for _ in range(depth * family.saved)]
        scratch = x.new_empty(lib.scratch_floats(family.saved, nb, n, m, 0))
        getattr(lib, f"{family.name}_forward")(depth, nb, n, m, _ptrs(params), _ptr(x), _ptrs(saved), _ptrs(ys),
                                                _ptr(scratch))
        ctx.lib, ctx.family, ctx.depth = lib, family, depth
        ctx.save_for_backward(x, *params, *(ys if family.output_read else ys[:-1]), *saved)
        return ys[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        family, depth, (x, *rest) = ctx.family, ctx.depth, ctx.saved_tensors
        per = family.per_layer
        params, rest = rest[:depth * per], rest[depth * per:]
        kept = depth if family.output_read else depth - 1
        ys, saved = list(rest[:kept]), rest[kept:]
        (m, n), nb = params[0].shape, x.shape[0]
        if family.in_place:
            gs = [g.contiguous().clone()] * (depth + 1)
        else:  # two buffers in turn, which stay in cache
            pair = [x.new_empty(nb, n) for _ in range(min(depth, 2))]
            gs = [pair[layer % 2] for layer in range(depth)] + [g.contiguous()]
        c_grads = family.c_grads
        grads = [x.new_empty(params[l * per + i].shape) for l in range(depth) for i in c_grads]
        sums = [x.new_empty(nb, m) for _ in range(depth * family.sums)]
        scratch = x.new_empty(ctx.lib.scratch_floats(family.saved, nb, n, m, 0))
        y_ptrs = (ctypes.c_void_p * depth)(*(t.data_ptr() for t in ys), *([None] * (depth - kept)))
        getattr(ctx.lib, f"{family.name}_backward")(depth, nb, n, m, _ptrs(params), _ptr(x), y_ptrs, _ptrs(saved),
                                                    _ptrs(gs), _ptrs(grads), _ptrs(sums), _ptr(scratch))
        out: list = []
        for layer in range(depth):
            for source in family.grads:
                if source is None:
                    out.append(None)
                elif source[0] == "c":
                    out.append(grads[layer * len(c_grads) + source[1]])
                else:
                    out.append(sums[layer * family.sums + source[1]].sum(0))
        return (None, None, gs[0], *out)


def body(family: Family, x: torch.Tensor, layers_params: list, lib: ctypes.CDLL | None = None) -> torch.Tensor:
    """The body's output: through `NativeBody` with gradients, else the evaluation's forward pass with
    nothing kept. The caller checks `usable`; `lib` defaults to `library()`."""
    lib = lib or library()
    flat = [p for layer in layers_params for p in layer]
    if torch.is_grad_enabled():
        return NativeBody.apply(lib, family, x, *flat)
    (m, n), nb = flat[0].shape, x.shape[0]
    out, scratch = x.new_empty(nb, n), x.new_empty(lib.scratch_floats(family.saved, nb, n, m, 1))
    getattr(lib, f"{family.name}_forward_eval")(len(layers_params), nb, n, m, _ptrs(flat), _ptr(x), _ptr(scratch),
                                                _ptr(out))
    return out


def example_layers(family: Family, depth: int, m: int, n: int, seed: int = 0, bias: float = -0.3) -> list:
    """`depth` layers of `family` for width n and hidden width m (plain: n × n): orthonormal rows for the
    weights, normal biases shifted by `bias` (so that some units are silent), a breakpoint of 0.3:
    the self-check's, the tests' and benchmarks/native_body.py's bodies."""
    gen = torch.Generator().manual_seed(seed)  # not the global generator: a run's draws stay its own

    def draw(shape):
        if family.name == "sigma1" and shape == (1,):
            return torch.tensor([0.3])
        if len(shape) == 1:
            return torch.randn(shape, generator=gen) + bias
        rows, cols = shape
        q = torch.linalg.qr(torch.randn(max(rows, cols), max(rows, cols), generator=gen))[0]
        return q[:rows, :cols].contiguous()

    return [tuple(draw(shape) for shape in family.shapes(n, m)) for _ in range(depth)]


def self_check(lib: ctypes.CDLL) -> str:
    """'' when the library gives DenseBody's bits for every family on a small body (3 layers, 5 × 6
    weights where the family has a hidden width, a batch of 7), forward with and without gradients
    and backward, on an input without a NaN and with one (whose NaNs must be where DenseBody's are);
    else the family and what differed."""
    with torch.inference_mode(False), torch.enable_grad():  # first asked, maybe, by an evaluation
        for family in FAMILIES.values():
            problem = _self_check(lib, family)
            if problem:
                return f"{family.name}: {problem}"
    return ""


def _self_check(lib: ctypes.CDLL, family: Family) -> str:
    gen = torch.Generator().manual_seed(0)
    layers = example_layers(family, 3, 5, 6)
    x, g = torch.randn(7, 6, generator=gen), torch.randn(7, 6, generator=gen)
    poisoned = x.clone()
    poisoned[2, 1] = float("nan")  # a diverging run's NaN goes where torch's kernels send it
    for inputs, where in ((x, ""), (poisoned, " with a NaN in the input")):
        same = bits_against_densebody(lib, family, layers, inputs, g, inputs)
        for result, what in RESULTS.items():
            if not same[result]:
                return f"{what} differs from DenseBody's{where}"
    with torch.no_grad():
        if not body(family, poisoned, layers, lib).isnan().any():
            return "a NaN in the input does not reach the output"
    return ""


# What `bits_against_densebody` compares, in its order, and how the self-check names each.
RESULTS = {"evaluation_output": "evaluation's forward", "output": "output", "input_gradient": "input's gradient",
           "weight_gradients": "a weight's gradient", "bias_gradients": "a bias's gradient"}


def bits_against_densebody(lib: ctypes.CDLL, family: Family, layers: list, x: torch.Tensor, g: torch.Tensor,
                           x_eval: torch.Tensor) -> dict[str, bool]:
    """For the `family` body of `layers` (each its kernel's parameters), whether each of `RESULTS` is
    DenseBody's to the bit through the library `lib`: the evaluation's forward pass on x_eval, and a
    training pass on x back from the output's gradient g (the self-check's small body;
    benchmarks/native_body.py's at the run's sizes). Weights are the 2-D parameters, biases the 1-D
    ones that get a gradient."""
    with torch.no_grad():
        evaluation = _same(body(family, x_eval, layers, lib), fused.body_forward(family.kernel, x_eval, layers))
    results = []
    for run in (lambda xi, ps: body(family, xi, ps, lib),
                lambda xi, ps: fused.DenseBody.apply(family.kernel, family.per_layer, xi,
                                                     *(p for layer in ps for p in layer))):
        xi = x.clone().requires_grad_()
        ps = [tuple(p.clone().requires_grad_(source is not None) for p, source in zip(layer, family.grads))
              for layer in layers]
        out = run(xi, ps)
        (out * g).sum().backward()  # the output's gradient is g·1 = g; out.backward(g) would import sympy (0.3 s)
        learnt = [p for layer in ps for p in layer if p.requires_grad]
        results.append((out.detach(), xi.grad, [p.grad for p in learnt if p.dim() == 2],
                        [p.grad for p in learnt if p.dim() == 1]))
    (o1, x1, w1, b1), (o2, x2, w2, b2) = results
    return {"evaluation_output": evaluation, "output": _same(o1, o2), "input_gradient": _same(x1, x2),
            "weight_gradients": all(map(_same, w1, w2)), "bias_gradients": all(map(_same, b1, b2))}


def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    """Bit for bit, a NaN where the other has a NaN (of whatever bits); 0 and −0 differ."""
    if a is None or b is None:
        return a is b
    if a.shape != b.shape or a.dtype != b.dtype or not torch.equal(a.isnan(), b.isnan()):
        return False
    return torch.equal(a.nan_to_num(0).view(torch.int32), b.nan_to_num(0).view(torch.int32))


def _compiled_body(family: Family, x: torch.Tensor, layers_params: list) -> torch.Tensor | None:
    return body(family, x, layers_params) if usable(family, x, layers_params) else None


for _family in FAMILIES.values():
    fused.COMPILED[_family.kernel] = functools.partial(_compiled_body, _family)

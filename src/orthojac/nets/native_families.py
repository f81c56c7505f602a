"""The families orthojac.nets.native compiles (native_body.c), their autograd node and their checks:
a `Family` a row of `FAMILIES`; `NativeBody`, a body of one family through the library as one autograd
node, with `fused.DenseBody`'s bits; `self_check` and `bits_against_densebody`, which compare the two.
The library (`lib`) is always passed in: orthojac.nets.native builds and loads it."""

from __future__ import annotations

import array
import ctypes
import dataclasses
from collections.abc import Callable

import torch
from torch.autograd.function import once_differentiable

from . import fused


def _ptr(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


def _ptrs(tensors) -> ctypes.Array:
    """The tensors' addresses as a C array, None as NULL (through array.array: half the time of ctypes'
    own conversion, for the thousands of buffers of a step)."""
    held = array.array("Q", [0 if t is None else t.data_ptr() for t in tensors])
    return (ctypes.c_void_p * len(held)).from_buffer(held)


@dataclasses.dataclass(frozen=True)
class Family:
    """A dense body's family as native_body.c computes it: its C functions' prefix `name`, the
    `fused` kernel whose bits it gives, each layer's parameters' shapes for a width n and hidden width
    m (`shapes`; m is the first parameter's rows, n its columns), the nb × m buffers a layer keeps for
    its backward pass (`saved`), whether the backward pass reads the layer's output (`output_read`),
    whether the input's gradient is built in place (`in_place`), where each parameter's gradient
    comes from (`grads`: ("c", k) the k-th buffer the C backward pass fills a layer, ("sum", k) the
    k-th nb × m buffer it fills, summed over the batch by torch, None for none), and the kernel's
    attribute that holds the body's one number the C code takes (`aux`: limit's δ), if any."""

    name: str
    kernel: type
    shapes: Callable[[int, int], tuple]
    saved: int
    grads: tuple
    output_read: bool = False
    in_place: bool = False
    aux: str | None = None

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

    def kernel_for(self, aux: float):
        """The `fused` kernel of a body whose number is `aux` (limit's `LimitReLU(δ)`), else the class."""
        return self.kernel(aux) if self.aux else self.kernel

    def aux_of(self, kernel) -> float:
        """The number the C code takes for this `fused` kernel (0 for a family without one)."""
        return float(getattr(kernel, self.aux)) if self.aux else 0.0


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
    Family("limit", fused.LimitReLU, lambda n, m: ((m, n), (m,), (m, n)), saved=2,
           grads=(("c", 0), ("sum", 0), ("c", 1)), aux="delta"),
)}


def plain(t: torch.Tensor) -> bool:
    """fp32 on a CPU, dense and contiguous, its values its memory (no lazy negation). Asked of every
    parameter of a body at each call (orthojac.nets.native.usable): torch's singletons compared by
    identity, `is_cpu` rather than a device object, half the time of the spelled-out comparisons."""
    return (t.dtype is torch.float32 and t.is_cpu and t.layout is torch.strided and t.is_contiguous()
            and not t.is_neg())


def torch_like(g: torch.Tensor) -> bool:
    """Whether an output's gradient g is laid out as the library takes it: `plain`, from a 64-byte
    boundary (where torch's allocator puts a tensor). torch's products read a strided, displaced or
    lazily negated operand as it lies, and MKL may round such a product otherwise than on a copy."""
    return plain(g) and g.data_ptr() % 64 == 0


def declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """`lib` with its entry points' return types set: none for every family's passes, size_t for
    `scratch_floats`."""
    for family in FAMILIES.values():
        for name in ("forward", "forward_eval", "backward"):
            getattr(lib, f"{family.name}_{name}").restype = None
    lib.scratch_floats.restype = ctypes.c_size_t
    return lib


def _densebody_backward(family: Family, aux: float, x: torch.Tensor, params: list, g: torch.Tensor):
    """DenseBody's backward pass, its saved tensors made again by its kernels' forward pass (the
    library's forward gives their bits): for an output gradient that is not `torch_like`."""
    kernel, per = family.kernel_for(aux), family.per_layer
    depth, saved = len(params) // per, []
    for i in range(depth):
        x, keep = kernel.forward(x, *params[i * per:(i + 1) * per])
        saved.append(keep)
    grads: list = [None] * len(params)
    for i in reversed(range(depth)):
        g, grads[i * per:(i + 1) * per] = kernel.backward(g, params[i * per:(i + 1) * per], saved[i], i < depth - 1)
    return g, grads


class NativeBody(torch.autograd.Function):
    """apply(lib, family, aux, x, *params): a dense body of one `Family` (its number `aux`) through
    native_body.c (`lib`), as one autograd node, params layer after layer as `fused.DenseBody` takes
    them, and DenseBody's bits. Saves each layer's input, what the family's backward reads (`saved`,
    the output where `output_read`) and the parameters; allocates as DenseBody does, a tensor a buffer
    (one buffer for a whole pass came back as fresh pages each step: ≈ 2,500 page faults a depth-200
    fold step). An output gradient that is not `torch_like` (never in training: the head's product
    makes it) takes DenseBody's backward pass instead."""

    @staticmethod
    def forward(ctx, lib: ctypes.CDLL, family: Family, aux: float, x: torch.Tensor, *params: torch.Tensor):
        depth = len(params) // family.per_layer
        (m, n), nb = params[0].shape, x.shape[0]
        ys = [x.new_empty(nb, n) for _ in range(depth)]
        saved = [x.new_empty(nb, m) for _ in range(depth * family.saved)]
        scratch = x.new_empty(lib.scratch_floats(family.saved, nb, n, m, 0))
        getattr(lib, f"{family.name}_forward")(depth, nb, n, m, _ptrs(params), _ptr(x), _ptrs(saved), _ptrs(ys),
                                                _ptr(scratch), ctypes.c_float(aux))
        ctx.lib, ctx.family, ctx.aux, ctx.depth = lib, family, aux, depth
        ctx.save_for_backward(x, *params, *(ys if family.output_read else ys[:-1]), *saved)
        return ys[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        family, depth, (x, *rest) = ctx.family, ctx.depth, ctx.saved_tensors
        per = family.per_layer
        params, rest = rest[:depth * per], rest[depth * per:]
        if not torch_like(g):
            dx, grads = _densebody_backward(family, ctx.aux, x, params, g)
            return (None, None, None, dx, *grads)
        kept = depth if family.output_read else depth - 1
        ys, saved = [*rest[:kept], *([None] * (depth - kept))], rest[kept:]
        (m, n), nb = params[0].shape, x.shape[0]
        if family.in_place:
            gs = [g.clone()] * (depth + 1)
        else:  # two buffers in turn, which stay in cache
            pair = [x.new_empty(nb, n) for _ in range(min(depth, 2))]
            gs = [pair[layer % 2] for layer in range(depth)] + [g]
        c_grads = family.c_grads
        grads = [x.new_empty(params[l * per + i].shape) for l in range(depth) for i in c_grads]
        sums = [x.new_empty(nb, m) for _ in range(depth * family.sums)]
        scratch = x.new_empty(ctx.lib.scratch_floats(family.saved, nb, n, m, 0))
        getattr(ctx.lib, f"{family.name}_backward")(depth, nb, n, m, _ptrs(params), _ptr(x), _ptrs(ys), _ptrs(saved),
                                                    _ptrs(gs), _ptrs(grads), _ptrs(sums), _ptr(scratch),
                                                    ctypes.c_float(ctx.aux))
        out: list = []
        for layer in range(depth):
            for source in family.grads:
                if source is None:
                    out.append(None)
                elif source[0] == "c":
                    out.append(grads[layer * len(c_grads) + source[1]])
                else:
                    out.append(sums[layer * family.sums + source[1]].sum(0))
        return (None, None, None, gs[0], *out)


def body(lib: ctypes.CDLL, family: Family, x: torch.Tensor, layers_params: list, aux: float = 0.0) -> torch.Tensor:
    """The body's output: through `NativeBody` with gradients, else the evaluation's forward pass with
    nothing kept. The caller checks that the library applies (orthojac.nets.native.usable)."""
    flat = [p for layer in layers_params for p in layer]
    if torch.is_grad_enabled():
        return NativeBody.apply(lib, family, aux, x, *flat)
    (m, n), nb = flat[0].shape, x.shape[0]
    out, scratch = x.new_empty(nb, n), x.new_empty(lib.scratch_floats(family.saved, nb, n, m, 1))
    getattr(lib, f"{family.name}_forward_eval")(len(layers_params), nb, n, m, _ptrs(flat), _ptr(x), _ptr(scratch),
                                                _ptr(out), ctypes.c_float(aux))
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


SELF_CHECK_AUX = {"limit": 0.1}  # limit's δ in the self-check (limit50's)


def self_check(lib: ctypes.CDLL) -> dict[str, str]:
    """{family: what differed} for every family whose body through the library is not DenseBody's to
    the bit on a small body (3 layers, 5 × 6 weights where the family has a hidden width, a batch of
    7), forward with and without gradients and backward, on an input as drawn, one with a NaN (whose
    NaNs must be where DenseBody's are) and one with a value near the largest float (where a fused
    multiply-add would not overflow as two roundings do); {} when every family's is. A family refused
    here takes DenseBody; the others keep the library."""
    problems = {}
    with torch.inference_mode(False), torch.enable_grad():  # first asked, maybe, by an evaluation
        for family in FAMILIES.values():
            try:
                problem = _self_check(lib, family)
            except Exception as error:  # noqa: BLE001 (any failure of the check refuses the family)
                problem = f"raised {error!r}"
            if problem:
                problems[family.name] = problem
    return problems


def _self_check(lib: ctypes.CDLL, family: Family) -> str:
    gen = torch.Generator().manual_seed(0)
    layers, aux = example_layers(family, 3, 5, 6), SELF_CHECK_AUX.get(family.name, 0.0)
    x, g = torch.randn(7, 6, generator=gen), torch.randn(7, 6, generator=gen)
    poisoned, huge = x.clone(), x.clone()
    poisoned[2, 1] = float("nan")  # a diverging run's NaN goes where torch's kernels send it
    huge[4, 3] = 3e38
    for inputs, where in ((x, ""), (poisoned, " with a NaN in the input"), (huge, " with 3e38 in the input")):
        same = bits_against_densebody(lib, family, layers, inputs, g, inputs, aux)
        for result, what in RESULTS.items():
            if not same[result]:
                return f"{what} differs from DenseBody's{where}"
    with torch.no_grad():
        if not body(lib, family, poisoned, layers, aux).isnan().any():
            return "a NaN in the input does not reach the output"
    return ""


# What `bits_against_densebody` compares, in its order, and how the self-check names each.
RESULTS = {"evaluation_output": "evaluation's forward", "output": "output", "input_gradient": "input's gradient",
           "weight_gradients": "a weight's gradient", "bias_gradients": "a bias's gradient"}


def bits_against_densebody(lib: ctypes.CDLL, family: Family, layers: list, x: torch.Tensor, g: torch.Tensor,
                           x_eval: torch.Tensor, aux: float = 0.0) -> dict[str, bool]:
    """For the `family` body of `layers` (each its kernel's parameters; its number `aux`), whether each
    of `RESULTS` is DenseBody's to the bit through the library `lib`: the evaluation's forward pass on
    x_eval, and a training pass on x back from the output's gradient g (the self-check's small body;
    benchmarks/native_body.py's at the run's sizes). Weights are the 2-D parameters, biases the 1-D
    ones that get a gradient."""
    kernel = family.kernel_for(aux)
    with torch.no_grad():
        evaluation = _same(body(lib, family, x_eval, layers, aux), fused.body_forward(kernel, x_eval, layers))
    results = []
    for run in (lambda xi, ps: body(lib, family, xi, ps, aux),
                lambda xi, ps: fused.DenseBody.apply(kernel, family.per_layer, xi, *(p for layer in ps for p in layer))):
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

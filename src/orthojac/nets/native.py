"""A dense fold/ReLU body compiled from C: the CPU training fast path's fastest body (issue 24;
benchmarks/native_fold.py).

`fused.DenseBody` runs a fold body's ≈ 1,200 matrix products a step (depth 200) through ATen, whose
dispatch and allocations around each product cost ≈ 4–5 ms of a body's ≈ 70 ms on one CPU thread
(benchmarks/README.md, "The fold body compiled from C"). `native_fold.c` makes the same
products, in `fused.FoldReLU`'s order and with its operands' layouts, on the `sgemm_` that torch's
own products call (MKL, exported by libtorch_cpu); between them it only copies, compares and
negates, which round nothing. Its results are therefore `DenseBody`'s bits: the output, the
input's and the weights' gradients, and the biases' gradients, which torch still sums (`du.sum(0)`,
layer by layer, as `FoldReLU.backward` does). A NaN goes through as through torch's ReLU and
`threshold_backward`, so a diverging run stops where it did.

The library is built on first use with the system's C compiler ($CC, else `cc` or `gcc`) against
the running torch's libtorch_cpu, into a cache keyed by the source, the compiler command and torch
(`$ORTHOJAC_CACHE`, else `$XDG_CACHE_HOME/orthojac`, else `~/.cache/orthojac`; a build lands there
by atomic renames with the hash of its bytes, so jobs building side by side are safe, and a cached
build that does not match its hash is built again; where the cache is not writable, each process
builds a private copy). Before it is used, a self-check runs a small fold body (3 layers,
rectangular weights, a NaN) both ways and compares every result bit for bit. A body takes the
library only where torch's own products are sgemm_'s: fp32 at full precision
(`exact_fp32_products`; a lower `torch.set_float32_matmul_precision` sends them through oneDNN).
Without a compiler, without `sgemm_` in torch, when the build or the self-check fails, or with
ORTHOJAC_NATIVE=0, every fold body takes `DenseBody`: the same numbers, slower. `state()` says which
and why; each run records it in its config.json (orthojac.run.train).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from torch.autograd.function import once_differentiable

from . import fused

SOURCE = Path(__file__).with_name("native_fold.c")
ENV_SWITCH = "ORTHOJAC_NATIVE"
FLAGS = ("-O3", "-fPIC", "-shared", "-fno-fast-math")  # no -march: one cache may serve several CPUs

_state: dict = {}


def cache_dir() -> Path:
    if os.environ.get("ORTHOJAC_CACHE"):
        return Path(os.environ["ORTHOJAC_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "orthojac"


def compiler() -> list[str] | None:
    """The C compiler's command ($CC may hold flags), or None."""
    if os.environ.get("CC"):
        return shlex.split(os.environ["CC"])
    found = shutil.which("cc") or shutil.which("gcc")
    return [found] if found else None


class CacheUnwritable(Exception):
    """The cache folder cannot take a build (its path is not a writable folder)."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(target: Path) -> bool:
    """Whether a cached build is whole: its bytes hash to what its build recorded beside it (a
    library cut short, by a crash or a full disk, would kill the process that maps it with SIGBUS,
    beyond any `except`)."""
    try:
        return target.with_suffix(".sha256").read_text().strip() == _digest(target)
    except OSError:
        return False


def _fsync(path: str) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def build(cc: list[str], out_dir: Path) -> Path:
    """Compile native_fold.c against the running torch's libtorch_cpu into out_dir, cached by a key of
    the source, the command and torch's version; a cached build that is not `_intact` is built again.
    The library and its hash land by atomic renames after an fsync. Raises CacheUnwritable when
    out_dir cannot take it, RuntimeError when the compiler fails."""
    lib = Path(torch.__file__).parent / "lib"
    link = [f"-L{lib}", "-ltorch_cpu", f"-Wl,-rpath,{lib}"]
    command = [*cc, *FLAGS, str(SOURCE), *link]
    key = hashlib.sha256(SOURCE.read_bytes() + "\0".join([*command, torch.__version__]).encode()).hexdigest()[:16]
    target = out_dir / f"native_fold-{key}.so"
    if _intact(target):
        return target
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".native_fold-", suffix=".so", dir=out_dir)
        os.close(fd)
    except OSError as error:
        raise CacheUnwritable(f"{out_dir}: {error}") from error
    tmp_hash = tmp[:-len(".so")] + ".sha256"
    try:
        done = subprocess.run([*cc, *FLAGS, "-o", tmp, str(SOURCE), *link], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        _fsync(tmp)
        Path(tmp_hash).write_text(_digest(Path(tmp)) + "\n")
        _fsync(tmp_hash)
        os.replace(tmp, target)
        os.replace(tmp_hash, target.with_suffix(".sha256"))
    finally:
        for left in (tmp, tmp_hash):
            if os.path.exists(left):
                os.unlink(left)
    return target


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
    for name in ("fold_forward", "fold_forward_eval", "fold_backward"):
        getattr(lib, name).restype = None
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
    """What this process's fold bodies took: `state()` once a CPU fp32 fold body has asked for the
    library, else "not asked" (no such body ran)."""
    return _state.get("why", "not asked")


def _ptr(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


def _ptrs(tensors) -> ctypes.Array:
    return (ctypes.c_void_p * len(tensors))(*(t.data_ptr() for t in tensors))


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


def usable(x: torch.Tensor, layers_params: list) -> bool:
    """Whether a fold body of these (weight, bias) layers on x can take the library: fp32 on a CPU,
    everything dense, contiguous and non-empty, one weight shape for all layers, torch's products
    at full fp32 (`exact_fp32_products`)."""
    if x.dim() != 2 or not _plain(x):
        return False
    m, n = layers_params[0][0].shape
    if x.shape[1] != n or x.shape[0] < 1 or m < 1 or n < 1:
        return False
    for w, b in layers_params:
        if w.shape != (m, n) or b.shape != (m,) or not _plain(w) or not _plain(b):
            return False
    return not _state.get("off") and exact_fp32_products() and library() is not None


@contextlib.contextmanager
def off():
    """Within: every fold body takes `fused.DenseBody` (benchmarks and tests compare the two)."""
    before = _state.get("off", False)
    _state["off"] = True
    try:
        yield
    finally:
        _state["off"] = before


class NativeFoldBody(torch.autograd.Function):
    """apply(lib, x, *weights, *biases): a dense fold/ReLU body through native_fold.c (`lib`), as one
    autograd node, `fused.DenseBody(FoldReLU)`'s bits. Saves what DenseBody saves: each layer's
    input and ReLU output, and the weights; allocates as DenseBody does, a tensor a layer (one
    13 MB buffer instead came back as fresh pages each step: ≈ 2,500 page faults a depth-200 step)."""

    @staticmethod
    def forward(ctx, lib: ctypes.CDLL, x: torch.Tensor, *params: torch.Tensor):
        depth = len(params) // 2
        weights, biases = params[:depth], params[depth:]
        (m, n), nb = weights[0].shape, x.shape[0]
        xs = [x.new_empty(nb, n) for _ in range(depth - 1)]
        hs = [x.new_empty(nb, m) for _ in range(depth)]
        out = x.new_empty(nb, n)
        lib.fold_forward(depth, nb, n, m, _ptrs(weights), _ptrs(biases), _ptr(x), _ptrs(xs), _ptrs(hs), _ptr(out))
        ctx.lib, ctx.depth = lib, depth
        ctx.save_for_backward(x, *weights, *xs, *hs)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        depth, (x, *saved) = ctx.depth, ctx.saved_tensors
        weights, xs, hs = saved[:depth], saved[depth:2 * depth - 1], saved[2 * depth - 1:]
        (m, n), nb = weights[0].shape, x.shape[0]
        g = g.contiguous().clone()
        dus = [x.new_empty(nb, m) for _ in range(depth)]
        dw = [x.new_empty(m, n) for _ in range(depth)]
        ctx.lib.fold_backward(depth, nb, n, m, _ptrs(weights), _ptr(x), _ptrs(xs), _ptrs(hs), _ptr(g), _ptrs(dus),
                              _ptrs(dw))
        return (None, g, *dw, *(du.sum(0) for du in dus))


def fold_body(x: torch.Tensor, layers_params: list, lib: ctypes.CDLL | None = None) -> torch.Tensor:
    """The body's output: through `NativeFoldBody` with gradients, else the evaluation's forward
    pass with nothing kept. The caller checks `usable`; `lib` defaults to `library()`."""
    lib = lib or library()
    weights, biases = [p[0] for p in layers_params], [p[1] for p in layers_params]
    if torch.is_grad_enabled():
        return NativeFoldBody.apply(lib, x, *weights, *biases)
    (m, n), nb = weights[0].shape, x.shape[0]
    out, scratch = x.new_empty(nb, n), x.new_empty(2 * nb * n + nb * m)
    lib.fold_forward_eval(len(weights), nb, n, m, _ptrs(weights), _ptrs(biases), _ptr(x), _ptr(scratch), _ptr(out))
    return out


def self_check(lib: ctypes.CDLL) -> str:
    """'' when the library gives DenseBody(FoldReLU)'s bits on a small body (3 layers, 5 × 6 weights,
    a batch of 7), forward with and without gradients and backward, and a NaN where DenseBody puts
    it; else what differed."""
    with torch.inference_mode(False), torch.enable_grad():  # first asked, maybe, by an evaluation
        return _self_check(lib)


def _self_check(lib: ctypes.CDLL) -> str:
    f32 = torch.float32
    gen = torch.Generator().manual_seed(0)  # not the global generator: a run's draws stay its own
    layers = [(torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=f32))[0][:5].contiguous(),
               torch.randn(5, generator=gen, dtype=f32) - 0.3) for _ in range(3)]
    x, g = torch.randn(7, 6, generator=gen, dtype=f32), torch.randn(7, 6, generator=gen, dtype=f32)
    same = bits_against_densebody(lib, layers, x, g, x)
    for result, what in RESULTS.items():
        if not same[result]:
            return f"{what} differs from DenseBody's"
    with torch.no_grad():
        poisoned = x.clone()
        poisoned[2, 1] = float("nan")  # a diverging run's NaN goes where torch's ReLU sends it
        a, b = fold_body(poisoned, layers, lib), fused.body_forward(fused.FoldReLU, poisoned, layers)
        if not (torch.equal(a.isnan(), b.isnan()) and a.isnan().any() and _same(a.nan_to_num(0), b.nan_to_num(0))):
            return "a NaN goes elsewhere than through DenseBody"
    return ""


# What `bits_against_densebody` compares, in its order, and how the self-check names each.
RESULTS = {"evaluation_output": "evaluation's forward", "output": "output", "input_gradient": "input's gradient",
           "weight_gradients": "a weight's gradient", "bias_gradients": "a bias's gradient"}


def bits_against_densebody(lib: ctypes.CDLL, layers: list, x: torch.Tensor, g: torch.Tensor,
                           x_eval: torch.Tensor) -> dict[str, bool]:
    """For the fold body of `layers` ((weight, bias) pairs), whether each of `RESULTS` is
    DenseBody(FoldReLU)'s to the bit through the library `lib`: the evaluation's forward pass on
    x_eval, and a training pass on x back from the output's gradient g (the self-check's small body;
    benchmarks/native_fold.py's at the run's sizes)."""
    with torch.no_grad():
        evaluation = _same(fold_body(x_eval, layers, lib), fused.body_forward(fused.FoldReLU, x_eval, layers))
    results = []
    for run in (lambda xi, ps: fold_body(xi, ps, lib),
                lambda xi, ps: fused.DenseBody.apply(fused.FoldReLU, 2, xi, *(p for layer in ps for p in layer))):
        xi = x.clone().requires_grad_()
        ps = [(w.clone().requires_grad_(), b.clone().requires_grad_()) for w, b in layers]
        out = run(xi, ps)
        out.backward(g)
        results.append((out.detach(), xi.grad, [w.grad for w, _ in ps], [b.grad for _, b in ps]))
    (o1, x1, w1, b1), (o2, x2, w2, b2) = results
    return {"evaluation_output": evaluation, "output": _same(o1, o2), "input_gradient": _same(x1, x2),
            "weight_gradients": all(map(_same, w1, w2)), "bias_gradients": all(map(_same, b1, b2))}


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit (a NaN equals a NaN of the same bits; 0 and −0 differ)."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.view(torch.int32), b.view(torch.int32))


def _compiled_fold_body(x: torch.Tensor, layers_params: list) -> torch.Tensor | None:
    return fold_body(x, layers_params) if usable(x, layers_params) else None


fused.COMPILED[fused.FoldReLU] = _compiled_fold_body

"""Dense bodies compiled from C: the CPU training fast path's fastest bodies (issue 24;
benchmarks/native_body.py).

`fused.DenseBody` runs a body's products and elementwise kernels through ATen, whose dispatch and
allocations around each kernel cost a depth-200 step several milliseconds on one CPU thread, more
the more kernels a layer has (benchmarks/README.md, "The fold body compiled from C" and "The other
families' bodies compiled from C"). `native_body.c` makes, for each family of
orthojac.nets.native_families.FAMILIES, the products of its `fused` kernel (FoldReLU, PlainReLU,
PartialReLU, OrthFFSigma1, OrthFFAbs, LimitReLU), in its order and with its operands' layouts, on the
`sgemm_` that torch's own products call (MKL, exported by libtorch_cpu), and between them the
kernel's elementwise steps, each rounded as torch's kernel rounds it (limit's tanh is MKL's vsTanh,
which torch's CPU tanh calls; its derivative one fused multiply-add, as torch's). Its results are
therefore `DenseBody`'s bits: the output, the input's and the weights' gradients, and the biases'
gradients, which torch still sums (a bias's terms summed over the batch, layer by layer, as the
kernel's backward does). A NaN goes through as through torch's ReLU, `threshold_backward` and `sgn`,
so a diverging run stops where it did.

The library is built on first use (orthojac.nets.native_build: the system's C compiler, a cache
under `~/.cache/orthojac` or `$ORTHOJAC_CACHE`). Before it is used, a self-check runs a small body of
every family (3 layers, rectangular weights where the family has them, inputs with a NaN and with
3e38) both ways and compares every result bit for bit; a family it refuses takes `DenseBody`, the
others keep the library. A body takes the library only where torch's own products are sgemm_'s:
fp32 at full precision (`exact_fp32_products`; a lower `torch.set_float32_matmul_precision` sends
them through oneDNN). Without a compiler, without `sgemm_` in torch, when the build fails, or with
ORTHOJAC_NATIVE=0, every body takes `DenseBody`: the same numbers, slower. `state()` says which and
why; each run records it in its config.json (orthojac.run.train, `environment.native_body`).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from . import fused
from .native_build import CacheUnwritable, build, cache_dir, compiler
from .native_families import (FAMILIES, RESULTS, Family, bits_against_densebody, declare,  # noqa: F401
                              example_layers, plain, self_check, torch_like)
from .native_families import body as _body

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
    problems = self_check(declare(lib))
    said = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
    if len(problems) == len(FAMILIES):
        return None, f"off: self-check failed: {said}"
    _state["refused"] = frozenset(problems)  # these families' bodies take DenseBody
    return lib, f"on ({where})" + (f"; refused by the self-check, so DenseBody's: {said}" if problems else "")


def library() -> ctypes.CDLL | None:
    """The built and self-checked library, or None (`state()` says why); once per process."""
    if "lib" not in _state:
        _state["lib"], _state["why"] = _load()
    return _state["lib"]


def state() -> str:
    """"on (path)", with the families the self-check refused if any, or "off: reason", after
    `library()` has been asked."""
    library()
    return _state["why"]


def used() -> str:
    """What this process's bodies took: `state()` once a CPU fp32 body of a compiled family has asked
    for the library, else "not asked" (no such body ran)."""
    return _state.get("why", "not asked")


def exact_fp32_products() -> bool:
    """Whether torch's fp32 products are sgemm_'s: no lower precision asked of them
    (`torch.set_float32_matmul_precision`, the fp32_precision settings), which would send addmm
    through oneDNN's bf16 or TF32 route where the CPU has one."""
    mkldnn = getattr(torch.backends, "mkldnn", None)
    try:
        for holder in (torch.backends, mkldnn, getattr(mkldnn, "matmul", None)):
            if getattr(holder, "fp32_precision", "none") not in ("none", "ieee"):
                return False
        # torch refuses the legacy getter once a backend's fp32_precision was set (CUDA's, for
        # --precision tf32): then the body takes DenseBody, which is right whatever the settings
        return torch.get_float32_matmul_precision() == "highest"
    except RuntimeError:
        return False


@contextlib.contextmanager
def off():
    """Within: every body takes `fused.DenseBody` (benchmarks and tests compare the two)."""
    before = _state.get("off", False)
    _state["off"] = True
    try:
        yield
    finally:
        _state["off"] = before



def usable(family: Family, x: torch.Tensor, layers_params: list) -> bool:
    """Whether a `family` body of these layers (each its kernel's parameters) on x can take the library:
    fp32 on a CPU, everything dense, contiguous and non-empty, every layer of the family's shapes for
    the first layer's (m, n), torch's products at full fp32 (`exact_fp32_products`), the family not
    refused by the self-check."""
    if x.dim() != 2 or not plain(x) or not layers_params or layers_params[0][0].dim() != 2:
        return False
    m, n = layers_params[0][0].shape
    if x.shape[1] != n or x.shape[0] < 1 or m < 1 or n < 1:
        return False
    shapes = family.shapes(n, m)
    for layer in layers_params:
        if len(layer) != len(shapes):
            return False
        for p, shape in zip(layer, shapes):
            if p is None or p.shape != shape or not plain(p):
                return False
    return (not _state.get("off") and library() is not None and family.name not in _state.get("refused", ())
            and exact_fp32_products())


def body(family: Family, x: torch.Tensor, layers_params: list, lib: ctypes.CDLL | None = None,
         aux: float = 0.0) -> torch.Tensor:
    """`family`'s body of these layers on x through the library (`lib`, else `library()`): its output,
    with gradients through one `NativeBody` node. The caller checks `usable`."""
    return _body(lib or library(), family, x, layers_params, aux)


def _compiled_body(family: Family, kernel, x: torch.Tensor, layers_params: list) -> torch.Tensor | None:
    return body(family, x, layers_params, aux=family.aux_of(kernel)) if usable(family, x, layers_params) else None


for _family in FAMILIES.values():
    fused.COMPILED[_family.kernel] = functools.partial(_compiled_body, _family)

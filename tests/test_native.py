"""The compiled bodies (orthojac.nets.native): DenseBody's bits for every family it compiles, its
fallbacks, its cache."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from orthojac.nets import fused, native, native_build
from orthojac.nets.layers import Fold

REPO = Path(__file__).resolve().parents[1]
FAMILIES = list(native.FAMILIES)  # fold, plain, partial, sigma1, abs, limit
AUX = {"limit": 0.1}  # limit's δ (limit50's)


def kernel_of(name: str):
    return native.FAMILIES[name].kernel_for(AUX.get(name, 0.0))


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().view(torch.int32)


def assert_same_bits(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    assert a.shape == b.shape, what
    assert torch.equal(bits(a), bits(b)), f"{what}: {(a - b).abs().nan_to_num(0).max().item()} apart"


def assert_same_bits_or_both_nan(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    """NaN exactly where the other has NaN, and the other entries the same bits."""
    assert torch.equal(a.isnan(), b.isnan()), f"{what}: NaN in other places"
    keep = ~a.isnan()
    assert torch.equal(bits(a[keep]), bits(b[keep])), what


def family_layers(name: str, depth: int, m: int, n: int, seed: int = 0, bias: float = -0.3):
    return native.example_layers(native.FAMILIES[name], depth, m, n, seed=seed, bias=bias)


def both_ways(name: str, layers, x, g):
    """(output, input grad, the learnt parameters' grads in layer order) through the library and
    through DenseBody; a family's fixed parameters (orthoff's breakpoint) get none."""
    family = native.FAMILIES[name]
    results = []
    for compiled in (True, False):
        ps = [tuple(p.clone().requires_grad_(source is not None) for p, source in zip(layer, family.grads))
              for layer in layers]
        xi = x.clone().requires_grad_()
        if compiled:
            out = native.body(family, xi, ps, aux=AUX.get(name, 0.0))
            assert out.grad_fn.name() == "NativeBodyBackward"
        else:
            out = fused.DenseBody.apply(kernel_of(name), family.per_layer, xi, *(p for layer in ps for p in layer))
        out.backward(g)
        results.append((out.detach(), xi.grad, [p.grad for layer in ps for p in layer if p.requires_grad]))
    return results


def test_the_library_is_built_and_passes_its_self_check_here():
    """This machine (and CI's) has a C compiler: the fast path must not silently fall back."""
    assert native.library() is not None, native.state()
    assert native.state().startswith("on (") and Path(native.state()[4:-1]).is_file()


def test_every_compiled_family_is_registered_and_the_others_are_not():
    """run_body hands the library fold, plain, partial, orthoff (σ_1, |·|) and limit bodies; resnet's,
    whose compiled form did not pay (benchmarks/README.md), stays DenseBody's."""
    assert set(fused.COMPILED) == {fused.FoldReLU, fused.PlainReLU, fused.PartialReLU, fused.OrthFFSigma1,
                                   fused.OrthFFAbs, fused.LimitReLU}
    assert {f.kernel for f in native.FAMILIES.values()} == set(fused.COMPILED)


SHAPES = [(1, 8, 8, 5), (4, 5, 12, 9), (7, 16, 16, 33), (3, 7, 9, 1)]


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("depth, m, n, batch", SHAPES)
def test_training_pass_is_densebody_to_the_bit(name, depth, m, n, batch):
    """Output, input gradient, every weight and bias gradient: the same bits, square and
    rectangular weights (m < n; plain's are n × n), one layer and several, a batch of one."""
    m = n if name == "plain" else m
    layers = family_layers(name, depth, m, n)
    gen = torch.Generator().manual_seed(1)
    x, g = torch.randn(batch, n, generator=gen), torch.randn(batch, n, generator=gen)
    (o1, x1, p1), (o2, x2, p2) = both_ways(name, layers, x, g)
    assert_same_bits(o1, o2, "output")
    assert_same_bits(x1, x2, "input gradient")
    assert len(p1) == len(p2) == depth * sum(s is not None for s in native.FAMILIES[name].grads)
    for i, (a, b) in enumerate(zip(p1, p2)):
        assert_same_bits(a, b, f"parameter {i}'s gradient")
    assert (x1 != 0).any() and any((a != 0).any() for a in p1 if a.dim() == 2)  # the check compares something


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("batch, m, n", [(1000, 6, 10), (7, 5, 6), (13, 3, 5)])
def test_evaluation_pass_is_densebody_to_the_bit_and_keeps_nothing(name, batch, m, n):
    """The evaluation's pass, its buffers carved from one scratch tensor: at sizes whose buffers are not
    whole multiples of 64 bytes too (a buffer placed off torch's 64-byte alignment changed MKL's last
    bit: found while writing this test)."""
    m = n if name == "plain" else m
    layers = family_layers(name, 5, m, n)
    x = torch.randn(batch, n, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        out = native.body(native.FAMILIES[name], x, layers, aux=AUX.get(name, 0.0))
        ref = fused.body_forward(kernel_of(name), x, layers)
    assert_same_bits(out, ref, "evaluation output")
    assert not out.requires_grad


@pytest.mark.parametrize("name", FAMILIES)
def test_a_nan_passes_as_through_torchs_kernels(name):
    """A NaN entering the body (a diverging run) comes out where DenseBody's does, forward and
    backward: the library's ReLU keeps a NaN (torch's clamp_min), its mask passes the gradient where
    the unit is NaN (threshold_backward), sgn of a NaN is 0 (torch's sgn)."""
    n = 6
    layers = family_layers(name, 3, n, n)
    gen = torch.Generator().manual_seed(3)
    x, g = torch.randn(4, n, generator=gen), torch.randn(4, n, generator=gen)
    x[1, 2] = float("nan")
    (o1, x1, p1), (o2, x2, p2) = both_ways(name, layers, x, g)
    assert o1[1].isnan().any() and not o1[0].isnan().any()
    assert_same_bits_or_both_nan(o1, o2, "output")
    assert_same_bits_or_both_nan(x1, x2, "input gradient")
    for i, (a, b) in enumerate(zip(p1, p2)):
        assert_same_bits_or_both_nan(a, b, f"parameter {i}'s gradient")


def test_the_nan_semantics_are_torchs_for_fold():
    """Fold's input gradient keeps a finite row where h is NaN: what the mask decides (∂u kept)."""
    layers = family_layers("fold", 3, 6, 6)
    gen = torch.Generator().manual_seed(3)
    x, g = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    x[1, 2] = float("nan")
    (_, x1, _), (_, x2, _) = both_ways("fold", layers, x, g)
    assert not x1[1].isnan().any()
    assert_same_bits(x1, x2, "input gradient")


@pytest.mark.parametrize("name", FAMILIES)
def test_two_forward_passes_before_their_backward_passes_keep_their_own_buffers(name):
    family = native.FAMILIES[name]
    layers = family_layers(name, 3, 8, 8)
    ps = [tuple(p.clone().requires_grad_(s is not None) for p, s in zip(layer, family.grads)) for layer in layers]
    learnt = [p for layer in ps for p in layer if p.requires_grad]
    gen = torch.Generator().manual_seed(4)
    xa, xb = torch.randn(5, 8, generator=gen), torch.randn(5, 8, generator=gen)
    out_a, out_b = fused.run_body(kernel_of(name), ps, xa), fused.run_body(kernel_of(name), ps, xb)
    assert out_a.grad_fn.name() == out_b.grad_fn.name() == "NativeBodyBackward"
    (out_a.sum() + 2 * out_b.sum()).backward()
    grads = [p.grad.clone() for p in learnt]
    for p in learnt:
        p.grad = None
    with native.off():
        (native_free := fused.run_body(kernel_of(name), ps, xa)).sum().backward()
        (2 * fused.run_body(kernel_of(name), ps, xb).sum()).backward()
    assert native_free.grad_fn.name() == "DenseBodyBackward"
    for a, p in zip(grads, learnt):
        torch.testing.assert_close(a, p.grad, rtol=0, atol=1e-6)


def test_run_body_takes_the_library_only_where_it_applies():
    """fp32, contiguous, every layer of its family's shapes: the library's node; float64, a
    non-contiguous input, mixed shapes, a plain weight that is not square, orthoff's breakpoint as more
    than one number (a breakpoint a unit), `native.off()`: DenseBody (the same results either way)."""
    fold = native.FAMILIES["fold"]
    layers = [tuple(p.requires_grad_() for p in layer) for layer in family_layers("fold", 2, 6, 6)]
    x = torch.randn(4, 6).requires_grad_()
    assert fused.run_body(fused.FoldReLU, layers, x).grad_fn.name() == "NativeBodyBackward"
    with native.off():
        assert fused.run_body(fused.FoldReLU, layers, x).grad_fn.name() == "DenseBodyBackward"
    x64 = x.detach().double().requires_grad_()
    layers64 = [tuple(p.detach().double().requires_grad_() for p in layer) for layer in layers]
    assert fused.run_body(fused.FoldReLU, layers64, x64).grad_fn.name() == "DenseBodyBackward"
    wide = torch.randn(6, 4).t().requires_grad_()  # a transposed view: not contiguous
    assert fused.run_body(fused.FoldReLU, layers, wide).grad_fn.name() == "DenseBodyBackward"
    assert not native.usable(fold, x, [layers[0], family_layers("fold", 1, 5, 6)[0]])
    assert native.usable(fold, x, layers)
    plain = native.FAMILIES["plain"]
    assert native.usable(plain, x, family_layers("plain", 2, 6, 6))
    w, b = family_layers("fold", 1, 5, 6)[0]
    assert not native.usable(plain, x, [(w, b)])  # 5 × 6: a plain layer must keep the width
    sigma1 = native.FAMILIES["sigma1"]
    a, bw, bias, t0 = family_layers("sigma1", 1, 5, 6)[0]
    assert native.usable(sigma1, x, [(a, bw, bias, t0)])
    per_unit = torch.full((5,), 0.1)  # a breakpoint a unit: not the library's one number
    assert not native.usable(sigma1, x, [(a, bw, bias, per_unit)])
    assert fused.run_body(fused.OrthFFSigma1, [(a, bw, bias, per_unit)], x).grad_fn.name() == "DenseBodyBackward"


@pytest.mark.parametrize("family, settings", [
    ("fold", {}), ("plain", {}), ("partial", {}),
    ("orthoff", {"activation": "sigma_k", "k": 1}), ("orthoff", {"activation": "abs"}), ("limit", {"delta": 0.3})])
def test_a_network_of_each_compiled_family_trains_through_the_library(family, settings):
    """A dense network's forward in training mode reaches the library's node (orthojac.nets.models
    → fused.fused_body → run_body)."""
    from orthojac.config import RunConfig
    from orthojac.nets.models import build_model

    model = build_model(RunConfig(arch="dense", family=family, depth=3, width=16, batch_size=8, **settings))
    for module in model.body:
        module.fused = True
    model.train()
    out = fused.fused_body(model.body, model.embed(torch.randn(8, 1, 28, 28)))
    assert out is not None and out.grad_fn.name() == "NativeBodyBackward"


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("layout", ["transposed", "displaced", "negated"])
def test_an_output_gradient_laid_out_otherwise_takes_densebodys_backward(name, layout):
    """An output gradient that is a transposed view, contiguous but off torch's 64-byte alignment, or a
    lazy negation (never in training: the head's product makes it) is handed by torch's products to
    MKL as it lies; the node then runs DenseBody's backward pass, so the bits stay DenseBody's (a
    negation read as its memory gave every gradient the wrong sign: a review's find)."""
    family, n, batch = native.FAMILIES[name], 64, 3
    layers = family_layers(name, 2, n, n)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(batch, n, generator=gen)
    if layout == "transposed":
        g = torch.randn(n, batch, generator=gen).t()
    elif layout == "displaced":
        g = torch.randn(batch * n + 1, generator=gen)[1:].view(batch, n)
    else:
        g = torch._neg_view(torch.randn(batch, n, generator=gen))
        assert g.is_contiguous() and g.data_ptr() % 64 == 0
    assert not native.torch_like(g)
    (o1, x1, p1), (o2, x2, p2) = both_ways(name, layers, x, g)
    assert_same_bits(x1, x2, "input gradient")
    for i, (a, b) in enumerate(zip(p1, p2)):
        assert_same_bits(a, b, f"parameter {i}'s gradient")


def test_torchs_new_precision_settings_take_densebody_without_raising():
    """With a backend's fp32_precision set (CUDA's, as --precision tf32 sets it), torch refuses its legacy
    getter; the body takes DenseBody instead of raising."""
    layers = [tuple(p.requires_grad_() for p in layer) for layer in family_layers("abs", 2, 6, 6)]
    x = torch.randn(4, 6)
    before = torch.backends.cuda.matmul.fp32_precision
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    try:
        assert not native.exact_fp32_products()
        assert not native.usable(native.FAMILIES["abs"], x, layers)
        assert fused.run_body(fused.OrthFFAbs, layers, x).grad_fn.name() == "DenseBodyBackward"
    finally:
        torch.backends.cuda.matmul.fp32_precision = before
    assert native.exact_fp32_products()


def test_a_compiler_asked_to_fuse_multiply_adds_still_rounds_as_torch(tmp_path, monkeypatch):
    """$CC's own flags come before the build's -ffp-contract=off: with CC asking for -march=native and
    contraction, the build still passes the self-check (3e38 in an input included), and orthoff σ_1's
    u − 2r overflows where DenseBody's does. Without -ffp-contract=off that build fuses it, and the
    self-check refuses σ_1."""
    eye = torch.eye(4)
    layers = [(eye, eye.clone(), torch.zeros(4), torch.tensor([0.0]))]
    x = torch.tensor([[2e38, 1.0, -1.0, 0.0]])
    cc = [*native.compiler(), "-march=native", "-ffp-contract=fast"]
    lib = _loaded(native.build(cc, tmp_path / "cache"))
    assert native.self_check(lib) == {}
    with torch.no_grad():
        out = native.body(native.FAMILIES["sigma1"], x, layers, lib)
        assert_same_bits_or_both_nan(out, fused.body_forward(fused.OrthFFSigma1, x, layers), "overflowing output")
    monkeypatch.setattr(native_build, "FLAGS", tuple(f for f in native_build.FLAGS if f != "-ffp-contract=off"))
    fused_lib = _loaded(native.build(cc, tmp_path / "fused"))
    assert "with 3e38 in the input" in native.self_check(fused_lib).get("sigma1", "")


def _loaded(path: Path) -> ctypes.CDLL:
    return native.declare(ctypes.CDLL(str(path)))


MUTANTS = [  # (the line as written, a mutant, the self-check's words for it)
    ("gemm('N', 'N', nb, n, m, -2.0f, h, m, w, n, 1.0f, y, n);",
     "gemm('N', 'N', nb, n, m, -2.0001f, h, m, w, n, 1.0f, y, n);", "fold: evaluation's forward differs"),
    ("static inline float relu(float v) { return v < 0 ? 0.0f : v; }",
     "static inline float relu(float v) { return v > 0 ? v : 0.0f; }",
     "fold: evaluation's forward differs from DenseBody's with a NaN in the input"),
    ("static inline float mask(float r, float d) { return r <= 0 ? 0.0f : d; }",
     "static inline float mask(float r, float d) { return r > 0 ? d : 0.0f; }",
     "fold: input's gradient differs from DenseBody's with a NaN in the input"),
    ("static inline float sgn(float v) { return v > 0 ? 1.0f : (v < 0 ? -1.0f : 0.0f); }",
     "static inline float sgn(float v) { return v < 0 ? -1.0f : (v > 0 ? 1.0f : (float)v); }",
     "abs: input's gradient differs from DenseBody's with a NaN in the input"),
    ("y[(size_t)i * m + j] = relu(y[(size_t)i * m + j] + b[j]);",
     "y[(size_t)i * m + j] = relu(y[(size_t)i * m + j]) + b[j];", "plain: evaluation's forward differs"),
    ("du[i] = mask(r, -tmp[i] * 2.0f) + tmp[i];", "du[i] = mask(r, -tmp[i] * 2.0f + tmp[i]);",
     "sigma1: input's gradient differs"),
    ("gemm('T', 'N', m, n, nb, 1.0f, sv, m, g, n, 0.0f, grads[0], n);",
     "gemm('T', 'N', m, n, nb, 1.0f, sv, m, g, n, 1.0f, grads[0], n);", "partial: a weight's gradient differs"),
    ("dm[i] = ((dq[i] * r[i]) * aux) * fmaf(-t[i], t[i], 1.0f);", "dm[i] = ((dq[i] * r[i]) * aux) * (1.0f - t[i] * t[i]);",
     "limit: input's gradient differs"),
]


@pytest.mark.parametrize("line, mutant, said", MUTANTS, ids=[m[2] for m in MUTANTS])
def test_self_check_refuses_a_library_that_computes_otherwise(tmp_path, monkeypatch, line, mutant, said):
    """A build of the source with one line changed (a factor, the ReLU's, the mask's or sgn's NaN, the
    bias added after the ReLU, tanh's derivative rounded twice where torch fuses it, the masked term's sum, a gradient added to what its buffer held) fails the
    self-check, which names the family and what differed."""
    bad = tmp_path / "native_body.c"
    source = native_build.SOURCE.read_text()
    assert source.count(line) == 1, line
    bad.write_text(source.replace(line, mutant))
    monkeypatch.setattr(native_build, "SOURCE", bad)
    lib = _loaded(native.build(native.compiler(), tmp_path / "cache"))
    family, words = said.split(": ", 1)
    problems = native.self_check(lib)
    assert family in problems and problems[family].startswith(words), problems


def test_a_family_the_self_check_refuses_takes_densebody_and_the_others_keep_the_library(tmp_path, monkeypatch):
    """A build whose |·| body gives a NaN's sgn as NaN (torch's is 0): the library loads, says so, and
    only orthoff |·| bodies take DenseBody."""
    bad = tmp_path / "native_body.c"
    line, mutant, _ = next(m for m in MUTANTS if m[2].startswith("abs: "))
    bad.write_text(native_build.SOURCE.read_text().replace(line, mutant))
    monkeypatch.setattr(native_build, "SOURCE", bad)
    monkeypatch.setenv("ORTHOJAC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "_state", {})
    assert native.library() is not None
    assert native.state().startswith("on (") and "refused by the self-check, so DenseBody's: abs: " in native.state()
    x = torch.randn(4, 6)
    assert native.usable(native.FAMILIES["fold"], x, family_layers("fold", 2, 6, 6))
    assert not native.usable(native.FAMILIES["abs"], x, family_layers("abs", 2, 6, 6))
    layers = family_layers("abs", 2, 6, 6)
    assert fused.run_body(fused.OrthFFAbs, layers, x.requires_grad_()).grad_fn.name() == "DenseBodyBackward"


def test_the_cache_builds_once_and_keys_on_the_source(tmp_path, monkeypatch):
    cc = native.compiler()
    first = native.build(cc, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert native.build(cc, tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob(".native_body-*"))  # no temporary left behind
    other = tmp_path / "src" / "native_body.c"
    other.parent.mkdir()
    other.write_text(native_build.SOURCE.read_text() + "\n/* another version */\n")
    monkeypatch.setattr(native_build, "SOURCE", other)
    assert native.build(cc, tmp_path) != first


def _state_in_fresh_process(env: dict) -> str:
    code = "from orthojac.nets import native; print(native.state())"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO / "src"), **env},
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_without_compiler_switch_or_working_build_it_says_why_and_is_off(tmp_path):
    assert _state_in_fresh_process({native.ENV_SWITCH: "0"}) == "off (ORTHOJAC_NATIVE=0)"
    assert _state_in_fresh_process({"CC": "", "PATH": str(tmp_path), "ORTHOJAC_CACHE": str(tmp_path / "c")}) \
        == "off: no C compiler ($CC, cc or gcc)"
    failed = _state_in_fresh_process({"CC": "false", "ORTHOJAC_CACHE": str(tmp_path / "c")})
    assert failed.startswith("off: build failed: ") and "false" in failed
    assert not list((tmp_path / "c").glob("*"))  # nothing half-built left in the cache, nor a hash


def test_an_unwritable_cache_builds_a_private_copy_and_leaves_nothing(tmp_path):
    locked = tmp_path / "locked"
    locked.write_text("not a folder")  # no one, root included, makes a folder under a file
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    state = _state_in_fresh_process({"ORTHOJAC_CACHE": str(locked / "cache"), "TMPDIR": str(scratch)})
    assert state.startswith("on (built for this process alone: the cache is not writable")
    assert not list(scratch.iterdir())  # the private copy is removed once loaded


def test_a_cached_library_cut_short_is_built_again_not_loaded(tmp_path):
    """A cached build that lost its end (a crash before the disk had it) would kill the process that
    maps it (SIGBUS); its hash no longer matches, so it is built again. A missing hash likewise."""
    cache = {"ORTHOJAC_CACHE": str(tmp_path)}
    assert _state_in_fresh_process(cache).startswith("on (")
    (built,) = tmp_path.glob("native_body-*.so")
    whole = built.read_bytes()
    built.write_bytes(whole[:3000])
    assert _state_in_fresh_process(cache) == f"on ({built})"
    assert built.read_bytes() == whole
    built.with_suffix(".sha256").unlink()
    built.write_bytes(b"")
    assert _state_in_fresh_process(cache) == f"on ({built})" and built.read_bytes() == whole


def test_a_missing_compiler_named_in_cc_is_said_and_leaves_nothing(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    state = _state_in_fresh_process({"CC": "no-such-compiler -O2", "ORTHOJAC_CACHE": str(tmp_path / "c"),
                                     "TMPDIR": str(scratch)})
    assert state == "off: no C compiler (no-such-compiler not found)"
    assert not (tmp_path / "c").exists() and not list(scratch.iterdir())


def test_lower_fp32_product_precision_neg_views_and_empty_weights_take_densebody():
    """Where torch's products are not plain sgemm_ (a lower fp32 matmul precision sends addmm through
    oneDNN's bf16 route on CPUs that have one), or a tensor's memory is not its values (a lazy
    negation), or a weight has no rows or columns, the body takes DenseBody."""
    fold = native.FAMILIES["fold"]
    layers = [tuple(p.requires_grad_() for p in layer) for layer in family_layers("fold", 2, 6, 6)]
    x = torch.randn(4, 6)
    assert native.usable(fold, x, layers)
    before = torch.get_float32_matmul_precision()
    try:
        for precision in ("high", "medium"):
            torch.set_float32_matmul_precision(precision)
            assert not native.exact_fp32_products() and not native.usable(fold, x, layers)
            assert fused.run_body(fused.FoldReLU, layers, x).grad_fn.name() == "DenseBodyBackward"
    finally:
        torch.set_float32_matmul_precision(before)
    assert native.exact_fp32_products()
    w, b = family_layers("fold", 1, 4, 6)[0]
    negated = torch._neg_view(w)
    assert negated.is_contiguous() and not native.usable(fold, x, [(negated, b)])
    with torch.no_grad():
        assert_same_bits(fused.run_body(fused.FoldReLU, [(negated, b)], x),
                         fused.body_forward(fused.FoldReLU, x, [(negated.resolve_neg(), b)]), "negated weight")
    assert not native.usable(fold, x, [(torch.empty(0, 6), torch.empty(0))])
    assert not native.usable(fold, torch.empty(4, 0), [(torch.empty(3, 0), torch.empty(3))])


@pytest.mark.parametrize("network", [["--family", "fold"], ["--family", "orthoff", "--activation", "sigma_k"],
                                     ["--family", "limit", "--delta", "0.3"]], ids=["fold", "orthoff", "limit"])
def test_a_training_job_records_the_body_it_took_and_trains_to_the_same_metrics(tmp_path, idx_folder, network):
    """`orthojac train` of a depth-3 dense network, with the library and with ORTHOJAC_NATIVE=0:
    config.json records which body ran; metrics.csv (but the training's seconds) and the final
    weights are the same bits."""
    outs = {}
    for switch in ("1", "0"):
        out = tmp_path / f"run{switch}"
        subprocess.run([sys.executable, "-m", "orthojac", "train", "--arch", "dense", *network,
                        "--depth", "3", "--width", "16", "--batch-size", "32", "--epochs", "1",
                        "--train-size", "256", "--val-size", "64", "--data-dir", str(idx_folder),
                        "--out-dir", str(out), "--device", "cpu", "--threads", "1"],
                       env={**os.environ, "PYTHONPATH": str(REPO / "src"), native.ENV_SWITCH: switch},
                       check=True, capture_output=True, text=True)
        outs[switch] = out
    recorded = {s: json.loads((o / "config.json").read_text())["environment"]["native_body"]
                for s, o in outs.items()}
    assert recorded["1"].startswith("on (") and recorded["0"] == "off (ORTHOJAC_NATIVE=0)"
    rows = {s: [r for r in (o / "metrics.csv").read_text().splitlines() if ",train,seconds," not in r]
            for s, o in outs.items()}
    assert rows["1"] == rows["0"] and len(rows["1"]) > 5
    final = {s: torch.load(o / "final.pt", weights_only=True)["model"] for s, o in outs.items()}
    assert final["1"].keys() == final["0"].keys()
    for key in final["1"]:
        assert_same_bits(final["1"][key], final["0"][key], key)


def test_the_benchmark_checks_the_bits_times_both_bodies_and_compares_whole_jobs(tmp_path, idx_folder):
    """benchmarks/native_body.py at a small size (depth 2, width 16, batch 16; jobs of 200 images), fold
    and orthoff: every bits check holds; a fold step's FLOPs are its products' (six a fold layer, the
    lift's two, the head's three) counted through the hand-written node, an orthoff step's as many;
    each ratio is FLOPs / time / the run's peak; the two jobs of each record the body each took and
    train to the same metrics. No speed is asserted."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import native_body
    finally:
        sys.path.pop(0)
    out = tmp_path / "native_body.json"
    native_body.main(["--families", "fold", "orthoff", "--depth", "2", "--width", "16", "--batch", "16",
                      "--eval-batch", "50", "--rounds", "1", "--steps", "2", "--job-rounds", "1",
                      "--job-families", "fold", "orthoff", "--job-images", "200", "--job-val-size", "100",
                      "--data-dir", str(idx_folder), "--json", str(out)])
    result = json.loads(out.read_text())
    d, w, b = 2, 16, 16
    step_flop = 6 * d * 2 * w * w * b + 2 * 2 * b * 784 * w + 3 * 2 * b * w * 10
    peak = result["peak_gflops"] * 1e9
    assert list(result["families"]) == ["fold", "orthoff"]
    for family, r in result["families"].items():
        assert r["bits_same"] == dict.fromkeys(
            ["evaluation_output", "output", "input_gradient", "weight_gradients", "bias_gradients"], True)
        assert r["step_flop"] == step_flop
        for name, ms in r["step_ms"].items():
            assert r["step_peak_ratio"][name] == pytest.approx(r["step_flop"] / (ms / 1e3) / peak)
        assert r["eval_flop"] == 2 * 50 * (784 * w + d * 2 * w * w + w * 10)
        assert r["speedup"]["step"] == pytest.approx(r["step_ms"]["DenseBody"] / r["step_ms"]["compiled"])
    for family in ("fold", "orthoff"):
        jobs = result["jobs"][family]
        assert jobs["metrics_same_bytes"] is True
        assert jobs["median"]["compiled"]["native_body"].startswith("on (")
        assert jobs["median"]["DenseBody"]["native_body"] == "off (ORTHOJAC_NATIVE=0)"
        assert jobs["median"]["compiled"]["steps"] == jobs["median"]["DenseBody"]["steps"] == 13

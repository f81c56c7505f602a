"""The compiled fold body (orthojac.nets.native): DenseBody's bits, its fallbacks, its cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from orthojac.nets import fused, native
from orthojac.nets.layers import Fold

REPO = Path(__file__).resolve().parents[1]


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


def fold_layers(depth: int, m: int, n: int, seed: int = 0, bias: float = -0.3):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.linalg.qr(torch.randn(n, n, generator=gen))[0][:m].contiguous(),
             torch.randn(m, generator=gen) + bias) for _ in range(depth)]


def both_ways(layers, x, g):
    """(output, input grad, weight grads, bias grads) through the library and through DenseBody."""
    results = []
    for compiled in (True, False):
        ps = [(w.clone().requires_grad_(), b.clone().requires_grad_()) for w, b in layers]
        xi = x.clone().requires_grad_()
        if compiled:
            out = native.fold_body(xi, ps)
        else:
            out = fused.DenseBody.apply(fused.FoldReLU, 2, xi, *(p for layer in ps for p in layer))
        out.backward(g)
        results.append((out.detach(), xi.grad, [w.grad for w, _ in ps], [b.grad for _, b in ps]))
    return results


def test_the_library_is_built_and_passes_its_self_check_here():
    """This machine (and CI's) has a C compiler: the fast path must not silently fall back."""
    assert native.library() is not None, native.state()
    assert native.state().startswith("on (") and Path(native.state()[4:-1]).is_file()


@pytest.mark.parametrize("depth, m, n, batch", [(1, 8, 8, 5), (4, 5, 12, 9), (7, 16, 16, 33)])
def test_training_pass_is_densebody_to_the_bit(depth, m, n, batch):
    """Output, input gradient, every weight and bias gradient: the same bits, square and
    rectangular B (m < n), one layer and several."""
    layers = fold_layers(depth, m, n)
    gen = torch.Generator().manual_seed(1)
    x, g = torch.randn(batch, n, generator=gen), torch.randn(batch, n, generator=gen)
    (o1, x1, w1, b1), (o2, x2, w2, b2) = both_ways(layers, x, g)
    assert_same_bits(o1, o2, "output")
    assert_same_bits(x1, x2, "input gradient")
    for i in range(depth):
        assert_same_bits(w1[i], w2[i], f"layer {i}'s weight gradient")
        assert_same_bits(b1[i], b2[i], f"layer {i}'s bias gradient")
    assert (x1 != 0).any() and all((w != 0).any() for w in w1)  # the check compares something


def test_evaluation_pass_is_densebody_to_the_bit_and_keeps_nothing():
    layers = fold_layers(5, 6, 10)
    x = torch.randn(1000, 10, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        out = native.fold_body(x, layers)
        ref = fused.body_forward(fused.FoldReLU, x, layers)
    assert_same_bits(out, ref, "evaluation output")
    assert not out.requires_grad


def test_a_nan_passes_as_through_torchs_relu_and_mask():
    """A NaN entering the body (a diverging run) comes out where DenseBody's does, forward and
    backward: the library's ReLU keeps a NaN (torch's clamp_min), its mask passes ∂u where h is NaN
    (threshold_backward), so the input gradient's NaN row is DenseBody's finite one."""
    layers = fold_layers(3, 6, 6)
    gen = torch.Generator().manual_seed(3)
    x, g = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    x[1, 2] = float("nan")
    (o1, x1, w1, b1), (o2, x2, w2, b2) = both_ways(layers, x, g)
    assert o1[1].isnan().all() and not o1[0].isnan().any()
    assert_same_bits_or_both_nan(o1, o2, "output")
    assert not x1[1].isnan().any()  # what the mask decides: ∂u kept where h is NaN
    assert_same_bits_or_both_nan(x1, x2, "input gradient")
    for i in range(3):
        assert_same_bits_or_both_nan(w1[i], w2[i], f"layer {i}'s weight gradient")
        assert_same_bits_or_both_nan(b1[i], b2[i], f"layer {i}'s bias gradient")


def test_two_forward_passes_before_their_backward_passes_keep_their_own_buffers():
    layers = fold_layers(3, 8, 8)
    ps = [(w.clone().requires_grad_(), b.clone().requires_grad_()) for w, b in layers]
    gen = torch.Generator().manual_seed(4)
    xa, xb = torch.randn(5, 8, generator=gen), torch.randn(5, 8, generator=gen)
    out_a, out_b = native.fold_body(xa, ps), native.fold_body(xb, ps)
    (out_a.sum() + 2 * out_b.sum()).backward()
    grads = [p.grad.clone() for layer in ps for p in layer]
    for layer in ps:
        for p in layer:
            p.grad = None
    with native.off():
        (native_free := fused.run_body(fused.FoldReLU, ps, xa)).sum().backward()
        (2 * fused.run_body(fused.FoldReLU, ps, xb).sum()).backward()
    assert native_free.grad_fn.name() == "DenseBodyBackward"
    for a, p in zip(grads, (p for layer in ps for p in layer)):
        torch.testing.assert_close(a, p.grad, rtol=0, atol=1e-6)


def test_run_body_takes_the_library_only_where_it_applies():
    """fp32, contiguous, one weight shape: the library's node; float64, a non-contiguous input,
    mixed shapes, `native.off()`: DenseBody (the same results either way)."""
    layers = [(w.requires_grad_(), b.requires_grad_()) for w, b in fold_layers(2, 6, 6)]
    x = torch.randn(4, 6).requires_grad_()
    assert fused.run_body(fused.FoldReLU, layers, x).grad_fn.name() == "NativeFoldBodyBackward"
    with native.off():
        assert fused.run_body(fused.FoldReLU, layers, x).grad_fn.name() == "DenseBodyBackward"
    x64 = x.detach().double().requires_grad_()
    layers64 = [(w.detach().double().requires_grad_(), b.detach().double().requires_grad_()) for w, b in layers]
    assert fused.run_body(fused.FoldReLU, layers64, x64).grad_fn.name() == "DenseBodyBackward"
    wide = torch.randn(6, 4).t().requires_grad_()  # a transposed view: not contiguous
    assert fused.run_body(fused.FoldReLU, layers, wide).grad_fn.name() == "DenseBodyBackward"
    mixed = [layers[0], fold_layers(1, 5, 6)[0]]
    assert not native.usable(x, mixed)
    assert native.usable(x, layers)


def test_a_fold_network_trains_through_the_library():
    """A dense fold network's forward in training mode reaches the library's node (orthojac.nets.models
    → fused.fused_body → run_body)."""
    from orthojac.config import RunConfig
    from orthojac.nets.models import build_model

    model = build_model(RunConfig(arch="dense", family="fold", depth=3, width=16, batch_size=8))
    for module in model.modules():
        if isinstance(module, Fold):
            module.fused = True
    model.train()
    out = fused.fused_body(model.body, model.embed(torch.randn(8, 1, 28, 28)))
    assert out is not None and out.grad_fn.name() == "NativeFoldBodyBackward"


def test_self_check_refuses_a_library_that_rounds_otherwise(tmp_path, monkeypatch):
    """A build of the source with the skip connection's factor −2 made −2.0001 fails the self-check,
    which names what differed."""
    bad = tmp_path / "native_fold.c"
    source = native.SOURCE.read_text()
    assert source.count("-2.0f, h, m, w, n, 1.0f, y, n") == 1
    bad.write_text(source.replace("-2.0f, h, m, w, n, 1.0f, y, n", "-2.0001f, h, m, w, n, 1.0f, y, n"))
    monkeypatch.setattr(native, "SOURCE", bad)
    import ctypes

    lib = ctypes.CDLL(str(native.build(native.compiler(), tmp_path / "cache")))
    for name in ("fold_forward", "fold_forward_eval", "fold_backward"):
        getattr(lib, name).restype = None
    assert native.self_check(lib) == "evaluation's forward differs from DenseBody's"


def test_the_cache_builds_once_and_keys_on_the_source(tmp_path, monkeypatch):
    cc = native.compiler()
    first = native.build(cc, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert native.build(cc, tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob(".native_fold-*"))  # no temporary left behind
    other = tmp_path / "src" / "native_fold.c"
    other.parent.mkdir()
    other.write_text(native.SOURCE.read_text() + "\n/* another version */\n")
    monkeypatch.setattr(native, "SOURCE", other)
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
    (built,) = tmp_path.glob("native_fold-*.so")
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
    layers = [(w.requires_grad_(), b.requires_grad_()) for w, b in fold_layers(2, 6, 6)]
    x = torch.randn(4, 6)
    assert native.usable(x, layers)
    before = torch.get_float32_matmul_precision()
    try:
        for precision in ("high", "medium"):
            torch.set_float32_matmul_precision(precision)
            assert not native.exact_fp32_products() and not native.usable(x, layers)
            assert fused.run_body(fused.FoldReLU, layers, x).grad_fn.name() == "DenseBodyBackward"
    finally:
        torch.set_float32_matmul_precision(before)
    assert native.exact_fp32_products()
    w, b = fold_layers(1, 4, 6)[0]
    negated = torch._neg_view(w)
    assert negated.is_contiguous() and not native.usable(x, [(negated, b)])
    with torch.no_grad():
        assert_same_bits(fused.run_body(fused.FoldReLU, [(negated, b)], x),
                         fused.body_forward(fused.FoldReLU, x, [(negated.resolve_neg(), b)]), "negated weight")
    assert not native.usable(x, [(torch.empty(0, 6), torch.empty(0))])
    assert not native.usable(torch.empty(4, 0), [(torch.empty(3, 0), torch.empty(3))])


def test_a_training_job_records_the_body_it_took_and_trains_to_the_same_metrics(tmp_path, idx_folder):
    """`orthojac train` of a depth-3 dense fold network, with the library and with ORTHOJAC_NATIVE=0:
    config.json records which body ran; metrics.csv (but the training's seconds) and the final
    weights are the same bits."""
    outs = {}
    for switch in ("1", "0"):
        out = tmp_path / f"run{switch}"
        subprocess.run([sys.executable, "-m", "orthojac", "train", "--arch", "dense", "--family", "fold",
                        "--depth", "3", "--width", "16", "--batch-size", "32", "--epochs", "1",
                        "--train-size", "256", "--val-size", "64", "--data-dir", str(idx_folder),
                        "--out-dir", str(out), "--device", "cpu", "--threads", "1"],
                       env={**os.environ, "PYTHONPATH": str(REPO / "src"), native.ENV_SWITCH: switch},
                       check=True, capture_output=True, text=True)
        outs[switch] = out
    recorded = {s: json.loads((o / "config.json").read_text())["environment"]["native_fold_body"]
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
    """benchmarks/native_fold.py at a small size (depth 2, width 16, batch 16; jobs of 200 images):
    every bits check holds; the step's FLOPs are its products' (six a fold layer, the lift's two, the
    head's three) counted through the hand-written node; each ratio is FLOPs / time / the run's peak;
    the two jobs record the body each took and train to the same metrics. No speed is asserted."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import native_fold
    finally:
        sys.path.pop(0)
    out = tmp_path / "native_fold.json"
    native_fold.main(["--depth", "2", "--width", "16", "--batch", "16", "--eval-batch", "50", "--rounds", "1",
                      "--steps", "2", "--job-rounds", "1", "--job-images", "200", "--job-val-size", "100",
                      "--data-dir", str(idx_folder), "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["bits_same"] == dict.fromkeys(
        ["output", "input_gradient", "weight_gradients", "bias_gradients", "evaluation_output"], True)
    d, w, b = 2, 16, 16
    assert result["step_flop"] == 6 * d * 2 * w * w * b + 2 * 2 * b * 784 * w + 3 * 2 * b * w * 10
    peak = result["peak_gflops"] * 1e9
    for name, ms in result["step_ms"].items():
        assert result["step_peak_ratio"][name] == pytest.approx(result["step_flop"] / (ms / 1e3) / peak)
    assert result["eval_flop"] == 2 * 50 * (784 * w + d * 2 * w * w + w * 10)
    jobs = result["jobs"]
    assert jobs["metrics_same_bytes"] is True
    assert jobs["median"]["compiled"]["native_fold_body"].startswith("on (")
    assert jobs["median"]["DenseBody"]["native_fold_body"] == "off (ORTHOJAC_NATIVE=0)"
    assert jobs["median"]["compiled"]["steps"] == jobs["median"]["DenseBody"]["steps"] == 13

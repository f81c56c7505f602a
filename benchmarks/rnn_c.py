"""H1's tanh RNN compiled from C, against `orthojac.nets.fused.TanhRNN`, in one run (issue 24).

    PYTHONPATH=src python benchmarks/rnn_c.py [--rounds 5] [--steps 50] [--json benchmarks/rnn_c_cpu.json]

Does the C route that made the dense bodies 1.02–1.16× faster a step (orthojac.nets.native) pay for
H1's RNN? benchmarks/rnn_c.c makes TanhRNN's steps (addmm, add, tanh; tanh_backward, the two
products) on the `sgemm_` and `vsTanh` torch's kernels call, with no ATen and no autograd around
each of the ≈ 200 kernels of a pass; torch still makes the one-per-pass products (the input's
projection, W_ih's gradient) and sums, in TanhRNN's own code (`fused.rnn_projection`,
`fused.tanh_rnn_gradients`). Built with the system's C compiler and orthojac.nets.native_build's flags.
Then, on one thread:

1. the bits check: h_T in training and evaluation and the four parameters' gradients (a penalty on
   W_hh included, whose gradient reaches W_hh before the steps' terms) against TanhRNN with
   torch.equal, at H1's sizes (batch 256, 28 steps of 28 inputs, 64 units), its evaluation's batch
   (2,000) and small odd sizes;
2. --rounds rounds in turns, each the mean of --steps calls: the training pass (forward and
   backward from h_T's gradient) and the evaluation pass (2,000 sequences, no gradients) both
   ways, and H1's whole step as its loop takes it (benchmarks/cpu_speed.py's `rnn_stepper`: the
   readout, the loss, the penalty, the fused Adam), for the pass's share of it;
3. where the pass's time goes: the C forward and backward calls alone, and the kernels they are
   made of, hot (tanh on 256 × 64 values, the 256 × 64 × 64 products), with torch's one-per-pass
   products (the projection, W_ih's gradient).

Nothing in training takes this code: it measures whether a compiled RNN would pay.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.autograd.function import once_differentiable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu_speed  # noqa: E402

from orthojac.nets import fused, native_build  # noqa: E402
from orthojac.nets.native_families import _ptr, _ptrs, torch_like  # noqa: E402
from orthojac.nets.native_families import _same as same  # noqa: E402  (bit for bit, NaN where NaN, 0 ≠ −0)

SOURCE = Path(__file__).with_suffix(".c")
H1 = {"batch": 256, "steps": 28, "inputs": 28, "hidden": 64}  # config/cpu.yaml's hlav_rnn; Hlav §5
EVAL_BATCH = 2000  # orthojac.thesis.common.accuracy's chunks


def build(out_dir: Path) -> ctypes.CDLL:
    """rnn_c.c compiled as orthojac.nets.native_build compiles native_body.c, loaded, its return types set."""
    cc = native_build.compiler()
    if cc is None:
        raise SystemExit("rnn_c.py needs a C compiler ($CC, cc or gcc)")
    lib = Path(torch.__file__).parent / "lib"
    target = out_dir / "librnn_c.so"
    subprocess.run([*cc, *native_build.FLAGS, "-o", str(target), str(SOURCE), f"-L{lib}", "-ltorch_cpu",
                    f"-Wl,-rpath,{lib}"], check=True)
    loaded = ctypes.CDLL(str(target))
    for name in ("rnn_forward", "rnn_forward_eval", "rnn_backward", "rnn_bias_sum"):
        getattr(loaded, name).restype = None
    loaded.rnn_scratch_floats.restype = ctypes.c_size_t
    return loaded


class CompiledRNN(torch.autograd.Function):
    """apply(lib, x, w_ih, w_hh, b_ih, b_hh, *w_hh_again): TanhRNN's h_T and gradients, the steps
    through rnn_c.c; W_hh's step terms through T edges, as TanhRNN's."""

    @staticmethod
    def forward(ctx, lib, x, w_ih, w_hh, b_ih, b_hh, *w_hh_again):
        rows, projected = fused.rnn_projection(x, w_ih, b_ih)
        steps, batch, units = projected.shape
        hidden = [x.new_zeros(batch, units), *(x.new_empty(batch, units) for _ in range(steps))]
        lib.rnn_forward(steps, batch, units, _ptr(w_hh), _ptr(b_hh), _ptr(projected), _ptrs(hidden))
        ctx.lib = lib
        ctx.save_for_backward(rows, w_hh, *hidden)
        return hidden[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        rows, w_hh, *hidden = ctx.saved_tensors
        if not torch_like(g):
            raise RuntimeError("the benchmark's output gradient is laid out otherwise than torch's products make it")
        lib, steps, (batch, units) = ctx.lib, len(hidden) - 1, hidden[0].shape
        du = g.new_empty(steps, batch, units)
        dw = [g.new_empty(units, units) for _ in range(steps)]
        scratch = g.new_empty(lib.rnn_scratch_floats(batch, units))
        lib.rnn_backward(steps, batch, units, _ptr(w_hh), _ptrs(hidden), _ptr(g), _ptr(du), _ptrs(dw), _ptr(scratch))
        sums = du.sum(1)  # each step's ∂u over the batch: du[t].sum(0)'s bits (checked below, `bits`)
        db_hh = g.new_empty(units)
        lib.rnn_bias_sum(steps, units, _ptr(sums), _ptr(db_hh))
        return (None, None, *fused.tanh_rnn_gradients(du, rows, db_hh, dw[::-1]))


def compiled_rnn(lib, x, w_ih, w_hh, b_ih, b_hh) -> torch.Tensor:
    """h_T through rnn_c.c: `CompiledRNN` with gradients, else the steps with nothing kept."""
    if torch.is_grad_enabled():
        return CompiledRNN.apply(lib, x, w_ih, w_hh, b_ih, b_hh, *[w_hh] * (x.shape[1] - 1))
    _, projected = fused.rnn_projection(x, w_ih, b_ih)
    steps, batch, units = projected.shape
    h0, out = x.new_zeros(batch, units), x.new_empty(batch, units)
    scratch = x.new_empty(lib.rnn_scratch_floats(batch, units))
    lib.rnn_forward_eval(steps, batch, units, _ptr(w_hh), _ptr(b_hh), _ptr(projected), _ptr(h0), _ptr(scratch),
                         _ptr(out))
    return out


def torch_rnn(x, w_ih, w_hh, b_ih, b_hh) -> torch.Tensor:
    return fused.TanhRNN.apply(x, w_ih, w_hh, b_ih, b_hh, *[w_hh] * (x.shape[1] - 1))


def example(batch: int, steps: int, inputs: int, hidden: int, seed: int = 0) -> tuple:
    """An input in [0, 1) (batch, steps, inputs), (W_ih, W_hh, b_ih, b_hh) with W_hh orthogonal times 1.1
    (H1's gain), and h_T's gradient."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.linalg.qr(torch.randn(hidden, hidden, generator=gen))[0]
    params = (torch.randn(hidden, inputs, generator=gen) / inputs ** 0.5, (1.1 * q).contiguous(),
              torch.randn(hidden, generator=gen) * 0.1, torch.randn(hidden, generator=gen) * 0.1)
    return torch.rand(batch, steps, inputs, generator=gen), params, torch.randn(batch, hidden, generator=gen)


def training_pass(rnn, lib, x, params, g, penalty: bool = True) -> tuple:
    """h_T and the four parameters' gradients from h_T's gradient g (and ‖W_hh W_hhᵀ‖² · 1e-3)."""
    ps = [p.clone().requires_grad_() for p in params]
    out = rnn(lib, x, *ps) if rnn is compiled_rnn else rnn(x, *ps)
    loss = (out * g).sum()  # out's gradient is g·1 = g
    if penalty:
        loss = loss + (ps[1] @ ps[1].t()).square().sum() * 1e-3
    loss.backward()
    return out.detach(), [p.grad for p in ps]


def bits(lib, sizes: dict, seed: int = 0) -> dict:
    """Whether each result through rnn_c.c is TanhRNN's to the bit at `sizes` (an input as drawn, one
    with a NaN, one with 3e38), and whether du.sum(1) is each step's du.sum(0)."""
    x, params, g = example(sizes["batch"], sizes["steps"], sizes["inputs"], sizes["hidden"], seed)
    poisoned, huge = x.clone(), x.clone()
    poisoned[0, -1, 0] = float("nan")
    huge[-1, 0, -1] = 3e38
    result = {}
    for inputs, where in ((x, ""), (poisoned, " NaN"), (huge, " 3e38")):
        with torch.no_grad():
            result["evaluation" + where] = same(compiled_rnn(lib, inputs, *params), torch_rnn(inputs, *params))
        (out, grads), (out_t, grads_t) = (training_pass(rnn, lib, inputs, params, g)
                                          for rnn in (compiled_rnn, torch_rnn))
        result["training" + where] = same(out, out_t) and all(same(a, b) for a, b in zip(grads, grads_t))
    du = torch.randn(sizes["steps"], sizes["batch"], sizes["hidden"])
    result["step sums"] = all(torch.equal(du.sum(1)[t], du[t].sum(0)) for t in range(sizes["steps"]))
    return result


def mean_seconds(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def kernel_times(lib, calls: int) -> dict:
    """Milliseconds, hot, of the kernels one H1 training pass is made of, and of its C calls alone."""
    b, t, i, h = H1["batch"], H1["steps"], H1["inputs"], H1["hidden"]
    x, (w_ih, w_hh, b_ih, b_hh), g = example(b, t, i, h)
    hs, u, w_t = torch.rand(b, h), torch.randn(b, h), w_hh.t()
    rows, projected = fused.rnn_projection(x, w_ih, b_ih)
    du = torch.randn(t, b, h)
    out = torch.empty(b, h)
    ms = {
        "tanh (256 x 64)": mean_seconds(lambda: torch.tanh(u, out=out), calls * 10),
        "addmm (256 x 64 x 64)": mean_seconds(lambda: torch.addmm(b_hh, hs, w_t, out=out), calls * 10),
        "mm (256 x 64 x 64)": mean_seconds(lambda: torch.mm(hs, w_hh, out=out), calls * 10),
        "projection (7168 x 28 x 64, with b_ih)": mean_seconds(lambda: fused.rnn_projection(x, w_ih, b_ih), calls),
        "W_ih's gradient (64 x 7168 x 28)": mean_seconds(lambda: torch.mm(du.view(-1, h).t(), rows), calls),
    }
    hidden = [x.new_zeros(b, h), *(x.new_empty(b, h) for _ in range(t))]
    dw = [x.new_empty(h, h) for _ in range(t)]
    scratch = x.new_empty(lib.rnn_scratch_floats(b, h))
    ms["C forward (28 steps)"] = mean_seconds(
        lambda: lib.rnn_forward(t, b, h, _ptr(w_hh), _ptr(b_hh), _ptr(projected), _ptrs(hidden)), calls)
    ms["C backward (28 steps)"] = mean_seconds(
        lambda: lib.rnn_backward(t, b, h, _ptr(w_hh), _ptrs(hidden), _ptr(g), _ptr(du), _ptrs(dw), _ptr(scratch)),
        calls)
    return {name: seconds * 1e3 for name, seconds in ms.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds, in turns")
    parser.add_argument("--steps", type=int, default=50, help="calls a round")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(Path(tmp))
        result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "torch": torch.__version__, "threads": 1, "load_average": os.getloadavg(),
                  "capability": torch.backends.cpu.get_cpu_capability(), "sizes": H1, "eval_batch": EVAL_BATCH}
        checks = {"H1": H1, "evaluation batch": {**H1, "batch": EVAL_BATCH},
                  "odd": {"batch": 7, "steps": 3, "inputs": 5, "hidden": 6},
                  "one": {"batch": 1, "steps": 1, "inputs": 1, "hidden": 1}}
        result["bits"] = {name: bits(lib, sizes) for name, sizes in checks.items()}
        for name, said in result["bits"].items():
            print(f"bits, {name}: " + ", ".join(f"{k} {'same' if v else 'DIFFERENT'}" for k, v in said.items()))
        if not all(all(said.values()) for said in result["bits"].values()):
            raise SystemExit("the C RNN's bits are not TanhRNN's: no timing")

        x, params, g = example(H1["batch"], H1["steps"], H1["inputs"], H1["hidden"])
        x_eval = example(EVAL_BATCH, H1["steps"], H1["inputs"], H1["hidden"], seed=1)[0]

        def evaluation(rnn):
            def run():
                with torch.no_grad():
                    rnn(lib, x_eval, *params) if rnn is compiled_rnn else rnn(x_eval, *params)
            return run

        passes = {"training, C": lambda: training_pass(compiled_rnn, lib, x, params, g, penalty=False),
                  "training, TanhRNN": lambda: training_pass(torch_rnn, lib, x, params, g, penalty=False),
                  "evaluation, C": evaluation(compiled_rnn), "evaluation, TanhRNN": evaluation(torch_rnn),
                  "H1 step (TanhRNN)": cpu_speed.rnn_stepper(cpu_speed.NEW)}
        rounds = {name: [] for name in passes}
        for fn in passes.values():
            for _ in range(3):
                fn()
        for r in range(args.rounds):
            for name, fn in passes.items():
                rounds[name].append(mean_seconds(fn, args.steps) * 1e3)
            print(f"round {r + 1}: " + ", ".join(f"{name} {ms[-1]:.3f} ms" for name, ms in rounds.items()))
        ms = {name: statistics.median(t) for name, t in rounds.items()}
        result["ms"], result["rounds_ms"] = ms, rounds
        result["ratios"] = {
            "training pass, TanhRNN / C": ms["training, TanhRNN"] / ms["training, C"],
            "evaluation pass, TanhRNN / C": ms["evaluation, TanhRNN"] / ms["evaluation, C"],
            "training pass's share of H1's step": ms["training, TanhRNN"] / ms["H1 step (TanhRNN)"],
            "H1's step, at most, with the C pass": ms["H1 step (TanhRNN)"] / (
                ms["H1 step (TanhRNN)"] - ms["training, TanhRNN"] + ms["training, C"]),
        }
        result["kernels_ms"] = kernel_times(lib, args.steps)
    for name, value in {**result["ratios"], **result["kernels_ms"]}.items():
        print(f"{name}: {value:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

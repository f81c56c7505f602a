"""A depth-200 fold network's training step written in C, against orthojac's, in one run (issue 24).

    PYTHONPATH=src python benchmarks/fold_step_c.py [--rounds 5] [--steps 10] [--json benchmarks/fold_step_c_cpu.json]

Builds benchmarks/fold_step_c.c twice with the system's C compiler ($CC, else `cc`) against torch's
libtorch_cpu, whose exported `sgemm_` is the MKL that torch's own products call: a program that times
the step, and a shared library of the body's two passes. Then, on one thread:

1. the bits check: the C body's output, its input's gradient and its weights' gradients against
   orthojac.nets.fused.DenseBody with FoldReLU (bounds.dense_body_pass) at the run's sizes, with
   torch.equal; the bias gradients, which the C body sums in another order, as
   their largest difference;
2. --rounds rounds in turns: the program (one core's peak, the best of 7 timings of 512³ products;
   6L hot D³ products; the step's five variants, each the median of --steps steps, see the .c file)
   and orthojac's fold step as training takes it (benchmarks/cpu_speed.py's stepper at the same
   sizes), the median of --steps steps; each step as a ratio of its FLOPs to that round's peak.

The C step trains random weights of the fold step's shapes: it measures what the machine does with
the step's products and passes, not a training run. Issue 24's target is a step at ≥ 0.80 of the peak.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bounds  # noqa: E402  (benchmarks/bounds.py: the fold body as DenseBody runs it)
import cpu_speed  # noqa: E402

SOURCE = Path(__file__).with_suffix(".c")
VARIANTS = ("torchlike", "fusedadam", "k256", "fa+prefetch", "fa+pf+fused mask")


def build(out_dir: Path, depth: int, width: int, batch: int) -> tuple[Path, Path]:
    """The program and the shared library, compiled for these sizes."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("fold_step_c.py needs a C compiler ($CC, cc or gcc)")
    lib = Path(torch.__file__).parent / "lib"
    flags = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp-simd", f"-DL={depth}", f"-DD={width}",
             f"-DNB={batch}"]
    link = [f"-L{lib}", "-ltorch_cpu", "-lc10", f"-Wl,-rpath,{lib}", "-lm"]
    program, shared = out_dir / "fold_step_c", out_dir / "libfold_step_c.so"
    subprocess.run([compiler, *flags, "-o", str(program), str(SOURCE), *link], check=True)
    subprocess.run([compiler, *flags, "-shared", "-fPIC", "-DNO_MAIN", "-o", str(shared), str(SOURCE), *link],
                   check=True)
    return program, shared


def bits_check(shared: Path, depth: int, width: int, batch: int) -> dict:
    """1.: the C body's passes against DenseBody(FoldReLU), orthogonal weights, biases near −0.5."""
    lib = ctypes.CDLL(str(shared))
    gen = torch.Generator().manual_seed(0)
    w = torch.stack([torch.linalg.qr(torch.randn(width, width, generator=gen))[0] for _ in range(depth)]).contiguous()
    b = (torch.full((depth, width), -0.5) + 0.3 * torch.randn(depth, width, generator=gen)).contiguous()
    x0, g_out = torch.randn(batch, width, generator=gen), torch.randn(batch, width, generator=gen)

    def ptr(t: torch.Tensor):
        return ctypes.c_void_p(t.data_ptr())

    xs, hs = torch.empty(depth + 1, batch, width), torch.empty(depth, batch, width)
    xs[0] = x0
    lib.body_forward(depth, batch, width, ptr(w), ptr(b), ptr(xs), ptr(hs))
    g, du = g_out.clone(), torch.empty(batch, width)
    dw, db, unused = torch.empty(depth, width, width), torch.empty(depth, width), torch.zeros(1)
    f = ctypes.c_float
    lib.body_backward(depth, batch, width, ptr(w), ptr(b), ptr(xs), ptr(hs), ptr(g), ptr(du), ptr(dw), ptr(db), 0,
                      *[ptr(unused)] * 4, f(0), f(0), f(0), f(0), 1)
    out, dx, dws, dbs = bounds.dense_body_pass([w[i].clone().requires_grad_() for i in range(depth)],
                                               [b[i].clone().requires_grad_() for i in range(depth)], x0, g_out)
    return {"output_same_bits": torch.equal(xs[depth], out), "input_gradient_same_bits": torch.equal(g, dx),
            "weight_gradients_same_bits": torch.equal(dw, torch.stack(dws)),
            "bias_gradients_max_difference": (db - torch.stack(dbs)).abs().max().item()}


def run_program(program: Path, steps: int) -> dict:
    """One round of the program: its peak, hot products and five variants (ms), parsed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    text = subprocess.run([str(program), "1", str(steps)], check=True, capture_output=True, text=True, env=env).stdout
    peak = re.search(r"peak 512\^3: ([\d.]+) GFLOP/s; step FLOP (\d+)", text)
    hot = re.search(r"hot products: \d+ of \d+\^3, best [\d.]+ ms, ([\d.]+) GFLOP/s", text)
    variants = {m[1]: float(m[2]) for m in re.finditer(r"variant (.+?): median of round medians ([\d.]+) ms", text)}
    if not (peak and hot) or set(variants) != set(VARIANTS):
        raise RuntimeError(f"{program}: output not understood:\n{text}")
    return {"peak_gflops": float(peak[1]), "step_flop": int(peak[2]), "hot_gflops": float(hot[1]), "variants_ms": variants}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=200)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps a variant a round (at most 64)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        program, shared = build(Path(tmp), args.depth, args.width, args.batch)
        bits = bits_check(shared, args.depth, args.width, args.batch)
        print(f"torch {torch.__version__}, 1 thread; depth {args.depth}, width {args.width}, batch {args.batch}")
        print("C body against DenseBody(FoldReLU): " + ", ".join(f"{k} {v}" for k, v in bits.items()))
        stepper = cpu_speed.orthojac_stepper(cpu_speed.family_config(
            "fold", SimpleNamespace(depth=args.depth, width=args.width, batch=args.batch)), cpu_speed.NEW)
        for _ in range(3):
            stepper()
        rounds = []
        for r in range(args.rounds):
            row = run_program(program, args.steps)
            times = []
            for _ in range(args.steps):
                start = time.perf_counter()
                stepper()
                times.append(time.perf_counter() - start)
            row["orthojac_ms"] = 1e3 * statistics.median(times)
            rounds.append(row)
            ratio = {name: row["step_flop"] / (ms / 1e3) / (row["peak_gflops"] * 1e9)
                     for name, ms in {**row["variants_ms"], "orthojac": row["orthojac_ms"]}.items()}
            row["peak_ratio"] = ratio
            print(f"round {r + 1}: peak {row['peak_gflops']:.1f} GFLOP/s, hot products {row['hot_gflops']:.1f}; "
                  + ", ".join(f"{n} {ms:.1f} ms ({ratio[n]:.2f})" for n, ms in row["variants_ms"].items())
                  + f"; orthojac's step {row['orthojac_ms']:.1f} ms ({ratio['orthojac']:.2f})")
    medians = {name: statistics.median(r["peak_ratio"][name] for r in rounds) for name in (*VARIANTS, "orthojac")}
    print("median ratio to the peak over the rounds: " + ", ".join(f"{n} {v:.3f}" for n, v in medians.items()))
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "sizes": [args.depth, args.width, args.batch],
                                         "bits": bits, "rounds": rounds, "median_peak_ratio": medians}, indent=1) + "\n")


if __name__ == "__main__":
    main()

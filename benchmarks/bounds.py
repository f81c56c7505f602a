"""What is left between issue 24's targets and this CPU, measured in one run on one thread.

    PYTHONPATH=src python benchmarks/bounds.py [--results results] [--json benchmarks/bounds_cpu.json]

1. The core's peak (benchmarks/cpu_speed.py's: the best of 7 timings of 512³ fp32 products).
2. The interpreter's share of a depth-200 fold body (width 128, batch 128): the body's forward and
   backward pass as the hand-written node takes them (orthojac.nets.fused.DenseBody, one autograd
   node whose loops over the layers run in Python; training's where orthojac.nets.native is off), against the same kernels (`FoldReLU`'s) in the same order
   looped in TorchScript, which calls them without Python in between. Both give the same bits
   (checked with torch.equal on the output, the input's gradient and every weight's and bias's).
3. Where a fold training step's time goes, phase by phase without a profiler (its overhead would
   be a tenth of the step): the forward pass, the backward pass, the optimiser's step and the rest,
   the first two against their matrix products' FLOPs at the peak and at the rate of 128³ products
   on operands in cache (a depth-200 body's operands are not: its weights and saved activations
   are over 38 MB).
4. The spectra of config/quick.yaml's depth-2 runs (the target: all of a run's spectra ≤ 5 % of
   its training): `torch.linalg.svdvals` of a 784 × 784 float32 matrix; and for each depth-2
   convolutional run under --results/runs (`make quick`'s; its data under --results/data), the
   Jacobians of its init.pt and final.pt at the first test image, as the spectrum stage takes
   them, their SVDs timed in full and through orthojac.spectra.exact_singular_values (a diagonal
   Jacobian's σ off its diagonal, zero rows and columns left out), against the run's training
   seconds (`train_seconds` of config.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import List

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu_speed  # noqa: E402  (benchmarks/cpu_speed.py: the peak, the steps as training takes them)

from orthojac import spectra  # noqa: E402
from orthojac.data import load_split  # noqa: E402
from orthojac.nets import fused, native, one_channel  # noqa: E402
from orthojac.nets.models import build_model  # noqa: E402
from orthojac.run import fastpath  # noqa: E402
from orthojac.run.checkpoint import load_checkpoint  # noqa: E402


def _scripted_fold_body():
    """FoldReLU's forward and backward over all layers, looped in TorchScript (no Python between
    the kernels): the same calls in the same order as DenseBody with FoldReLU."""
    with warnings.catch_warnings():  # torch.jit.script is deprecated; here it only measures
        warnings.simplefilter("ignore")

        @torch.jit.script
        def body(x: torch.Tensor, weights: List[torch.Tensor], biases: List[torch.Tensor], g: torch.Tensor):
            xs: List[torch.Tensor] = []
            hs: List[torch.Tensor] = []
            for i in range(len(weights)):
                h = torch.addmm(biases[i], x, weights[i].t()).relu_()
                xs.append(x)
                hs.append(h)
                x = torch.addmm(x, h, weights[i], alpha=-2)
            dws: List[torch.Tensor] = []
            dbs: List[torch.Tensor] = []
            n = len(weights)
            for j in range(n):
                i = n - 1 - j
                w = weights[i]
                du = torch.ops.aten.threshold_backward(
                    torch.addmm(torch.zeros([], dtype=g.dtype), g, w.t(), beta=0, alpha=-2), hs[i], 0.0)
                dw = torch.mm(du.t(), xs[i]).addmm_(hs[i].t(), g, alpha=-2)
                g = g.addmm_(du, w) if j > 0 else torch.addmm(g, du, w)
                dws.append(dw)
                dbs.append(du.sum(0))
            dws.reverse()
            dbs.reverse()
            return x, g, dws, dbs

    return body


def dense_body_pass(weights: list, biases: list, x: torch.Tensor, g_out: torch.Tensor) -> tuple:
    """The fold body as the hand-written node runs it (orthojac.nets.fused.DenseBody with FoldReLU;
    training's body where the compiled one, orthojac.nets.native, is off), forward and backward from
    `g_out`: (output, the input's gradient, the weights' gradients, the biases'), `weights` and
    `biases` leaves that require gradients."""
    for p in (*weights, *biases):
        p.grad = None
    inp = x.clone().requires_grad_()
    out = fused.DenseBody.apply(fused.FoldReLU, 2, inp, *[t for pair in zip(weights, biases) for t in pair])
    out.backward(g_out)
    return out.detach(), inp.grad, [w.grad for w in weights], [b.grad for b in biases]


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


def interpreter_share(depth: int, width: int, batch: int, rounds: int) -> dict:
    """2.: the fold body as DenseBody runs it against the same kernels looped in TorchScript."""
    gen = torch.Generator().manual_seed(0)
    weights = [torch.linalg.qr(torch.randn(width, width, generator=gen))[0].contiguous().requires_grad_()
               for _ in range(depth)]
    biases = [torch.full((width,), -0.5, requires_grad=True) for _ in range(depth)]
    x = torch.randn(batch, width, generator=gen)
    g_out = torch.randn(batch, width, generator=gen)
    scripted = _scripted_fold_body()

    def python_loop():
        return dense_body_pass(weights, biases, x, g_out)

    def script_loop():
        with torch.no_grad():
            return scripted(x, [w.detach() for w in weights], [b.detach() for b in biases], g_out.clone())

    def same_bits() -> bool:
        a, b = python_loop(), script_loop()
        return (torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
                and all(torch.equal(p, q) for p, q in zip(a[2] + a[3], b[2] + b[3])))

    same = same_bits()  # on the first calls, and after TorchScript's profiling runs (below)
    python_ms, script_ms = [], []
    for _ in range(rounds):  # in turns
        python_ms.append(_median_ms(python_loop, 5))
        script_ms.append(_median_ms(script_loop, 5))
    same = same and same_bits()
    python, script = sorted(python_ms)[rounds // 2], sorted(script_ms)[rounds // 2]
    return {"python_ms": python, "torchscript_ms": script, "python_share": 1 - script / python, "same_bits": same}


def step_phases(depth: int, width: int, batch: int, steps: int = 21) -> dict:
    """3.: a fold training step (orthojac.run.train.training_step's calls, the default CPU levers)
    timed phase by phase, without a profiler: the forward pass to the loss, the backward pass, the
    optimiser's step (the fused Adam) and the rest (the divergence guard, zero_grad); the median
    over `steps` steps after 3 of warm-up; each phase's matrix-product FLOPs (FlopCounterMode)."""
    cfg = cpu_speed.family_config("fold", SimpleNamespace(depth=depth, width=width, batch=batch))
    model = build_model(cfg)
    forward = fastpath.prepare_model(model, cpu_speed.NEW)
    optimiser = fastpath.make_optimiser(model.parameters(), cfg.lr, cpu_speed.NEW)
    guard = fastpath.divergence_guard(optimiser, cpu_speed.NEW, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    model.train()
    phases = {"forward": [], "backward": [], "optimiser": [], "rest": []}
    for i in range(steps + 3):
        t0 = time.perf_counter()
        with fastpath.autocast(cpu_speed.NEW, x.device), fastpath.weights_once(cpu_speed.NEW):
            loss = F.cross_entropy(forward(fastpath.to_layout(x, cpu_speed.NEW, model)).float(), y)
        t1 = time.perf_counter()
        guard.observe(loss)
        optimiser.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        optimiser.step()
        t4 = time.perf_counter()
        if i >= 3:
            for name, seconds in zip(phases, (t1 - t0, t3 - t2, t4 - t3, t2 - t1)):
                phases[name].append(seconds)
    with native.off(), FlopCounterMode(display=False) as counter:  # (the compiled body's products are not ATen's)
        loss = F.cross_entropy(forward(x), y)
    forward_flop = counter.get_total_flops()
    total_flop = cpu_speed.count_flops(cpu_speed.orthojac_stepper(cfg, cpu_speed.NEW))
    ms = {name: 1e3 * statistics.median(v) for name, v in phases.items()}
    return {**{f"{name}_ms": v for name, v in ms.items()}, "step_ms": sum(ms.values()),
            "forward_flop": forward_flop, "backward_flop": total_flop - forward_flop, "step_flop": total_flop}


def _quick_jacobian(weights: Path, data_dir: Path) -> torch.Tensor:
    """The body's Jacobian at the first test image, as `orthojac spectra` takes it (float32, the
    one-channel route where the body has it)."""
    ckpt = load_checkpoint(weights)
    model = spectra.measured_model(ckpt, weights, None, torch.float32, "cpu")
    images, _ = load_split(data_dir, "t10k")
    with torch.no_grad():
        point = model.embed(spectra.normalised_images(images[:1], ckpt, torch.float32, "cpu"))[0]
    return spectra.jacobian_matrix(model.body, point, 256, copies=one_channel.on_depthwise_route(model.body, point))


def quick_spectrum(results: Path) -> dict:
    """4.: one 784 × 784 float32 SVD, and for each depth-2 convolutional run under `results` (its
    init.pt and final.pt) the SVD of its Jacobians in full against `exact_singular_values`, as
    shares of its training seconds."""
    gaussian = torch.randn(784, 784, generator=torch.Generator().manual_seed(0))
    torch.linalg.svdvals(gaussian)
    svd_ms = _median_ms(lambda: torch.linalg.svdvals(gaussian), 5)
    runs = {}
    for config in sorted((results / "runs").glob("*/*/config.json")):
        summary = json.loads(config.read_text())
        cfg = summary.get("config", {})
        if not (cfg.get("depth") == 2 and cfg.get("arch") == "conv" and summary.get("steps")):
            continue
        full_ms = shortcut_ms = 0.0
        for checkpoint in ("init", "final"):
            jacobian = _quick_jacobian(config.parent / f"{checkpoint}.pt", results / "data" / cfg["dataset"])
            full_ms += _median_ms(lambda: torch.linalg.svdvals(jacobian), 3)
            shortcut_ms += _median_ms(lambda: spectra.exact_singular_values(jacobian), 3)
        train = summary["train_seconds"]
        runs[f"{config.parent.parent.name}/{config.parent.name}"] = {
            "train_seconds": train, "full_svds_ms": full_ms, "exact_singular_values_ms": shortcut_ms,
            "full_share": full_ms / 1e3 / train, "shortcut_share": shortcut_ms / 1e3 / train}
    return {"svd_ms": svd_ms, "runs": runs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=200)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5, help="rounds in turns for 2.")
    parser.add_argument("--results", type=Path, default=Path("results"), help="where quick's runs are (4.)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    peak = cpu_speed.matmul_rate(512, 7) / 1e9
    print(f"torch {torch.__version__}, 1 thread; peak (512³) {peak:.1f} GFLOP/s")
    share = interpreter_share(args.depth, args.width, args.batch, args.rounds)
    print(f"fold body, depth {args.depth}, forward + backward: Python loops {share['python_ms']:.1f} ms, "
          f"TorchScript loops {share['torchscript_ms']:.1f} ms: the interpreter's share "
          f"{100 * share['python_share']:.1f} %; same bits: {share['same_bits']}")
    rate = cpu_speed.matmul_rate(128, 7) / 1e9
    split = step_phases(args.depth, args.width, args.batch)

    def at(flop: float, gflops: float) -> float:  # ms
        return flop / gflops / 1e6

    print(f"128³ products on operands in cache: {rate:.1f} GFLOP/s ({rate / peak:.2f} of the peak)")
    print(f"fold step, depth {args.depth}: {split['step_ms']:.1f} ms; a step at 0.80 of the peak "
          f"{at(split['step_flop'], 0.8 * peak):.1f} ms, its products at the 128³ rate {at(split['step_flop'], rate):.1f} ms")
    for phase in ("forward", "backward"):
        flop = split[f"{phase}_flop"]
        print(f"  {phase}: {split[f'{phase}_ms']:.1f} ms, {flop / 1e9:.2f} GFLOP: "
              f"{at(flop, peak) / split[f'{phase}_ms']:.2f} of the peak; its products at the 128³ rate {at(flop, rate):.1f} ms")
    print(f"  optimiser step (fused Adam): {split['optimiser_ms']:.1f} ms; divergence guard and zero_grad "
          f"{split['rest_ms']:.1f} ms")
    spectrum = quick_spectrum(args.results)
    print(f"svdvals of a 784 × 784 float32 matrix: {spectrum['svd_ms']:.1f} ms")
    for run, row in spectrum["runs"].items():
        print(f"  {run}: trained {row['train_seconds']:.2f} s; its two checkpoints' SVDs in full "
              f"{row['full_svds_ms']:.1f} ms ({100 * row['full_share']:.1f} % of it), with "
              f"exact_singular_values' shortcuts {row['exact_singular_values_ms']:.1f} ms "
              f"({100 * row['shortcut_share']:.1f} %)")
    if not spectrum["runs"]:
        print(f"  (no depth-2 convolutional runs under {args.results}/runs: run `make quick` first)")
    if args.json:
        args.json.write_text(json.dumps({"peak_gflops": peak, "interpreter": share, "fold_step": split,
                                         "quick_spectrum": spectrum, "torch": torch.__version__}, indent=1) + "\n")


if __name__ == "__main__":
    main()

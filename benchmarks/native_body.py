"""The compiled bodies (orthojac.nets.native) against `fused.DenseBody`, in one run (issue 24).

    PYTHONPATH=src python benchmarks/native_body.py [--families fold orthoff orthoff_abs plain partial]
        [--rounds 5] [--steps 10] [--job-rounds 1] [--job-families fold orthoff]
        [--data-dir results/data/fashion_mnist] [--json benchmarks/native_body_cpu.json]

On one thread:

1. the library's state (built, self-checked, or why not); for each of --families (`SETTINGS`:
   networks whose body the library compiles) the bits check at the
   run's sizes (depth --depth, width --width, batch --batch; `native.example_layers`: orthonormal
   weights, biases near −0.3): output, input gradient, weight and bias gradients of a training pass,
   and the evaluation's forward pass at batch --eval-batch (orthojac.run.train's), each compared bit
   for bit;
2. one core's peak (benchmarks/cpu_speed.py: the best of 7 timings of 512³ products);
3. each family's step as orthojac.run.train takes it (cpu_speed's stepper, the default CPU levers),
   with the compiled body and with `DenseBody` (`native.off()`), timed in turns (--rounds rounds of
   --steps steps; the median round), each as its FLOPs' ratio to the peak; the evaluation's forward
   pass of the whole network at batch --eval-batch the same way;
4. with --job-rounds N > 0: for each of --job-families, the whole one-epoch job of
   benchmarks/cpu_speed.py (`python -m orthojac train`, --job-images images, a fresh process, the
   default CPU settings) with the compiled body and with ORTHOJAC_NATIVE=0, in turns, N rounds: wall
   and training seconds, the ratio of the training's FLOPs at the peak to each, and each job's
   recorded `native_body`. The two jobs' metrics.csv must hold the same rows, bytes for bytes, but
   the training's seconds: the lever changes speed only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu_speed  # noqa: E402

from orthojac.config import RunConfig  # noqa: E402
from orthojac.nets import native  # noqa: E402
from orthojac.nets.models import build_model  # noqa: E402
from orthojac.run import fastpath  # noqa: E402

# the networks whose bodies the library compiles (cpu_speed's, and two more), and the library's family of each
COMPILED = {"fold": "fold", "orthoff": "sigma1", "orthoff_abs": "abs", "plain": "plain", "partial": "partial",
            "limit50": "limit"}
SETTINGS = {**{name: cpu_speed.FAMILY_SETTINGS[name] for name in ("fold", "orthoff", "plain", "limit50")},
            "orthoff_abs": {"family": "orthoff", "activation": "abs"},  # depth200_orthoff_abs's, regime init
            "partial": {"family": "partial"}}


def network_config(family: str, depth: int, width: int, batch: int) -> RunConfig:
    """The network of SETTINGS[family] (its own depth where it has one: limit50's 50)."""
    return RunConfig(**{"arch": "dense", "depth": depth, "width": width, "batch_size": batch, **SETTINGS[family]})


def home_as_tilde(said: str | None) -> str | None:
    """A library state as the JSON records it: the user's home folder as ~ (no machine's path)."""
    return said and said.replace(str(Path.home()), "~")


def metric_rows(path: Path) -> list[str]:
    """metrics.csv's rows but the one timing the training (epoch,step,split,metric,value)."""
    return [row for row in path.read_text().splitlines() if ",train,seconds," not in row]


def bits_check(family: str, depth: int, width: int, batch: int, eval_batch: int) -> dict:
    """1.: a compiled body of `family` against DenseBody, training and evaluation
    (`native.bits_against_densebody`, the self-check's comparison at the run's sizes; limit's δ and
    depth its network's)."""
    fam, cfg = native.FAMILIES[COMPILED[family]], network_config(family, depth, width, batch)
    layers = native.example_layers(fam, cfg.depth, width, width)
    gen = torch.Generator().manual_seed(1)
    x0, g_out = torch.randn(batch, width, generator=gen), torch.randn(batch, width, generator=gen)
    xe = torch.randn(eval_batch, width, generator=gen)
    return native.bits_against_densebody(native.library(), fam, layers, x0, g_out, xe, cfg.delta if fam.aux else 0.0)


def switched(step, compiled: bool):
    def run():
        if compiled:
            step()
        else:
            with native.off():
                step()
    return run


def evaluation_pass(family: str, depth: int, width: int, eval_batch: int):
    """The whole network's forward pass without gradients at batch eval_batch, as
    orthojac.run.train.evaluate takes it; and its FLOPs (counted through DenseBody's products)."""
    cfg = network_config(family, depth, width, eval_batch)
    model = build_model(cfg)
    fastpath.prepare_model(model, cpu_speed.NEW)
    model.eval()
    images = torch.randn(eval_batch, 1, 28, 28, generator=torch.Generator().manual_seed(1))

    def run():
        with torch.inference_mode():
            model(images)

    with native.off(), FlopCounterMode(display=False) as counter:
        run()
    return run, counter.get_total_flops()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(COMPILED), choices=list(COMPILED))
    parser.add_argument("--depth", type=int, default=200)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--eval-batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--job-rounds", type=int, default=0, help="whole one-epoch jobs, each way, in turns")
    parser.add_argument("--job-families", nargs="*", default=["fold", "orthoff"], choices=list(COMPILED))
    parser.add_argument("--job-images", type=int, default=50000)
    parser.add_argument("--job-val-size", type=int, default=5000)
    parser.add_argument("--data-dir", type=Path, default=Path("results/data/fashion_mnist"))
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    state = native.state()
    print(f"torch {torch.__version__}, 1 thread; compiled bodies: {state}")
    if native.library() is None:
        raise SystemExit("the compiled bodies are off on this machine: nothing to compare")
    peak = cpu_speed.matmul_rate(512, 7)
    print(f"peak (512³): {peak / 1e9:.1f} GFLOP/s")
    result = {"torch": torch.__version__, "native": home_as_tilde(state), "sizes": [args.depth, args.width, args.batch],
              "eval_batch": args.eval_batch, "peak_gflops": peak / 1e9, "families": {}}
    sizes = (args.depth, args.width, args.batch)
    for family in args.families:
        bits = bits_check(family, args.depth, args.width, args.batch, args.eval_batch)
        print(f"{family}: bits, compiled against DenseBody: "
              + ", ".join(f"{k} {'same' if v else 'DIFFERENT'}" for k, v in bits.items()))
        step = cpu_speed.orthojac_stepper(network_config(family, *sizes), cpu_speed.NEW)
        step_flop = cpu_speed.count_flops(step)  # (through the hand-written node: the same products)
        steps = cpu_speed.time_in_turns({"compiled": switched(step, True), "DenseBody": switched(step, False)},
                                        args.steps, args.rounds)
        evaluate, eval_flop = evaluation_pass(family, args.depth, args.width, args.eval_batch)
        evals = cpu_speed.time_in_turns({"compiled": switched(evaluate, True),
                                         "DenseBody": switched(evaluate, False)}, max(1, args.steps // 2), args.rounds)
        for name in steps:
            print(f"  {family} step, {name}: {1e3 * steps[name]:.1f} ms, {step_flop / steps[name] / peak:.3f} of the "
                  f"peak; evaluation pass (batch {args.eval_batch}): {1e3 * evals[name]:.1f} ms, "
                  f"{eval_flop / evals[name] / peak:.3f} of the peak")
        speedup = {"step": steps["DenseBody"] / steps["compiled"], "evaluation": evals["DenseBody"] / evals["compiled"]}
        print(f"  {family}, compiled over DenseBody: step {speedup['step']:.3f}×, "
              f"evaluation {speedup['evaluation']:.3f}×", flush=True)
        result["families"][family] = {
            "bits_same": bits, "step_flop": step_flop, "step_ms": {k: 1e3 * v for k, v in steps.items()},
            "step_peak_ratio": {k: step_flop / v / peak for k, v in steps.items()}, "eval_flop": eval_flop,
            "eval_ms": {k: 1e3 * v for k, v in evals.items()}, "speedup": speedup}
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.job_rounds > 0:
        result["jobs"] = {family: jobs(args, family, result["families"].get(family, {}).get("step_flop")
                                       or cpu_speed.count_flops(cpu_speed.orthojac_stepper(
                                           network_config(family, *sizes), cpu_speed.NEW)), peak)
                          for family in args.job_families}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


def jobs(args, family: str, step_flop: int, peak: float) -> dict:
    """4.: whole jobs of `family`, compiled and not, in turns; the median round of each by wall time."""
    runs = {"compiled": [], "DenseBody": []}
    metrics = {}
    job_args = SimpleNamespace(depth=args.depth, width=args.width, batch=args.batch, job_images=args.job_images,
                               job_val_size=args.job_val_size, data_dir=args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.job_rounds):
            for name, switch in (("compiled", "1"), ("DenseBody", "0")):
                out = Path(tmp) / f"{name}{r}"
                before = os.environ.get(native.ENV_SWITCH)
                os.environ[native.ENV_SWITCH] = switch
                try:
                    job = cpu_speed.whole_job(job_args, family, [], False, out, SETTINGS[family])
                finally:
                    if before is None:
                        del os.environ[native.ENV_SWITCH]
                    else:
                        os.environ[native.ENV_SWITCH] = before
                summary = json.loads((out / "config.json").read_text())
                job["native_body"] = home_as_tilde(summary["environment"].get("native_body"))
                flop = step_flop * job["steps"]
                job["wall_peak_ratio"] = flop / peak / job["wall_seconds"]
                job["train_peak_ratio"] = flop / peak / job["train_seconds"]
                metrics.setdefault(name, metric_rows(out / "metrics.csv"))
                if metric_rows(out / "metrics.csv") != metrics[name]:
                    raise RuntimeError(f"{family}, {name}: a rerun's metrics.csv differs from the first round's")
                runs[name].append(job)
                print(f"{family} job round {r + 1}, {name}: wall {job['wall_seconds']:.1f} s "
                      f"({job['wall_peak_ratio']:.3f}), training {job['train_seconds']:.1f} s "
                      f"({job['train_peak_ratio']:.3f}); native_body: {job['native_body']}", flush=True)
    same = metrics["compiled"] == metrics["DenseBody"]
    print(f"{family}: the two jobs' metrics.csv, {len(metrics['compiled'])} rows but the training's seconds: "
          f"{'the same bytes' if same else 'DIFFERENT'}")
    if not same:
        raise RuntimeError(f"{family}: the compiled body's job trained to other metrics than DenseBody's")
    median = {name: sorted(rs, key=lambda j: j["wall_seconds"])[len(rs) // 2] for name, rs in runs.items()}
    print(f"{family}, median jobs: " + ", ".join(f"{n} wall {j['wall_seconds']:.1f} s, training "
                                                f"{j['train_seconds']:.1f} s" for n, j in median.items())
          + f"; DenseBody over compiled: wall {median['DenseBody']['wall_seconds'] / median['compiled']['wall_seconds']:.3f}×")
    return {"rounds": runs, "median": median, "metrics_same_bytes": same}


if __name__ == "__main__":
    main()

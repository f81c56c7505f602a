"""CPU training speed against one core's matmul peak, in one run (issue 24).

Everything on one thread (torch.set_num_threads(1)), measured in this process unless said:

1. the core's peak: the best of --peak-trials timings of fp32 512×512×512 matmuls (2·512³ FLOP
   each); also the 128³ rate, the ceiling of a width-128 layer's matrix products;
2. per network (fold, orthoff, resnet, plain: dense, depth --depth, width --width, batch --batch;
   fold and orthoff (Aᵀ|Bx + b|) in regimes soft and hard; limit50's network at depth 50;
   config/quick.yaml's convolutional depth-8 fold, plain and resnet at one channel, whose
   convolutions run as one depthwise convolution of the batch, orthojac.nets.one_channel, counted as
   the one-channel convolutions' FLOPs):
   the training step as orthojac.run.train takes it (`training_step` with the default CPU levers,
   orthojac.run.fastpath: fused Adam, hand-written dense bodies (orthojac.nets.fused: one autograd node
   for all layers of a dense fold, plain, resnet, orthoff, partial or limit body), hard weights computed once a
   step by the hand-written Cayley map, the soft penalty batched) against the old code
   (`--no-fused-adam --no-fused-layers`: the foreach Adam and autograd's layers, and under
   `old_code()` torch's Cayley parametrisation read anew at each use and the penalty weight by
   weight), timed in turns (--rounds rounds of --steps steps each; the median round is
   reported), as steps/s and as a ratio of the FLOPs done to the peak; the FLOPs of a step are
   counted by torch.utils.flop_counter.FlopCounterMode (matrix products, forward and backward;
   not the LU factorisations and solves of the Cayley map); and, profiled (`product_seconds`), the
   time the new step spends in its matrix-product calls: their FLOPs over it, against the peak, is
   the rate the products run at with their operands drawn from the step's working set, and the
   step's ceiling for any lever that keeps them and the way their operands reach them
   (everything else cut to nothing; moving the operands' memory traffic out of the product calls,
   e.g. into a copy, moves it);
3. H1's RNN (sequential MNIST, hidden 64, batch 256, the soft penalty): its step with the fused
   Adam and the RNN as one hand-written node against the foreach Adam and `nn.RNN`; H5's network
   (tanh, depth 200, width 400, batch 128, SGD with momentum): fused SGD and hidden layers as one
   node against foreach SGD and the modules (benchmarks/thesis_jobs.py times H1's, H3's and H5's whole jobs);
4. the headline, a whole job: `python -m orthojac train` as a separate process, one epoch of the
   fold network (or each of --job-families) on --job-images images of the real Fashion-MNIST (--data-dir), one thread, the
   default CPU settings, timed from process start to exit (start-up, data, evaluation and
   checkpoints included), then the same with the old settings (foreach Adam, autograd's layers,
   and the whole training split evaluated each epoch, as before issue 24); --job-rounds rounds in
   turns (new, old, new, old, …: a machine whose speed drifts weighs on both), each round printed,
   the median round of each by wall time kept and the totals' ratio printed. Ratios: the time the
   job's training FLOPs need at the peak over the process' wall time (target ≥ 0.60), and over
   its training seconds alone (`train_seconds` of config.json; target ≥ 0.80); and the job's
   ceiling: the same ratio with the training at its products' rate (3.) and the job's measured
   time outside training (start-up, data, the evaluations the tables read, checkpoints) kept.

    PYTHONPATH=src python benchmarks/cpu_speed.py --data-dir results/data/fashion_mnist \\
        --json benchmarks/cpu_speed.json

The machine may be shared: the ratios are measured within one run, against the peak measured in
the same run, which contention affects less than absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
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
import torch.nn.functional as F
from torch.nn.utils import parametrizations
from torch.utils.flop_counter import FlopCounterMode

from orthojac.run import fastpath, train
from orthojac.nets import layers, native, regularisers
from orthojac.config import RunConfig
from orthojac.run.fastpath import FastPath
from orthojac.nets.models import build_model

FAMILY_SETTINGS = {  # as benchmarks/train_throughput.py: fold and orthoff near the identity at the start
    "fold": {"family": "fold", "bias_init": -2.0},
    "orthoff": {"family": "orthoff", "activation": "sigma_k", "k": 1, "breakpoints": "2", "ab_init": "equal",
                "bias_init": 0.0},  # orthoff200 (depth200_orthoff_sigma)
    "resnet": {"family": "resnet", "init_scheme": "he"},
    "plain": {"family": "plain", "init_scheme": "he"},
    # the regimes the CPU reference's screens and depth200_orthoff_abs train (α = 0.001)
    "fold_soft": {"family": "fold", "bias_init": -2.0, "regime": "soft", "alpha": 1e-3},
    "fold_hard": {"family": "fold", "bias_init": -2.0, "regime": "hard"},
    "orthoff_abs_soft": {"family": "orthoff", "activation": "abs", "regime": "soft", "alpha": 1e-3},
    "orthoff_abs_hard": {"family": "orthoff", "activation": "abs", "regime": "hard"},
    # limit50's networks (depth 50 whatever --depth)
    "limit50": {"family": "limit", "depth": 50, "bias_init": -0.5, "delta": 0.1},
    # config/quick.yaml's depth sweep at its depth 8: convolutional, one channel (whatever --depth, --width)
    **{f"quick_{f}8": {"family": f, "arch": "conv", "channels": 1, "depth": 8, "init": "cayley", "bias_init": -0.5,
                       "lr": 1e-2} for f in ("fold", "plain", "resnet")},
}
CONVOLUTIONAL = {name for name, s in FAMILY_SETTINGS.items() if s.get("arch") == "conv"}
NEW, OLD = FastPath(), FastPath(fused_adam=False, fused_layers=False)
OLD_FLAGS = ["--no-fused-adam", "--no-fused-layers"]


@contextlib.contextmanager
def old_code():
    """The code before issue 24's regime levers, in this process: torch's Cayley parametrisation
    for regime hard (orthojac.nets.layers.CayleyOrthogonal's reference), each read of a hard weight
    computing it again (no fastpath.weights_once), and the soft penalty summed weight by weight
    (no regularisers.dense_defects). Networks built inside it keep torch's parametrisation."""
    def torch_cayley(op):
        parametrizations.orthogonal(op, "weight", orthogonal_map="cayley")

    def one_by_one(weights, gain=1.0):
        return torch.stack([regularisers.dense_defect(w, gain) for w in weights]).sum()

    saved = layers.DenseOperator.make_hard_, fastpath.weights_once, regularisers.dense_defects
    layers.DenseOperator.make_hard_ = torch_cayley
    fastpath.weights_once = lambda fast: contextlib.nullcontext()
    regularisers.dense_defects = one_by_one
    try:
        yield
    finally:
        layers.DenseOperator.make_hard_, fastpath.weights_once, regularisers.dense_defects = saved


def best_rate(fn, flop: int, trials: int, seconds: float = 0.3) -> float:
    """The best FLOP/s of `fn` (doing `flop` FLOPs a call) over `trials` timings of about `seconds`
    each at 100 GFLOP/s, and at most 4 × `seconds` at the rate of its three calls of warm-up (a
    small product's calls are bound by their overhead: at width 8 the FLOPs alone asked for
    millions of calls a timing)."""
    start = time.perf_counter()
    for _ in range(3):
        fn()
    per_call = (time.perf_counter() - start) / 3
    reps = max(1, min(int(seconds * 1e11 / flop), int(4 * seconds / max(per_call, 1e-9))))
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        best = max(best, flop * reps / (time.perf_counter() - start))
    return best


def matmul_rate(n: int, trials: int, seconds: float = 0.3) -> float:
    """The best FLOP/s of fp32 n×n×n matmuls over `trials` timings of about `seconds` each."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    return best_rate(lambda: torch.mm(a, b, out=out), 2 * n**3, trials, seconds)


def family_config(name: str, args) -> RunConfig:
    return RunConfig(**{"arch": "dense", "depth": args.depth, "width": args.width, "batch_size": args.batch,
                        **FAMILY_SETTINGS[name]})


def orthojac_stepper(cfg: RunConfig, fast: FastPath, old: bool = False):
    """A closure taking one training step of `cfg`'s network as orthojac.run.train does (the fast
    path's model, optimiser and divergence guard), on a fixed random batch; `old`: built and
    stepped under `old_code()`."""
    if old:
        with old_code():
            step = orthojac_stepper(cfg, fast)

        def step_old():
            with old_code():
                step()

        return step_old
    model = build_model(cfg)
    forward = fastpath.prepare_model(model, fast)
    optimiser = fastpath.make_optimiser(model.parameters(), cfg.lr, fast)
    guard = fastpath.divergence_guard(optimiser, fast, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(cfg.batch_size, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (cfg.batch_size,), generator=gen)
    model.train()

    def step():
        loss = train.training_step(forward, model, optimiser, x, y, cfg, fast, guard)
        if loss is None:
            raise RuntimeError(f"{cfg.family}: the loss of a benchmark step is not finite")

    return step


def rnn_stepper(fast: FastPath):
    """One step of H1's loop (orthojac.thesis.common.fit): the RNN of Orthogonal_GainA_RegB
    (hidden 64, gain 1.1, λ 0.01), batch 256 of 28 rows of 28 pixels, cross-entropy plus the soft
    penalty; Adam fused or foreach, the RNN one hand-written node (orthojac.nets.fused.TanhRNN) or
    `nn.RNN`."""
    from orthojac.thesis import common, rnn, settings

    model = rnn.build("Orthogonal_GainA_RegB", 1.1, 64, 0)
    model.fused = fast.fused_layers
    run = next(r for r in rnn.runs(1.1, [0.01], [settings.VARIANTS[0]])
               if r["configuration"] == "Orthogonal_GainA_RegB")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fast.fused_adam or None)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 28, 28, generator=gen), torch.randint(0, 10, (256,), generator=gen)

    def step():
        loss = F.cross_entropy(model(x), y)
        if not common.descend(opt, loss + rnn.penalty(model, run)):
            raise RuntimeError("H1: the loss of a benchmark step is not finite")
        loss.item()

    return step


def dense_net_stepper(fast: FastPath, depth: int, width: int):
    """One step of H5's loop (orthojac.thesis.dense.train_curve), as the CPU reference trains it:
    DenseNet tanh with σ_w² = 1.05, orthogonal, depth 200, width 400 (--h5-depth, --h5-width), batch 128, SGD with momentum
    0.9 fused or foreach, hidden layers 2 … 200 one hand-written node (fused.AffineTanh) or modules."""
    from orthojac.thesis import common, dense

    model = dense.build(depth, width, "tanh", "orthogonal", 1.05, 0)
    model.fused = fast.fused_layers
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, fused=fast.fused_adam or None)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(128, 1, 28, 28, generator=gen), torch.randint(0, 10, (128,), generator=gen)

    def step():
        loss = F.cross_entropy(model(x), y)
        if not common.descend(opt, loss):
            raise RuntimeError("H5: the loss of a benchmark step is not finite")
        loss.item()

    return step


def count_flops(step) -> int:
    # torch's counter knows addmm, not its in-place form (the hand-written fold body's ∂W and ∂x:
    # orthojac.nets.fused); the same formula counts both
    def addmm_flop(self_shape, a_shape, b_shape, *args, **kwargs) -> int:
        return 2 * a_shape[0] * a_shape[1] * b_shape[1]

    inplace = {torch.ops.aten.addmm_: addmm_flop}
    # the compiled bodies' products are not ATen's: counted through the hand-written node's
    with native.off(), FlopCounterMode(display=False, custom_mapping=inplace) as counter:
        step()
    return counter.get_total_flops()


PRODUCT_OPS = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm"}


def product_seconds(step, steps: int = 3) -> tuple[float, float]:
    """(seconds a step spends in its matrix-product calls, the step's seconds), both under
    torch.profiler over `steps` steps after one of warm-up: the self CPU time of the calls in
    PRODUCT_OPS (not the copy of an `addmm`'s bias or skip term into its output, a kernel of its
    own), and the wall time of the profiled steps. FLOPs over the first are the rate the products run at inside the
    step, operands drawn from its working set: the step's ratio to the peak if nothing but its
    products took time (its ceiling for any lever that keeps the products and how their operands
    reach them: a cold operand's fetch is counted in the product that reads it). The step runs with
    the compiled bodies off (orthojac.nets.native), whose products the profiler does not see: a
    step's products as the hand-written node calls them."""
    step()
    with native.off(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall = time.perf_counter() - start
    micros = sum(event.self_cpu_time_total for event in prof.key_averages() if event.key in PRODUCT_OPS)
    return micros / 1e6 / steps, wall / steps


def time_in_turns(steppers: dict, steps: int, rounds: int, warmup: int = 3) -> dict:
    """Seconds per step of each stepper, timed in turns (a round of `steps` steps each, `rounds`
    times): the median round of each."""
    for step in steppers.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steppers}
    for _ in range(rounds):
        for name, step in steppers.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(t) for name, t in times.items()}


def whole_job(args, family: str, flags: list[str], full_train_evaluation: bool, out: Path,
              settings: dict | None = None) -> dict:
    """`python -m orthojac train` in a fresh process: one epoch of the dense network of
    FAMILY_SETTINGS[family] (or `settings`), one thread; its wall time from start to exit, and its
    config.json."""
    code = ("import sys, orthojac.run.train as t\n"
            + ("t.TRAIN_EVAL_SIZE = 10**9\n" if full_train_evaluation else "")
            + "t.main(sys.argv[1:])\n")
    network = [a for key, value in {"depth": args.depth, **(settings or FAMILY_SETTINGS[family])}.items()
               for a in (f"--{key.replace('_', '-')}", str(value))]
    cmd = [sys.executable, "-c", code, "--arch", "dense", *network,
           "--width", str(args.width), "--batch-size", str(args.batch),
           "--epochs", "1", "--train-size", str(args.job_images), "--val-size", str(args.job_val_size),
           "--data-dir", str(args.data_dir), "--out-dir", str(out), "--device", "cpu",
           "--threads", "1", *flags]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(train.__file__).parents[1]),
                                                                    os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"the job failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads((out / "config.json").read_text())
    return {"wall_seconds": wall, "train_seconds": summary["train_seconds"], "steps": summary["steps"],
            "evaluated": summary.get("evaluated", "all"), "fast_path": summary["environment"]["fast_path"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="*", default=list(FAMILY_SETTINGS), choices=list(FAMILY_SETTINGS))
    parser.add_argument("--depth", type=int, default=200)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="steps a round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of steps, in turns")
    parser.add_argument("--peak-trials", type=int, default=7)
    parser.add_argument("--no-rnn", dest="rnn", action="store_false", help="skip H1's RNN")
    parser.add_argument("--no-h5", dest="h5", action="store_false", help="skip H5's tanh network")
    parser.add_argument("--h5-depth", type=int, default=200, help="H5's depth (config/cpu.yaml: 200)")
    parser.add_argument("--h5-width", type=int, default=400, help="H5's width (config/cpu.yaml: 400)")
    parser.add_argument("--data-dir", type=Path, default=Path("results/data/fashion_mnist"),
                        help="Fashion-MNIST's IDX files, for the whole job")
    parser.add_argument("--job-images", type=int, default=50000, help="training images of the whole job (0: none)")
    parser.add_argument("--job-val-size", type=int, default=5000, help="validation images of the whole job")
    parser.add_argument("--no-old-job", dest="old_job", action="store_false",
                        help="skip the whole job with the old settings")
    parser.add_argument("--job-families", nargs="*", default=["fold"], choices=list(FAMILY_SETTINGS),
                        help="the networks timed as whole jobs (default: fold, the headline)")
    parser.add_argument("--job-rounds", type=int, default=1,
                        help="whole jobs of each kind, in turns (the median by wall time is reported)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "torch": torch.__version__, "threads": 1, "load_average": os.getloadavg(),
              "shape": {"depth": args.depth, "width": args.width, "batch": args.batch}}

    def save():
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")

    peak = matmul_rate(512, args.peak_trials)
    result["peak_flops"], result["matmul128_flops"] = peak, matmul_rate(128, args.peak_trials)
    print(f"peak (fp32 512³ matmul, one thread): {peak / 1e9:.1f} GFLOP/s; "
          f"128³: {result['matmul128_flops'] / 1e9:.1f} GFLOP/s ({result['matmul128_flops'] / peak:.2f} of peak)")
    print(f"\n{'network':<16} {'GFLOP/step':>10} {'ms/step':>9} {'steps/s':>8} {'of peak':>8} "
          f"{'old ms':>8} {'old of peak':>11} {'speed-up':>8} {'products':>9} {'ceiling':>8}")
    print("(products: ms a step in its matrix-product calls, profiled; ceiling: their FLOPs' rate over the "
          "peak, the step's ratio if nothing else took time)")
    result["steps"] = {}
    rows = [(f, lambda fast, old=False, f=f: orthojac_stepper(family_config(f, args), fast, old))
            for f in args.families]
    if args.rnn:
        rows.append(("H1 RNN", lambda fast, old=False: rnn_stepper(fast)))
    if args.h5:
        rows.append(("H5 tanh", lambda fast, old=False: dense_net_stepper(fast, args.h5_depth, args.h5_width)))
    for name, make in rows:
        flops, flops_old = count_flops(make(NEW)), count_flops(make(OLD, old=True))
        if name in CONVOLUTIONAL:  # the one-channel convolutions' FLOPs, whatever route computes them
            flops = flops_old
        seconds = time_in_turns({"new": make(NEW), "old": make(OLD, old=True)}, args.steps, args.rounds)
        new, old = flops / seconds["new"] / peak, flops_old / seconds["old"] / peak
        result["steps"][name] = {"flops": flops, "flops_old": flops_old, "seconds_new": seconds["new"],
                                 "seconds_old": seconds["old"], "peak_ratio_new": new, "peak_ratio_old": old}
        products = ""
        if name not in CONVOLUTIONAL:  # (a convolutional step's convolutions are not PRODUCT_OPS)
            in_products, profiled = product_seconds(make(NEW))
            ceiling = flops / in_products / peak
            result["steps"][name].update(product_seconds=in_products, profiled_seconds=profiled,
                                         products_peak_ratio=ceiling)
            products = f" {in_products * 1e3:>9.1f} {ceiling:>8.2f}"
        print(f"{name:<16} {flops / 1e9:>10.3f} {seconds['new'] * 1e3:>9.1f} {1 / seconds['new']:>8.2f} "
              f"{new:>8.2f} {seconds['old'] * 1e3:>8.1f} {old:>11.2f} {seconds['old'] / seconds['new']:>8.2f}"
              + products)
        save()

    for family in args.job_families if args.job_images else []:
        cfg = family_config(family, args)
        per_image = count_flops(orthojac_stepper(cfg, OLD)) / cfg.batch_size
        flops = per_image * args.job_images
        job_result = {"images": args.job_images, "training_flops": flops, "seconds_at_peak": flops / peak}
        result.setdefault("jobs", {})[family] = job_result
        print(f"\nwhole job: {cfg.arch} {family}, depth {cfg.depth}, width {args.width}, batch {args.batch}, one epoch "
              f"of {args.job_images} images, one thread ({flops / 1e12:.3f} TFLOP of training: "
              f"{flops / peak:.1f} s at the peak)")
        settings = [("new", [], False)] + ([("old", OLD_FLAGS, True)] if args.old_job else [])
        for turn in range(args.job_rounds):  # in turns: new, old, new, old, …
            for name, flags, full in settings:
                with tempfile.TemporaryDirectory() as tmp:
                    job = whole_job(args, family, flags, full, Path(tmp) / "run")
                job["job_peak_ratio"] = flops / peak / job["wall_seconds"]
                job["train_peak_ratio"] = flops / peak / job["train_seconds"]
                rate = result["steps"].get(family, {}).get("products_peak_ratio")
                if name == "new" and rate:
                    # the job with its training at its products' rate in the step and nothing else,
                    # its time outside training (start-up, data, evaluation, checkpoints) kept
                    job["outside_seconds"] = job["wall_seconds"] - job["train_seconds"]
                    job["job_ceiling"] = flops / peak / (flops / peak / rate + job["outside_seconds"])
                job_result.setdefault("rounds", []).append({"name": name, **job})
                rounds = [r for r in job_result["rounds"] if r["name"] == name]
                median = sorted(rounds, key=lambda r: r["wall_seconds"])[(len(rounds) - 1) // 2]
                job_result[name] = {k: v for k, v in median.items() if k != "name"}
                print(f"  {name} ({' '.join(flags) or 'default CPU settings'}"
                      f"{', whole training split evaluated' if full else ''}; round {turn + 1}): wall "
                      f"{job['wall_seconds']:.1f} s, training {job['train_seconds']:.1f} s; at-peak time / wall "
                      f"{job['job_peak_ratio']:.2f} (target ≥ 0.60), / training {job['train_peak_ratio']:.2f} "
                      f"(target ≥ 0.80)"
                      + (f"; ceiling with training at its products' rate, {job['outside_seconds']:.1f} s "
                         f"outside training kept: {job['job_ceiling']:.2f}" if "job_ceiling" in job else ""))
                save()
        if args.old_job:
            new, old = job_result["new"], job_result["old"]
            total = {name: sum(r["wall_seconds"] for r in job_result["rounds"] if r["name"] == name)
                     for name in ("new", "old")}
            job_result["old_over_new_wall_total"] = total["old"] / total["new"]
            print(f"  old / new: wall of the median rounds {old['wall_seconds'] / new['wall_seconds']:.2f}×, "
                  f"training {old['train_seconds'] / new['train_seconds']:.2f}×; wall of all rounds "
                  f"{total['old']:.1f} / {total['new']:.1f} s = {total['old'] / total['new']:.2f}×")
    result["peak_flops_end"] = matmul_rate(512, args.peak_trials)
    result["load_average_end"] = os.getloadavg()
    print(f"\npeak again at the end: {result['peak_flops_end'] / 1e9:.1f} GFLOP/s; "
          f"load average {result['load_average'][0]:.2f} → {result['load_average_end'][0]:.2f} (2 cores)")
    save()


if __name__ == "__main__":
    main()

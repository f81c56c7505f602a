"""Packing seeds into one process, measured before it is built into the jobs (issue 24's lever:
"several runs of the same shape packed into one process (seeds, grid points) if batched matmuls
beat separate jobs").

Everything on one thread, in this process:

1. the core's peak (the best fp32 512×512×512 matmul rate) and, at the width of the reference's
   depth-200 networks, the rate of one addmm (N × W × W, bias added) against one baddbmm over K
   networks (K × N × W × W): how much of the peak a width-W product reaches alone and batched;
2. for each K of --packs: K dense fold/ReLU networks (config/cpu.yaml's depth200_fold: depth
   --depth, width --width, batch --batch, bias −2, seeds 1 … K), each with its own batch, stepped
   (a) one after another, as K separate jobs step them (orthojac.run.train.training_step with the
       default CPU levers: fused Adam with its divergence guard, the body as one hand-written
       node, orthojac.nets.fused.DenseBody), and
   (b) packed: each network's first layer, head, loss, Adam and guard as in (a), but the K bodies
       as one autograd node whose every layer is one batched product for all K networks
       (`PackedFoldReLU` below: baddbmm/bmm where `fused.FoldReLU` runs addmm/mm);
   timed in turns (--rounds rounds of --steps steps of each; the median round), as ms per network
   and step, the ratio (a)/(b), and each as a fraction of the peak (the step's FLOPs counted by
   torch.utils.flop_counter, as benchmarks/cpu_speed.py counts them);
3. whether packing changes a bit: after the timed steps, every weight of every network in (a) and
   (b), and their last losses, compared with torch.equal (both started from the same weights and
   took the same batches). Packed jobs could keep the committed reference only where this holds.

    PYTHONPATH=src python benchmarks/packed_seeds.py --json benchmarks/packed_seeds_cpu.json

What this does not measure: the start-up, data loading and evaluation a packed job would share
across its K runs (benchmarks/cpu_speed.py's whole-job rows time them: 19–38 s a job), and the
packed evaluation.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_speed import best_rate, count_flops, family_config, matmul_rate  # noqa: E402

from orthojac.nets.models import build_model  # noqa: E402
from orthojac.run import fastpath, train  # noqa: E402
from orthojac.run.fastpath import FastPath  # noqa: E402

threshold_backward = torch.ops.aten.threshold_backward


class PackedFoldReLU:
    """`fused.FoldReLU` for K networks at once: x (K, N, W), weight (K, W, W), bias (K, W); the
    same six products as batched ones (baddbmm where FoldReLU runs addmm, bmm where it runs mm,
    with the same operands' layouts and factors) and the same elementwise kernels."""

    @staticmethod
    def forward(x, weight, bias):
        h = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2)).relu_()
        return torch.baddbmm(x, h, weight, alpha=-2), (x, h)

    @staticmethod
    def backward(g, weight, saved, own_g):
        x, h = saved
        du = threshold_backward(torch.baddbmm(g.new_zeros(()), g, weight.transpose(1, 2), beta=0, alpha=-2), h, 0)
        dw = torch.bmm(du.transpose(1, 2), x).baddbmm_(h.transpose(1, 2), g, alpha=-2)
        dx = g.baddbmm_(du, weight) if own_g else torch.baddbmm(g, du, weight)
        return dx, dw, du.sum(1)


class PackedBody(torch.autograd.Function):
    """apply(K, x, *params): K fold bodies of the same depth as one node; x (K, N, W) the K
    bodies' inputs stacked, params network after network, layer after layer (weight, bias).
    Each layer's K weights are stacked in the forward pass; the gradients come back per network
    as slices of the stacked ones."""

    @staticmethod
    def forward(ctx, k: int, x: torch.Tensor, *params: torch.Tensor):
        per_net = len(params) // k
        depth = per_net // 2
        weights = [torch.stack([params[n * per_net + 2 * i] for n in range(k)]) for i in range(depth)]
        biases = [torch.stack([params[n * per_net + 2 * i + 1] for n in range(k)]) for i in range(depth)]
        saved = []
        for w, b in zip(weights, biases):
            x, keep = PackedFoldReLU.forward(x, w, b)
            saved.extend(keep)
        ctx.k, ctx.depth = k, depth
        ctx.save_for_backward(*weights, *saved)
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        k, depth = ctx.k, ctx.depth
        tensors = ctx.saved_tensors
        weights, saved = tensors[:depth], tensors[depth:]
        dws, dbs = [None] * depth, [None] * depth
        g = g.contiguous()
        for i in reversed(range(depth)):
            g, dws[i], dbs[i] = PackedFoldReLU.backward(g, weights[i], saved[2 * i:2 * i + 2], i < depth - 1)
        grads = []
        for n in range(k):
            for i in range(depth):
                grads += [dws[i][n], dbs[i][n]]
        return (None, g, *grads)


def networks(args, k: int):
    """K networks (seeds 1 … K) with their optimisers and guards, as orthojac.run.train builds them."""
    fast = FastPath()
    nets = []
    for seed in range(1, k + 1):
        cfg = dataclasses.replace(family_config("fold", args), seed=seed)
        model = build_model(cfg)
        forward = fastpath.prepare_model(model, fast)
        optimiser = fastpath.make_optimiser(model.parameters(), cfg.lr, fast)
        guard = fastpath.divergence_guard(optimiser, fast, torch.device("cpu"))
        model.train()
        nets.append((cfg, model, forward, optimiser, guard))
    return fast, nets


def batches(args, k: int):
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(args.batch, 1, 28, 28, generator=gen), torch.randint(0, 10, (args.batch,), generator=gen))
            for _ in range(k)]


def separate_stepper(args, k: int):
    fast, nets = networks(args, k)
    data = batches(args, k)

    def step():
        losses = []
        for (cfg, model, forward, optimiser, guard), (x, y) in zip(nets, data):
            losses.append(train.training_step(forward, model, optimiser, x, y, cfg, fast, guard))
        return losses

    return step, nets


def packed_stepper(args, k: int):
    """The K networks' steps as one: first layers and heads per network, the bodies as `PackedBody`."""
    _, nets = networks(args, k)
    data = batches(args, k)
    body_params = [p for _, model, *_ in nets for layer in model.body for p in layer.fused_kernel()[1]]

    def step():
        xs = torch.stack([model.embed(x) for (_, model, *_), (x, _) in zip(nets, data)])
        outs = PackedBody.apply(k, xs, *body_params).unbind(0)
        losses = [F.cross_entropy(model.readout(out).float(), y)
                  for (_, model, *_), out, (_, y) in zip(nets, outs, data)]
        for (_, _, _, optimiser, guard), loss in zip(nets, losses):
            guard.observe(loss)
            optimiser.zero_grad(set_to_none=True)
        torch.autograd.backward(losses)
        for _, _, _, optimiser, _ in nets:
            optimiser.step()
        return losses

    return step, nets


def same_bits(nets_a, nets_b, losses_a, losses_b) -> bool:
    weights = all(torch.equal(p, q) for (_, a, *_), (_, b, *_) in zip(nets_a, nets_b)
                  for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    return weights and all(torch.equal(a, b) for a, b in zip(losses_a, losses_b))


def product_rates(width: int, batch: int, k: int, trials: int) -> dict:
    """GFLOP/s of one addmm (batch × width × width, bias) and of one baddbmm over k of them."""
    x, w, b = torch.randn(k, batch, width), torch.randn(k, width, width), torch.randn(k, width)
    flop = 2 * batch * width * width
    seconds = 0.06  # about 0.2 s a timing at this core's 30 GFLOP/s
    return {"addmm": best_rate(lambda: torch.addmm(b[0], x[0], w[0].t()), flop, trials, seconds) / 1e9,
            "baddbmm": best_rate(lambda: torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2)), k * flop, trials,
                                 seconds) / 1e9}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=200)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--packs", type=int, nargs="+", default=[2, 3], help="the K to measure (default 2 3)")
    parser.add_argument("--steps", type=int, default=4, help="steps of each network a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--peak-trials", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)

    peak = matmul_rate(512, args.peak_trials) / 1e9
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "pins": {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")},
              "settings": {k: getattr(args, k) for k in ("depth", "width", "batch", "steps", "rounds")},
              "peak_gflops": peak, "packs": {}}
    print(f"peak (512³ matmul, one thread): {peak:.1f} GFLOP/s")
    for k in args.packs:
        rates = product_rates(args.width, args.batch, k, args.peak_trials)
        separate, nets_a = separate_stepper(args, k)
        packed, nets_b = packed_stepper(args, k)
        flop = count_flops(separate) / k  # one network's step (the warm-up below repeats it on both)
        packed()  # the same number of steps on both before the timed ones
        times = {"separate": [], "packed": []}
        for _ in range(args.rounds):
            for name, step in (("separate", separate), ("packed", packed)):
                start = time.perf_counter()
                for _ in range(args.steps):
                    last = step()
                times[name].append((time.perf_counter() - start) / args.steps / k)
                if name == "separate":
                    losses_a = last
                else:
                    losses_b = last
        ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
        equal = same_bits(nets_a, nets_b, losses_a, losses_b)
        row = {"addmm_gflops": rates["addmm"], "baddbmm_gflops": rates["baddbmm"],
               "gflop_per_network_step": flop / 1e9, "ms_per_network_step": ms,
               "speedup": ms["separate"] / ms["packed"],
               "of_peak": {name: flop / (m / 1e3) / 1e9 / peak for name, m in ms.items()},
               "same_bits": equal, "steps_compared": 1 + args.rounds * args.steps + 1}
        result["packs"][k] = row
        print(f"K = {k}: addmm {rates['addmm']:.1f} GFLOP/s ({rates['addmm'] / peak:.2f} of peak), "
              f"baddbmm over {k} {rates['baddbmm']:.1f} ({rates['baddbmm'] / peak:.2f})")
        print(f"  a step, per network: separate {ms['separate']:.1f} ms ({row['of_peak']['separate']:.2f} of peak), "
              f"packed {ms['packed']:.1f} ms ({row['of_peak']['packed']:.2f}); ×{row['speedup']:.2f}; "
              f"the same bits after {row['steps_compared']} steps: {equal}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Training throughput: the naive loop against the pipeline's own training path, in one run (issue 7).

(a) naive: eager fp32 (TF32 off), a `DataLoader` over CPU tensors copied to the device batch by
    batch, `torch.optim.Adam` with its defaults, batch 128;
(b) pipeline: orthojac.train's `training_step` on data resident on the device, with the fast
    path's levers (orthojac.fastpath: the device's defaults, or the flags given here), at each
    --batch-sizes; and, with --pack K, K seeds of the same network packed into one vmapped model.

Images/s and the ratios to (a) are printed and written to --json. Images are random (normalised
Gaussian pixels, random labels): throughput does not depend on the pixels. With
--accuracy-data-dir the first family is also trained for --accuracy-epochs on real data, fp32
against the fast path on the same seed, and the test accuracies compared (issue 7: within 1 point).

GPU (the sizes of docs/replication.md §5):
    python benchmarks/train_throughput.py --device cuda --depth 200 --channels 32 --steps 60 \
        --pack 8 --json benchmarks/train_throughput_cuda.json
CPU (small sizes):
    python benchmarks/train_throughput.py --device cpu --threads 1 --depth 20 --channels 8 \
        --batch-sizes 128 --steps 20 --warmup 3 --json benchmarks/train_throughput_cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from orthojac import fastpath, train
from orthojac.checkpoint import write_text_atomic
from orthojac.config import RunConfig
from orthojac.fastpath import FastPath, PackedModels
from orthojac.models import build_model

NAIVE_BATCH = 128
FAMILY_SETTINGS = {  # docs/replication.md §5: fold and orthoff near the identity at the start; plain He-initialised
    "fold": {"bias_init": -2.0},
    "orthoff": {"activation": "abs", "bias_init": 0.0},
    "plain": {"init_scheme": "he"},
}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in
              (cpuinfo.read_text().splitlines() if cpuinfo.exists() else []) if line.startswith("model name")]
    return f"CPU: {models[0]}" if models else f"CPU: {platform.processor() or platform.machine()}"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, n_warmup: int, n_steps: int, device: torch.device) -> float:
    """Seconds for `n_steps` calls of step(i) after `n_warmup` untimed ones (compilation, graphs)."""
    for i in range(n_warmup):
        step(i)
    synchronize(device)
    start = time.perf_counter()
    for i in range(n_warmup, n_warmup + n_steps):
        step(i)
    synchronize(device)
    return time.perf_counter() - start


def images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def naive(cfg: RunConfig, x, y, device, n_warmup: int, n_steps: int) -> dict:
    """Eager fp32, DataLoader over CPU tensors, default Adam: what a first PyTorch script does."""
    fastpath.set_backends(FastPath())
    model = build_model(cfg).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loader = DataLoader(TensorDataset(x, y), batch_size=NAIVE_BATCH, shuffle=True, drop_last=True)
    batches = iter(())
    nonfinite = 0

    def step(_):
        nonlocal batches, nonfinite
        try:
            xb, yb = next(batches)
        except StopIteration:
            batches = iter(loader)
            xb, yb = next(batches)
        loss = F.cross_entropy(model(xb.to(device)), yb.to(device))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        nonfinite += not torch.isfinite(loss).item()

    seconds = timed(step, n_warmup, n_steps, device)
    return {"path": "naive", "batch_size": NAIVE_BATCH, "seconds": seconds,
            "nonfinite_steps": nonfinite}


def pipeline(cfg: RunConfig, x, y, device, fast: FastPath, n_warmup: int, n_steps: int) -> dict:
    """orthojac.train's step, as its loop runs it: data on the device, a permutation per epoch,
    the learning rate set each step."""
    fastpath.set_backends(fast)
    x, y = x.to(device), y.to(device)
    model = build_model(cfg).to(device)
    forward = fastpath.prepare_model(model, fast)
    optimiser = fastpath.make_optimiser(model.parameters(), cfg.lr, fast)
    per_epoch = len(x) // cfg.batch_size
    total = n_warmup + n_steps
    perm = torch.randperm(len(x), device=device)
    skipped = 0

    def step(i):
        nonlocal skipped
        s = i % per_epoch
        idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
        for group in optimiser.param_groups:
            group["lr"] = train.cosine_lr(cfg, i, total)
        skipped += train.training_step(forward, model, optimiser, x[idx], y[idx], cfg, fast) is None

    seconds = timed(step, n_warmup, n_steps, device)
    return {"path": "pipeline", "batch_size": cfg.batch_size, "seconds": seconds,
            "nonfinite_steps": skipped}


def packed(cfg: RunConfig, k: int, x, y, device, fast: FastPath, n_warmup: int, n_steps: int) -> dict:
    """K seeds of cfg's network as one vmapped model (orthojac.fastpath.PackedModels), each
    network on its own batch; images/s counts all K batches."""
    fastpath.set_backends(fast)
    x, y = x.to(device), y.to(device)
    model = PackedModels([build_model(RunConfig(**{**cfg.to_dict(), "seed": s})) for s in range(k)])
    model.to(device)
    forward = torch.compile(model) if fast.compile else model
    optimiser = fastpath.make_optimiser(model.parameters(), cfg.lr, fast)
    b = cfg.batch_size
    per_epoch = len(x) // (k * b)

    def step(i):
        s = i % per_epoch
        xb = x[s * k * b : (s + 1) * k * b].view(k, b, *x.shape[1:])
        yb = y[s * k * b : (s + 1) * k * b].view(k, b)
        with fastpath.autocast(fast, device):
            logits = forward(xb).float()
        loss = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none").view(k, b)
        optimiser.zero_grad(set_to_none=True)
        loss.mean(1).sum().backward()  # the sum of the K networks' own mean losses
        optimiser.step()

    seconds = timed(step, n_warmup, n_steps, device)
    return {"path": f"packed K={k}", "batch_size": k * b, "seconds": seconds, "nonfinite_steps": None}


def accuracy_check(cfg: RunConfig, data_dir: Path, device, fast: FastPath) -> dict:
    """Test accuracy after cfg.epochs of fp32 and of the fast path, same seed (issue 7)."""
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, f in (("fp32", FastPath()), ("fast", fast)):
            fastpath.set_backends(f)
            summary = train.train(cfg, data_dir, Path(tmp) / name, device, 0, f)
            m = pd.read_csv(Path(tmp) / name / "metrics.csv")
            test = m.query(f"split == 'test' and metric == 'accuracy' and epoch == {cfg.epochs}")
            result[name] = {"status": summary["status"], "train_seconds": summary["train_seconds"],
                            "test_accuracy": test["value"].item() if len(test) else math.nan}
    result["difference_points"] = 100 * (result["fast"]["test_accuracy"] - result["fp32"]["test_accuracy"])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda[:N]")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for PyTorch (0: its default)")
    parser.add_argument("--families", nargs="+", default=list(FAMILY_SETTINGS), choices=list(FAMILY_SETTINGS),
                        help="layer families to measure")
    parser.add_argument("--depth", type=int, default=200, help="body depth L (docs/replication.md §5: 200)")
    parser.add_argument("--channels", type=int, default=32, help="channels C (docs/replication.md §5: 32)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024],
                        help="batch sizes of the pipeline path (the naive loop always uses 128)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=10,
                        help="untimed steps first (compilation, CUDA graph capture, cuDNN autotuning)")
    parser.add_argument("--pack", type=int, default=0,
                        help="also measure K seeds packed into one vmapped model at batch 128 (0: off)")
    parser.add_argument("--accuracy-data-dir", type=Path, default=None,
                        help="IDX folder: also train the first family fp32 vs fast path and compare")
    parser.add_argument("--accuracy-epochs", type=int, default=2, help="epochs of the accuracy check")
    parser.add_argument("--accuracy-train-size", type=int, default=0,
                        help="training images of the accuracy check (0: all but validation)")
    parser.add_argument("--accuracy-test-size", type=int, default=0,
                        help="test (and validation) images of the accuracy check "
                        "(0: all test images, 5000 validation)")
    parser.add_argument("--json", type=Path, required=True, help="where to write the results")
    fastpath.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = train.select_device(args.device)
    fast = fastpath.resolve(args, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    n_images = max(args.steps + args.warmup, 1) * max(args.batch_sizes + [NAIVE_BATCH * max(args.pack, 1)])
    x, y = images(min(n_images, 60_000) if device.type == "cuda" else n_images)
    if len(x) < max(args.batch_sizes + [NAIVE_BATCH * max(args.pack, 1)]):
        raise ValueError("the largest batch exceeds the 60,000 images of the data set")

    rows = []
    for family in args.families:
        base = {"family": family, "depth": args.depth, "channels": args.channels, "lr": 3e-4,
                **FAMILY_SETTINGS[family]}
        cfg = RunConfig(**base, batch_size=NAIVE_BATCH)
        measurements = [lambda: naive(cfg, x, y, device, args.warmup, args.steps)]
        measurements += [lambda b=b: pipeline(RunConfig(**base, batch_size=b), x, y, device, fast,
                                              args.warmup, args.steps) for b in args.batch_sizes]
        if args.pack:
            measurements.append(lambda: packed(cfg, args.pack, x, y, device, fast, args.warmup, args.steps))
        naive_rate = None
        for measure in measurements:
            row = measure()
            rate = row["batch_size"] * args.steps / row["seconds"]
            naive_rate = naive_rate or rate  # the first measurement is the naive loop's
            rows.append({"family": family, **row, "images_per_s": rate, "ratio_to_naive": rate / naive_rate})
            print(f"{family:8s} {row['path']:12s} batch {row['batch_size']:5d}: {rate:10.1f} images/s "
                  f"({rate / naive_rate:5.2f}× naive)", flush=True)

    accuracy = None
    if args.accuracy_data_dir:
        family = args.families[0]
        cfg = RunConfig(family=family, depth=args.depth, channels=args.channels, lr=3e-4, batch_size=128,
                        epochs=args.accuracy_epochs, train_size=args.accuracy_train_size,
                        test_size=args.accuracy_test_size, val_size=args.accuracy_test_size or 5000,
                        **FAMILY_SETTINGS[family])
        accuracy = accuracy_check(cfg, args.accuracy_data_dir, device, fast)
        print(f"accuracy after {cfg.epochs} epochs ({family}): fp32 "
              f"{accuracy['fp32']['test_accuracy']:.4f}, fast {accuracy['fast']['test_accuracy']:.4f} "
              f"({accuracy['difference_points']:+.2f} points)", flush=True)

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_name(device),
        "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
        "command": " ".join(sys.argv), "fast_path": fast.to_dict(), "steps": args.steps,
        "warmup": args.warmup, "images": len(x), "results": rows, "accuracy": accuracy,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

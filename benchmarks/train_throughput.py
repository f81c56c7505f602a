"""Training throughput: the naive loop against the pipeline's own training path, in one run (issues 7, 17).

(a) naive: eager fp32 (TF32 off), a `DataLoader` over CPU tensors copied to the device batch by
    batch, `torch.optim.Adam` with its defaults, batch 128, --steps timed steps;
(b) pipeline: `orthojac.run.train.train` itself — the data set resident on the device as training
    holds it (IDX files → normalised NCHW fp32), one permutation an epoch, the smaller last batch,
    the cosine learning rate, the divergence test, checkpoints every --checkpoint-every steps and
    the evaluation after each epoch — with the fast path's levers (orthojac.run.fastpath: the device's
    defaults, or the flags given here), at each --batch-sizes, for --epochs epochs of
    --train-size images. Its rate is that of the epochs after the first (read from the run's
    metrics.csv: training seconds, evaluation excluded); the first epoch's excess over them is
    reported as `compile_seconds` (compilation, CUDA graph recording, warm-up);
(c) with --pack K, K seeds of the same network packed into one vmapped model (orthojac.run.fastpath.
    PackedModels: not what a training run uses; a lever measured for the grids).

No `cudnn.benchmark`: training does not set it. Images/s and the ratios to (a) are printed and
written to --json. --data-dir: the IDX folder to train on (Fashion-MNIST; the rate does not depend
on the pixels); without it, random images in the same files and layout. With --accuracy-data-dir
the first family is also trained for --accuracy-epochs on real data, fp32 against the fast path
on the same seed, and the test accuracies compared (issue 7: within 1 point).

GPU (the sizes measured on one H100, depth 200, C = 32):
    python benchmarks/train_throughput.py --device cuda --depth 200 --channels 32 \
        --data-dir results/data/fashion_mnist --json benchmarks/train_throughput_cuda.json
CPU (small sizes):
    python benchmarks/train_throughput.py --device cpu --threads 1 --depth 20 --channels 8 \
        --batch-sizes 128 --steps 20 --warmup 3 --train-size 2000 --json benchmarks/train_throughput_cpu.json
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

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from orthojac.run import fastpath, train
from orthojac.files import write_text_atomic
from orthojac.config import RunConfig
from orthojac.device import select_device
from orthojac.run.fastpath import FastPath, PackedModels
from orthojac.nets.models import build_model

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


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file of uint8 `array`, as the data rule leaves Fashion-MNIST's."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def random_idx(folder: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Random images and labels in the four IDX files training reads."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n))
    return folder


def pipeline(cfg: RunConfig, data_dir: Path, device, fast: FastPath, checkpoint_every: int) -> dict:
    """`orthojac.run.train.train` for cfg.epochs ≥ 2 epochs; the rate of the epochs after the first."""
    fastpath.set_backends(fast)
    with tempfile.TemporaryDirectory() as tmp:
        summary = train.train(cfg, data_dir, Path(tmp) / "run", device, checkpoint_every, fast)
        m = pd.read_csv(Path(tmp) / "run" / "metrics.csv")
    seconds = m.query("split == 'train' and metric == 'seconds'").set_index("epoch")["value"]
    if summary["status"] != "completed" or len(seconds) < 2:
        raise RuntimeError(f"pipeline run at batch {cfg.batch_size}: {summary['status']} after "
                           f"{summary['steps']} steps; the rate needs two completed epochs")
    later = (seconds.iloc[-1] - seconds.iloc[0]) / (len(seconds) - 1)  # seconds an epoch, steady
    n = cfg.train_size
    return {"path": "pipeline", "batch_size": cfg.batch_size, "seconds": later,
            "images": n, "last_batch": n - (math.ceil(n / cfg.batch_size) - 1) * cfg.batch_size,
            "steps_per_epoch": math.ceil(n / cfg.batch_size), "epochs": cfg.epochs,
            "compile_seconds": seconds.iloc[0] - later, "nonfinite_steps": 0}


def packed(cfg: RunConfig, k: int, x, y, device, fast: FastPath, n_warmup: int, n_steps: int) -> dict:
    """K seeds of cfg's network as one vmapped model (orthojac.run.fastpath.PackedModels), each
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
    parser.add_argument("--steps", type=int, default=60,
                        help="timed steps of the naive loop and of the packed model")
    parser.add_argument("--warmup", type=int, default=10,
                        help="untimed steps first (naive, packed: compilation, CUDA graph capture)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="IDX folder the pipeline trains on (default: random images, same layout)")
    parser.add_argument("--train-size", type=int, default=20_000,
                        help="training images of the pipeline's epochs (not a multiple of a batch "
                        "size: the last batch is smaller, as in training)")
    parser.add_argument("--eval-size", type=int, default=1000,
                        help="validation and test images the pipeline evaluates after each epoch")
    parser.add_argument("--epochs", type=int, default=2,
                        help="pipeline epochs (≥ 2: the first holds compilation and warm-up)")
    parser.add_argument("--checkpoint-every", type=int, default=200,
                        help="the pipeline's checkpoints, as training's default")
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
    device = select_device(args.device)
    fast = fastpath.resolve(args, device)
    if args.epochs < 2:
        raise ValueError(f"--epochs {args.epochs}: the pipeline's rate needs at least 2 epochs")
    n_images = max(args.steps + args.warmup, 1) * NAIVE_BATCH * max(args.pack, 1)
    x, y = images(min(n_images, 60_000) if device.type == "cuda" else n_images)
    tmp = tempfile.TemporaryDirectory()
    data_dir = args.data_dir or random_idx(Path(tmp.name), args.train_size + args.eval_size,
                                           args.eval_size)

    rows = []
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_name(device),
        "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
        "command": " ".join(sys.argv), "fast_path": fast.to_dict(), "steps": args.steps,
        "warmup": args.warmup, "data_dir": str(args.data_dir) if args.data_dir else "random",
        "results": rows, "accuracy": None,
    }

    def write():  # after every measurement: a run stopped midway keeps what it measured
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")

    for family in args.families:
        base = {"family": family, "depth": args.depth, "channels": args.channels, "lr": 3e-4,
                **FAMILY_SETTINGS[family]}
        cfg = RunConfig(**base, batch_size=NAIVE_BATCH)
        measurements = [lambda: naive(cfg, x, y, device, args.warmup, args.steps)]
        measurements += [lambda b=b: pipeline(
            RunConfig(**base, batch_size=b, epochs=args.epochs, train_size=args.train_size,
                      val_size=args.eval_size, test_size=args.eval_size),
            data_dir, device, fast, args.checkpoint_every) for b in args.batch_sizes]
        if args.pack:
            measurements.append(lambda: packed(cfg, args.pack, x, y, device, fast, args.warmup, args.steps))
        naive_rate = None
        for measure in measurements:
            row = measure()
            done = row.get("images", row["batch_size"] * args.steps)
            rate = done / row["seconds"]
            naive_rate = naive_rate or rate  # the first measurement is the naive loop's
            rows.append({"family": family, **row, "images_per_s": rate, "ratio_to_naive": rate / naive_rate})
            extra = (f", first epoch {row['compile_seconds']:+.1f} s" if "compile_seconds" in row else "")
            print(f"{family:8s} {row['path']:12s} batch {row['batch_size']:5d}: {rate:10.1f} images/s "
                  f"({rate / naive_rate:5.2f}× naive{extra})", flush=True)
            write()

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

    result["accuracy"] = accuracy
    write()
    tmp.cleanup()


if __name__ == "__main__":
    main()

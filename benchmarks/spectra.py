"""Benchmark of the spectrum stage, one run, ratios measured in that run.

    python benchmarks/spectra.py [--results results] [--channels 1 2 4] [--depth 8]

1. For a convolutional fold body (depth --depth, C channels, dimension 784·C), each method's wall
   time and peak resident memory (each case in a fresh process, so ru_maxrss is its own peak):
   exact (chunked jacrev + svdvals), lanczos (σ_max, σ_min matrix-free), and
   torch.autograd.functional.jacobian(vectorize=False) (+ svdvals) at the smallest dimension,
   with the ratio of each to the latter.
2. Spectra cost / training time of every run found under RESULTS (see `training_ratio`): in-process
   compute seconds and whole-job wall seconds; the target is a compute ratio ≤ 5 % for every
   trained run of the quick configuration.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path

import pandas as pd
import torch


def _case(method: str, channels: int, depth: int, queue) -> None:
    torch.set_num_threads(1)
    from orthojac.config import RunConfig
    from orthojac.nets.models import build_model
    from orthojac.spectra import jacobian_spectrum
    from orthojac.spectra.free import extreme_singular_values

    cfg = RunConfig(arch="conv", family="fold", channels=channels, depth=depth, bias_init=-0.5)
    body = build_model(cfg).double().body
    x = torch.randn(channels, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if method == "exact":
        jacobian_spectrum(body, x, chunk_size=256)
    elif method == "lanczos":
        extreme_singular_values(body, x)
    else:
        jac = torch.autograd.functional.jacobian(lambda v: body(v.unsqueeze(0)).reshape(-1), x,
                                                 vectorize=False)
        torch.linalg.svdvals(jac.reshape(x.numel(), x.numel()))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((seconds, (peak - base) / 1024))


def measure(method: str, channels: int, depth: int) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(method, channels, depth, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def training_ratio(results: Path) -> pd.DataFrame:
    """Per run, two ratios of the spectra (all checkpoints) to the training:
    - compute: seconds inside the processes, spectra (`*.timing.json`: model built to rows ready)
      over the training loop (config.json `train_seconds`);
    - jobs: the same jobs' wall time from Snakemake's benchmark TSVs (Python and torch start-up,
      data loading and evaluation included).
    A run of 0 epochs (a measurement at initialisation) has no training to compare with: NaN."""
    rows = []
    for config in sorted((results / "runs").glob("*/*/config.json")):
        experiment, run = config.parent.parent.name, config.parent.name
        # Spectra of this training run were written after it: older ones are left from an earlier run.
        timings = [t for t in sorted((results / "spectra" / experiment / run).glob("*.timing.json"))
                   if t.stat().st_mtime >= config.stat().st_mtime]
        if not timings:
            continue
        spectrum_tsvs = [results / "benchmarks" / "spectrum" / experiment / run / f"{t.name.split('.')[0]}.tsv"
                         for t in timings]
        train_tsv = results / "benchmarks" / "train" / experiment / f"{run}.tsv"
        summary = json.loads(config.read_text())
        rows.append({
            "experiment": experiment, "run": run, "checkpoints": len(timings),
            "dimension": json.loads(timings[0].read_text())["dimension"],
            "train_s": summary["train_seconds"] if summary["steps"] else float("nan"),
            "spectra_s": sum(json.loads(t.read_text())["seconds"] for t in timings),
            "train_job_s": _tsv_seconds(train_tsv) if train_tsv.exists() else float("nan"),
            "spectra_jobs_s": sum(_tsv_seconds(t) for t in spectrum_tsvs),
        })
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["compute_ratio"] = table["spectra_s"] / table["train_s"]
    table["job_ratio"] = table["spectra_jobs_s"] / table["train_job_s"]
    return table.set_index(["experiment", "run"])


def _tsv_seconds(path: Path) -> float:
    return float(pd.read_csv(path, sep="\t")["s"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"), help="folder with benchmarks/")
    parser.add_argument("--channels", type=int, nargs="+", default=[1, 2, 4], help="C of the bodies")
    parser.add_argument("--depth", type=int, default=8, help="layers of the bodies")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, 1 thread, float64, conv fold body depth {args.depth}")
    rows = []
    reference = measure("autograd_unvectorised", min(args.channels), args.depth)
    rows.append(("autograd_unvectorised", 784 * min(args.channels), *reference))
    for channels in args.channels:
        for method in ("exact", "lanczos"):
            rows.append((method, 784 * channels, *measure(method, channels, args.depth)))
    table = pd.DataFrame(rows, columns=["method", "dimension", "seconds", "peak_MiB"])
    small = table["dimension"] == table["dimension"].min()
    table["speedup_vs_autograd"] = (reference[0] / table["seconds"]).where(small)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    ratios = training_ratio(args.results)
    if ratios.empty:
        print(f"\nno spectra timings under {args.results}/spectra: run the quick configuration first")
        return
    print("\nspectra / training per run, all checkpoints (target: compute_ratio ≤ 0.05):")
    print(ratios.to_string(float_format=lambda v: f"{v:.3g}"))
    trained = ratios.dropna(subset=["compute_ratio"])
    print(f"trained runs: {len(trained)}; compute ratio max {trained['compute_ratio'].max():.3g}, "
          f"over 5 %: {(trained['compute_ratio'] > 0.05).sum()}; job ratio max "
          f"{trained['job_ratio'].max():.3g}. Runs of 0 epochs (initialisation only): "
          f"{len(ratios) - len(trained)}")

if __name__ == "__main__":
    main()

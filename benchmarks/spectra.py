"""Benchmark of the spectrum stage, one run, ratios measured in that run.

    python benchmarks/spectra.py [--results results] [--channels 1 2 4] [--depth 8]

1. For a convolutional fold body (depth --depth, C channels, dimension 784·C), each method's wall
   time and peak resident memory (each case in a fresh process, so ru_maxrss is its own peak):
   exact (chunked jacrev + svdvals), lanczos (σ_max, σ_min matrix-free), and
   torch.autograd.functional.jacobian(vectorize=False) (+ svdvals) at the smallest dimension,
   with the ratio of each to the latter.
2. Spectra cost / training time of every run found under RESULTS/benchmarks (the `s` column of
   Snakemake's benchmark TSVs): the target is ≤ 5 % for the quick configuration.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from pathlib import Path

import pandas as pd
import torch


def _case(method: str, channels: int, depth: int, queue) -> None:
    torch.set_num_threads(1)
    from orthojac.config import RunConfig
    from orthojac.models import build_model
    from orthojac.spectra import jacobian_spectrum
    from orthojac.spectra_free import extreme_singular_values

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
    """Per run: training seconds, spectra seconds (all checkpoints), and their ratio."""
    def seconds(kind):
        rows = []
        for tsv in (results / "benchmarks" / kind).glob("*/*/*.tsv" if kind == "spectrum" else "*/*.tsv"):
            run = tsv.parent if kind == "spectrum" else tsv.with_suffix("")
            rows.append({"experiment": run.parent.name, "run": run.name,
                         "s": pd.read_csv(tsv, sep="\t")["s"].iloc[0]})
        frame = pd.DataFrame(rows, columns=["experiment", "run", "s"])
        return frame.groupby(["experiment", "run"])["s"].sum()

    table = pd.concat({"train_s": seconds("train"), "spectra_s": seconds("spectrum")}, axis=1).dropna()
    table["ratio"] = table["spectra_s"] / table["train_s"]
    return table


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
        print(f"\nno benchmark TSVs under {args.results}/benchmarks: run the quick configuration first")
        return
    print("\nspectra / training time per run (target ≤ 0.05):")
    print(ratios.to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"max ratio {ratios['ratio'].max():.3g}; runs over 5 %: {(ratios['ratio'] > 0.05).sum()}")


if __name__ == "__main__":
    main()

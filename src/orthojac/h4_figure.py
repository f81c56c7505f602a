"""The H4 figure, from the H4 table only (orthojac.h4).

    python -m orthojac.h4_figure --table results/tables/h4.csv --out results/figures/h4_spectra.png

One panel per activation (columns) and moment of λ = σ²(J) (rows: mean, variance, max) against
depth L; points: the empirical moment averaged over seeds, per weight distribution; dashed lines:
the wide-limit theory at criticality (mean χ^L = 1, variance L(m₂/m₁² − 1 − s₁), the max from
Hlav §3 where φ' ∈ {0, 1}).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

METRICS = ("mean", "variance", "max")
COLOURS = {"gaussian": "tab:red", "orthogonal": "tab:blue"}


def h4_spectra(table: pd.DataFrame, path: Path) -> None:
    activations = list(dict.fromkeys(table["activation"]))
    fig, axes = plt.subplots(len(METRICS), len(activations), figsize=(3.6 * len(activations), 8),
                             squeeze=False, sharex=True)
    avg = table.groupby(["activation", "weights", "metric", "depth"])[["empirical", "theory"]].mean().reset_index()
    for j, activation in enumerate(activations):
        for i, metric in enumerate(METRICS):
            ax = axes[i, j]
            for weights, colour in COLOURS.items():
                data = avg[(avg.activation == activation) & (avg.weights == weights) & (avg.metric == metric)]
                if data.empty:
                    continue
                ax.plot(data["depth"], data["empirical"], "o", color=colour, label=f"{weights}: empirical")
                if data["theory"].notna().any():
                    ax.plot(data["depth"], data["theory"], "--", color=colour, label=f"{weights}: theory")
            ax.set_xscale("log")
            ax.set_xticks(sorted(set(avg["depth"])))
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            if metric != "mean":
                ax.set_yscale("symlog", linthresh=1e-2)
            ax.set_title(f"{activation}: {metric} of σ²", fontsize=9)
            ax.set_xlabel("depth L")
    axes[0, 0].legend(fontsize=7)
    width = int(table["width"].iloc[0])
    fig.suptitle(f"Squared singular values of the input–output Jacobian at initialisation (width {width})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac-h4-figure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, required=True, help="the H4 table (orthojac.h4)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    h4_spectra(pd.read_csv(args.table), args.out)


if __name__ == "__main__":
    main()

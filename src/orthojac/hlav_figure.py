"""The H1 figures (Hlav Figs. 7–8 counterparts), from the H1 table only (orthojac.hlav).

    python -m orthojac.hlav_figure --table results/tables/hlav_rnn.csv \
        --spectrum results/figures/hlav_spectrum.png --accuracy results/figures/hlav_accuracy.png

Spectrum (Fig. 7): one panel per configuration, the recurrent kernel's singular values against
epoch, averaged over seeds: mean ± std (band), min and max (lines); dotted: the gain g.
Accuracy (Fig. 8): validation accuracy against epoch (seed mean), one panel per regulariser form
(eq. 11, the listing); the unregularised configurations appear in both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

KEYS = ["label", "variant", "gain", "epoch"]


def _wide(table: pd.DataFrame) -> pd.DataFrame:
    """Seed-averaged metrics, one column each, one row per (label, variant, gain, epoch)."""
    return table.pivot_table(index=KEYS, columns="metric", values="value", aggfunc="mean").reset_index()


def spectrum_figure(table: pd.DataFrame, path: Path) -> None:
    wide = _wide(table).dropna(subset=["sv_mean"])
    panels = list(wide.groupby(["label", "variant"], sort=False))
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False, sharex=True)
    for ax, ((label, variant), d) in zip(axes.flat, panels):
        d = d.sort_values("epoch")
        ax.fill_between(d["epoch"], d["sv_mean"] - d["sv_std"], d["sv_mean"] + d["sv_std"],
                        color="tab:green", alpha=0.3, label="mean ± std")
        ax.plot(d["epoch"], d["sv_mean"], color="tab:green")
        ax.plot(d["epoch"], d["sv_min"], color="tab:red", label="min")
        ax.plot(d["epoch"], d["sv_max"], color="tab:blue", label="max")
        ax.axhline(d["gain"].iloc[0], color="k", ls=":", lw=0.8)
        ax.set_title(f"{label}" + ("" if variant == "none" else f" ({variant})"), fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("σ(W)")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def accuracy_figure(table: pd.DataFrame, path: Path) -> None:
    wide = _wide(table).dropna(subset=["val_accuracy"])
    variants = sorted(v for v in wide["variant"].unique() if v != "none") or ["none"]
    fig, axes = plt.subplots(1, len(variants), figsize=(5.5 * len(variants), 3.8), squeeze=False, sharey=True)
    for ax, variant in zip(axes.flat, variants):
        shown = wide[wide["variant"].isin([variant, "none"])]
        for label, d in shown.groupby("label", sort=False):
            ax.plot(d["epoch"], d["val_accuracy"], marker=".", label=label)
        ax.set_title(f"regulariser: {variant}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac-hlav-figure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, required=True, help="the H1 table (orthojac.hlav collect)")
    parser.add_argument("--spectrum", type=Path, required=True, help="PNG: recurrent spectrum per epoch (Fig. 7)")
    parser.add_argument("--accuracy", type=Path, required=True, help="PNG: validation accuracy per epoch (Fig. 8)")
    args = parser.parse_args(argv)
    table = pd.read_csv(args.table)
    if table.empty:
        raise SystemExit(f"{args.table}: the H1 table is empty")
    spectrum_figure(table, args.spectrum)
    accuracy_figure(table, args.accuracy)


if __name__ == "__main__":
    main()

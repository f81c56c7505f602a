"""The H3 and H5 figures (Hlav Figs. 2 and 3 counterparts), from their tables only.

    python -m orthojac.hlav_depth_figure hlav_linear --table results/tables/hlav_linear.csv \
        --out results/figures/hlav_linear.png
    python -m orthojac.hlav_depth_figure hlav_deep --table results/tables/hlav_deep.csv \
        --out results/figures/hlav_deep.png

H3 (Fig. 2: "time of training to reach a certain accuracy threshold"): left, the SGD steps to the
target validation accuracy against depth (median over seeds, each seed a dot; runs that never
reach it, or diverge, sit on the "not reached" line); right, the validation accuracy curves.
H5 (Fig. 3, its colours and line styles): test accuracy and test loss against epoch; blue tanh
σ_w² = 1.05, red tanh σ_w² = 2, black ReLU σ_w² = 2; solid orthogonal, dashed Gaussian; a cross
where a run diverged.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .files import atomic_write_bytes  # noqa: E402
from .claims import h3_learning_times  # noqa: E402

STYLE = {"orthogonal": "-", "gaussian": "--"}
COLOUR = {"orthogonal": "tab:green", "gaussian": "tab:purple"}
NETWORK_COLOUR = {"tanh:1.05": "tab:blue", "tanh:2": "tab:red", "relu:2": "black"}


def _save(fig, path: Path) -> None:
    """Write the PNG atomically: a half-written figure never stands in for a finished one."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def linear_figure(table: pd.DataFrame, path: Path) -> None:
    times = h3_learning_times(table)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    reached = times["steps"].dropna()
    ceiling = 1.5 * (reached.max() if not reached.empty else table["step"].max() or 1)
    for weights, d in times.groupby("weights"):
        steps = d["steps"].fillna(ceiling)
        left.scatter(d["depth"], steps, color=COLOUR.get(weights), alpha=0.4, s=14)
        med = steps.groupby(d["depth"]).median()
        left.plot(med.index, med.values, STYLE.get(weights, "-"), marker="o", color=COLOUR.get(weights),
                  label=weights)
    left.axhline(ceiling, color="grey", lw=0.8, ls=":")
    left.text(times["depth"].min(), ceiling, "not reached / diverged", va="bottom", fontsize=8, color="grey")
    left.set_xscale("log", base=2)
    left.set(xlabel="depth L (hidden layers)", ylabel=f"SGD steps to val accuracy {times['target'].iloc[0]:g}",
             title="H3: time to accuracy (Hlav Fig. 2)")
    left.legend(handlelength=3)
    curves = table[table["metric"] == "val_accuracy"]
    depths = sorted(curves["depth"].unique())
    cmap = plt.get_cmap("viridis", max(len(depths), 2))
    for (weights, depth), d in curves.groupby(["weights", "depth"]):
        mean = d.groupby("step")["value"].mean()
        right.plot(mean.index, mean.values, STYLE.get(weights, "-"), color=cmap(depths.index(depth)), lw=1,
                   label=f"{weights} L={depth}")
    right.axhline(times["target"].iloc[0], color="grey", lw=0.8, ls=":")
    right.set(xlabel="SGD step", ylabel="validation accuracy (seed mean)", title="solid orthogonal, dashed Gaussian")
    right.legend(fontsize=6, ncol=2)
    _save(fig, path)


def deep_figure(table: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (network, weights), d in table.groupby(["network", "weights"], sort=False):
        colour = NETWORK_COLOUR.get(network)
        for ax, metric in zip(axes, ("test_accuracy", "test_loss")):
            m = d[d["metric"] == metric].groupby("epoch")["value"].mean()
            ax.plot(m.index, m.values, STYLE.get(weights, "-"), color=colour, marker=".", label=f"{network} {weights}")
            diverged = d[d["metric"] == "diverged"]
            if not diverged.empty and not m.empty:
                ax.scatter(diverged["epoch"], np.full(len(diverged), m.values[-1]), marker="x", color=colour, s=40)
    depth, width = table["depth"].iloc[0], table["width"].iloc[0]
    axes[0].set(xlabel="epoch", ylabel="test accuracy", title=f"H5: depth {depth}, width {width} (Hlav Fig. 3)")
    axes[1].set(xlabel="epoch", ylabel="test loss", title="solid orthogonal, dashed Gaussian")
    axes[0].legend(fontsize=7, handlelength=3)
    _save(fig, path)


FIGURES = {"hlav_linear": linear_figure, "hlav_deep": deep_figure}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac-hlav-depth-figure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=sorted(FIGURES), help="which table: H3 (hlav_linear) or H5 (hlav_deep)")
    parser.add_argument("--table", type=Path, required=True, help="the section's tidy CSV")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    table = pd.read_csv(args.table)
    if table.empty:
        raise SystemExit(f"{args.table}: no rows to draw")
    FIGURES[args.section](table, args.out)


if __name__ == "__main__":
    main()

"""The thesis figures (Hlav's counterparts), each section's from its table only. No torch.

    python -m orthojac thesis-figures SECTION --table results/tables/SECTION.csv --out-dir results/figures

writes each figure of the section into --out-dir as <name>.png, by the function of this module
its declaration names. What each figure is (its name, caption, table and function) is declared once, as a
Figure among the section's figures in orthojac.workflow.sections.EXPERIMENTS; the report shows its caption.
When H2's table says the data was unavailable, each of its figures is a panel that says so.

Every file is written atomically, at one resolution (orthojac.report.figures.save_figure).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..claims import h3_learning_times  # noqa: E402
from ..report.figures import message_figure, save_figure  # noqa: E402
from ..workflow import SECTIONS  # noqa: E402
from . import UNAVAILABLE  # noqa: E402

KEYS = ["label", "variant", "gain", "epoch"]
STYLE = {"orthogonal": "-", "gaussian": "--"}
COLOUR = {"orthogonal": "tab:green", "gaussian": "tab:purple"}
NETWORK_COLOUR = {"tanh:1.05": "tab:blue", "tanh:2": "tab:red", "relu:2": "black"}
METRICS = ("mean", "variance", "max")
COLOURS = {"gaussian": "tab:red", "orthogonal": "tab:blue"}


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
    save_figure(fig, path)


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
    save_figure(fig, path)


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
    save_figure(fig, path)


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
    save_figure(fig, path)


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
    save_figure(fig, path)


def _unavailable(table: pd.DataFrame, path: Path, what: str) -> bool:
    """Whether H2's table says the data was unavailable; if so, `path` is a panel that says so."""
    if not (table["status"] == UNAVAILABLE).any():
        return False
    message_figure(path, f"H2 {what}: data unavailable, nothing trained\n(the report lists the sources tried)")
    return True


def lstm_spectrum_figure(table: pd.DataFrame, path: Path) -> None:
    """H2's spectrum figure, or a panel that says the data was unavailable."""
    if not _unavailable(table, path, "recurrent spectrum"):
        spectrum_figure(table, path)


def lstm_accuracy_figure(table: pd.DataFrame, path: Path) -> None:
    """H2's accuracy figure, or a panel that says the data was unavailable."""
    if not _unavailable(table, path, "validation accuracy"):
        accuracy_figure(table, path)


def draw(section: str, table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write the section's figures (orthojac.workflow.SECTIONS) into `out_dir`: each <name>.png by
    the function of this module its declaration names (Figure.draw); their paths."""
    paths = []
    for name, figure in SECTIONS[section].figures.items():
        function = globals().get(figure.draw)
        if not callable(function):
            raise ValueError(f"thesis figure {name!r}: its drawing function {figure.draw!r} is not a "
                             "function of orthojac.thesis.figures")
        paths.append(Path(out_dir) / f"{name}.png")
        function(table, paths[-1])
    return paths

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac thesis-figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=list(SECTIONS), help="which section's table and figures")
    parser.add_argument("--table", type=Path, required=True, help="the section's tidy CSV")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the section's PNG files")
    args = parser.parse_args(argv)
    table = pd.read_csv(args.table)
    if table.empty:
        raise SystemExit(f"{args.table}: no rows to draw")
    draw(args.section, table, args.out_dir)


if __name__ == "__main__":
    main()

"""Figures, made from the tidy tables only (never from a model).

    python -m orthojac figures --tables results/tables --out-dir results/figures

Writes each paper figure into --out-dir as <name>.png. What each figure is (its name, caption,
report subcategory, the tables it reads and the name of its function here) is declared once, as a
Figure in orthojac.workflow.sections.PAPER_FIGURES; main draws every declared figure.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..claims import P1_TOL, P5_EPS, final_accuracy  # noqa: E402
from ..files import atomic_write_bytes  # noqa: E402
from ..claims.ledgerview import overview_table  # noqa: E402
from ..workflow.sections import PAPER_FIGURES  # noqa: E402

FIGURES = tuple(PAPER_FIGURES)  # the names of the figures main draws, declared in PAPER_FIGURES
# The per-layer max |σ − 1| each claim's judge holds a layer to (orthojac.claims): P1 every layer
# of an orthogonal network at initialisation, P5 a limit layer with a small modulation strength δ.
LAYER_DEFECT_TOLERANCE = {"P1": P1_TOL, "P5": P5_EPS}
DPI = 100  # every figure of orthojac (these and orthojac.thesis.figures)


def save_figure(figure, path: Path) -> None:
    """Write a matplotlib figure (or a seaborn grid) as a PNG of DPI dots per inch, cropped to its
    contents, and close it. Atomically (orthojac.files): a half-written figure never stands in
    for a finished one."""
    figure = getattr(figure, "figure", figure)  # a seaborn FacetGrid holds its figure
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def model_label(runs: pd.DataFrame) -> pd.Series:
    """The legend entry of each run; a diverged run gets its own, with the step (a result)."""
    label = runs["family"] + " (" + runs["activation"] + ", b₀=" + runs["bias_init"].astype(str) + ")"
    diverged = runs["status"] == "diverged"
    step = runs["diverged_step"].astype("Int64").astype(str)
    return label.where(~diverged, label + ", diverged at step " + step)


def message_figure(path: Path, message: str) -> None:
    """A panel that only says `message` (nothing to draw): the report still shows why."""
    fig, ax = plt.subplots(figsize=(7, 1.5))
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    save_figure(fig, path)


def _checkpoints(data: pd.DataFrame) -> list[str]:
    """In training order: init, epoch1, epoch2, …, final."""
    present = list(dict.fromkeys(data["checkpoint"]))
    return sorted(present, key=checkpoint_order)


def checkpoint_order(checkpoint: str) -> tuple[int, int]:
    if checkpoint.startswith("epoch"):
        return (1, int(checkpoint[len("epoch"):]))
    return ({"init": 0, "final": 2}[checkpoint], 0)


def _panel(runs: pd.DataFrame) -> pd.Series:
    """One panel per experiment × depth that was run (a grid of experiment × depth leaves empty
    panels where the experiments' depths differ)."""
    return runs["experiment"] + ", L = " + runs["depth"].astype(str)


def curves(runs, metrics, metric: str, path: Path, splits=("train", "test")) -> None:
    data = metrics[(metrics["metric"] == metric) & metrics["split"].isin(list(splits))]
    data = data.merge(runs.assign(model=model_label(runs), panel=_panel(runs))[
        ["experiment", "run", "model", "panel", "seed"]])
    if data.empty:
        return message_figure(path, f"no {metric} recorded")
    grid = sns.relplot(data=data, x="epoch", y="value", hue="model", style="split", col="panel",
                       col_wrap=min(3, data["panel"].nunique()), kind="line", units="seed",
                       estimator=None, marker="o", height=3, aspect=1.2,
                       facet_kws={"sharey": False, "sharex": False})
    grid.set_titles("{col_name}")
    grid.set_axis_labels("epoch", metric)
    save_figure(grid, path)


def accuracy_curves(runs, metrics, path: Path) -> None:
    curves(runs, metrics, "accuracy", path)


def loss_curves(runs, metrics, path: Path) -> None:
    curves(runs, metrics, "loss", path)


def accuracy_vs_depth(runs, metrics, path: Path) -> None:
    acc = final_accuracy(runs, metrics)
    acc["model"] = model_label(acc)
    if acc.empty:
        return message_figure(path, "no runs")
    grid = sns.relplot(data=acc, x="depth", y="accuracy", hue="model", col="experiment",
                       col_wrap=min(4, acc["experiment"].nunique()),  # a page's width, not one long row
                       kind="line", marker="o", height=3, aspect=1.3, seed=0)
    depths = sorted(acc["depth"].unique())
    for ax in grid.axes.flat:
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.minorticks_off()
    grid.set_axis_labels("depth L", "final test accuracy")
    save_figure(grid, path)


def singular_values(runs, spectra, path: Path) -> None:
    if spectra.empty:
        return message_figure(path, "no spectra")
    data = spectra.merge(runs.assign(model=model_label(runs))[["experiment", "run", "model", "depth"]])
    grid = sns.displot(data=data, x="sigma", hue="model", col="checkpoint", row="depth",
                       kind="ecdf", height=3, aspect=1.3, col_order=_checkpoints(data))
    for ax in grid.axes.flat:  # Theorem 2.6: every σ of an orthogonal Jacobian is 1
        ax.set_xscale("symlog", linthresh=1e-2)  # σ spans decades; a dead ReLU body has σ = 0
        ax.set_xlim(left=0)
        ax.axvline(1.0, color="black", linestyle=":", linewidth=1, label="theory: σ = 1")
    grid.set_axis_labels("singular value σ of the body Jacobian", "ECDF")
    save_figure(grid, path)


def defect_tolerances(runs: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per experiment: {claim: per-layer tolerance} for the claims it tests that judge max |σ − 1|
    layer by layer (LAYER_DEFECT_TOLERANCE); empty for an experiment that tests none."""
    claims = runs["claims"].fillna("") if "claims" in runs else pd.Series("", index=runs.index)
    out = {}
    for experiment, tags in zip(runs["experiment"], claims):
        tested = [c for c in str(tags).split(";") if c in LAYER_DEFECT_TOLERANCE]
        out.setdefault(experiment, {}).update({c: LAYER_DEFECT_TOLERANCE[c] for c in tested})
    return out


def layer_defect(runs, layers, path: Path) -> None:
    """max |σ − 1| of each layer's Jacobian by position, one row of panels per experiment and depth;
    dotted: the tolerance of each claim the experiment tests that judges it (none for the others)."""
    data = layers[layers["metric"] == "max_abs_dev"] if not layers.empty else layers
    if data.empty:
        return message_figure(path, "no per-layer spectra")
    data = data.merge(runs.assign(model=model_label(runs), panel=_panel(runs))[
        ["experiment", "run", "model", "depth", "panel"]])
    grid = sns.relplot(data=data, x="layer", y="value", hue="model", col="checkpoint", row="panel",
                       kind="line", marker="o", height=3, aspect=1.3, col_order=_checkpoints(data), seed=0,
                       facet_kws={"sharey": False})
    tolerances = defect_tolerances(runs)
    experiment_of = dict(zip(data["panel"], data["experiment"]))
    for (panel, _), ax in grid.axes_dict.items():
        claims = tolerances.get(experiment_of[panel], {})
        ax.set_yscale("symlog", linthresh=min([P1_TOL, *claims.values()]) / 10)
        ax.set_ylim(bottom=0)  # a defect is ≥ 0
        for claim, tol in claims.items():
            ax.axhline(tol, color="black", linestyle=":", linewidth=1)
            ax.annotate(f"{claim} tolerance {tol:g}", (0.01, tol), xycoords=("axes fraction", "data"),
                        fontsize=7, va="bottom")
    grid.set_titles("{row_name}, {col_name}")
    grid.set_axis_labels("layer ℓ", "max |σ − 1| of the layer Jacobian")
    save_figure(grid, path)


def grad_norm(runs, layers, path: Path) -> None:
    """‖∂loss/∂θ_ℓ‖ of each layer against its position ℓ (log scale): where gradients vanish or
    explode with depth (claim P7)."""
    data = layers[layers["metric"] == "grad_norm"] if not layers.empty else layers
    if data.empty:
        return message_figure(path, "per-layer gradient norms: not measured in this configuration")
    data = data.merge(runs.assign(model=model_label(runs))[["experiment", "run", "model", "depth"]])
    grid = sns.relplot(data=data, x="layer", y="value", hue="model", col="checkpoint", row="depth",
                       kind="line", marker="o", height=3, aspect=1.3, col_order=_checkpoints(data), seed=0,
                       facet_kws={"sharey": False})
    for ax in grid.axes.flat:
        ax.set_yscale("log")
    grid.set_axis_labels("layer ℓ", "gradient norm of layer ℓ")
    save_figure(grid, path)


def _init_label(frame: pd.DataFrame) -> pd.Series:
    """The initialisation of each run, from the knobs that vary within its family (not lr)."""
    names = {"bias_init": "b₀", "width_mid": "C_mid", "ab_init": "A", "breakpoints": "t"}
    label = pd.Series("", index=frame.index)
    for _, rows in frame.groupby("family"):
        varying = [k for k in names if k in rows and rows[k].astype(str).nunique() > 1]
        label[rows.index] = rows.apply(lambda r: ", ".join(f"{names[k]}={r[k]}" for k in varying) or "—", axis=1)
    return label


def residual_baseline(runs: pd.DataFrame, metrics: pd.DataFrame, depth: int) -> tuple[float, int] | None:
    """Seed-mean final test accuracy of the `resnet` runs at `depth` (a diverged run counts 0), and
    how many runs: the baseline P2 compares fold/orthoff with. None when there is none."""
    if runs.empty or metrics.empty or "family" not in runs:
        return None
    acc = final_accuracy(runs[(runs["family"] == "resnet") & (runs["depth"] == depth)], metrics)
    if acc.empty:
        return None
    return float(acc["accuracy"].fillna(0.0).mean()), len(acc)


def init_study(study: pd.DataFrame, path: Path, baseline: tuple[float, int] | None = None) -> None:
    """Final test accuracy of every initialisation of the depth-200 study, one panel per family,
    one colour per learning rate; a diverged run is drawn at 0 and marked ×. `baseline`: the
    residual network's (accuracy, runs) at the study's depth (residual_baseline), drawn dotted."""
    if study.empty:
        return message_figure(path, "init study: not run in this configuration")
    data = study.assign(init=_init_label(study), accuracy=study["final_accuracy"].fillna(0.0),
                        lr=study["lr"].map(lambda v: f"{v:g}"))
    grid = sns.catplot(data=data, x="init", y="accuracy", hue="lr", col="family", kind="point",
                       linestyles="none", dodge=0.3 if data["lr"].nunique() > 1 else False,  # seaborn divides by hues − 1
                       height=3.5, aspect=1.4, sharex=False,
                       errorbar=None)
    for ax, (family, rows) in zip(grid.axes.flat, data.groupby("family", sort=False)):
        if baseline is not None:
            ax.axhline(baseline[0], color="black", linestyle=":", linewidth=1)
        ax.axhline(0.1, color="grey", linestyle="--", linewidth=0.8)  # chance: 10 classes
        ax.tick_params(axis="x", rotation=30)
        if rows["final_accuracy"].isna().any():
            ax.text(0.01, 0.02, "diverged runs drawn at 0", transform=ax.transAxes, fontsize=7)
    depth = int(study["depth"].max())
    grid.set_titles("{col_name}, L = " + str(depth))
    base = ("" if baseline is None else
            f"dotted: residual baseline at L = {depth}, {baseline[0]:.1%} ({baseline[1]} run{'s' * (baseline[1] > 1)}); ")
    grid.set_axis_labels("initialisation", f"final test accuracy ({base}dashed: chance)")
    save_figure(grid, path)


def init_study_figure(runs, metrics, study, path: Path) -> None:
    """init_study, with the residual baseline at the study's deepest depth (residual_baseline)."""
    baseline = residual_baseline(runs, metrics, int(study["depth"].max())) if not study.empty else None
    init_study(study, path, baseline)


VERDICT_COLOURS = {"reproduced": "#2e7d32", "not reproduced": "#c62828", "inconclusive": "#e0a100"}
OVERVIEW_LIMIT = 3.0  # the overview's x axis: normalised margins beyond ±3 are drawn at its edge


def overview(ledger: pd.DataFrame, path: Path) -> None:
    """The verdicts at a glance, from the ledger table (orthojac.claims.ledgerview): one row per claim,
    each of its tests' normalised margin from the threshold (0: at the threshold, > 0: on the side
    the claim states) with its seed spread as a bar, coloured by the claim's verdict; a margin
    beyond ±OVERVIEW_LIMIT drawn as a triangle at the edge; at the right the fragility ("k/n":
    reproduced at k of n threshold settings). A claim with no statistic gets its row, saying why."""
    table = overview_table(ledger)
    claims = list(dict.fromkeys(ledger["claim"]))
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(claims) + 1.6))
    lim = OVERVIEW_LIMIT
    ax.axvspan(-lim - 0.4, 0, color="#c62828", alpha=0.05, linewidth=0)
    ax.axvline(0, color="black", linewidth=1)
    labels = []
    for y, claim in enumerate(claims):
        rows = table[table["claim"] == claim]
        verdict = rows["verdict"].iloc[0]
        colour = VERDICT_COLOURS.get(verdict, "grey")
        labels.append(f"{claim}  {verdict}")
        points = rows[rows["x"].notna()]
        if points.empty:
            ax.text(-lim, y, "no statistic: " + rows["why"].iloc[0], va="center", ha="left", fontsize=7.5,
                    style="italic", color="#555555")
        offsets = [0.0] if len(points) == 1 else [0.3 * (i / (len(points) - 1) - 0.5) for i in range(len(points))]
        for dy, (_, p) in zip(offsets, points.iterrows()):
            x = max(-lim, min(lim, p["x"]))
            if pd.notna(p["low"]):
                ends = [max(-lim - 0.35, min(lim + 0.35, v)) for v in (p["low"], p["high"])]
                ax.plot(ends, [y + dy] * 2, color=colour, linewidth=2,
                        alpha=0.6, solid_capstyle="butt")
            marker = ">" if p["x"] > lim else "<" if p["x"] < -lim else "o"
            ax.plot([x], [y + dy], marker=marker, color=colour, markersize=6, markeredgecolor="white",
                    markeredgewidth=0.5)
        k, n = rows["k"].iloc[0], rows["n"].iloc[0]
        fragile = "—" if pd.isna(k) else f"{int(k)}/{int(n)}"
        ax.text(lim + 0.55, y, fragile, va="center", ha="left", fontsize=8.5, color=colour)
    ax.set_yticks(range(len(claims)), labels)
    for tick, claim in zip(ax.get_yticklabels(), claims):
        tick.set_color(VERDICT_COLOURS.get(table.loc[table["claim"] == claim, "verdict"].iloc[0], "grey"))
    ax.set_ylim(len(claims) - 0.5, -0.5)
    ax.set_xlim(-lim - 0.4, lim + 0.4)
    ax.text(lim + 0.55, -0.9, "reproduced at\nk of n settings", fontsize=7.5, va="bottom", ha="left")
    ax.text(0.05, -0.6, "claim holds →", fontsize=7.5, va="bottom", ha="left")
    ax.text(-0.05, -0.6, "← claim fails", fontsize=7.5, va="bottom", ha="right")
    ax.set_xlabel("normalised margin from the threshold: comparisons (Δ − margin)/(2 se), bar ± 2 se;\n"
                  "thresholds (statistic − threshold)/|threshold|, bar ± 2 seed sd; a fraction r of the "
                  "tolerance: 1 − r; ▶ ◀ beyond ±3", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.grid(axis="y", alpha=0.0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False, fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=Path, required=True, help="folder of the tidy tables")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the PNG figures")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    def read(name):
        path = args.tables / f"{name}.csv"
        return pd.read_csv(path) if path.stat().st_size > 1 else pd.DataFrame()

    tables = {name: read(name) for name in dict.fromkeys(t for f in PAPER_FIGURES.values() for t in f.tables)}
    sns.set_theme(style="whitegrid", context="paper")
    for name, figure in PAPER_FIGURES.items():
        draw(figure, tables, args.out_dir / f"{name}.png")


def draw(figure, tables: dict[str, pd.DataFrame], path: Path) -> None:
    """Draw a declared figure (orthojac.workflow.sections.Figure): its function of this module,
    given the tables it reads, in its order, and the path."""
    function = globals().get(figure.draw)
    if not callable(function):
        raise ValueError(f"paper figure {figure.name!r}: its drawing function {figure.draw!r} is not a "
                         "function of orthojac.report.figures")
    function(*(tables[t] for t in figure.tables), path)


if __name__ == "__main__":
    main()

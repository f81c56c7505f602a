"""The workflow's registries (orthojac.workflow): what the paper's stages write (its tables and
figures), the thesis sections (`SECTIONS`, one entry per top-level config section such as
`hlav_linear:`, each a program of its own) and the report's pages."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .config import flag_of
from .thesis import settings as thesis_settings

# What the paper's stages write: orthojac.tables' tables, orthojac.figures' figures.
PAPER_TABLES = ("runs", "metrics", "spectra", "layers", "init_study", "screens", "diagnostics")


@dataclass(frozen=True)
class PaperFigure:
    """A figure of the paper's stages, declared once (PAPER_FIGURES): everything but the drawing
    itself, which needs matplotlib and lives in orthojac.figures (this module feeds the planner).

    name: its file, results/figures/<name>.png. subcategory: its heading in the Snakemake report.
    tables: the tables (of PAPER_TABLES) it is drawn from, in the order its function takes them.
    draw: the name of its function in orthojac.figures, called as draw(*tables, path) (an empty
    table is an empty DataFrame). caption: what the report's paper page shows under its heading."""

    name: str
    subcategory: str
    tables: tuple[str, ...]
    draw: str
    caption: str


def register(*figures: PaperFigure) -> dict[str, PaperFigure]:
    """{name: figure} in the given order (the order the workflow requests and the report shows them);
    a repeated name or a table that is not a paper table is an error naming it."""
    registry = {}
    for figure in figures:
        if figure.name in registry:
            raise ValueError(f"paper figure {figure.name!r} is declared twice")
        unknown = [t for t in figure.tables if t not in PAPER_TABLES]
        if unknown:
            raise ValueError(f"paper figure {figure.name!r} reads {unknown}, not tables of PAPER_TABLES {PAPER_TABLES}")
        registry[figure.name] = figure
    return registry


# The paper's figures: the workflow requests them (workflow/rules/figures.smk, Pipeline.report_figures),
# orthojac.figures draws them, the paper page captions them (figure_markdown). A new figure: one
# PaperFigure here and its function in orthojac.figures.
PAPER_FIGURES = register(
    PaperFigure("accuracy", "Training", ("runs", "metrics"), "accuracy_curves",
                "Accuracy against epoch (train and test), per depth and family."),
    PaperFigure("loss", "Training", ("runs", "metrics"), "loss_curves",
                "Cross-entropy against epoch (train and test), per depth and family."),
    PaperFigure("accuracy_vs_depth", "Training", ("runs", "metrics"), "accuracy_vs_depth",
                "Final test accuracy against depth, per family (claims P2, P3)."),
    PaperFigure("singular_values", "Jacobian spectra", ("runs", "spectra"), "singular_values",
                "Singular values of the body's input→output Jacobian (ECDF, symlog axis), at "
                "initialisation and after training. Dotted: theory, σ = 1 for an orthogonal "
                "Jacobian (Theorem 2.6, claim P1)."),
    PaperFigure("layer_defect", "Jacobian spectra", ("runs", "layers"), "layer_defect",
                "max |σ − 1| of each layer's Jacobian by position in the body, one row per experiment and "
                "depth; dotted: the per-layer tolerance of each claim the experiment tests that judges it "
                "(P1, P5; orthojac.claims)."),
    PaperFigure("grad_norm", "Gradients", ("runs", "layers"), "grad_norm",
                "Gradient norm of each layer by position in the body (claim P7)."),
    PaperFigure("init_study", "Training", ("runs", "metrics", "init_study"), "init_study_figure",
                "Depth-200 initialisation study (docs/replication.md §5): final test accuracy of each initialisation of "
                "fold and orthoff, per learning rate; dotted: the residual baseline's final test accuracy at the "
                "same depth (mean over its runs; drawn only where the configuration trains one), dashed: chance. "
                "The failing initialisations are kept: they are the answer to why the naive reading does not train."),
)
STAND_IN_DIR = "results/data/hlav_lstm_stand_in"  # H2's generated stand-in data


@dataclass(frozen=True)
class Section:
    """A thesis section of the config: a program of its own, not `orthojac.train` runs.

    name: the config's top-level key, and the name of its rule (its table's `<name>_table`, its
    figures' `<name>_figure`). label: the thesis' experiment (H1…H5). module: run as
    `python -m <module>`. settings: its dataclass (orthojac.thesis.settings), whose fields are the
    config keys passed to it as flags. inputs: what a job reads ("idx": the IDX files of the
    section's `dataset`; "receipts": H2's two downloads; "": nothing). folder: per-seed CSVs go to
    results/hlav/<folder>/ ("": one job writes the table, H4). figures: {name: caption} of the
    figures (results/figures/<name>.png) orthojac.thesis.figures draws from its table, in order,
    each with the caption its report page shows (figure_caption). page: the report
    page (a key of PAGES). gpu: whether its jobs take the `gpu` resource."""

    name: str
    label: str
    module: str
    settings: type
    inputs: str
    folder: str
    figures: dict[str, str] = field(hash=False)
    page: str
    gpu: bool = False

    @property
    def flags(self) -> dict[str, str]:
        """{config key: its flag} for every field of the section's settings."""
        return {f.name: flag_of(f) for f in fields(self.settings)}

    @property
    def table(self) -> str:
        return f"results/tables/{self.name}.csv"

    def seed_table(self, seed) -> str:
        """A seed's CSV (a pattern with seed="{seed}")."""
        return f"results/hlav/{self.folder}/seed={seed}.csv"

    def log(self, seed=None) -> str:
        """The log of a seed's job, or of the section's one job (H4)."""
        return f"results/logs/{self.name}.log" if seed is None else f"results/logs/{self.name}/seed={seed}.log"

    def benchmark(self, seed=None) -> str:
        return f"results/benchmarks/{self.name}.tsv" if seed is None else f"results/benchmarks/{self.name}/seed={seed}.tsv"


SECTIONS = {s.name: s for s in (
    Section("h4", "H4", "orthojac.thesis.theory", thesis_settings.Theory, "", "", {
        "h4_spectra": "H4 (Hlav §3): mean, variance and maximum of the squared singular values of the input–output "
                      "Jacobian of dense networks at initialisation and criticality, Gaussian against orthogonal "
                      "weights; points: empirical (mean over seeds), dashed: wide-limit theory (orthojac.thesis.theory).",
    }, "theory"),
    Section("hlav_rnn", "H1", "orthojac.thesis.rnn", thesis_settings.RNN, "idx", "rnn", {
        "hlav_spectrum": "H1, Fig. 7 counterpart: singular values of the recurrent kernel W against epoch "
                         "(seed mean): mean ± std (band), min (red), max (blue); dotted: the initial gain g.",
        "hlav_accuracy": "H1, Fig. 8 counterpart: validation accuracy against epoch (seed mean), one panel "
                         "per regulariser form; the unregularised configurations appear in both.",
    }, "hlav"),
    Section("hlav_lstm", "H2", "orthojac.thesis.lstm", thesis_settings.LSTM, "receipts", "lstm", {
        "hlav_lstm_spectrum": "H2, Fig. 9 counterpart: singular values of the LSTM's recurrent kernel (the four "
                              "gates' kernels stacked, 4n × n) against epoch (seed mean): mean ± std (band), min (red), "
                              "max (blue); dotted: the initial gain g.",
        "hlav_lstm_accuracy": "H2, Fig. 10 counterpart: validation accuracy against epoch (seed mean), one panel "
                              "per regulariser form; the unregularised configurations appear in both.",
    }, "hlav"),
    Section("hlav_linear", "H3", "orthojac.thesis.linear", thesis_settings.Linear, "idx", "linear", {
        "hlav_linear": "Fig. 2 counterpart. Left: steps to the target against depth (median line, seeds as "
                       "dots; the dotted line collects runs that did not reach it). Right: validation "
                       "accuracy against step, seed mean; solid orthogonal, dashed Gaussian.",
    }, "hlav", gpu=True),
    Section("hlav_deep", "H5", "orthojac.thesis.deep", thesis_settings.Deep, "idx", "deep", {
        "hlav_deep": "Fig. 3 counterpart: test accuracy (left) and test loss (right) against epoch, seed mean; "
                     "blue tanh σ_w² = 1.05, red tanh σ_w² = 2, black ReLU σ_w² = 2; solid orthogonal, "
                     "dashed Gaussian; × where a run diverged.",
    }, "hlav", gpu=True),
)}


def figure_caption(name: str) -> str:
    """The caption of a paper figure (PAPER_FIGURES) or of a thesis section's (Section.figures)."""
    captions = {n: f.caption for n, f in PAPER_FIGURES.items()}
    for section in SECTIONS.values():
        captions.update(section.figures)
    if name not in captions:
        raise KeyError(f"figure {name!r} is declared by no paper figure (PAPER_FIGURES) and no section "
                       f"(SECTIONS); declared: {sorted(captions)}")
    return captions[name]


def figure_markdown(name: str) -> str:
    """A figure's heading and caption as a report page shows them (Markdown)."""
    return f"### {name.replace('_', ' ')}\n\n{figure_caption(name)}"


# The report's pages besides the index, each with its title and the claims it judges (a thesis
# section's page: Section.page); orthojac.report.SECTIONS is this dict.
PAGES = {
    "paper": ("Massucco, Murari, Schönlieb: fold, orthoff and their baselines",
              ("P1", "P2", "P3", "P4", "P5", "P6", "P7")),
    "hlav": ("Hlav (2019): RNNs, LSTMs, deep linear and deep tanh/ReLU networks", ("H-C1", "H-C2", "H-C3", "H-C4", "H-C5")),
    "theory": ("Jacobian spectra at initialisation against theory (H4)", ("H-C6",)),
}

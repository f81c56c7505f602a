"""The workflow's registries (orthojac.workflow): the experiments, one entry each for the paper's
runs and for every thesis section (`EXPERIMENTS`: settings class, program, tables, figures with
their captions, report page), the paper's figures (`PAPER_FIGURES`, how each is drawn) and the
report's pages (`PAGES`).

Words mean one thing: an *experiment* is an entry of EXPERIMENTS; a *section* is a thesis
experiment, a top-level config section such as `hlav_linear:` (`SECTIONS`, the entries besides
the paper's); a *page* is a page of the report (`PAGES`), which shows one or more experiments. The
claims of a page or an experiment are not listed here: each Claim (orthojac.claims) names its page
and the tables it reads, and orthojac.report derives the lists from them (the planner does not
import the claims).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from ..cli import COMMANDS
from ..config import RunConfig, flag_of
from ..thesis import settings as thesis_settings

# What the paper's stages write: orthojac.claims.tables' tables, orthojac.report.figures' figures.
PAPER_TABLES = ("runs", "metrics", "spectra", "layers", "init_study", "screens", "diagnostics")


@dataclass(frozen=True)
class Figure:
    """A figure, the paper's (PAPER_FIGURES) or a thesis section's (Experiment.figures), declared once:
    everything but the drawing itself, which needs matplotlib (this module feeds the planner).

    name: its file, results/figures/<name>.png. caption: what its report page shows under its heading
    (figure_markdown). tables: the tables it is drawn from, in the order its function takes them (a
    thesis figure's: its section's one table). draw: the name of its function, in orthojac.report.figures
    for a paper figure, called as draw(*tables, path) (an empty table is an empty DataFrame), in
    orthojac.thesis.figures for a thesis figure, called as draw(table, path). subcategory: a paper
    figure's heading in the Snakemake report."""

    name: str
    caption: str
    tables: tuple[str, ...]
    draw: str
    subcategory: str = ""


def register(*figures: Figure) -> dict[str, Figure]:
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
# orthojac.report.figures draws them, the paper page captions them (figure_markdown). A new figure: one
# Figure here and its function in orthojac.report.figures.
PAPER_FIGURES = register(
    Figure("accuracy", "Accuracy against epoch (train and test), per depth and family.",
           ("runs", "metrics"), "accuracy_curves", subcategory="Training"),
    Figure("loss", "Cross-entropy against epoch (train and test), per depth and family.",
           ("runs", "metrics"), "loss_curves", subcategory="Training"),
    Figure("accuracy_vs_depth", "Final test accuracy against depth, per family (claims P2, P3).",
           ("runs", "metrics"), "accuracy_vs_depth", subcategory="Training"),
    Figure("singular_values", "Singular values of the body's input→output Jacobian (ECDF, symlog axis), at "
           "initialisation and after training. Dotted: theory, σ = 1 for an orthogonal "
           "Jacobian (Theorem 2.6, claim P1).",
           ("runs", "spectra"), "singular_values", subcategory="Jacobian spectra"),
    Figure("layer_defect", "max |σ − 1| of each layer's Jacobian by position in the body, one row per experiment and "
           "depth; dotted: the per-layer tolerance of each claim the experiment tests that judges it "
           "(P1, P5; orthojac.claims).",
           ("runs", "layers"), "layer_defect", subcategory="Jacobian spectra"),
    Figure("grad_norm", "Gradient norm of each layer by position in the body (claim P7).",
           ("runs", "layers"), "grad_norm", subcategory="Gradients"),
    Figure("init_study", "Depth-200 initialisation study (docs/replication.md §5): final test accuracy of each initialisation of "
           "fold and orthoff, per learning rate; dotted: the residual baseline's final test accuracy at the "
           "same depth (mean over its runs; drawn only where the configuration trains one), dashed: chance. "
           "The failing initialisations are kept: they are the answer to why the naive reading does not train.",
           ("runs", "metrics", "init_study"), "init_study_figure", subcategory="Training"),
)
STAND_IN_DIR = "results/data/hlav_lstm_stand_in"  # H2's generated stand-in data


@dataclass(frozen=True)
class Experiment:
    """An entry of EXPERIMENTS: the paper's runs, or a thesis section (a program of its own).

    name: its name; a thesis section's is the config's top-level key and the name of its rule (its
    table's `<name>_table`, its figures' `<name>_figure`); the paper's runs are "paper", configured
    by the `experiments:` entries. label: the source's experiment (H1…H5; the paper: "paper").
    settings: the dataclass whose fields are its config keys, passed to its program as flags
    (RunConfig, or the section's in orthojac.thesis.settings). program: the `orthojac` command it
    runs (orthojac.cli), which the rules run as `python -m orthojac <program>` (module: that
    command's module, read from orthojac.cli.COMMANDS). tables: the tables it makes (results/tables/<table>.csv). figures:
    {name: Figure} of the figures (results/figures/<name>.png) drawn from its tables, in order,
    each with the caption its report page shows (figure_caption; the paper's are PAPER_FIGURES).
    page: the report page that shows it (a key of PAGES). inputs: what a section's job reads
    ("idx": the IDX files of the section's `dataset`; "receipts": H2's two downloads; "": nothing).
    folder: a section's per-seed CSVs go to results/hlav/<folder>/ ("": one job writes the table,
    H4). gpu: whether a section's jobs take the `gpu` resource."""

    name: str
    label: str
    settings: type
    program: str
    tables: tuple[str, ...]
    figures: Mapping[str, Figure] = field(hash=False)
    page: str
    inputs: str = ""
    folder: str = ""
    gpu: bool = False

    @property
    def is_section(self) -> bool:
        """Whether it is a thesis section (a top-level config key of its own), not the paper's runs."""
        return self.name != PAPER

    @property
    def module(self) -> str:
        """The module its program runs (orthojac.cli.COMMANDS: the one place of a command's module)."""
        return COMMANDS[self.program].module

    @property
    def flags(self) -> dict[str, str]:
        """{config key: its flag} for every field of its settings."""
        return {f.name: flag_of(f) for f in fields(self.settings)}

    @property
    def table(self) -> str:
        """A section's table (it makes one, named after it)."""
        return f"results/tables/{self.name}.csv"

    def seed_table(self, seed) -> str:
        """A seed's CSV (a pattern with seed="{seed}")."""
        return f"results/hlav/{self.folder}/seed={seed}.csv"

    def log(self, seed=None) -> str:
        """The log of a seed's job, or of the section's one job (H4)."""
        return f"results/logs/{self.name}.log" if seed is None else f"results/logs/{self.name}/seed={seed}.log"

    def benchmark(self, seed=None) -> str:
        return f"results/benchmarks/{self.name}.tsv" if seed is None else f"results/benchmarks/{self.name}/seed={seed}.tsv"


PAPER = "paper"  # the name of the paper's entry


def section(name: str, label: str, settings: type, program: str, inputs: str, folder: str,
            figures: tuple[Figure, ...], page: str, gpu: bool = False) -> Experiment:
    """A thesis section: an Experiment making one table, named after it, its figures drawn from it."""
    return Experiment(name, label, settings, program, (name,), {f.name: f for f in figures}, page, inputs,
                      folder, gpu)


# The registry: the paper's runs, then each thesis section. The workflow plans its jobs from it
# (orthojac.workflow), the figures' rules and captions read it, the report shows each on its page.
EXPERIMENTS = {e.name: e for e in (
    Experiment(PAPER, "paper", RunConfig, "train", PAPER_TABLES, PAPER_FIGURES, "paper"),
    section("h4", "H4", thesis_settings.Theory, "h4", "", "", (
        Figure("h4_spectra", "H4 (Hlav §3): mean, variance and maximum of the squared singular values of the input–output "
               "Jacobian of dense networks at initialisation and criticality, Gaussian against orthogonal "
               "weights; points: empirical (mean over seeds), dashed: wide-limit theory (orthojac.thesis.theory).",
               ("h4",), "h4_spectra"),
    ), "theory"),
    section("hlav_rnn", "H1", thesis_settings.RNN, "hlav", "idx", "rnn", (
        Figure("hlav_spectrum", "H1, Fig. 7 counterpart: singular values of the recurrent kernel W against epoch "
               "(seed mean): mean ± std (band), min (red), max (blue); dotted: the initial gain g.",
               ("hlav_rnn",), "spectrum_figure"),
        Figure("hlav_accuracy", "H1, Fig. 8 counterpart: validation accuracy against epoch (seed mean), one panel "
               "per regulariser form; the unregularised configurations appear in both.",
               ("hlav_rnn",), "accuracy_figure"),
    ), "hlav"),
    section("hlav_lstm", "H2", thesis_settings.LSTM, "hlav-lstm", "receipts", "lstm", (
        Figure("hlav_lstm_spectrum", "H2, Fig. 9 counterpart: singular values of the LSTM's recurrent kernel (the four "
               "gates' kernels stacked, 4n × n) against epoch (seed mean): mean ± std (band), min (red), "
               "max (blue); dotted: the initial gain g.",
               ("hlav_lstm",), "lstm_spectrum_figure"),
        Figure("hlav_lstm_accuracy", "H2, Fig. 10 counterpart: validation accuracy against epoch (seed mean), one panel "
               "per regulariser form; the unregularised configurations appear in both.",
               ("hlav_lstm",), "lstm_accuracy_figure"),
    ), "hlav"),
    section("hlav_linear", "H3", thesis_settings.Linear, "hlav-linear", "idx", "linear", (
        Figure("hlav_linear", "Fig. 2 counterpart. Left: steps to the target against depth (median line, seeds as "
               "dots; the dotted line collects runs that did not reach it). Right: validation "
               "accuracy against step, seed mean; solid orthogonal, dashed Gaussian.",
               ("hlav_linear",), "linear_figure"),
    ), "hlav", gpu=True),
    section("hlav_deep", "H5", thesis_settings.Deep, "hlav-deep", "idx", "deep", (
        Figure("hlav_deep", "Fig. 3 counterpart: test accuracy (left) and test loss (right) against epoch, seed mean; "
               "blue tanh σ_w² = 1.05, red tanh σ_w² = 2, black ReLU σ_w² = 2; solid orthogonal, "
               "dashed Gaussian; × where a run diverged.",
               ("hlav_deep",), "deep_figure"),
    ), "hlav", gpu=True),
)}
# The thesis sections: every entry but the paper's runs, in the registry's order.
SECTIONS = {name: e for name, e in EXPERIMENTS.items() if e.is_section}


def figure_caption(name: str) -> str:
    """The caption of a figure of an experiment (Experiment.figures; the paper's: PAPER_FIGURES)."""
    captions = {n: f.caption for e in EXPERIMENTS.values() for n, f in e.figures.items()}
    if name not in captions:
        raise KeyError(f"figure {name!r} is declared by no paper figure (PAPER_FIGURES) and no thesis section "
                       f"(EXPERIMENTS); declared: {sorted(captions)}")
    return captions[name]


def figure_markdown(name: str) -> str:
    """A figure's heading and caption as a report page shows them (Markdown)."""
    return f"### {name.replace('_', ' ')}\n\n{figure_caption(name)}"


@dataclass(frozen=True)
class Page:
    """A page of the report besides the index: `name` (results/report/<name>.html), its `title`, and
    its notebook (notebooks/<name>.py.ipynb). What it shows is derived: the experiments whose
    `page` it is (Experiment.page) and the claims whose page it is (Claim.page, orthojac.report)."""

    name: str
    title: str

    @property
    def notebook(self) -> str:
        return f"notebooks/{self.name}.py.ipynb"


# The report's pages besides the index, in the order the index lists them.
PAGES = {p.name: p for p in (
    Page("paper", "Massucco, Murari, Schönlieb: fold, orthoff and their baselines"),
    Page("hlav", "Hlav (2019): RNNs, LSTMs, deep linear and deep tanh/ReLU networks"),
    Page("theory", "Jacobian spectra at initialisation against theory (H4)"),
)}

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
class PaperFigure:
    """A figure of the paper's stages, declared once (PAPER_FIGURES): everything but the drawing
    itself, which needs matplotlib and lives in orthojac.report.figures (this module feeds the planner).

    name: its file, results/figures/<name>.png. subcategory: its heading in the Snakemake report.
    tables: the tables (of PAPER_TABLES) it is drawn from, in the order its function takes them.
    draw: the name of its function in orthojac.report.figures, called as draw(*tables, path) (an empty
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
# orthojac.report.figures draws them, the paper page captions them (figure_markdown). A new figure: one
# PaperFigure here and its function in orthojac.report.figures.
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
class Experiment:
    """An entry of EXPERIMENTS: the paper's runs, or a thesis section (a program of its own).

    name: its name; a thesis section's is the config's top-level key and the name of its rule (its
    table's `<name>_table`, its figures' `<name>_figure`); the paper's runs are "paper", configured
    by the `experiments:` entries. label: the source's experiment (H1…H5; the paper: "paper").
    settings: the dataclass whose fields are its config keys, passed to its program as flags
    (RunConfig, or the section's in orthojac.thesis.settings). program: the `orthojac` command it
    runs (orthojac.cli), which the rules run as `python -m orthojac <program>` (module: that
    command's module, read from orthojac.cli.COMMANDS). tables: the tables it makes (results/tables/<table>.csv). figures:
    {name: caption} of the figures (results/figures/<name>.png) drawn from its tables, in order,
    each with the caption its report page shows (figure_caption; the paper's are PAPER_FIGURES').
    page: the report page that shows it (a key of PAGES). inputs: what a section's job reads
    ("idx": the IDX files of the section's `dataset`; "receipts": H2's two downloads; "": nothing).
    folder: a section's per-seed CSVs go to results/hlav/<folder>/ ("": one job writes the table,
    H4). gpu: whether a section's jobs take the `gpu` resource."""

    name: str
    label: str
    settings: type
    program: str
    tables: tuple[str, ...]
    figures: Mapping[str, str] = field(hash=False)
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


class _Captions(Mapping):
    """{name: caption} of the paper's figures, read from PAPER_FIGURES as it stands (a view, not a copy)."""

    def __init__(self, figures: dict[str, PaperFigure]):
        self._figures = figures

    def __getitem__(self, name: str) -> str:
        return self._figures[name].caption

    def __iter__(self):
        return iter(self._figures)

    def __len__(self) -> int:
        return len(self._figures)


def section(name: str, label: str, settings: type, program: str, inputs: str, folder: str,
            figures: dict[str, str], page: str, gpu: bool = False) -> Experiment:
    """A thesis section: an Experiment making one table, named after it."""
    return Experiment(name, label, settings, program, (name,), figures, page, inputs, folder, gpu)


# The registry: the paper's runs, then each thesis section. The workflow plans its jobs from it
# (orthojac.workflow), the figures' rules and captions read it, the report shows each on its page.
EXPERIMENTS = {e.name: e for e in (
    Experiment(PAPER, "paper", RunConfig, "train", PAPER_TABLES, _Captions(PAPER_FIGURES), "paper"),
    section("h4", "H4", thesis_settings.Theory, "h4", "", "", {
        "h4_spectra": "H4 (Hlav §3): mean, variance and maximum of the squared singular values of the input–output "
                      "Jacobian of dense networks at initialisation and criticality, Gaussian against orthogonal "
                      "weights; points: empirical (mean over seeds), dashed: wide-limit theory (orthojac.thesis.theory).",
    }, "theory"),
    section("hlav_rnn", "H1", thesis_settings.RNN, "hlav", "idx", "rnn", {
        "hlav_spectrum": "H1, Fig. 7 counterpart: singular values of the recurrent kernel W against epoch "
                         "(seed mean): mean ± std (band), min (red), max (blue); dotted: the initial gain g.",
        "hlav_accuracy": "H1, Fig. 8 counterpart: validation accuracy against epoch (seed mean), one panel "
                         "per regulariser form; the unregularised configurations appear in both.",
    }, "hlav"),
    section("hlav_lstm", "H2", thesis_settings.LSTM, "hlav-lstm", "receipts", "lstm", {
        "hlav_lstm_spectrum": "H2, Fig. 9 counterpart: singular values of the LSTM's recurrent kernel (the four "
                              "gates' kernels stacked, 4n × n) against epoch (seed mean): mean ± std (band), min (red), "
                              "max (blue); dotted: the initial gain g.",
        "hlav_lstm_accuracy": "H2, Fig. 10 counterpart: validation accuracy against epoch (seed mean), one panel "
                              "per regulariser form; the unregularised configurations appear in both.",
    }, "hlav"),
    section("hlav_linear", "H3", thesis_settings.Linear, "hlav-linear", "idx", "linear", {
        "hlav_linear": "Fig. 2 counterpart. Left: steps to the target against depth (median line, seeds as "
                       "dots; the dotted line collects runs that did not reach it). Right: validation "
                       "accuracy against step, seed mean; solid orthogonal, dashed Gaussian.",
    }, "hlav", gpu=True),
    section("hlav_deep", "H5", thesis_settings.Deep, "hlav-deep", "idx", "deep", {
        "hlav_deep": "Fig. 3 counterpart: test accuracy (left) and test loss (right) against epoch, seed mean; "
                     "blue tanh σ_w² = 1.05, red tanh σ_w² = 2, black ReLU σ_w² = 2; solid orthogonal, "
                     "dashed Gaussian; × where a run diverged.",
    }, "hlav", gpu=True),
)}
# The thesis sections: every entry but the paper's runs, in the registry's order.
SECTIONS = {name: e for name, e in EXPERIMENTS.items() if e.is_section}


def figure_caption(name: str) -> str:
    """The caption of a figure of an experiment (Experiment.figures; the paper's: PAPER_FIGURES)."""
    captions = {n: c for e in EXPERIMENTS.values() for n, c in e.figures.items()}
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

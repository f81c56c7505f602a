"""The workflow's registries (orthojac.workflow): what the paper's stages write (its tables and
figures), the thesis sections (`SECTIONS`, one entry per top-level config section such as
`hlav_linear:`, each a program of its own) and the report's pages."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .config import flag_of
from .thesis import settings as thesis_settings

# What the paper's stages write: orthojac.tables' tables, orthojac.figures' figures.
PAPER_TABLES = ("runs", "metrics", "spectra", "layers", "init_study", "screens", "diagnostics")
PAPER_FIGURES = {"accuracy": "Training", "loss": "Training", "accuracy_vs_depth": "Training",
                 "singular_values": "Jacobian spectra", "layer_defect": "Jacobian spectra",
                 "grad_norm": "Gradients", "init_study": "Training"}  # figure → report subcategory
STAND_IN_DIR = "results/data/hlav_lstm_stand_in"  # H2's generated stand-in data


@dataclass(frozen=True)
class Section:
    """A thesis section of the config: a program of its own, not `orthojac.train` runs.

    name: the config's top-level key, and the name of its rule (its table's `<name>_table`, its
    figures' `<name>_figure`). label: the thesis' experiment (H1…H5). module: run as
    `python -m <module>`. settings: its dataclass (orthojac.thesis.settings), whose fields are the
    config keys passed to it as flags. inputs: what a job reads ("idx": the IDX files of the
    section's `dataset`; "receipts": H2's two downloads; "": nothing). folder: per-seed CSVs go to
    results/hlav/<folder>/ ("": one job writes the table, H4). figures: the figures
    (results/figures/<name>.png) orthojac.thesis.figures draws from its table. page: the report
    page (a key of PAGES). gpu: whether its jobs take the `gpu` resource."""

    name: str
    label: str
    module: str
    settings: type
    inputs: str
    folder: str
    figures: tuple[str, ...]
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
    Section("h4", "H4", "orthojac.thesis.theory", thesis_settings.Theory, "", "", ("h4_spectra",), "theory"),
    Section("hlav_rnn", "H1", "orthojac.thesis.rnn", thesis_settings.RNN, "idx", "rnn",
            ("hlav_spectrum", "hlav_accuracy"), "hlav"),
    Section("hlav_lstm", "H2", "orthojac.thesis.lstm", thesis_settings.LSTM, "receipts", "lstm",
            ("hlav_lstm_spectrum", "hlav_lstm_accuracy"), "hlav"),
    Section("hlav_linear", "H3", "orthojac.thesis.linear", thesis_settings.Linear, "idx", "linear", ("hlav_linear",),
            "hlav", gpu=True),
    Section("hlav_deep", "H5", "orthojac.thesis.deep", thesis_settings.Deep, "idx", "deep", ("hlav_deep",), "hlav",
            gpu=True),
)}


# The report's pages besides the index, each with its title and the claims it judges (a thesis
# section's page: Section.page); orthojac.report.SECTIONS is this dict.
PAGES = {
    "paper": ("Massucco, Murari, Schönlieb: fold, orthoff and their baselines",
              ("P1", "P2", "P3", "P4", "P5", "P6", "P7")),
    "hlav": ("Hlav (2019): RNNs, LSTMs, deep linear and deep tanh/ReLU networks", ("H-C1", "H-C2", "H-C3", "H-C4", "H-C5")),
    "theory": ("Jacobian spectra at initialisation against theory (H4)", ("H-C6",)),
}

"""The `orthojac` command: one subcommand per program, each the module's own `main(argv)`.

    orthojac <command> [its arguments]          (also: python -m orthojac <command> …)
    orthojac <command> --help                   (the command's own flags)

The workflow's rules run every program this way, `python -m orthojac <command> …`, so each is
usable by hand exactly as the rules use it. Only the chosen command's module is imported:
`orthojac train` loads no report code.
"""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple


class Command(NamedTuple):
    module: str
    summary: str


# name → (module whose `main(argv)` it runs, one line for `orthojac --help`), in pipeline order.
# Each module's parser declares prog="orthojac <name>" (tests/test_console_scripts.py).
COMMANDS = {
    "fetch": Command("orthojac.data", "fetch and verify a data set (Fashion-MNIST, MNIST) as IDX files"),
    "mnist": Command("orthojac.data.mnist", "convert a classic mnist.pkl.gz into IDX files, read safely"),
    "download": Command("orthojac.data.downloads", "download one verified file (e.g. glove.6B.zip) with a receipt"),
    "sentiment": Command("orthojac.thesis.sentiment", "prepare H2's data: labelled sentences and GloVe vectors"),
    "select": Command("orthojac.run.select", "pick a family's setting from a screen by a rule fixed in advance"),
    "train": Command("orthojac.run.train", "train one run: data, model, loop, evaluation, checkpoints"),
    "spectra": Command("orthojac.spectra", "Jacobian spectra of a trained or freshly initialised network"),
    "hlav": Command("orthojac.thesis.rnn", "thesis H1: a vanilla RNN on sequential MNIST"),
    "hlav-lstm": Command("orthojac.thesis.lstm", "thesis H2: an LSTM sentiment classifier on GloVe vectors"),
    "hlav-linear": Command("orthojac.thesis.linear", "thesis H3: deep linear networks, time to accuracy against depth"),
    "h4": Command("orthojac.thesis.theory", "thesis H4: Jacobian spectra at initialisation against free probability"),
    "hlav-deep": Command("orthojac.thesis.deep", "thesis H5: deep tanh and ReLU networks, orthogonal vs Gaussian"),
    "tables": Command("orthojac.claims.tables", "collect the per-run outputs into tidy tables"),
    "figures": Command("orthojac.report.figures", "the paper's figures, from the tidy tables"),
    "thesis-figures": Command("orthojac.thesis.figures", "a thesis section's figures, from its table"),
    "render": Command("orthojac.report.render", "render a snapshot's report pages again with this commit's notebooks"),
    "reportcheck": Command("orthojac.report.check", "check that every figure and link of the rendered report resolves"),
    "reference": Command("orthojac.reference", "snapshot a finished run of the pipeline as a reference"),
    "compare": Command("orthojac.reference.compare", "how a run of the pipeline differs from a reference"),
    "progress": Command("orthojac.workflow.progress", "the state of every job of a configuration, and the time left"),
    "schema": Command("orthojac.workflow.schema", "print the config's whole schema (its settings blocks generated)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name.ljust(width)}  {command.summary}" for name, command in COMMANDS.items()]
    return ("usage: orthojac <command> [arguments]   (orthojac <command> --help: its arguments)\n\n"
            "commands:\n" + "\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(f"{usage()}\n\northojac: name a command", file=sys.stderr)
        sys.exit(2)
    name, rest = argv[0], argv[1:]
    if name in ("-h", "--help", "help"):
        print(usage())
        return
    if name not in COMMANDS:
        print(f"orthojac: unknown command {name!r}; the commands are {', '.join(COMMANDS)}", file=sys.stderr)
        sys.exit(2)
    importlib.import_module(COMMANDS[name].module).main(rest)

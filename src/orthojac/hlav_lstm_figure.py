"""The H2 figures (Hlav Figs. 9–10 counterparts), from the H2 table only (orthojac.hlav_lstm).

    python -m orthojac.hlav_lstm_figure --table results/tables/hlav_lstm.csv \
        --spectrum results/figures/hlav_lstm_spectrum.png --accuracy results/figures/hlav_lstm_accuracy.png

The same drawings as H1's (orthojac.hlav_figure): the LSTM's recurrent kernel W_hh singular
values against epoch (Fig. 9: mean ± std, min, max; dotted: the gain) and the validation accuracy
against epoch (Fig. 10). When the table says the data was unavailable, each figure is a panel that
says so, so the report still renders and shows why.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .figures import message_figure
from .hlav_figure import accuracy_figure, spectrum_figure
from .hlav_lstm import UNAVAILABLE


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac-hlav-lstm-figure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, required=True, help="the H2 table (orthojac.hlav_lstm collect)")
    parser.add_argument("--spectrum", type=Path, required=True, help="PNG: recurrent spectrum per epoch (Fig. 9)")
    parser.add_argument("--accuracy", type=Path, required=True, help="PNG: validation accuracy per epoch (Fig. 10)")
    args = parser.parse_args(argv)
    table = pd.read_csv(args.table)
    if table.empty:
        raise SystemExit(f"{args.table}: the H2 table is empty")
    if (table["status"] == UNAVAILABLE).any():
        for path, what in ((args.spectrum, "recurrent spectrum"), (args.accuracy, "validation accuracy")):
            message_figure(path, f"H2 {what}: data unavailable, nothing trained\n"
                           "(the report lists the sources tried)")
        return
    spectrum_figure(table, args.spectrum)
    accuracy_figure(table, args.accuracy)


if __name__ == "__main__":
    main()

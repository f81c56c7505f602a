"""How a run of the pipeline differs from a reference: per run, per thesis table, per claim.

    python -m orthojac.compare results results/reference/cpu

Both folders have the layout of `results/` (a snapshot of orthojac.reference has it too):
`tables/*.csv` and `report/ledger.csv`. For every training run in both, the largest absolute
difference over its metrics (accuracy, loss, learning rate; the timing rows `seconds` are left
out) and its final test accuracy in each; for the thesis tables (hlav_rnn, hlav_linear, hlav_deep,
h4, hlav_lstm), the same per table; the Jacobian spectra (spectra.csv, layers.csv) per table; and
each claim's verdict in both. Each difference is classed:

- `identical`: every number equal (same seed, same CPU build, same torch: what orthojac gives);
- `close`: within --atol (default 1e-6: rounding of another BLAS or CPU);
- `differs`: beyond it; `missing`: the run or claim is in one folder only.

Exit status 0 when every claim has the reference's verdict (a verdict that changed is what a
reader must know about), 1 otherwise; with --strict, 1 also when any number differs beyond --atol.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .workflow import SECTIONS

IDENTICAL, CLOSE, DIFFERS, MISSING = "identical", "close", "differs", "missing"
TIMING = {"seconds", "train_seconds", "spectra_seconds"}
THESIS_TABLES = tuple(SECTIONS)  # orthojac.workflow.SECTIONS: each writes results/tables/<name>.csv
SPECTRA_TABLES = ("spectra", "layers")


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = folder / "tables" / f"{name}.csv"
    if not path.exists() or path.stat().st_size <= 1:
        return pd.DataFrame()
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def _classify(diff: float, atol: float) -> str:
    if np.isnan(diff):
        return DIFFERS
    return IDENTICAL if diff == 0 else CLOSE if diff <= atol else DIFFERS


def _max_abs(a: pd.Series, b: pd.Series) -> float:
    """Largest |a − b|; NaN on both sides is equal, NaN on one side is an infinite difference."""
    a, b = a.astype(float).to_numpy(), b.astype(float).to_numpy()
    both_nan = np.isnan(a) & np.isnan(b)
    one_nan = np.isnan(a) ^ np.isnan(b)
    if one_nan.any():
        return float("inf")
    d = np.abs(a - b)[~both_nan]
    return float(d.max()) if d.size else 0.0


def _key_text(column: pd.Series) -> pd.Series:
    """A key column as text, numbers written one way (1, 1.0 and "1.0" alike; NaN and "nan" alike),
    so that two tables whose readers typed a column differently (float64 in one, text in the other,
    as a column of "nan" placeholders reads) still pair their rows."""
    def text(v):
        try:
            f = float(v)
        except (TypeError, ValueError):
            return str(v)
        return "nan" if f != f else repr(f)
    return column.map(text)


def _value_diff(new: pd.DataFrame, ref: pd.DataFrame, value: str = "value") -> tuple[float, int, int]:
    """Max |Δ value| over the rows both tables share (keyed by every other column both have), and
    the numbers of rows only in new / only in ref."""
    keys = [c for c in new.columns if c != value and c in ref.columns]
    mixed = [k for k in keys if new[k].dtype != ref[k].dtype]
    if mixed:
        new, ref = new.copy(), ref.copy()
        for k in mixed:
            new[k], ref[k] = _key_text(new[k]), _key_text(ref[k])
    merged = new.merge(ref, on=keys, how="outer", suffixes=("_new", "_ref"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    only_new = int((merged["_merge"] == "left_only").sum())
    only_ref = int((merged["_merge"] == "right_only").sum())
    diff = _max_abs(both[f"{value}_new"], both[f"{value}_ref"]) if len(both) else float("nan")
    return diff, only_new, only_ref


def compare_runs(new: Path, ref: Path, atol: float) -> pd.DataFrame:
    """One row per training run in either folder."""
    runs_new, runs_ref = _read(new, "runs"), _read(ref, "runs")
    met_new, met_ref = _read(new, "metrics"), _read(ref, "metrics")
    key = ["experiment", "run"]
    names = pd.concat([runs_new[key] if len(runs_new) else pd.DataFrame(columns=key),
                       runs_ref[key] if len(runs_ref) else pd.DataFrame(columns=key)]).drop_duplicates()
    rows = []
    for exp, run in names.itertuples(index=False):
        def pick(frame):
            return frame[(frame["experiment"] == exp) & (frame["run"] == run)] if len(frame) else frame
        a, b = pick(met_new), pick(met_ref)
        row = {"experiment": exp, "run": run}
        if a.empty or b.empty:
            rows.append(row | {"class": MISSING, "max_abs_diff": float("nan"),
                               "note": "only in " + ("the reference" if a.empty else "the new results")})
            continue
        a, b = a[~a["metric"].isin(TIMING)], b[~b["metric"].isin(TIMING)]
        diff, only_a, only_b = _value_diff(a, b)
        last = {}
        for side, frame in (("new", a), ("reference", b)):
            test = frame[(frame["split"] == "test") & (frame["metric"] == "accuracy")].sort_values("step")
            last[side] = float(test["value"].iloc[-1]) if len(test) else float("nan")
        cls = _classify(diff, atol) if not (only_a or only_b) else DIFFERS
        note = f"{only_a} rows only new, {only_b} only in the reference" if only_a or only_b else ""
        rows.append(row | {"class": cls, "max_abs_diff": diff, "test_accuracy": last["new"],
                           "reference_test_accuracy": last["reference"], "note": note})
    return pd.DataFrame(rows)


def compare_tables(new: Path, ref: Path, atol: float, names=THESIS_TABLES + SPECTRA_TABLES) -> pd.DataFrame:
    rows = []
    for name in names:
        a, b = _read(new, name), _read(ref, name)
        if a.empty and b.empty:
            continue
        if a.empty or b.empty:
            rows.append({"table": name, "class": MISSING, "max_abs_diff": float("nan"),
                         "note": "only in " + ("the reference" if a.empty else "the new results")})
            continue
        value = "sigma" if name == "spectra" and "sigma" in a else "empirical" if name == "h4" else "value"
        if value not in a or value not in b:
            side = "the new results" if value not in a else "the reference"
            rows.append({"table": name, "class": MISSING, "max_abs_diff": float("nan"),
                         "note": f"no column {value!r} in {side}"})
            continue
        drop = [c for c in ("theory",) if name == "h4" and c in a]
        if "metric" in a:
            a, b = a[~a["metric"].isin(TIMING)], b[~b["metric"].isin(TIMING)]
        diff, only_a, only_b = _value_diff(a.drop(columns=drop), b.drop(columns=[c for c in drop if c in b]), value)
        cls = _classify(diff, atol) if not (only_a or only_b) else DIFFERS
        notes = [f"{only_a} rows only new, {only_b} only in the reference"] if only_a or only_b else []
        notes += [f"columns only in {side}: {cols}" for side, cols in (
            ("the new results", sorted(set(a.columns) - set(b.columns))),
            ("the reference", sorted(set(b.columns) - set(a.columns)))) if cols]
        rows.append({"table": name, "class": cls, "max_abs_diff": diff, "note": "; ".join(notes)})
    return pd.DataFrame(rows, columns=["table", "class", "max_abs_diff", "note"])


def compare_claims(new: Path, ref: Path) -> pd.DataFrame:
    def ledger(folder):
        path = folder / "report" / "ledger.csv"
        return pd.read_csv(path, keep_default_na=False) if path.exists() else pd.DataFrame(columns=["claim", "verdict"])
    a, b = ledger(new), ledger(ref)
    merged = a[["claim", "verdict"]].merge(b[["claim", "verdict"]], on="claim", how="outer",
                                           suffixes=("", "_reference"))
    merged["same"] = merged["verdict"] == merged["verdict_reference"]
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orthojac-compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="the new results (or a snapshot of them)")
    parser.add_argument("reference", type=Path, help="the reference, e.g. results/reference/cpu")
    parser.add_argument("--atol", type=float, default=1e-6, help="largest |difference| counted as close")
    parser.add_argument("--strict", action="store_true", help="fail on any number beyond --atol too")
    parser.add_argument("--out", type=Path, help="write the per-run comparison as CSV here")
    args = parser.parse_args(argv)
    for folder in (args.results, args.reference):
        if not (folder / "tables").is_dir():
            parser.error(f"{folder}: no tables/ folder (a results folder or a snapshot of one)")
    runs = compare_runs(args.results, args.reference, args.atol)
    tables = compare_tables(args.results, args.reference, args.atol)
    claims = compare_claims(args.results, args.reference)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 60)
    print(f"# {args.results} against {args.reference} (close: |Δ| ≤ {args.atol:g})")
    counts = runs["class"].value_counts().to_dict() if len(runs) else {}
    print(f"\n## Training runs: {len(runs)} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    if len(runs):
        print(runs.to_string(index=False))
    print("\n## Thesis and spectra tables")
    print(tables.to_string(index=False) if len(tables) else "(none in either)")
    print("\n## Claims")
    print(claims.to_string(index=False))
    if args.out:
        runs.to_csv(args.out, index=False)
    changed = claims[~claims["same"]]
    if len(changed):
        print(f"\n{len(changed)} verdict(s) differ from the reference: {', '.join(changed['claim'])}")
    numbers_off = (runs["class"].isin([DIFFERS, MISSING]).any() if len(runs) else False) or \
        (tables["class"].isin([DIFFERS, MISSING]).any() if len(tables) else False)
    return 1 if len(changed) or (args.strict and numbers_off) else 0


if __name__ == "__main__":
    sys.exit(main())

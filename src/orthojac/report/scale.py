"""At which scale each verdict of the ledger was reached, and the reference's verdict beside it.

A verdict means little without the scale it was reached at: P2 judged on dense networks of width
128 for two epochs on a CPU is not P2 judged on the paper's convolutional networks on a GPU. This
reads the scale off the same tables the judges read (runs.csv: the settings and the device of
every run; the thesis tables), so it cannot disagree with what was judged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..claims import CLAIMS

def _ints(values) -> str:
    values = sorted({int(v) for v in values if pd.notna(v)})
    return "/".join(map(str, values)) if values else "?"


def _runs_scale(sel: pd.DataFrame) -> str:
    """'dense width 128, depth 200, 2 epochs, 3 seeds, cpu' per architecture of the runs."""
    parts = []
    for arch, group in sel.groupby(sel["arch"].fillna("conv") if "arch" in sel else pd.Series("conv", sel.index)):
        size = (f"width {_ints(group['width'])}" if arch == "dense"
                else f"C = {_ints(group['channels'])}") if ("width" in group and "channels" in group) else ""
        device = "/".join(sorted(group["device"].dropna().astype(str).str.split(":").str[0].unique())) \
            if "device" in group else ""
        seeds = group["seed"].nunique() if "seed" in group else 1
        epochs = _ints(group["epochs"]) if "epochs" in group else "?"
        parts.append(f"{arch} {size}, depth {_ints(group['depth'])}, {epochs} epochs, "
                     f"{seeds} seed{'s' if seeds != 1 else ''}" + (f", {device}" if device else ""))
    return "; ".join(parts)


def _rnn_scale(t: pd.DataFrame) -> str:
    dataset = "/".join(sorted(t["dataset"].astype(str).unique())) if "dataset" in t else "?"
    return (f"RNN on {dataset}, {_ints(t['train_size'])} training sequences, {_ints([t['epoch'].max()])} epochs, "
            f"{t['seed'].nunique()} seeds")


def _lstm_scale(t: pd.DataFrame) -> str:
    if "status" in t and (t["status"] == "data unavailable").any():
        return "data unavailable (nothing trained)"
    return f"LSTM, {_ints(t['train_size'])} sentences, {_ints([t['epoch'].max()])} epochs, {t['seed'].nunique()} seeds"


def _linear_scale(t: pd.DataFrame) -> str:
    return f"linear width {_ints(t['width'])}, depths {_ints(t['depth'])}, {t['seed'].nunique()} seeds"


def _h4_scale(t: pd.DataFrame) -> str:
    return f"width {_ints(t['width'])}, depths {_ints(t['depth'])}, {t['seed'].nunique()} seeds, at initialisation"


# The scale of the evidence in each thesis table a claim can read (Claim.reads), by table.
TABLE_SCALES = {"hlav_rnn": _rnn_scale, "hlav_lstm": _lstm_scale, "hlav_linear": _linear_scale, "h4": _h4_scale}


def claim_scale(claim: str, runs: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> str:
    """The scale the claim's evidence has in this configuration ('not run' when it has none), read
    from the tables its Claim reads: the runs tagged with it (runs.csv's `claims`) where it reads
    the runs, else its thesis table (TABLE_SCALES)."""
    reads = CLAIMS[claim].reads if claim in CLAIMS else ()
    if "runs" in reads:
        if runs.empty or "claims" not in runs:
            return "not run"
        sel = runs[runs["claims"].fillna("").str.split(";").apply(lambda cs: claim in cs)]
        return _runs_scale(sel) if len(sel) else "not run"
    for table in reads:
        if table in TABLE_SCALES:
            t = tables.get(table)
            return "not run" if t is None or t.empty else TABLE_SCALES[table](t)
    return "not run"


def with_scale(ledger: pd.DataFrame, runs: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ledger with a `scale` column after `statement`."""
    out = ledger.copy()
    out.insert(list(out.columns).index("statement") + 1 if "statement" in out else len(out.columns), "scale",
               [claim_scale(c, runs, tables) for c in out["claim"]])
    return out


def with_reference(ledger: pd.DataFrame, reference: Path, label: str) -> pd.DataFrame:
    """The ledger with the reference's verdict (and scale) of each claim beside the verdict, read
    from a committed reference's report/ledger.csv; the columns say 'not in the reference' where
    it has no such claim or no ledger."""
    out = ledger.copy()
    ref = pd.read_csv(reference, keep_default_na=False) if Path(reference).exists() else pd.DataFrame(
        columns=["claim", "verdict", "scale"])
    ref = ref.set_index("claim")
    at = list(out.columns).index("verdict") + 1
    out.insert(at, f"{label} verdict", [ref["verdict"].get(c, "not in the reference") for c in out["claim"]])
    if "scale" in ref:
        out.insert(at + 1, f"{label} scale", [ref["scale"].get(c, "") for c in out["claim"]])
    return out


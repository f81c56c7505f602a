"""A claim is one object: a Claim (its id, source, quote, thresholds, the tables its judge reads,
the judge and the provenance of each threshold) registered in orthojac.claims.CLAIMS reaches the
ledger, its fragility and the report's claims table with nothing else routed by hand."""

import sys
import types

import pandas as pd
import pytest

from orthojac import claims, report
from orthojac.claims import CLAIMS, JUDGES, NOT_REPRODUCED, REPRODUCED, Claim, ledger_of

# A claim as a new module of orthojac.claims would hold it: its threshold a module constant, its
# judge beside it, reading the runs, metrics and the per-layer table.
EXTRA = '''
from orthojac.claims.rules import NOT_REPRODUCED, REPRODUCED, Claim, _verdict
from orthojac.claims.runs import _runs_for, final_accuracy

P8_MIN = 0.5


def judge_p8(runs, metrics, spectra, layers=None):
    acc = final_accuracy(_runs_for(runs, "P8"), metrics)["accuracy"].mean()
    read = "layers given" if layers is not None else "no layers"
    return _verdict("P8", f"mean test accuracy {acc:.3f} ({read})", f"mean test accuracy ≥ {P8_MIN:g}",
                    REPRODUCED if acc >= P8_MIN else NOT_REPRODUCED)


CLAIM_P8 = Claim(
    "P8", "a test's source", "a test claim", "the sentence it encodes", "mean final test accuracy", ("P8_MIN",),
    ("runs", "metrics", "layers"), judge=judge_p8,
    provenance=[(f"≥ {P8_MIN:g}", "choice", "a test's threshold")])
'''


@pytest.fixture
def extra_claim(monkeypatch):
    module = types.ModuleType("orthojac.claims.extra")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(EXTRA, vars(module))
    monkeypatch.setitem(CLAIMS, "P8", module.CLAIM_P8)
    title, ids = report.SECTIONS["paper"]
    monkeypatch.setitem(report.SECTIONS, "paper", (title, (*ids, "P8")))  # its page in the report
    return module


def _tables(accuracy: float) -> dict[str, pd.DataFrame]:
    runs = pd.DataFrame([{"experiment": "e", "run": f"r{i}", "status": "completed", "claims": "P8", "depth": 4,
                          "seed": i} for i in range(2)])
    metrics = pd.DataFrame([{"experiment": "e", "run": f"r{i}", "split": "test", "metric": "accuracy", "step": 10,
                             "epoch": 1, "value": accuracy} for i in range(2)])
    layers = pd.DataFrame([{"experiment": "e", "run": "r0", "checkpoint": "init", "metric": "max_abs_dev",
                            "layer": 0, "value": 0.0}])
    return {"runs": runs, "metrics": metrics, "layers": layers}


def test_a_registered_claim_reaches_the_ledger_its_fragility_and_the_report(extra_claim):
    ledger = report.ledger_from_tables(_tables(0.7)).set_index("claim")
    assert list(ledger.index) == list(CLAIMS) and ledger.index[-1] == "P8"
    row = ledger.loc["P8"]
    assert row["verdict"] == REPRODUCED
    assert row["numbers"] == "mean test accuracy 0.700 (layers given)"  # the table it reads was passed
    assert row["tolerance_provenance"] == "≥ 0.5: choice: a test's threshold"
    assert row["quote"] == "the sentence it encodes" and row["rule"] == claims.THRESHOLD_RULE
    # P8_MIN ×1.5 = 0.75 > 0.7: the fragility moved the new module's own constant, and put it back
    assert row["fragility"].startswith("reproduced at 2 of 3 settings")
    assert "P8_MIN ×1.5 (0.75) → not reproduced" in row["fragility"]
    assert extra_claim.P8_MIN == 0.5 and JUDGES["P8"] is extra_claim.judge_p8
    assert ledger_of(_tables(0.4), ["P8"], with_fragility=False)["verdict"].tolist() == [NOT_REPRODUCED]
    table = report.ledger_html(ledger.reset_index())
    assert table.count("<tr>") == len(CLAIMS) + 1
    assert '<a href="paper.html#claim-P8">P8</a>' in table and "a test claim" in table


def test_the_ledger_judges_only_the_claims_asked_with_the_tables_each_reads():
    h2 = pd.DataFrame([{"label": "a", "variant": "x", "gain": 1.0, "lam": 0.0, "configuration": "c", "seed": 0,
                        "epoch": 1, "metric": "val_accuracy", "value": 0.6, "status": "completed",
                        "train_size": 10}])
    tables = {"runs": pd.DataFrame(), "metrics": pd.DataFrame(), "spectra": pd.DataFrame(), "hlav_lstm": h2}
    row = ledger_of(tables, ["H-C4"], with_fragility=False)
    direct = JUDGES["H-C4"](pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), hlav_lstm=h2).as_row()
    assert row.to_dict("records") == [direct] and "1 seeds" in direct["numbers"]
    with pytest.raises(KeyError, match="not a claim of orthojac.claims: P99"):
        ledger_of(tables, ["P99"])


def test_a_claim_reading_a_table_the_ledger_does_not_make_is_an_error_naming_it(monkeypatch):
    bad = Claim("X", "s", "st", "q", "stat", (), ("runs", "hlav_rnns"), judge=JUDGES["P1"])
    monkeypatch.setitem(CLAIMS, "X", bad)
    with pytest.raises(KeyError, match="claim X reads hlav_rnns: not a table of the ledger"):
        ledger_of({}, ["X"])

"""A claim is one object: a Claim (its id, source, quote, thresholds, the tables its judge reads,
the judge, the provenance of each threshold, its report page and its figure) registered in
orthojac.claims.CLAIMS reaches the ledger, its fragility, the report's claims table and its page
with nothing else routed by hand. One test adds a claim to a temporary copy of the package as a
new claim is added (a module of its own and its entry in the registry's tuple, nothing else
edited) and sees it reach the ledger and its page."""

import json
import os
import shutil
import subprocess
import sys
import types

import pandas as pd
import pytest

from conftest import REPO
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
    ("runs", "metrics", "layers"), page="paper", figure="accuracy_vs_depth", judge=judge_p8,
    provenance=[(f"≥ {P8_MIN:g}", "choice", "a test's threshold")])
'''


@pytest.fixture
def extra_claim(monkeypatch):
    module = types.ModuleType("orthojac.claims.extra")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(EXTRA, vars(module))
    monkeypatch.setitem(CLAIMS, "P8", module.CLAIM_P8)  # nothing else: its page is its own `page`
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
    assert "the figure that decides it (accuracy_vs_depth)" in table
    assert report.page_claims("paper")[-1] == "P8" and report.claim_page("P8") == "paper"
    assert "P8" in report.experiment_claims("paper") and "P8" not in report.page_claims("hlav")


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
    bad = Claim("X", "s", "st", "q", "stat", (), ("runs", "hlav_rnns"), page="paper", judge=JUDGES["P1"])
    monkeypatch.setitem(CLAIMS, "X", bad)
    with pytest.raises(KeyError, match="claim X reads hlav_rnns: not a table of the ledger"):
        ledger_of({}, ["X"])


# Run with the temporary copy first on the path: the ledger and the paper page as its notebook
# opens it (the first cell of notebooks/paper.py.ipynb, run with a job's snakemake object).
IN_THE_COPY = """
import json, sys
from pathlib import Path
from types import SimpleNamespace

import orthojac
from orthojac.report import claim_page, ledger_from_tables, read_tables

folder = Path(sys.argv[1])
paths = sorted(str(p) for p in folder.glob("*.csv"))
ledger = ledger_from_tables(read_tables(paths)).set_index("claim")
cells = json.loads(Path(sys.argv[2]).read_text())["cells"]
job = SimpleNamespace(wildcards=SimpleNamespace(page="paper"), input=SimpleNamespace(tables=paths),
                      output=SimpleNamespace(provenance=str(folder / "paper.provenance.txt")),
                      config={"experiments": [{"name": "e", "claims": ["P8"], "settings": {}}]})
page = {"snakemake": job}
exec("".join(cells[0]["source"]), page)
# the config's schema (the copy's, with the checkout's hand-written part) lets an experiment claim P8
import yaml
from orthojac.workflow.schema import config_schema, validator
config = yaml.safe_load(Path(sys.argv[4]).read_text())
schema = validator(config_schema(Path(sys.argv[3])))
errors = {}
for claim in ("P8", "P9"):
    config["experiments"][0]["claims"] = [claim]
    errors[claim] = [e.message for e in schema.iter_errors(config)]
print(json.dumps({"package": orthojac.__file__, "errors": errors, "claims": list(ledger.index), "P8": ledger.loc["P8"].to_dict(),
                  "page": claim_page("P8"), "page_claims": list(page["page_claims"]),
                  "experiments": page["experiments"], "runs": sorted(page["runs"]["run"]),
                  "provenance": sorted(set(page["provenance"]["experiment"]))}))
"""


def claims_schema_ids() -> list[str]:
    from orthojac.workflow.schema import config_schema
    return config_schema()["$defs"]["experiment"]["properties"]["claims"]["items"]["enum"]


def test_the_claims_an_experiment_may_name_are_the_registry_s():
    assert claims_schema_ids() == list(CLAIMS)


def test_a_claim_added_to_a_copy_of_the_package_reaches_the_ledger_and_its_page(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(REPO / "src/orthojac", copy / "orthojac", ignore=shutil.ignore_patterns("__pycache__"))
    # the new claim: a module of orthojac.claims holding it, and its entry in the registry's tuple
    (copy / "orthojac/claims/extra.py").write_text(EXTRA)
    init = copy / "orthojac/claims/__init__.py"
    source = init.read_text()
    registered = "CLAIM_H_C4, CLAIM_H_C5, CLAIM_H_C6))"
    assert source.count(registered) == 1
    imports = "from .thesis_theory import CLAIM_H_C5, CLAIM_H_C6\n"
    assert source.count(imports) == 1
    init.write_text(source.replace(registered, "CLAIM_H_C4, CLAIM_H_C5, CLAIM_H_C6, CLAIM_P8))")
                    .replace(imports, imports + "from .extra import CLAIM_P8\n"))
    tables = tmp_path / "tables"
    tables.mkdir()
    for name, frame in _tables(0.7).items():
        frame.to_csv(tables / f"{name}.csv", index=False)
    env = {**os.environ, "PYTHONPATH": str(copy), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", IN_THE_COPY, str(tables), str(REPO / "notebooks/paper.py.ipynb"),
                          str(REPO / "workflow/schemas/config.schema.yaml"), str(REPO / ".test/config.yaml")],
                         env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["package"].startswith(str(copy))  # the copy was imported, not the checkout
    assert seen["claims"] == [*CLAIMS, "P8"]
    # config validation takes the new id from the registry and refuses one no claim has
    assert seen["errors"]["P8"] == [] and "P8" not in claims_schema_ids()
    assert len(seen["errors"]["P9"]) == 1 and "'P9' is not one of" in seen["errors"]["P9"][0]
    assert seen["P8"]["verdict"] == REPRODUCED and seen["P8"]["numbers"] == "mean test accuracy 0.700 (layers given)"
    assert seen["page"] == "paper" and seen["page_claims"][-1] == "P8"
    assert seen["experiments"] == ["e"] and seen["runs"] == ["r0", "r1"]
    assert seen["provenance"] == ["e"] and (tables / "paper.provenance.txt").is_file()

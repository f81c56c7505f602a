"""A snapshot's report pages rendered again from its tables and figures (orthojac.report.render), as the
committed CPU reference's are: the same ledger, every link and figure resolves, every claim's part
shows its figure, and the reference is not compared with itself."""

from __future__ import annotations

import shutil

import pandas as pd

from conftest import REPO
from orthojac.claims import CLAIMS
from orthojac.report.render import render
from orthojac.report.check import check_report, parse_page
from orthojac.workflow import PAGES

REFERENCE = REPO / "results/reference/cpu"


def test_rendering_the_reference_again_gives_its_ledger_and_whole_pages(tmp_path):
    snapshot = tmp_path / "cpu"
    for part in ("tables", "figures"):
        shutil.copytree(REFERENCE / part, snapshot / part)
    shutil.copy(REFERENCE / "manifest.json", snapshot)
    pages = render(snapshot, [REPO / "config/cpu.yaml"])
    assert [p.name for p in pages] == ["index.html"] + [f"{p}.html" for p in PAGES]
    report = snapshot / "report"
    committed = pd.read_csv(REFERENCE / "report/ledger.csv", keep_default_na=False)
    assert pd.read_csv(report / "ledger.csv", keep_default_na=False).equals(committed)
    assert check_report(report) == []
    index = parse_page(report / "index.html")
    assert [row[0] for row in index.ledger_rows] == list(CLAIMS)
    assert all(len(row) == 5 for row in index.ledger_rows)  # no "CPU reference verdict": it is the reference
    assert "not in the reference" not in (report / "index.html").read_text()
    claim_parts = {}
    for page in PAGES:
        claim_parts.update(parse_page(report / f"{page}.html").claim_images)
    assert set(claim_parts) == set(CLAIMS) and min(claim_parts.values()) >= 1

"""A snapshot's report pages rendered again from its tables and figures (orthojac.report.render), as the
committed CPU reference's are: the same ledger, every link and figure resolves, every claim's part
shows its figure, and the reference is not compared with itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from conftest import REPO, dying_kernel
from orthojac.report import render as render_module
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


def one_cell_page(tmp_path, monkeypatch, source: str, dying: str) -> Path:
    """notebooks/page.py.ipynb of one cell, `source`, run by the stand-in kernel dying at the
    launches `dying` names; returns the folder of its launches."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), notebooks / "page.py.ipynb")
    monkeypatch.setattr(render_module, "NOTEBOOKS", notebooks)
    monkeypatch.setenv("JUPYTER_PATH", str(dying_kernel(tmp_path / "jupyter", tmp_path / "launches", dying)))
    return tmp_path / "launches"


@pytest.mark.parametrize("dying, runs", [("1", True), ("1,2", False)])
def test_a_page_whose_kernel_dies_at_start_is_run_once_more(tmp_path, monkeypatch, dying, runs):
    launches = one_cell_page(tmp_path, monkeypatch, "print(snakemake.params.word)", dying)
    if runs:
        out = render_module.execute("page", "page", tmp_path, config={}, params={"word": "ran"})
        assert out.cells[1].outputs[0]["text"] == "ran\n"
    else:
        with pytest.raises(RuntimeError, match=render_module.KERNEL_DIED_AT_START):
            render_module.execute("page", "page", tmp_path, config={}, params={"word": "ran"})
    assert len(list(launches.iterdir())) == 2  # the first launch died; the second ran, or died too


def test_a_page_that_fails_in_its_cells_is_not_run_again(tmp_path, monkeypatch):
    from nbclient.exceptions import CellExecutionError

    launches = one_cell_page(tmp_path, monkeypatch, "raise RuntimeError(snakemake.params.word)", "0")
    with pytest.raises(CellExecutionError, match="a cell failed"):
        render_module.execute("page", "page", tmp_path, config={}, params={"word": "a cell failed"})
    assert len(list(launches.iterdir())) == 1


def test_a_page_whose_kernel_dies_in_its_cells_is_not_run_again(tmp_path, monkeypatch):
    from nbclient.exceptions import DeadKernelError  # a RuntimeError, as the death at start is

    launches = one_cell_page(tmp_path, monkeypatch, "import os; os._exit(1)", "0")
    with pytest.raises(DeadKernelError):
        render_module.execute("page", "page", tmp_path, config={}, params={})
    assert len(list(launches.iterdir())) == 1


def test_a_kernel_that_died_at_start_leaves_no_failing_exit_hook(tmp_path, monkeypatch):
    """nbclient 0.11 cleans up a kernel that died at start but leaves its exit hook, which fails
    when the interpreter exits ("Exception ignored in atexit callback"); render unregisters it.
    Run in a process of its own (the page and JUPYTER_PATH as one_cell_page sets them), whose exit
    is the one watched."""
    launches = one_cell_page(tmp_path, monkeypatch, "1", "1")
    script = ("from pathlib import Path; from orthojac.report import render\n"
              f"render.NOTEBOOKS = Path({str(tmp_path / 'notebooks')!r})\n"
              f"render.execute('page', 'page', Path({str(tmp_path)!r}), config={{}})\n")
    proc = subprocess.run([sys.executable, "-c", script], env=dict(os.environ), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(launches.iterdir())) == 2 and "Exception ignored" not in proc.stderr, proc.stderr[-3000:]

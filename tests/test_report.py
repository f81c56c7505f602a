"""The rendered report as a reader gets it: every figure and link resolves, the ledger has one row
per claim, the pages hold the right experiments, and `snakemake --report` packs the figures."""

from __future__ import annotations

import base64
import dataclasses
import zipfile

import matplotlib
import pandas as pd
import pytest

from conftest import REPO, TEST_CONFIG, job_counts, run_snakemake
from orthojac.report import figures
from orthojac.claims import CLAIMS
from orthojac.report.figures import FIGURES
from orthojac.report import (claim_page, experiment_claims, ledger_html, page_claims,
                             page_experiments, provenance_table, reference_verdicts)
from orthojac.workflow import EXPERIMENTS, PAGES
from orthojac.report.check import PNG_SIGNATURE, check_report, image_problem, parse_page
from orthojac.spectra_settings import SpectraSettings

matplotlib.use("Agg")
REPORT_PAGES = list(PAGES)  # the one list of pages (orthojac.workflow.PAGES: the rules read it too)


def test_every_image_and_link_of_the_fixture_report_resolves(tiny_pipeline):
    folder = tiny_pipeline / "results/report"
    assert check_report(folder) == []
    assert sorted(p.name for p in folder.glob("*.html")) == sorted(["index.html"] + [f"{s}.html" for s in REPORT_PAGES])


def test_every_page_has_a_notebook_and_the_workflow_plans_it(plan):
    """The workflow renders one page per key of orthojac.workflow.PAGES, from its notebook
    (planned in a folder of its own: a checkout where `make quick` made the report plans it too)."""
    for page in REPORT_PAGES:
        assert (REPO / PAGES[page].notebook).is_file(), page
    planned = job_counts(plan("config/quick.yaml"))
    assert planned["report_section"] == len(REPORT_PAGES)
    assert planned["render_page"] == len(REPORT_PAGES) + 1  # and the index


def test_every_page_of_the_list_is_rendered(tiny_pipeline):
    folder = tiny_pipeline / "results/report"
    for name in REPORT_PAGES:
        page = parse_page(folder / f"{name}.html")
        assert "index.html" in page.links, name
        assert (folder / f"{name}.provenance.csv").is_file(), name


def test_theory_page_shows_h_c6_its_figure_and_the_h4_provenance(tiny_pipeline):
    folder = tiny_pipeline / "results/report"
    page = parse_page(folder / "theory.html")
    text = (folder / "theory.html").read_text()
    ledger = pd.read_csv(tiny_pipeline / "results/report/ledger.csv").set_index("claim")
    assert "H-C6" in text and ledger.loc["H-C6", "verdict"] in text
    assert len(page.images) == 2  # h4_spectra: opening H-C6's part, and under Figures
    assert page.claim_images == {"H-C6": 1}
    provenance = pd.read_csv(folder / "theory.provenance.csv")
    assert set(provenance["experiment"]) == {"h4"}
    assert {"activations", "weights", "width", "depths", "seeds", "q_star"} <= set(provenance["setting"])
    h4 = pd.read_csv(tiny_pipeline / "results/tables/h4.csv")
    assert set(h4["activation"]) == {"relu", "tanh"} and set(h4["depth"]) == {2, 4}


def test_index_has_one_ledger_row_per_claim_and_links_every_page(tiny_pipeline):
    index = parse_page(tiny_pipeline / "results/report/index.html")
    assert [row[0] for row in index.ledger_rows] == list(CLAIMS)
    ledger = pd.read_csv(tiny_pipeline / "results/report/ledger.csv")
    # claim, statement (expanding to every column), verdict, key number, scale
    assert [row[2] for row in index.ledger_rows] == list(ledger["verdict"])
    assert all(len(row) == 5 for row in index.ledger_rows)  # no reference in the fixture's folder: no column for it
    for row, (_, claim) in zip(index.ledger_rows, ledger.iterrows()):
        assert row[1].startswith(claim["statement"]) and claim["tolerance"] in row[1]
        assert row[4] == claim["scale"]
    assert {f"{s}.html" for s in REPORT_PAGES} <= set(index.links)
    assert {f"{claim_page(c)}.html#claim-{c}" for c in CLAIMS} <= set(index.links)
    assert (tiny_pipeline / "results/report/overview.png").read_bytes().startswith(PNG_SIGNATURE)
    assert len(index.images) == 1  # the overview


def test_paper_page_shows_every_figure_as_an_embedded_png(tiny_pipeline):
    page = parse_page(tiny_pipeline / "results/report/paper.html")
    # every figure under Figures, and each claim's part opens with the figure that decides it
    assert len(page.images) >= len(FIGURES) + len(page_claims("paper"))
    assert set(page.claim_images) == set(page_claims("paper")) and min(page.claim_images.values()) >= 1
    for src in page.images:
        assert base64.b64decode(src.partition(",")[2]).startswith(PNG_SIGNATURE)
    assert "index.html" in page.links


def test_snakemake_report_zip_contains_the_figures(tiny_pipeline, tmp_path, venv_env):
    out = tmp_path / "report.zip"
    run_snakemake(["--snakefile", str(REPO / "Snakefile"), "--configfile", str(TEST_CONFIG),
                   "--report", str(out)], tiny_pipeline, venv_env, timeout=300)
    archive = zipfile.ZipFile(out)
    names = {n.rsplit("/", 1)[-1] for n in archive.namelist()}
    assert {f"{f}.png" for f in FIGURES} | {"report.html", "index.html", "paper.html", "ledger.csv"} <= names
    # The pages sit side by side in one folder of the zip, so the index's links to them resolve.
    archive.extractall(tmp_path / "unzipped")
    (index,) = (tmp_path / "unzipped").rglob("index.html")
    assert {p.name for p in index.parent.glob("*.html")} == {"index.html"} | {f"{s}.html" for s in REPORT_PAGES}
    assert check_report(index.parent) == []
    assert 'href="paper.html"' in index.read_text()


def _page(folder, body: str):
    (folder / "page.html").write_text(f"<html><body>{body}</body></html>")
    return check_report(folder)


def test_check_report_finds_broken_images_and_links(tmp_path):
    png = base64.b64encode(PNG_SIGNATURE + b"rest").decode()
    (tmp_path / "fig.png").write_bytes(PNG_SIGNATURE)
    assert _page(tmp_path, f'<img src="data:image/png;base64,{png}"><img src="fig.png">'
                           '<a href="#top">x</a><a href="https://example.org">y</a><a href="page.html">z</a>') == []
    assert _page(tmp_path, '<img src="missing.png">') == ["page.html: image 'missing.png' does not exist"]
    jpeg = base64.b64encode(b"\xff\xd8\xff").decode()
    assert _page(tmp_path, f'<img src="data:image/png;base64,{jpeg}">') == ["page.html: image data URI is not a PNG"]
    assert "does not decode" in _page(tmp_path, '<img src="data:image/png;base64,@@@">')[0]
    assert _page(tmp_path, '<a href="other.html#x">o</a>') == ["page.html: link 'other.html#x' does not resolve"]


def test_image_problem_rejects_remote_and_empty_sources(tmp_path):
    assert "not part of the report" in image_problem("http://example.org/a.png", tmp_path)
    assert image_problem("", tmp_path) == "empty src"
    assert check_report(tmp_path) == [f"{tmp_path}: no HTML pages"]


def test_ledger_rows_are_read_only_from_the_ledger_table(tmp_path):
    (tmp_path / "p.html").write_text(
        "<table><tbody><tr><td>not</td></tr></tbody></table>"
        '<table class="x claims-ledger"><thead><tr><th>claim</th></tr></thead>'
        "<tbody><tr><td> P1 </td><td>ok</td></tr><tr><td>P2</td><td>no</td></tr></tbody></table>")
    assert parse_page(tmp_path / "p.html").ledger_rows == [["P1", "ok"], ["P2", "no"]]


def test_provenance_table_lists_each_experiments_spectrum_settings():
    config = {"experiments": [{"name": "e", "description": "d", "settings": {"depth": {"value": 4, "choice": "toy"}},
                               "spectra": {"checkpoints": ["init", "final"], "points": 2, "method": "lanczos",
                                           "dtype": "float32", "layers": True, "choice": "why these"}}]}
    table = provenance_table(config).set_index("setting")
    spectra = table.loc[[f"spectra.{f.name}" for f in dataclasses.fields(SpectraSettings)]]
    assert {"spectra.method", "spectra.dtype", "spectra.points", "spectra.checkpoints"} <= set(spectra.index)
    assert spectra.loc["spectra.checkpoints", "value"] == "init, final"
    assert (spectra.loc["spectra.method", "value"], spectra.loc["spectra.dtype", "value"]) == ("lanczos", "float32")
    assert spectra.loc["spectra.points", "value"] == "2" and spectra.loc["spectra.layers", "value"] == "True"
    assert spectra.loc["spectra.grad_batch", "value"] == "schema default"  # left out, not yet validated
    assert set(spectra["provenance"]) == {"choice"} and set(spectra["where / why"]) == {"why these"}


def test_page_provenance_tables_show_the_spectrum_settings_the_runs_used(tiny_pipeline):
    provenance = pd.read_csv(tiny_pipeline / "results/report/paper.provenance.csv")
    tiny = provenance[provenance["experiment"] == "tiny"].set_index("setting")["value"]
    assert tiny["spectra.checkpoints"] == "init, epoch1, final" and tiny["spectra.points"] == "1"
    assert tiny["spectra.method"] == "auto" and tiny["spectra.dtype"] == "float64"  # the schema's defaults, filled in


def test_experiments_belong_to_the_pages_of_their_claims():
    config = {"experiments": [{"name": "a", "claims": ["P1"]}, {"name": "b", "claims": ["H-C1", "H-C6"]},
                              {"name": "c"}]}
    assert page_experiments(config, "paper") == ["a"]
    assert page_experiments(config, "hlav") == ["b"]
    assert page_experiments(config, "theory") == ["b"]
    with pytest.raises(ValueError, match="'nope'"):
        page_experiments(config, "nope")


def test_each_page_shows_the_claims_that_name_it_and_each_claim_is_on_one_page():
    assert page_claims("paper") == ("P1", "P2", "P3", "P4", "P5", "P6", "P7")
    assert page_claims("hlav") == ("H-C1", "H-C2", "H-C3", "H-C4", "H-C5") and page_claims("theory") == ("H-C6",)
    owners = [c for page in PAGES for c in page_claims(page)]
    assert sorted(owners) == sorted(CLAIMS) and all(c in page_claims(claim_page(c)) for c in CLAIMS)


def test_each_experiment_has_the_claims_of_its_page_that_read_its_tables():
    assert experiment_claims("paper") == page_claims("paper")
    assert experiment_claims("hlav_rnn") == ("H-C1", "H-C2", "H-C3")
    assert experiment_claims("hlav_lstm") == ("H-C4",) and experiment_claims("hlav_linear") == ("H-C5",)
    assert experiment_claims("h4") == ("H-C6",) and experiment_claims("hlav_deep") == ()
    assert {c for name in EXPERIMENTS for c in experiment_claims(name)} == set(CLAIMS)


def _runs():
    return pd.DataFrame([{"experiment": "e", "run": "r", "family": "fold", "activation": "relu",
                          "bias_init": 0.0, "depth": 2, "status": "completed", "diverged_step": None}])


def test_grad_norm_figure_says_when_gradients_were_not_measured(tmp_path, monkeypatch):
    said = []
    monkeypatch.setattr(figures, "message_figure", lambda path, message: said.append(message))
    layers = pd.DataFrame([{"experiment": "e", "run": "r", "checkpoint": "init", "point": 0,
                            "layer": 0, "metric": "max_abs_dev", "value": 1e-8}])
    figures.grad_norm(_runs(), layers, tmp_path / "g.png")
    figures.grad_norm(_runs(), pd.DataFrame(), tmp_path / "g.png")
    assert said == ["per-layer gradient norms: not measured in this configuration"] * 2


def test_grad_norm_figure_plots_measured_gradients(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "message_figure", lambda path, message: pytest.fail(message))
    layers = pd.DataFrame([{"experiment": "e", "run": "r", "checkpoint": c, "layer": layer,
                            "metric": "grad_norm", "value": 10.0 ** -layer}
                           for c in ("final", "init") for layer in range(3)])
    figures.grad_norm(_runs(), layers, tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes().startswith(PNG_SIGNATURE)


def test_check_report_finds_missing_anchors_and_claims_without_a_figure(tmp_path):
    png = base64.b64encode(PNG_SIGNATURE).decode()
    (tmp_path / "other.html").write_text(f'<h2 id="claim-P1">P1</h2><img src="data:image/png;base64,{png}">'
                                         '<h2 id="claim-P2">P2</h2><p>no figure</p>'
                                         f'<h2 id="Figures">Figures</h2><img src="data:image/png;base64,{png}">')
    assert _page(tmp_path, '<a href="other.html#claim-P1">a</a><a href="other.html#claim-P9">b</a>') == [
        "other.html: claim P2 shows no figure",
        "page.html: link 'other.html#claim-P9': other.html has no element #claim-P9"]


def test_the_reference_is_compared_only_with_another_run(tmp_path):
    reference = pd.read_csv(REPO / "results/reference/cpu/report/ledger.csv", keep_default_na=False)
    path = tmp_path / "ledger.csv"
    reference.to_csv(path, index=False)
    assert reference_verdicts(reference, path) is None  # the reference's own page
    assert reference_verdicts(reference, tmp_path / "missing.csv") is None
    other = reference.assign(scale=reference["scale"].str.replace("cpu", "cuda"))
    shown = reference_verdicts(other, path)
    assert list(shown["verdict"]) == list(reference["verdict"])
    table = ledger_html(other, shown)
    assert table.count("<tr>") == len(CLAIMS) + 1 and "CPU reference verdict" in table
    assert "CPU reference verdict" not in ledger_html(reference, None)
    assert 'href="paper.html#claim-P5"' in table and "source: ≈ 89%" in table  # P5's number beside ours


def test_every_notebook_cell_has_a_fixed_id_of_its_own():
    """A cell without an id gets a random one each time the page is rendered (nbformat 4.5), so
    the same tables would give a different page: every cell names its own, unique in its notebook."""
    import json

    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        ids = [cell.get("id") for cell in json.loads(path.read_text())["cells"]]
        assert None not in ids, f"{path.name}: cell {ids.index(None)} has no id"
        assert len(set(ids)) == len(ids), f"{path.name}: a cell id is used twice"

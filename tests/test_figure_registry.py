"""The figures' registry (orthojac.workflow.sections): a paper figure declared once, with its report
subcategory, caption, tables and drawing function, reaches the workflow's file list, the figures
job's folder and the caption its report page shows; the thesis sections' figures carry theirs."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from conftest import REPO
from orthojac.report import figures
from orthojac.workflow import sections as workflow_sections
from orthojac.workflow import Pipeline, load_config
from orthojac.workflow.sections import (PAPER_FIGURES, PAPER_TABLES, SECTIONS, Figure, figure_caption,
                                        figure_markdown, register)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The columns of a paper table with no rows (a configuration that ran nothing of it).
EMPTY_COLUMNS = {"runs": ["experiment", "run", "family", "activation", "bias_init", "status", "diverged_step",
                          "depth", "seed", "claims"],
                 "metrics": ["experiment", "run", "metric", "split", "epoch", "step", "value"],
                 "spectra": ["experiment", "run", "checkpoint", "sigma"],
                 "layers": ["experiment", "run", "checkpoint", "layer", "metric", "value"]}


def notebook_cell(notebook: str, needle: str) -> str:
    """The source of the one code cell of notebooks/<notebook>.py.ipynb that contains `needle`."""
    cells = json.loads((REPO / f"notebooks/{notebook}.py.ipynb").read_text())["cells"]
    found = ["".join(c["source"]) for c in cells if c["cell_type"] == "code" and needle in "".join(c["source"])]
    assert len(found) == 1, (notebook, needle, len(found))
    return found[0]


def shown_by_the_paper_page(figure_paths: list[str]) -> list[tuple[str, str]]:
    """What the paper notebook's figures cell displays, run as it is with `figure_paths` as its
    snakemake input: (kind, text or file) of each display call."""
    shown = []
    namespace = {"snakemake": SimpleNamespace(input=SimpleNamespace(figures=figure_paths)), "Path": Path,
                 "Markdown": lambda text: ("markdown", text), "Image": lambda filename: ("image", filename),
                 "display": shown.append}
    exec(notebook_cell("paper", "figure_markdown"), namespace)
    return shown


def test_a_figure_declared_once_reaches_the_plan_the_figures_folder_and_the_report_caption(tmp_path, monkeypatch):
    calls = []

    def screen_scores(screens, path):
        """The new figure's function: one bar per screened setting."""
        calls.append(screens)
        fig, ax = figures.plt.subplots(figsize=(3, 2))
        ax.bar(screens["run"], screens["score"])
        figures.save_figure(fig, path)

    monkeypatch.setattr(figures, "screen_scores", screen_scores, raising=False)
    monkeypatch.setitem(PAPER_FIGURES, "screen_scores",
                        Figure("screen_scores", "Score of each screened setting (a figure added by the test).",
                               ("screens",), "screen_scores", subcategory="Screens"))

    # the plan: the report (and the figures rule, which writes every PAPER_FIGURES entry) asks for it
    config = load_config([], base=REPO / "config/config.yaml")
    requested = Pipeline(config).report_figures()
    paper = [f"results/figures/{name}.png" for name in PAPER_FIGURES]
    assert requested[:len(paper)] == paper and paper[-1] == "results/figures/screen_scores.png"

    # the figures job: drawn from the tables it declares, beside every other declared figure
    tables = tmp_path / "tables"
    tables.mkdir()
    for name in PAPER_TABLES:  # no rows: the other figures say so
        (tables / f"{name}.csv").write_text(",".join(EMPTY_COLUMNS.get(name, [])) + "\n")
    screens = pd.DataFrame({"screen": ["s", "s"], "run": ["a", "b"], "score": [0.25, 0.5]})
    screens.to_csv(tables / "screens.csv", index=False)
    out = tmp_path / "figures"
    figures.main(["--tables", str(tables), "--out-dir", str(out)])
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.png" for name in PAPER_FIGURES)
    assert (out / "screen_scores.png").read_bytes().startswith(PNG_SIGNATURE)
    assert len(calls) == 1 and calls[0].equals(screens)

    # the report: the paper page's figures cell shows it under its heading, with its caption
    shown = shown_by_the_paper_page([str(out / f"{name}.png") for name in PAPER_FIGURES]
                                    + ["results/figures/hlav_spectrum.png"])
    heading = ("markdown", "### screen scores\n\nScore of each screened setting (a figure added by the test).")
    assert shown[-2:] == [heading, ("image", str(out / "screen_scores.png"))]
    assert len(shown) == 2 * len(PAPER_FIGURES)  # a thesis figure is another page's


def test_the_figures_rule_writes_each_declared_figure_under_its_subcategory():
    rule = (REPO / "workflow/rules/figures.smk").read_text()
    assert "for name, figure in PAPER_FIGURES.items()" in rule and "subcategory=figure.subcategory" in rule
    assert {f.subcategory for f in PAPER_FIGURES.values()} == {"Training", "Jacobian spectra", "Gradients"}


def test_every_declared_figure_has_its_function_and_reads_only_paper_tables():
    for name, figure in PAPER_FIGURES.items():
        assert callable(getattr(figures, figure.draw, None)), name
        assert figure.caption and set(figure.tables) <= set(PAPER_TABLES), name
    assert figures.FIGURES == tuple(PAPER_FIGURES)


def test_a_figure_whose_function_is_missing_or_declared_twice_is_an_error_naming_it(tmp_path):
    lost = Figure("lost", "Lost.", ("runs",), "no_such_function", subcategory="Training")
    with pytest.raises(ValueError, match="'lost': its drawing function 'no_such_function' is not a function"):
        figures.draw(lost, {"runs": pd.DataFrame()}, tmp_path / "lost.png")
    with pytest.raises(ValueError, match="paper figure 'lost' is declared twice"):
        register(lost, lost)
    with pytest.raises(ValueError, match=r"'odd' reads \['nope'\], not tables of PAPER_TABLES"):
        register(Figure("odd", "Odd.", ("runs", "nope"), "grad_norm", subcategory="Training"))


def test_every_thesis_figure_has_its_caption_and_an_unknown_figure_is_named():
    for section in SECTIONS.values():
        for name, figure in section.figures.items():
            caption = figure.caption
            assert caption and figure.tables == section.tables and figure_caption(name) == caption
            assert figure_markdown(name) == f"### {name.replace('_', ' ')}\n\n{caption}"
    with pytest.raises(KeyError, match="figure 'nope' is declared by no paper figure"):
        figure_caption("nope")


def test_no_notebook_keeps_captions_of_its_own():
    """The pages read every caption from the registry (figure_caption, figure_markdown)."""
    for notebook in ("paper", "hlav", "theory"):
        source = (REPO / f"notebooks/{notebook}.py.ipynb").read_text()
        assert "CAPTIONS" not in source and "counterpart" not in source, notebook
        assert "orthojac.workflow.sections import" in source, notebook


def test_the_registry_is_the_plan_stages_and_draws_nothing():
    """The planner reads the registry, so the registry imports no plotting library."""
    tree = ast.parse(Path(workflow_sections.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported and not {m.split(".")[0] for m in imported} & {"matplotlib", "seaborn"}


def test_a_figure_with_confidence_bands_is_drawn_to_the_same_bytes_twice(tmp_path):
    """seaborn bootstraps its confidence bands (accuracy vs depth: the seeds of each point) from a
    random generator of its own: the figures seed it, so a figure drawn again from the same tables
    is the same file (drawn here from the committed reference's tables)."""
    tables = REPO / "results/reference/cpu/tables"
    read = {name: pd.read_csv(tables / f"{name}.csv") for name in ("runs", "metrics")}
    drawn = []
    for i in range(2):
        path = tmp_path / f"accuracy_vs_depth_{i}.png"
        figures.draw(PAPER_FIGURES["accuracy_vs_depth"], read, path)
        drawn.append(path.read_bytes())
    assert drawn[0][:8] == b"\x89PNG\r\n\x1a\n" and drawn[0] == drawn[1]


def test_a_thesis_figure_is_drawn_by_its_name_whatever_the_order_of_its_sections_figures(tmp_path, monkeypatch):
    """orthojac.thesis.figures matches each file to its function by the figure's name: a section whose
    figures are declared in the other order still writes each figure's drawing to that figure's file."""
    from dataclasses import replace

    from orthojac.thesis import figures as thesis_figures

    for name, section in SECTIONS.items():
        declared = list(section.figures)
        reordered = replace(section, figures=dict(reversed(list(section.figures.items()))))
        monkeypatch.setitem(SECTIONS, name, reordered)
        drawn = []
        for figure in declared:  # each figure's function records the file it is given
            monkeypatch.setattr(thesis_figures, section.figures[figure].draw,
                                lambda table, path, figure=figure: drawn.append((figure, path.name)))
        paths = thesis_figures.draw(name, pd.DataFrame({"status": ["ok"]}), tmp_path)
        assert drawn == [(figure, f"{figure}.png") for figure in reversed(declared)], name
        assert [p.name for p in paths] == [f"{figure}.png" for figure in reversed(declared)], name


# Run with the temporary copy first on the path: the workflow's requested figures, the captions, and
# the figures cell of a report page run as its notebook holds it, given that page's figure files.
IN_THE_COPY = """
import json, sys
from pathlib import Path
from types import SimpleNamespace

import orthojac
from orthojac.workflow import Pipeline, load_config
from orthojac.workflow.sections import SECTIONS, figure_markdown

config, cell, figure_paths = sys.argv[1], Path(sys.argv[2]).read_text(), json.loads(sys.argv[3])
shown = []
namespace = {"snakemake": SimpleNamespace(input=SimpleNamespace(figures=figure_paths)), "Path": Path,
             "Markdown": lambda text: ("markdown", text), "Image": lambda filename: ("image", filename),
             "display": shown.append, "THESIS_SECTIONS": SECTIONS, "figure_markdown": figure_markdown}
exec(cell, namespace)
print(json.dumps({"package": orthojac.__file__, "requested": Pipeline(load_config([], base=config)).report_figures(),
                  "markdown": figure_markdown(sys.argv[4]), "shown": shown}))
"""
NEW_PAPER_FIGURE = """    Figure("screen_scores", "Score of each screened setting (a figure added in a copy).",
           ("screens",), "screen_scores", subcategory="Screens"),
"""
NEW_PAPER_FUNCTION = """

def screen_scores(screens, path):
    \"\"\"One bar per screened setting (a figure added in a copy).\"\"\"
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.bar(screens["run"], screens["score"])
    save_figure(fig, path)
"""


def copy_of_the_package(tmp_path: Path) -> Path:
    copy = tmp_path / "src"
    shutil.copytree(REPO / "src/orthojac", copy / "orthojac", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def edit(path: Path, anchor: str, insert_before: str) -> None:
    """Insert text before the one occurrence of `anchor` in `path`."""
    source = path.read_text()
    assert source.count(anchor) == 1, (path, anchor)
    path.write_text(source.replace(anchor, insert_before + anchor))


def in_the_copy(copy: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(copy), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return out


def test_a_paper_figure_added_to_a_copy_of_the_package_is_planned_drawn_and_captioned(tmp_path):
    """A new paper figure is its declaration and its function: added by text to a copy of the package,
    the workflow requests its file, `orthojac figures` draws it and the paper page shows its caption."""
    copy = copy_of_the_package(tmp_path)
    edit(copy / "orthojac/workflow/sections.py", ")\nSTAND_IN_DIR", NEW_PAPER_FIGURE)
    edit(copy / "orthojac/report/figures.py", "\n\ndef main(", NEW_PAPER_FUNCTION)
    tables = tmp_path / "tables"
    tables.mkdir()
    for name in PAPER_TABLES:  # no rows: the other figures say so
        (tables / f"{name}.csv").write_text(",".join(EMPTY_COLUMNS.get(name, [])) + "\n")
    pd.DataFrame({"screen": ["s", "s"], "run": ["a", "b"], "score": [0.25, 0.5]}).to_csv(tables / "screens.csv",
                                                                                        index=False)
    out = tmp_path / "figures"
    in_the_copy(copy, "-m", "orthojac", "figures", "--tables", str(tables), "--out-dir", str(out), cwd=tmp_path)
    drawn = sorted(p.name for p in out.iterdir())
    assert drawn == sorted([*(f"{name}.png" for name in PAPER_FIGURES), "screen_scores.png"])
    assert (out / "screen_scores.png").read_bytes().startswith(PNG_SIGNATURE)

    cell = tmp_path / "cell.py"
    cell.write_text(notebook_cell("paper", "figure_markdown"))
    paths = [str(out / f"{name}.png") for name in [*PAPER_FIGURES, "screen_scores"]]
    seen = json.loads(in_the_copy(copy, "-c", IN_THE_COPY, str(REPO / "config/config.yaml"), str(cell),
                                  json.dumps(paths), "screen_scores", cwd=tmp_path).stdout.splitlines()[-1])
    assert seen["package"].startswith(str(copy))  # the copy was imported, not the checkout
    paper = [f"results/figures/{name}.png" for name in [*PAPER_FIGURES, "screen_scores"]]
    assert seen["requested"][:len(paper)] == paper
    caption = "### screen scores\n\nScore of each screened setting (a figure added in a copy)."
    assert seen["markdown"] == caption
    assert seen["shown"][-2:] == [["markdown", caption], ["image", str(out / "screen_scores.png")]]


NEW_THESIS_FIGURE = """        Figure("hlav_lstm_status", "H2's status, one panel (a figure added in a copy).",
               ("hlav_lstm",), "lstm_status_figure"),
"""
NEW_THESIS_FUNCTION = """

def lstm_status_figure(table, path):
    \"\"\"H2's status in one panel (a figure added in a copy).\"\"\"
    message_figure(path, "H2: " + str(table["status"].iloc[0]))
"""


def test_a_thesis_figure_added_to_a_copy_of_the_package_is_planned_drawn_and_captioned(tmp_path):
    """A new thesis figure is its declaration among its section's figures and its function: added by
    text to a copy, the workflow requests its file, `orthojac thesis-figures` draws it beside the
    section's others and the section's page shows its caption."""
    copy = copy_of_the_package(tmp_path)
    edit(copy / "orthojac/workflow/sections.py", '    ), "hlav"),\n    section("hlav_linear"', NEW_THESIS_FIGURE)
    edit(copy / "orthojac/thesis/figures.py", "\n\ndef main(", NEW_THESIS_FUNCTION)
    table = tmp_path / "hlav_lstm.csv"
    pd.DataFrame({"status": ["data unavailable"], "seed": [1], "note": ["no sources"]}).to_csv(table, index=False)
    out = tmp_path / "figures"
    in_the_copy(copy, "-m", "orthojac", "thesis-figures", "hlav_lstm", "--table", str(table), "--out-dir", str(out),
                cwd=tmp_path)
    names = [*SECTIONS["hlav_lstm"].figures, "hlav_lstm_status"]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.png" for name in names)
    assert all((out / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE) for name in names)

    # the hlav page's H2 cell, from where it shows the section's figures
    source = notebook_cell("hlav", 'THESIS_SECTIONS["hlav_lstm"].figures')
    cell = tmp_path / "cell.py"
    cell.write_text(source[source.index("for path in snakemake.input.figures:"):])
    paths = [str(out / f"{name}.png") for name in names]
    seen = json.loads(in_the_copy(copy, "-c", IN_THE_COPY, str(REPO / "config/config.yaml"), str(cell),
                                  json.dumps(paths), "hlav_lstm_status", cwd=tmp_path).stdout.splitlines()[-1])
    assert seen["package"].startswith(str(copy))
    assert "results/figures/hlav_lstm_status.png" in seen["requested"]
    caption = "### hlav lstm status\n\nH2's status, one panel (a figure added in a copy)."
    assert seen["markdown"] == caption
    assert seen["shown"][-2:] == [["markdown", caption], ["image", str(out / "hlav_lstm_status.png")]]
    assert len(seen["shown"]) == 2 * len(names)

"""What the report notebooks show, as tested functions: the sections, the provenance table and
the run summary.

The report is an index page (claims ledger, links to the sections, runs, environment) and one
page per experiment family. A family is named by the claims its experiments test: an experiment
belongs to every section one of whose claims it lists under `claims:`.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path

import pandas as pd

from .claims import final_accuracy, ledger
from .config import RunConfig
from .workflow import PAGES
from .workflow import SECTIONS as THESIS


# The report's pages besides the index (orthojac.workflow.PAGES: title, claims), the one list of them.
SECTIONS = PAGES
# What the spectrum stage measures for each run of an experiment (its `spectra:` block): one
# provenance row each, so a table shows how every number of the spectra was obtained.
SPECTRUM_SETTINGS = ("checkpoints", "points", "method", "dtype", "layers", "grad_batch", "exact_max_dim",
                     "chunk_size")


def page_sections(page: str) -> list[str]:
    """The thesis sections (config keys, orthojac.workflow.SECTIONS) shown on report page `page`."""
    return [name for name, section in THESIS.items() if section.page == page]


def section_experiments(config: dict, section: str) -> list[str]:
    """Names of the experiments of `config` that test a claim of `section`, in config order."""
    if section not in SECTIONS:
        raise ValueError(f"report section {section!r} is not one of {sorted(SECTIONS)}")
    claims = set(SECTIONS[section][1])
    return [e["name"] for e in config["experiments"] if claims & set(e.get("claims", []))]


def experiment_summary(experiment: dict) -> str:
    """An experiment's line on its report page, as HTML: its name, description and claims, each
    escaped, so that text from a config file is shown as text (not Markdown, not HTML)."""
    claims = ", ".join(map(str, experiment.get("claims", [])))
    return (f"<p><b>{html.escape(str(experiment['name']))}</b>: {html.escape(str(experiment['description']))}"
            f" Claims: {html.escape(claims)}.</p>")


def provenance_table(config: dict) -> pd.DataFrame:
    """One row per experiment × setting: its value or grid, `stated` (with where) or `choice`.

    The `h4:`, `hlav_rnn:`, `hlav_lstm:`, `hlav_linear:` and `hlav_deep:` sections (their own
    programs, not orthojac-train runs) are listed as experiments under their section's name; each
    file of `downloads:` as a row of "downloads".
    Settings an experiment leaves out take orthojac's defaults (RunConfig) and are listed as
    `choice` with the note "orthojac default", so the table covers every knob of every run. The
    spectrum settings follow as `spectra.<key>` (SPECTRUM_SETTINGS), `choice` with the note of the
    experiment's `spectra:` block; a key the block leaves out (in a config not yet validated, which
    fills them in) reads "schema default".
    """
    rows = []
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for exp in config["experiments"]:
        settings = exp["settings"]
        for key, default in defaults.items():
            if key in settings:
                rows.append(_row(exp["name"], key, settings[key]))
            else:
                rows.append({"experiment": exp["name"], "setting": key, "value": str(default),
                             "provenance": "choice", "where / why": "orthojac default"})
        spectra = exp.get("spectra") or {}
        why = spectra.get("choice", "orthojac's measurement settings")
        for key in SPECTRUM_SETTINGS:
            value = spectra.get(key, "schema default")
            value = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            rows.append({"experiment": exp["name"], "setting": f"spectra.{key}", "value": value,
                         "provenance": "choice", "where / why": why})
    for section in THESIS:
        for key, s in config.get(section, {}).items():
            if isinstance(s, dict):  # every entry but `description` is a setting with provenance
                rows.append(_row(section, key, s))
    for key, d in config.get("downloads", {}).items():
        pinned = f"sha256 {d['sha256']}" if d["sha256"] else "sha256 not pinned: every copy refused"
        rows.append({"experiment": "downloads", "setting": key, "value": f"{d['file']} ({pinned})",
                     "provenance": "choice", "where / why": d["choice"]})
    return pd.DataFrame(rows)


def _row(experiment: str, key: str, s: dict) -> dict:
    value = s["value"] if "value" in s else "grid: " + ", ".join(map(str, s["grid"]))
    kind = "stated" if "stated" in s else "choice"
    return {"experiment": experiment, "setting": key, "value": str(value), "provenance": kind,
            "where / why": s[kind]}


def run_summary(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the settings that vary, status, final validation and test accuracy."""
    test = final_accuracy(runs, metrics, "test")[["experiment", "run", "accuracy"]]
    val = final_accuracy(runs, metrics, "val")[["experiment", "run", "accuracy"]]
    out = runs[["experiment", "run", "status", "diverged_step", "steps", "train_seconds"]]
    out = out.merge(val.rename(columns={"accuracy": "val_accuracy"}))
    return out.merge(test.rename(columns={"accuracy": "test_accuracy"}))


def read_tables(paths) -> dict[str, pd.DataFrame]:
    """{name: table} of tidy CSVs (an empty file, as a stage with nothing to collect writes, is
    an empty table), named by their stem: runs, metrics, spectra, layers, h4, hlav_rnn, …"""
    return {Path(p).stem: pd.read_csv(p) if Path(p).stat().st_size > 1 else pd.DataFrame() for p in paths}


def ledger_from_tables(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The claims ledger of orthojac.claims computed from the tidy tables, with the scale each
    verdict was reached at (orthojac.scale): what the index page writes to ledger.csv, and what a
    test recomputes from a committed reference's tables."""
    from .scale import with_scale

    empty = pd.DataFrame()
    runs = tables.get("runs", empty)
    claims = ledger(runs, tables.get("metrics", empty), tables.get("spectra", empty), h4=tables.get("h4"),
                    hlav=tables.get("hlav_rnn"), layers=tables.get("layers"), hlav_lstm=tables.get("hlav_lstm"),
                    hlav_linear=tables.get("hlav_linear"))
    return with_scale(claims, runs, tables)

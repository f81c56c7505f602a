"""What the report notebooks show, as tested functions: the pages, the provenance table and the
run summary.

The report is an index page (claims ledger, links to the pages, runs, environment) and one page
per entry of orthojac.workflow.PAGES. A page shows the claims whose page it is (Claim.page), the
thesis sections whose page it is (Experiment.page), and the paper's experiments that test one of
its claims: an experiment belongs to every page one of whose claims it lists under `claims:`.
Each notebook opens with `page_view`, which gathers all of that for its page.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path

import pandas as pd

from ..claims import CLAIMS, final_accuracy, ledger_of
from ..config import RunConfig
from ..claims.ledgerview import key_number
from ..spectra_settings import SpectraSettings
from ..workflow import EXPERIMENTS, PAGES
from ..workflow import SECTIONS as THESIS


def _page(page: str):
    if page not in PAGES:
        raise ValueError(f"report page {page!r} is not one of {sorted(PAGES)}")
    return PAGES[page]


def page_claims(page: str) -> tuple[str, ...]:
    """The claims report page `page` shows: those of orthojac.claims.CLAIMS whose page it is
    (Claim.page), in the ledger's order."""
    _page(page)
    return tuple(c for c, claim in CLAIMS.items() if claim.page == page)


def experiment_claims(name: str) -> tuple[str, ...]:
    """The claims of experiment `name` (a key of orthojac.workflow.EXPERIMENTS): the claims of its
    page that read one of its tables (Claim.reads)."""
    experiment = EXPERIMENTS[name]
    return tuple(c for c in page_claims(experiment.page) if set(CLAIMS[c].reads) & set(experiment.tables))


def page_sections(page: str) -> list[str]:
    """The thesis sections (config keys, orthojac.workflow.SECTIONS) shown on report page `page`."""
    return [name for name, section in THESIS.items() if section.page == page]


def page_experiments(config: dict, page: str) -> list[str]:
    """Names of the experiments of `config` that test a claim of page `page`, and of the screens
    whose choice one of them trains (`select.from`: its settings are part of the evidence), in
    config order."""
    claims = set(page_claims(page))
    testing = [e for e in config["experiments"] if claims & set(e.get("claims", []))]
    screens = {e["select"]["from"] for e in testing if isinstance(e.get("select"), dict)}
    return [e["name"] for e in config["experiments"] if e in testing or e["name"] in screens]


@dataclasses.dataclass
class PageView:
    """What a page's notebook shows, gathered by page_view: its `name`, `title` and `claims`, the
    paper's `experiments` it shows (page_experiments), every tidy table by name (`tables`), the
    runs of those experiments (`runs`) and every run's `metrics`, and the `provenance` of every
    setting it shows (its experiments', its thesis sections' and, where one of them reads
    downloads, the downloads')."""

    name: str
    title: str
    claims: tuple[str, ...]
    experiments: list[str]
    tables: dict[str, pd.DataFrame]
    runs: pd.DataFrame
    metrics: pd.DataFrame
    provenance: pd.DataFrame


def page_view(page: str, config: dict, table_paths) -> PageView:
    """The page `page` of the report of `config`, from the tidy tables at `table_paths`."""
    experiments = page_experiments(config, page)
    tables = read_tables(table_paths)
    runs = tables["runs"]
    runs = runs[runs["experiment"].isin(experiments)] if not runs.empty else runs
    sections = page_sections(page)
    downloads = ["downloads"] if any(THESIS[s].inputs == "receipts" for s in sections) else []
    provenance = provenance_table(config)
    provenance = provenance[provenance["experiment"].isin(experiments + sections + downloads)]
    return PageView(page, _page(page).title, page_claims(page), experiments, tables, runs, tables["metrics"],
                    provenance)


def experiment_summary(experiment: dict) -> str:
    """An experiment's line on its report page, as HTML: its name, description and claims, each
    escaped, so that text from a config file is shown as text (not Markdown, not HTML)."""
    claims = ", ".join(map(str, experiment.get("claims", [])))
    return (f"<p><b>{html.escape(str(experiment['name']))}</b>: {html.escape(str(experiment['description']))}"
            f" Claims: {html.escape(claims)}.</p>")


def provenance_table(config: dict, run_settings=RunConfig, spectra_settings=SpectraSettings) -> pd.DataFrame:
    """One row per experiment × setting: its value or grid, `stated` (with where) or `choice`.

    The `h4:`, `hlav_rnn:`, `hlav_lstm:`, `hlav_linear:` and `hlav_deep:` sections (their own
    programs, not `orthojac train` runs) are listed as experiments under their section's name; each
    file of `downloads:` as a row of "downloads".
    Settings an experiment leaves out take orthojac's defaults (`run_settings`, RunConfig) and are
    listed as `choice` with the note "orthojac default", so the table covers every knob of every
    run. The spectrum settings follow as `spectra.<key>`, one per field of `spectra_settings`
    (SpectraSettings: what the spectrum stage measures, so a table shows how every number of the
    spectra was obtained), `choice` with the note of the experiment's `spectra:` block; a key the
    block leaves out (in a config not yet validated, which fills them in) reads "schema default". A
    thesis section's key left out (one with a default: its program's) is listed as "orthojac default".
    """
    rows = []
    defaults = {f.name: f.default for f in dataclasses.fields(run_settings)}
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
        for key in (f.name for f in dataclasses.fields(spectra_settings)):
            value = spectra.get(key, "schema default")
            value = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            rows.append({"experiment": exp["name"], "setting": f"spectra.{key}", "value": value,
                         "provenance": "choice", "where / why": why})
    for section, spec in THESIS.items():
        if section not in config:
            continue
        for key, s in config[section].items():
            if isinstance(s, dict):  # every entry but `description` is a setting with provenance
                rows.append(_row(section, key, s))
        for f in dataclasses.fields(spec.settings):  # a key the section leaves out: its program's default
            if f.name not in config[section]:
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                default = ", ".join(map(str, default)) if isinstance(default, list) else str(default)
                rows.append({"experiment": section, "setting": f.name, "value": default,
                             "provenance": "choice", "where / why": "orthojac default"})
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
    """{name: table} of tidy CSVs, gzipped or not (an empty file, as a stage with nothing to collect
    writes, is an empty table), named by their stem: runs, metrics, spectra, layers, h4, hlav_rnn, …"""
    return {Path(Path(p).name.removesuffix(".gz")).stem: pd.read_csv(p) if Path(p).stat().st_size > 1
            else pd.DataFrame() for p in paths}


def ledger_from_tables(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The claims ledger of orthojac.claims computed from the tidy tables, with the scale each
    verdict was reached at (orthojac.report.scale): what the index page writes to ledger.csv, and what a
    test recomputes from a committed reference's tables."""
    from .scale import with_scale

    return with_scale(ledger_of(tables), tables.get("runs", pd.DataFrame()), tables)


# Every page fits a 1280 px window: text wraps, tables take the page's width with fixed columns,
# figures shrink to it (nbconvert's own styles leave wide tables running off the right edge).
PAGE_CSS = """<style>
body, .jp-Notebook { max-width: 1240px; margin: 0 auto; }
.jp-RenderedHTMLCommon, .jp-OutputArea-output { overflow-wrap: anywhere; }
.jp-RenderedHTMLCommon table, .jp-OutputArea-output table { table-layout: fixed; width: 100%;
  max-width: 100%; font-size: 12px; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { white-space: normal !important;
  word-break: break-word; vertical-align: top !important; text-align: left !important; }
.jp-OutputArea-output, .jp-RenderedHTMLCommon { overflow-x: visible; max-width: 100%; }
img { max-width: 100%; height: auto; }
table.claims-ledger col.c-claim { width: 5%; } table.claims-ledger col.c-statement { width: 38%; }
table.claims-ledger col.c-verdict { width: 9%; } table.claims-ledger col.c-key { width: 27%; }
table.claims-ledger col.c-scale { width: 12%; } table.claims-ledger col.c-ref { width: 9%; }
table.claims-ledger details dl { font-size: 11px; margin: 4px 0; }
table.claims-ledger details dt { font-weight: bold; margin-top: 4px; }
table.claims-ledger details dd { margin-left: 8px; }
.verdict-reproduced { background: #d4edda; } .verdict-not-reproduced { background: #f8d7da; }
.verdict-inconclusive { background: #fff3cd; }
</style>"""
LEDGER_DETAILS = (("numbers", "numbers"), ("tolerance", "tolerance"), ("rule", "rule"), ("n", "n (seeds a side)"),
                  ("means", "seed means ± se"), ("margin", "margin"), ("fragility", "fragility"),
                  ("tolerance_provenance", "where each threshold comes from"), ("source", "source"),
                  ("quote", "quote"))


def claim_page(claim: str) -> str:
    """The report page (a key of orthojac.workflow.PAGES) that holds `claim`'s part (Claim.page)."""
    page = CLAIMS[claim].page
    if page not in PAGES:
        raise ValueError(f"claim {claim!r} names page {page!r}, not a report page ({sorted(PAGES)})")
    return page


def claim_anchor(claim: str) -> str:
    """The id of `claim`'s part of its page."""
    return f"claim-{claim}"


def verdict_class(verdict: str) -> str:
    return "verdict-" + str(verdict).replace(" ", "-")


def reference_verdicts(ledger: pd.DataFrame, reference: Path) -> pd.DataFrame | None:
    """The reference's verdict and scale per claim (index: claim) to show beside `ledger`'s, or
    None when there is nothing to compare with: no reference ledger, or the reference is this
    run's own scale (every claim's scale the same: the reference compared with itself)."""
    reference = Path(reference)
    if not reference.is_file():
        return None
    ref = pd.read_csv(reference, keep_default_na=False).set_index("claim")
    ours = ledger.set_index("claim")
    common = ours.index.intersection(ref.index)
    if common.empty or ("scale" in ref and (ref.loc[common, "scale"] == ours.loc[common, "scale"]).all()):
        return None
    return ref


def ledger_html(ledger: pd.DataFrame, reference: pd.DataFrame | None = None, label: str = "CPU reference") -> str:
    """The claims ledger as a compact table (class claims-ledger): claim, statement, verdict, the
    key number against its threshold (orthojac.claims.ledgerview.key_number), scale and, given
    `reference` (reference_verdicts), the reference's verdict. Each statement expands
    (<details>) to every column of the ledger and links to the claim's part of its page
    (its figure, its runs' curves)."""
    e = html.escape
    ref_col = reference is not None
    head = ["claim", "statement", "verdict", "key number against its threshold", "scale"] + (
        [f"{label} verdict"] if ref_col else [])
    cols = ["c-claim", "c-statement", "c-verdict", "c-key", "c-scale"] + (["c-ref"] if ref_col else [])
    out = ['<table class="claims-ledger">', "<colgroup>" + "".join(f'<col class="{c}">' for c in cols) + "</colgroup>",
           "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead>", "<tbody>"]
    for _, row in ledger.iterrows():
        claim = row["claim"]
        page = claim_page(claim)
        link = f"{page}.html#{claim_anchor(claim)}"
        details = "".join(f"<dt>{e(title)}</dt><dd>{e(str(row[key]))}</dd>" for key, title in LEDGER_DETAILS
                          if key in row)
        details += (f'<dt>evidence</dt><dd><a href="{link}">{e(PAGES[page].title)}: {e(claim)}</a>: the figure '
                    f"that decides it ({e(CLAIMS[claim].figure or '—')}), the learning curves and the list of "
                    "the runs it reads</dd>")
        cells = [f'<td><a href="{link}">{e(claim)}</a></td>',
                 f"<td><details><summary>{e(row['statement'])}</summary><dl>{details}</dl></details></td>",
                 f'<td class="{verdict_class(row["verdict"])}">{e(row["verdict"])}</td>',
                 f"<td>{e(key_number(claim, row['numbers']))}</td>",
                 f"<td>{e(str(row.get('scale', '—')))}</td>"]
        if ref_col:
            v = reference["verdict"].get(claim, "not in the reference")
            cells.append(f'<td class="{verdict_class(v)}">{e(v)}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def claim_runs(runs: pd.DataFrame, claim: str) -> pd.DataFrame:
    """The runs of `runs` whose experiment tests `claim` (their `claims` column, ';'-separated)."""
    if runs.empty or "claims" not in runs:
        return runs.iloc[0:0]
    return runs[runs["claims"].fillna("").astype(str).str.split(";").apply(lambda tags: claim in tags)]


def has_curves(runs: pd.DataFrame, metrics: pd.DataFrame) -> bool:
    """Whether `metrics` holds a learning curve (≥ 2 epochs) of one of `runs`."""
    if runs.empty or metrics.empty:
        return False
    rows = metrics.merge(runs[["experiment", "run"]])
    return rows["epoch"].nunique() > 1 if not rows.empty else False


def claim_header_html(row: pd.Series) -> str:
    """The opening of a claim's part of its page (id claim_anchor): its verdict, its
    statement, our key number against its threshold beside the source's own words (P5: "~89%"),
    and its fragility."""
    e = html.escape
    claim = row["claim"]
    return (f'<h2 id="{claim_anchor(claim)}">{e(claim)}: <span class="{verdict_class(row["verdict"])}">'
            f"{e(row['verdict'])}</span></h2>"
            f"<p><b>{e(row['statement'])}</b> ({e(row['source'])}; scale here: {e(str(row.get('scale', '—')))})</p>"
            f"<p><b>Ours:</b> {e(key_number(claim, row['numbers'], limit=6))}<br>"
            # every number, with what makes a verdict inconclusive (its data set, its scale), which
            # ends the ledger's text and which the key number leaves out
            f"<b>In full:</b> {e(str(row['numbers']))}<br><b>The source:</b> "
            f"“{e(str(row['quote']))}”<br><b>Fragility:</b> {e(str(row['fragility']))}</p>"
            '<p><a href="index.html">← the ledger</a></p>')

"""Render the report pages of a snapshot again, from its tables and figures, with this commit's
notebooks: what the report rules do (orthojac's notebooks executed, then rendered to HTML without
their code), for a snapshot whose runs are not on this machine (a committed reference).

    python -m orthojac render results/reference/cpu --configfile config/cpu.yaml

Reads `<snapshot>/tables/*.csv` and `<snapshot>/figures/*.png`; writes `<snapshot>/report/`:
ledger.csv and overview.png (recomputed from the tables by this commit's judges), the pages'
provenance tables, and index.html plus one page per entry of orthojac.workflow.PAGES.
The configuration is the one the snapshot was made with (`--configfile`, laid over
config/config.yaml and validated as the workflow does). The runs' own config files (the
environment each run recorded) are not part of a snapshot: the index points to its manifest.
"""

from __future__ import annotations

import argparse
import atexit
import json
from pathlib import Path

import nbformat

from ..workflow import PAGES, fill_defaults, load_config

NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"
INJECTED_TAG = "snakemake-job-properties"  # as Snakemake tags its cell; left out of the page
# What jupyter_client raises when a kernel exits before its first reply (the known cause: another
# process took one of the ports chosen for it before it bound them, jupyter_client#154).
KERNEL_DIED_AT_START = "Kernel died before replying to kernel_info"


def validated_config(configfiles: list[Path]) -> dict:
    """The config the workflow sees for `--configfile configfiles…`, with the schema's defaults."""
    config = load_config(configfiles, base=NOTEBOOKS.parent / "config" / "config.yaml")
    return fill_defaults(config)


def job_cell(**parts) -> nbformat.NotebookNode:
    """The first cell of a notebook run outside Snakemake: a `snakemake` object with the
    attributes the notebooks read (input, output, params, wildcards: names → paths or values;
    config), tagged as Snakemake tags its own."""
    source = ("import json as _json\nfrom types import SimpleNamespace as _Namespace\n"
              f"_parts = _json.loads({json.dumps(json.dumps(parts, default=str))})\n"
              "snakemake = _Namespace(config=_parts.pop('config'), "
              "**{k: _Namespace(**v) for k, v in _parts.items()})\n")
    return nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})


def execute(page: str, notebook: str, cwd: Path, **parts) -> nbformat.NotebookNode:
    """Run notebooks/<notebook>.py.ipynb with `parts` as its snakemake object, in `cwd`."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{notebook}.py.ipynb", as_version=4)
    cell = job_cell(**parts)
    if nb.nbformat_minor < 5:  # cell ids came with nbformat 4.5; the notebooks' cells have none
        cell.pop("id", None)
    nb.cells.insert(0, cell)

    for attempt in (1, 2):  # once more after a kernel that died at start (the report rules: twice more)
        client = NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
        try:
            return client.execute()
        except RuntimeError as error:
            if KERNEL_DIED_AT_START not in str(error):
                raise
            # nbclient 0.11 cleaned that kernel up but left its exit hook, which would fail at exit
            atexit.unregister(client._cleanup_kernel)
            if attempt == 2:
                raise
    raise AssertionError("unreachable: the second attempt returns or raises")


def to_html(nb: nbformat.NotebookNode, name: str) -> str:
    """The page as `jupyter nbconvert --to html --no-input` with the job cell removed writes it."""
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config({"TagRemovePreprocessor": {"enabled": True, "remove_cell_tags": [INJECTED_TAG]},
                     "TemplateExporter": {"exclude_input": True, "exclude_input_prompt": True,
                                          "exclude_output_prompt": True}})
    body, _ = HTMLExporter(config=config).from_notebook_node(nb, resources={"metadata": {"name": name}})
    return body


def render(snapshot: Path, configfiles: list[Path]) -> list[Path]:
    """Write the report pages of `snapshot` (see the module's docstring); returns them."""
    snapshot = snapshot.resolve()
    tables = sorted(str(p) for p in (snapshot / "tables").glob("*.csv"))
    figures = sorted(str(p) for p in (snapshot / "figures").glob("*.png"))
    if not tables:
        raise SystemExit(f"{snapshot / 'tables'}: no tables to render a report from")
    report = snapshot / "report"
    report.mkdir(exist_ok=True)
    config = validated_config(configfiles)
    ledger = str(report / "ledger.csv")
    pages = []
    index = execute("index", "index", snapshot, config=config,
                    input={"tables": tables, "configs": []},
                    output={"ledger": ledger, "overview": str(report / "overview.png")},
                    params={"pages": list(PAGES), "reference_ledger": ledger,
                            "manifest": str(snapshot / "manifest.json")},
                    wildcards={})
    for page in PAGES:
        nb = execute(page, page, snapshot, config=config,
                     input={"tables": tables, "figures": figures, "ledger": ledger},
                     output={"provenance": str(report / f"{page}.provenance.csv")},
                     params={}, wildcards={"page": page})
        (report / f"{page}.html").write_text(to_html(nb, page), encoding="utf-8")
        pages.append(report / f"{page}.html")
    (report / "index.html").write_text(to_html(index, "index"), encoding="utf-8")
    return [report / "index.html", *pages]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac render", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snapshot", type=Path, help="a snapshot folder (tables/, figures/, report/)")
    parser.add_argument("--configfile", type=Path, nargs="*", default=[],
                        help="the config file(s) the snapshot was made with, as given to snakemake")
    args = parser.parse_args(argv)
    for page in render(args.snapshot, args.configfile):
        print(page)


if __name__ == "__main__":
    main()

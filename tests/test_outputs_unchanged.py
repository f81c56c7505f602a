"""The tiny pipeline's outputs are those of the code before the workflow and thesis moved into the
library (issue 18): every table, the claims ledger and the provenance tables, compared with the copy
in .test/expected/ written by the code before the move.

Compared as text after taking out what no rerun repeats: training times (`seconds` rows of
metrics.csv, `train_seconds` of runs.csv) and the test's temporary folder in H2's "sources tried"
notes. Regenerate (only when a change is meant to alter results):
`python tests/test_outputs_unchanged.py RESULTS_DIR` writes RESULTS_DIR's normalised copy to
.test/expected/.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
EXPECTED = REPO / ".test" / "expected"
# results/<file>, for every file compared
FILES = [f"tables/{t}.csv" for t in ("runs", "metrics", "spectra", "layers", "init_study", "h4", "hlav_rnn",
                                      "hlav_lstm", "hlav_linear", "hlav_deep")]
FILES += ["report/ledger.csv"] + [f"report/{s}.provenance.csv" for s in ("paper", "hlav", "theory")]
MIRROR = re.compile(r"\S*/mirror/")


def normalised(results: Path, name: str) -> str:
    """The text of results/<name> without the parts that differ from run to run."""
    text = (results / name).read_text()
    if name == "tables/metrics.csv":
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        text = table[table["metric"] != "seconds"].to_csv(index=False)
    elif name == "tables/runs.csv":
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        text = table.drop(columns=["train_seconds"]).to_csv(index=False)
    return MIRROR.sub("MIRROR/", text)


@pytest.mark.parametrize("name", FILES)
def test_tiny_pipeline_output_is_unchanged(tiny_pipeline, name):
    expected = (EXPECTED / name).read_text()
    assert normalised(tiny_pipeline / "results", name) == expected, f"results/{name} differs from .test/expected/{name}"


def test_the_comparison_sees_a_changed_number(tiny_pipeline, tmp_path):
    """A table with one value changed in its last digit is not the expected one."""
    copy = tmp_path / "tables"
    copy.mkdir()
    text = (tiny_pipeline / "results/tables/hlav_linear.csv").read_text()
    last = re.search(r"\d(?=\D*$)", text)
    changed = text[: last.start()] + str((int(last.group()) + 1) % 10) + text[last.end():]
    (copy / "hlav_linear.csv").write_text(changed)
    assert normalised(tmp_path, "tables/hlav_linear.csv") != (EXPECTED / "tables/hlav_linear.csv").read_text()


if __name__ == "__main__":
    results = Path(sys.argv[1])
    for name in FILES:
        (EXPECTED / name).parent.mkdir(parents=True, exist_ok=True)
        (EXPECTED / name).write_text(normalised(results, name))
    print(f"wrote {len(FILES)} files to {EXPECTED}")

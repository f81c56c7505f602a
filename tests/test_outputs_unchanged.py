"""The tiny pipeline's outputs are unchanged: every table, the claims ledger and the provenance
tables of its run (the `tiny_pipeline` fixture) against the copy in .test/expected/.

What the comparison guarantees:
- The run pins what decides rounding (tests/conftest.py PINNED_ENV: the instruction set of
  torch's kernels, oneDNN's and MKL's, one thread), and .test/expected/pinned.json records the
  pins and the CPU the copy was written under. On that CPU model the tables are compared as text,
  bit for bit: any changed digit fails.
- On another CPU model the same pins do not make the last bits the same (measured: an Intel Xeon
  with AVX-512 under the AVX2 pins differs from an AVX2 machine's float32 losses in the 7th
  digit, 2.4638154296875 against 2.463815673828125, and in float64 spectra in the 7th: MKL's and
  oneDNN's kernels depend on the CPU's vendor and caches too, beyond its instruction set). There
  every number is compared within ACROSS_CPUS (relative), every other field (verdicts, labels,
  provenance) as text.
- test_other_instruction_set_within_tolerance runs the pipeline again under torch's and oneDNN's
  baseline kernels (no AVX) and compares it within ACROSS_CPUS too.

Compared after taking out what no rerun repeats: training times (`seconds` rows of metrics.csv,
`train_seconds` of runs.csv), and in H2's "sources tried" notes the test's temporary folder and
the machine's own words for why a URL was unreachable.
Regenerate (only when a change is meant to alter results), under the pins, on this machine:
`make test-expected` (`python tests/test_outputs_unchanged.py --regenerate`; or
`python tests/test_outputs_unchanged.py RESULTS_DIR` from a finished run made under the pins).
"""

from __future__ import annotations

import io
import json
import math
import platform
import re
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import PINNED_ENV, REPO, run_tiny_pipeline  # noqa: E402

EXPECTED = REPO / ".test" / "expected"
RECORD = EXPECTED / "pinned.json"
REGENERATE = "make test-expected"
# results/<file>, for every file compared
FILES = [f"tables/{t}.csv" for t in ("runs", "metrics", "spectra", "layers", "init_study", "h4", "hlav_rnn",
                                      "hlav_lstm", "hlav_linear", "hlav_deep")]
FILES += ["report/ledger.csv"] + [f"report/{s}.provenance.csv" for s in ("paper", "hlav", "theory")]
MIRROR = re.compile(r"\S*/mirror/")
# An unreachable URL's reason, as the machine's resolver or proxy words it ("[Errno -2] Name or
# service not known" where the resolver answers, "[Errno -3] Temporary failure in name resolution"
# where it times out): the tiny pipeline's H2 table records it; it is not a result.
UNREACHABLE = re.compile(r"unreachable or unreadable \((?:\[Errno -?\d+\] )?[^()\n]*\)$", re.M)
# Relative tolerance of a number computed on another CPU or instruction set than the copy's.
# Measured on the tiny pipeline: an Intel Xeon (AVX-512) under the pins against the AVX2 machine
# that wrote the first copy, at most 1.7e-6 (a per-layer gradient norm); torch's and oneDNN's
# baseline kernels against AVX2 on one machine, at most 1.3e-5 (a singular value of 1e-3 of a
# float32-trained body, whose float32 weights differ in their 7th digit). The tolerance is 1e-4,
# about 8 times the largest. It still sees a change in the 4th digit of any number; a smaller one
# (a loss in its 6th digit) fails only bit for bit, on the copy's CPU model.
ACROSS_CPUS = 1e-4
# An absolute floor for numbers that are zero up to rounding (a mean defect of 1e-17 against 3e-17).
ABS_FLOOR = 1e-12


def this_cpu() -> str:
    """The CPU as /proc/cpuinfo names it: vendor, model and its widest vector instructions
    (a virtual machine's model name may be as generic as "Intel(R) Xeon(R) Processor");
    platform.processor() elsewhere."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return platform.processor() or platform.machine()
    fields = {}
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = fields.get("flags", "").split()
    widest = next((f for f in ("avx512f", "avx2", "avx") if f in flags), "no avx")
    return f"{fields.get('vendor_id', '?')} {fields.get('model name', '?')} ({widest})"


def record() -> dict:
    return {"env": PINNED_ENV, "cpu": this_cpu()}


def normalised(results: Path, name: str) -> str:
    """The text of results/<name> without the parts that differ from run to run."""
    text = (results / name).read_text()
    if name == "tables/metrics.csv":
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        text = table[table["metric"] != "seconds"].to_csv(index=False)
    elif name == "tables/runs.csv":
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        text = table.drop(columns=["train_seconds"]).to_csv(index=False)
    return UNREACHABLE.sub("unreachable or unreadable (REASON)", MIRROR.sub("MIRROR/", text))


def differences(actual: str, expected: str, rtol: float) -> list:
    """Where two CSV texts differ: every field as text if rtol is 0, else numbers within rtol
    (relative, ABS_FLOOR absolute) and the other fields as text. At most 10, each naming its row
    and column."""
    if rtol == 0:
        if actual == expected:
            return []
        lines = list(zip(actual.splitlines(), expected.splitlines()))
        first = next((i for i, (a, e) in enumerate(lines) if a != e), len(lines))
        return [f"line {first + 1}: {actual.splitlines()[first:first + 1]} != {expected.splitlines()[first:first + 1]}"]
    a = pd.read_csv(io.StringIO(actual), dtype=str, keep_default_na=False)
    e = pd.read_csv(io.StringIO(expected), dtype=str, keep_default_na=False)
    if list(a.columns) != list(e.columns) or len(a) != len(e):
        return [f"columns {list(a.columns)} ({len(a)} rows) != {list(e.columns)} ({len(e)} rows)"]
    problems = []
    for column in a.columns:
        for row, (x, y) in enumerate(zip(a[column], e[column]), 2):
            if x == y:
                continue
            try:
                close = math.isclose(float(x), float(y), rel_tol=rtol, abs_tol=ABS_FLOOR)
            except ValueError:
                close = False
            if not close:
                problems.append(f"line {row}, {column}: {x} != {y}")
    return problems[:10]


def expected_record() -> dict:
    assert RECORD.is_file(), f"{RECORD} is missing: regenerate .test/expected/ with `{REGENERATE}`"
    return json.loads(RECORD.read_text())


@pytest.mark.parametrize("name", FILES)
def test_tiny_pipeline_output_is_unchanged(tiny_pipeline, name):
    recorded = expected_record()
    assert recorded["env"] == PINNED_ENV, \
        f".test/expected/ was written under {recorded['env']}, the run pins {PINNED_ENV}: `{REGENERATE}`"
    rtol = 0 if recorded["cpu"] == this_cpu() else ACROSS_CPUS
    problems = differences(normalised(tiny_pipeline / "results", name), (EXPECTED / name).read_text(), rtol)
    how = "bit for bit (same CPU as the copy)" if rtol == 0 else f"within {rtol:g} (copy from {recorded['cpu']})"
    assert not problems, (f"results/{name} differs from .test/expected/{name}, compared {how}: {problems}. "
                          f"If the change is meant to alter results, regenerate with `{REGENERATE}`")


def test_the_comparison_sees_a_changed_number(tiny_pipeline, tmp_path):
    """A table with one value changed in its last digit differs bit for bit; one changed in its
    fourth significant digit differs within the tolerance across CPUs too."""
    text = normalised(tiny_pipeline / "results", "tables/hlav_linear.csv")
    last = re.search(r"\d(?=\D*$)", text)
    changed = text[: last.start()] + str((int(last.group()) + 1) % 10) + text[last.end():]
    assert differences(changed, text, 0) and not differences(text, text, 0)
    table = pd.read_csv(io.StringIO(text))
    column = table.select_dtypes("float").columns[-1]
    table.loc[0, column] = table.loc[0, column] * (1 + 1e-3) if table.loc[0, column] else 1e-3
    assert differences(table.to_csv(index=False), text, ACROSS_CPUS)
    assert not differences(text, text, ACROSS_CPUS)


def test_other_instruction_set_within_tolerance(tiny_pipeline, tmp_path):
    """The tiny pipeline's tables (the ones training and spectra write) under torch's and oneDNN's
    baseline kernels (ATEN_CPU_CAPABILITY=default, ONEDNN_MAX_CPU_ISA=SSE41: no AVX) and MKL's own
    choice, against the pinned run, within ACROSS_CPUS: a difference of kernels moves the last
    digits only."""
    tables = [f for f in FILES if f.startswith("tables/")]
    other = run_tiny_pipeline(tmp_path, {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                                         "MKL_CBWR": "AUTO"}, targets=tuple(f"results/{f}" for f in tables))
    bitwise = []
    for name in tables:
        pinned, baseline = (normalised(w / "results", name) for w in (tiny_pipeline, other))
        assert not differences(baseline, pinned, ACROSS_CPUS), (name, differences(baseline, pinned, ACROSS_CPUS))
        bitwise.append(pinned == baseline)
    assert not all(bitwise), "no table changed under other kernels: the run does not test what it says"


def write_expected(results: Path) -> None:
    for name in FILES:
        (EXPECTED / name).parent.mkdir(parents=True, exist_ok=True)
        (EXPECTED / name).write_text(normalised(results, name))
    RECORD.write_text(json.dumps(record(), indent=1) + "\n")
    print(f"wrote {len(FILES)} files and {RECORD.name} ({record()['cpu']}) to {EXPECTED}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--regenerate"]:
        with tempfile.TemporaryDirectory(prefix="orthojac-expected-") as root:
            write_expected(run_tiny_pipeline(Path(root)) / "results")
    elif len(sys.argv) == 2:
        write_expected(Path(sys.argv[1]))
    else:
        sys.exit("usage: python tests/test_outputs_unchanged.py --regenerate | RESULTS_DIR (a run under the pins)")

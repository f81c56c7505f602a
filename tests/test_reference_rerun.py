"""A trained run of the committed CPU reference (results/reference/cpu), run again here, gives the
committed metrics exactly (on a CPU where the rounding pins hold: an Intel CPU with AVX2; on
another, the same bits twice here and the untrained evaluation within one operation's rounding).

Which run: the cheapest trained one (epochs ≥ 1, status completed) of the snapshot's
tables/runs.csv, cheapest by its optimizer steps, then depth × width², then the evaluated images,
then its name: a rule, not a name, so the test follows the reference when it is made again with
other experiments. How: `python -m orthojac train` with every setting of its runs.csv row as a
flag (runs.csv records every field of orthojac.config.RunConfig as the run resolved it), one
thread, as the workflow's train rule runs it, under orthojac.reference.ROUNDING_PINS (what
`make reference` sets for every job). Compared: every value of its rows in tables/metrics.csv
(loss, accuracy and learning rate of every split and epoch) as text, against the rerun's
metrics.csv written into a table by orthojac.claims.tables as the reference's was: the same characters,
so the same bits; the `seconds` rows (training time) are left out, no rerun repeats them.

test_the_comparison_passes_on_the_same_bits_and_names_one_changed_digit checks the same code on a
snapshot made here from a tiny run: a rerun under the pins matches it, and one digit changed in
its metrics.csv is named.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd

from conftest import REPO, make_idx_dataset
from orthojac.config import RunConfig, flag_of
from orthojac.data import IDX_FILES
from orthojac.reference import ROUNDING_PINS
from orthojac.reference.compare import ATOL
from orthojac.reference.env import bit_reproducible, cpu_info
from orthojac.claims.tables import collect_runs
from orthojac.workflow import Pipeline, load_config

REFERENCE = REPO / "results/reference/cpu"
UNREPEATABLE = ("seconds",)  # metrics.csv's training time: not a result, no rerun repeats it


def read_table(path: Path) -> pd.DataFrame:
    """A CSV as written: every field a string (an empty field stays ""), nothing converted."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def cheapest_trained_run(runs: pd.DataFrame) -> pd.Series:
    """The trained run (epochs ≥ 1, completed) of a runs table that costs least: fewest steps, then
    depth × width², then images evaluated, then experiment and run (a fixed order for ties)."""
    trained = runs[(runs["epochs"].astype(int) >= 1) & (runs["status"] == "completed")]
    if trained.empty:
        raise AssertionError("runs.csv has no completed run of epochs ≥ 1: nothing trained to rerun")
    cost = lambda r: (int(r["steps"]), int(r["depth"]) * int(r["width"]) ** 2,  # noqa: E731
                      int(r["val_size"]) + int(r["test_size"]), r["experiment"], r["run"])
    return min((row for _, row in trained.iterrows()), key=cost)


def train_command(run: pd.Series, data_dir: Path, out_dir: Path) -> list[str]:
    """The train rule's command for `run` (a runs.csv row): each RunConfig field as `--flag=value`
    (as orthojac.workflow.Pipeline.train_args writes them; a field the row lacks, added after the
    snapshot was made, keeps its default), one thread, no epoch checkpoints."""
    flags = [f"{flag_of(f)}={run[f.name]}" for f in dataclasses.fields(RunConfig) if f.name in run.index]
    return [sys.executable, "-m", "orthojac", "train", *flags, "--data-dir", str(data_dir),
            "--out-dir", str(out_dir), "--threads", "1", "--save-epochs"]


def metric_differences(committed: pd.DataFrame, rerun: pd.DataFrame) -> list[str]:
    """One line for each (epoch, step, split, metric) whose value differs, as text, between the two
    metric tables (as read by read_table), or that one of them lacks; [] when all are equal."""
    key = ["epoch", "step", "split", "metric"]

    def values(frame):
        frame = frame[~frame["metric"].isin(UNREPEATABLE)]
        return {tuple(row[k] for k in key): row["value"] for _, row in frame.iterrows()}

    ours, theirs = values(committed), values(rerun)
    lines = [f"{dict(zip(key, k))}: only in the committed table" for k in sorted(set(ours) - set(theirs))]
    lines += [f"{dict(zip(key, k))}: only in the rerun" for k in sorted(set(theirs) - set(ours))]
    lines += [f"{dict(zip(key, k))}: committed {ours[k]}, rerun {theirs[k]}"
              for k in sorted(set(ours) & set(theirs)) if ours[k] != theirs[k]]
    return lines


def as_metrics_table(metrics_csv: Path) -> pd.DataFrame:
    """A run's metrics.csv as its rows of tables/metrics.csv read it: written by orthojac.claims.tables'
    collect_runs and pandas' to_csv, as the tables rule writes them, then read by read_table."""
    _, metrics = collect_runs([metrics_csv], {})
    return pd.read_csv(io.StringIO(metrics.to_csv(index=False)), dtype=str, keep_default_na=False)


def rerun(snapshot: Path, data_dir_of, work: Path) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
    """Rerun the cheapest trained run of `snapshot` (tables/runs.csv, tables/metrics.csv) under
    ROUNDING_PINS, its data from data_dir_of(dataset); return the run, its committed metrics and the
    rerun's."""
    run = cheapest_trained_run(read_table(snapshot / "tables/runs.csv"))
    metrics = read_table(snapshot / "tables/metrics.csv")
    committed = metrics[(metrics["experiment"] == run["experiment"]) & (metrics["run"] == run["run"])]
    out_dir = work / "run"
    command = train_command(run, data_dir_of(run["dataset"]), out_dir)
    env = {**os.environ, **ROUNDING_PINS}
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, f"{shlex.join(command)} failed:\n{proc.stderr[-3000:]}"
    return run, committed, as_metrics_table(out_dir / "metrics.csv")


def rerun_differences(snapshot: Path, data_dir_of, work: Path) -> tuple[pd.Series, list[str]]:
    """rerun, and the metric_differences of the rerun from the committed metrics."""
    run, committed, again = rerun(snapshot, data_dir_of, work)
    return run, metric_differences(committed, again)


def before_training_apart(committed: pd.DataFrame, rerun: pd.DataFrame, atol: float) -> list[str]:
    """The values of the evaluation before the first update (step 0) that differ by more than
    `atol` between the two metric tables (read_table's), one line each."""
    key = ["epoch", "step", "split", "metric"]
    ours = {tuple(r[k] for k in key): float(r["value"]) for _, r in committed[committed["step"] == "0"].iterrows()}
    theirs = {tuple(r[k] for k in key): float(r["value"]) for _, r in rerun[rerun["step"] == "0"].iterrows()}
    return [f"{dict(zip(key, k))}: committed {ours[k]!r}, rerun {theirs.get(k)!r}" for k in sorted(ours)
            if k not in theirs or abs(ours[k] - theirs[k]) > atol]


def fetched_data(dataset: str, work: Path) -> Path:
    """The verified IDX files of `dataset`: results/data/<dataset> where the data rule has left
    them, else fetched into `work` by the data rule's command (config/config.yaml's sources)."""
    here = REPO / "results/data" / dataset
    if all((here / name).is_file() for name in IDX_FILES):
        return here
    pipeline = Pipeline(load_config([REPO / "config/cpu.yaml"], base=REPO / "config/config.yaml"))
    out = work / "data" / dataset
    command = (f"{shlex.quote(sys.executable)} -m orthojac fetch --out-dir {shlex.quote(str(out))} "
               f"{pipeline.fetch_args(dataset)}")
    proc = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"{command} failed:\n{proc.stderr[-3000:]}"
    return out


def test_the_cheapest_trained_run_of_the_committed_reference_reruns_to_identical_metrics(tmp_path):
    """Where MKL's reproducible branch holds on both machines (an Intel CPU with AVX2: the
    reference's manifest records its CPU), the rerun is the committed bits. Elsewhere MKL takes its
    AUTO branch (bit_reproducible), so the pins cannot give the reference's last bits there, and
    what can be asked is asked: this machine reruns the run to its own bits (twice, the same), and
    the evaluation before the first update, which no training amplified, is `close` to the
    committed one (orthojac.reference.compare's ATOL, one operation's rounding on another CPU)."""
    data_dir_of = lambda dataset: fetched_data(dataset, tmp_path)  # noqa: E731
    run, committed, first = rerun(REFERENCE, data_dir_of, tmp_path / "first")
    where = f"{run['experiment']}/{run['run']}"
    reference_cpu = json.loads((REFERENCE / "manifest.json").read_text())["rounding"]
    if bit_reproducible(reference_cpu, cpu_info()):
        differences = metric_differences(committed, first)
        assert not differences, (f"{where} rerun under the rounding pins differs from "
                                 f"{REFERENCE.relative_to(REPO)}/tables/metrics.csv:\n  " + "\n  ".join(differences))
        return
    _, _, second = rerun(REFERENCE, data_dir_of, tmp_path / "second")
    differences = metric_differences(first, second)
    assert not differences, f"{where} rerun twice on this machine under the pins differs:\n  " + "\n  ".join(differences)
    apart = before_training_apart(committed, first, ATOL)
    assert not apart, (f"{where} before any update differs from the reference by more than {ATOL:g} "
                       f"(this CPU: {cpu_info()}, the reference's: {reference_cpu['vendor']}):\n  " + "\n  ".join(apart))


def _tiny_snapshot(root: Path, data_dir: Path) -> Path:
    """A snapshot of two tiny runs made here under the pins (a trained one and one at
    initialisation), their tables written by orthojac.claims.tables as `make reference` writes them."""
    files = []
    for run, epochs in (("trained", 2), ("untrained", 0)):
        row = {**{f.name: f.default for f in dataclasses.fields(RunConfig)}, "dataset": "fixture", "arch": "dense",
               "depth": 3, "width": 32, "epochs": epochs, "batch_size": 50, "train_size": 200, "val_size": 100,
               "test_size": 100, "status": "completed"}
        out = root / "runs/tiny" / run
        proc = subprocess.run(train_command(pd.Series(row), data_dir, out), env={**os.environ, **ROUNDING_PINS},
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        files.append(out / "metrics.csv")
    runs, metrics = collect_runs(files, {"tiny": []})
    (root / "snapshot/tables").mkdir(parents=True)
    runs.to_csv(root / "snapshot/tables/runs.csv", index=False)
    metrics.to_csv(root / "snapshot/tables/metrics.csv", index=False)
    return root / "snapshot"


def test_the_comparison_passes_on_the_same_bits_and_names_one_changed_digit(tmp_path):
    mirror = tmp_path / "mirror"
    make_idx_dataset(mirror)
    data = tmp_path / "data"
    data.mkdir()
    for name in IDX_FILES:
        (data / name).write_bytes(gzip.decompress((mirror / f"{name}.gz").read_bytes()))
    snapshot = _tiny_snapshot(tmp_path, data)

    run, differences = rerun_differences(snapshot, lambda dataset: data, tmp_path / "rerun")
    assert (run["run"], run["steps"]) == ("trained", "8")  # the untrained run is never chosen
    assert differences == []
    assert json.loads((tmp_path / "rerun/run/config.json").read_text())["steps"] == 8

    # one digit of one value changed, as written in the CSV: named, and nothing else is
    table = snapshot / "tables/metrics.csv"
    lines = table.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("tiny,trained,2,") and ",val,loss," in line)
    value = lines[i].rsplit(",", 1)[1]
    digit = len(value) - 1
    changed = value[:digit] + str((int(value[digit]) + 1) % 10)
    lines[i] = lines[i][: -len(value)] + changed
    table.write_text("\n".join(lines) + "\n")
    run, differences = rerun_differences(snapshot, lambda dataset: data, tmp_path / "again")
    assert differences == [f"{{'epoch': '2', 'step': '8', 'split': 'val', 'metric': 'loss'}}: "
                           f"committed {changed}, rerun {value}"]

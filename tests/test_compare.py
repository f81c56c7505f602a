"""orthojac.reference.compare: a new run against a reference, per run, per table, per claim; and
orthojac.reference's snapshot and manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from orthojac.reference import compare
from orthojac import reference
from orthojac.claims import tables
from orthojac.run import train
from orthojac.config import RunConfig


def _results(folder: Path, runs: list[Path], verdicts: dict[str, str]) -> Path:
    """A results-shaped folder: tables/ from trained runs, report/ledger.csv with `verdicts`."""
    metrics = [run / "metrics.csv" for run in runs]
    run_table, metric_table = tables.collect_runs(metrics, {})
    (folder / "tables").mkdir(parents=True)
    run_table.to_csv(folder / "tables/runs.csv", index=False)
    metric_table.to_csv(folder / "tables/metrics.csv", index=False)
    (folder / "report").mkdir()
    pd.DataFrame({"claim": list(verdicts), "verdict": list(verdicts.values())}).to_csv(
        folder / "report/ledger.csv", index=False)
    return folder


def _train(idx_folder: Path, out: Path) -> Path:
    cfg = RunConfig(dataset="fixture", family="fold", depth=2, channels=1, bias_init=-0.5, lr=0.01,
                    epochs=2, val_size=100, train_size=100, test_size=50, batch_size=20)
    train.train(cfg, idx_folder, out, torch.device("cpu"), 0)
    return out


def test_the_same_seed_twice_on_this_cpu_is_identical_and_a_changed_number_is_found(
        tmp_path, idx_folder, capsys):
    # Two runs of one config, trained separately: the folder names the run (experiment/run).
    a = _train(idx_folder, tmp_path / "a/runs/exp/run0")
    b = _train(idx_folder, tmp_path / "b/runs/exp/run0")
    verdicts = {"P1": "reproduced", "P2": "not reproduced"}
    new, ref = _results(tmp_path / "new", [a], verdicts), _results(tmp_path / "ref", [b], verdicts)
    assert compare.main([str(new), str(ref), "--strict"]) == 0
    out = capsys.readouterr().out
    assert "identical 1" in out
    runs = compare.compare_runs(new, ref, 1e-6)
    assert runs.loc[0, "class"] == "identical" and runs.loc[0, "max_abs_diff"] == 0

    # A rounding-sized change is close, a real one differs, and --strict fails on it.
    metrics = pd.read_csv(new / "tables/metrics.csv")
    acc = metrics.index[(metrics["metric"] == "accuracy") & (metrics["split"] == "test")][-1]
    for delta, cls in ((1e-9, "close"), (0.01, "differs")):
        changed = metrics.copy()
        changed.loc[acc, "value"] += delta
        changed.to_csv(new / "tables/metrics.csv", index=False)
        row = compare.compare_runs(new, ref, 1e-6).iloc[0]
        assert row["class"] == cls and abs(row["max_abs_diff"] - delta) < 1e-12
    assert compare.main([str(new), str(ref)]) == 0  # verdicts agree: numbers alone do not fail
    assert compare.main([str(new), str(ref), "--strict"]) == 1


def test_a_changed_verdict_or_a_missing_run_fails_and_is_named(tmp_path, idx_folder, capsys):
    a = _train(idx_folder, tmp_path / "a/runs/exp/run0")
    b = _train(idx_folder, tmp_path / "b/runs/exp/run1")
    new = _results(tmp_path / "new", [a], {"P1": "reproduced", "P3": "reproduced"})
    ref = _results(tmp_path / "ref", [b], {"P1": "reproduced", "P3": "inconclusive"})
    assert compare.main([str(new), str(ref)]) == 1
    out = capsys.readouterr().out
    assert "1 verdict(s) differ from the reference: P3" in out
    runs = compare.compare_runs(new, ref, 1e-6).set_index("run")
    assert runs.loc["run0", "note"] == "only in the new results"
    assert runs.loc["run1", "note"] == "only in the reference"
    assert set(runs["class"]) == {"missing"}


def test_thesis_tables_are_compared_value_by_value(tmp_path):
    rows = pd.DataFrame({"weights": ["orthogonal", "gaussian"], "depth": [2, 2], "seed": [0, 0],
                         "metric": ["steps_to_target", "steps_to_target"], "value": [100.0, 125.0]})
    for name in ("new", "ref"):
        (tmp_path / name / "tables").mkdir(parents=True)
        rows.to_csv(tmp_path / name / "tables/hlav_linear.csv", index=False)
    assert compare.compare_tables(tmp_path / "new", tmp_path / "ref", 1e-6).iloc[0]["class"] == "identical"
    rows.assign(value=[100.0, 150.0]).to_csv(tmp_path / "new/tables/hlav_linear.csv", index=False)
    row = compare.compare_tables(tmp_path / "new", tmp_path / "ref", 1e-6).iloc[0]
    assert row["class"] == "differs" and row["max_abs_diff"] == 25.0


def test_a_missing_tables_folder_is_refused_by_name(tmp_path, capsys):
    (tmp_path / "ref/tables").mkdir(parents=True)
    with pytest.raises(SystemExit) as stop:
        compare.main([str(tmp_path / "nothing"), str(tmp_path / "ref")])
    assert stop.value.code == 2
    assert f"{tmp_path / 'nothing'}: no tables/ folder" in capsys.readouterr().err


LOG = """\
[Tue Dec  1 19:30:10 2026]
rule fetch_data:
    output: results/data/fashion_mnist/x
    jobid: 5
    reason: Missing output files
[Tue Dec  1 19:30:12 2026]
rule train:
    jobid: 7
[Tue Dec  1 19:30:31 2026]
Finished jobid: 5 (Rule: fetch_data)
[Tue Dec  1 19:31:00 2026]
localrule tables:
    jobid: 9
[Tue Dec  1 19:32:12 2026]
Finished jobid: 7 (Rule: train)
"""


def test_rule_times_pair_each_job_start_with_its_finish():
    times = reference.rule_times(LOG)
    assert times == {"fetch_data": {"jobs": 1, "seconds": 21.0, "unfinished": 0},
                     "tables": {"jobs": 0, "seconds": 0.0, "unfinished": 1},
                     "train": {"jobs": 1, "seconds": 120.0, "unfinished": 0}}


def test_snapshot_copies_the_report_material_and_writes_a_manifest(tmp_path):
    results = tmp_path / "results"
    for part in reference.PARTS:
        (results / part).mkdir(parents=True)
        (results / part / "x.txt").write_text(part)
    (results / "report/index.ipynb").write_text('{"cells": ["/home/me/results"]}')  # a log: never copied
    (results / "runs").mkdir()
    (results / "runs/checkpoint.pt").write_text("weights")  # never copied
    log = tmp_path / "run.snakemake.log"
    log.write_text(LOG)
    out = tmp_path / "reference/cpu"
    info = reference.snapshot(results, out, "make reference", 4200.0, log)
    assert sorted(p.name for p in out.iterdir()) == sorted([*reference.PARTS, "manifest.json"])
    assert sorted(p.name for p in (out / "report").iterdir()) == ["x.txt"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == info and manifest["command"] == "make reference" and manifest["wall_seconds"] == 4200.0
    assert manifest["rules"]["train"]["seconds"] == 120.0 and manifest["torch"] == torch.__version__
    assert manifest["cores"] >= 1 and manifest["cpu"]
    assert manifest["commit"] == "unknown" or len(manifest["commit"]) == 40
    shutil.rmtree(results / "figures")
    with pytest.raises(SystemExit, match="no figures"):
        reference.snapshot(results, out, "make reference", 1.0, None)
    assert (out / "figures/x.txt").exists()  # a refused snapshot leaves the old one whole

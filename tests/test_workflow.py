"""The Snakemake workflow: the full grid plans, lint is clean, and the pipeline runs end to end
on a tiny IDX data set made by the test (the config points the data rule at it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from conftest import REPO, SNAKEMAKE, job_counts, outside_checkout
from orthojac.report.figures import FIGURES
from orthojac.workflow import Pipeline, load_config


def test_full_config_plans_every_run(plan):
    planned = job_counts(plan("config/config.yaml"))
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    n_runs = 0
    for exp in config["experiments"]:
        size = 1
        for s in exp["settings"].values():
            size *= len(s.get("grid", [None]))
        n_runs += size
    assert planned["train"] == n_runs


def test_lint_is_clean(venv_env, tmp_path):
    """Linted from a folder of its own (Snakemake writes its log under .snakemake/ there)."""
    proc = subprocess.run(SNAKEMAKE + [*outside_checkout(), "--lint"], cwd=tmp_path, env=venv_env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_pipeline_end_to_end_on_generated_idx(tiny_pipeline):
    work = tiny_pipeline
    for page in ("index", "paper"):
        html = (work / f"results/report/{page}.html").read_text()
        assert "snakemake-job-properties" not in html and "snakemake.input" not in html
    assert "Claims ledger" in (work / "results/report/index.html").read_text()
    ledger = pd.read_csv(work / "results/report/ledger.csv")
    # The tiny config has one P1 cell (fold, conv, C = 1): the judge asks for all four
    # (fold/orthoff × dense/conv) and says which are missing instead of passing.
    p1 = ledger.set_index("claim").loc["P1"]
    assert p1["verdict"] == "inconclusive" and "missing: " in p1["numbers"], p1["numbers"]
    runs = pd.read_csv(work / "results/tables/runs.csv")
    assert set(runs["family"]) == {"fold", "plain"} and (runs["status"] == "completed").all()
    metrics = pd.read_csv(work / "results/tables/metrics.csv")
    assert set(metrics["epoch"]) == {0, 1, 2}
    summary = json.loads((work / "results/runs/tiny/family=fold/config.json").read_text())
    assert summary["config"]["dataset"] == "fixture" and summary["steps"] == 20
    for name in FIGURES:
        assert (work / f"results/figures/{name}.png").stat().st_size > 1000
    spectra = pd.read_csv(work / "results/tables/spectra.csv")
    assert set(spectra["checkpoint"]) == {"init", "epoch1", "final"}


def test_benchmark_reads_the_spectra_cost_of_every_run(tiny_pipeline):
    """benchmarks/spectra.py's ratio table from a real run: every run, three checkpoints, both
    ratios computed from what the jobs recorded."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from spectra import training_ratio
    finally:
        sys.path.pop(0)
    table = training_ratio(tiny_pipeline / "results")
    runs = Pipeline(load_config([REPO / ".test/config.yaml"], base=REPO / "config/config.yaml")).runs
    assert sorted(table.index) == sorted(runs)  # every run of the tiny configuration, each trained
    tiny = table.xs("tiny", level="experiment")  # its conv runs: C = 1, three checkpoints each
    assert sorted(tiny.index) == ["family=fold", "family=plain"]
    assert (tiny["checkpoints"] == 3).all() and (tiny["dimension"] == 784).all()
    assert (table["spectra_s"] > 0).all() and (table["train_s"] > 0).all()
    assert (table["compute_ratio"] == table["spectra_s"] / table["train_s"]).all()
    assert (table["job_ratio"] > 0).all()


def test_snakefmt_is_clean(venv_env):
    snakefmt = Path(sys.executable).parent / "snakefmt"
    proc = subprocess.run(
        [str(snakefmt), "--check", "Snakefile", "workflow/rules"], cwd=REPO, env=venv_env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_make_runs_the_rules_with_the_project_python(tmp_path):
    """From a shell without the venv on PATH, `make quick` must hand Snakemake (and so every rule's
    `python -m orthojac…`) the project's interpreter. SNAKEMAKE is swapped for a probe that
    imports orthojac and prints which python runs; set-up targets are taken as up to date."""
    probe = "python -c 'import orthojac, sys; print(sys.prefix)'"
    proc = subprocess.run(["make", "-s", "-o", ".venv/.installed", "-o", "mirror", "quick", f"SNAKEMAKE={probe}"],
                          cwd=REPO, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert Path(proc.stdout.strip()) == REPO / ".venv"

"""The Snakemake workflow: the full grid plans, lint is clean, and the pipeline runs end to end
on a tiny IDX data set made by the test (the config points the data rule at it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _run(args, cwd, env, timeout=900):
    proc = subprocess.run(SNAKEMAKE + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def test_full_config_plans_every_run(venv_env):
    out = _run(["-n", "--quiet", "rules"], REPO, venv_env)
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    n_runs = 0
    for exp in config["experiments"]:
        size = 1
        for s in exp["settings"].values():
            size *= len(s.get("grid", [None]))
        n_runs += size
    train_line = next(line for line in out.splitlines() if line.split()[:1] == ["train"])
    assert int(train_line.split()[1]) == n_runs


def test_lint_is_clean(venv_env):
    proc = subprocess.run(SNAKEMAKE + ["--lint"], cwd=REPO, env=venv_env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def fixture_config(mirror: Path, files: dict) -> dict:
    return {
        "data": {"fixture": {"urls": ["http://nonexistent.invalid/"], "mirrors": [str(mirror)], "files": files}},
        "experiments": [{
            "name": "tiny",
            "description": "pipeline test on generated IDX data",
            "claims": ["P1", "P2", "P3"],
            "spectra": {"checkpoints": ["init", "final"], "points": 1, "layers": True, "choice": "test"},
            "settings": {
                "dataset": {"value": "fixture", "choice": "test"},
                "family": {"grid": ["fold", "plain"], "choice": "test"},
                "depth": {"value": 2, "choice": "test"},
                "channels": {"value": 1, "choice": "test"},
                "bias_init": {"value": -0.5, "choice": "test"},
                "lr": {"value": 0.01, "choice": "test"},
                "epochs": {"value": 2, "choice": "test"},
                "val_size": {"value": 100, "choice": "test"},
                "batch_size": {"value": 50, "choice": "test"},
            },
        }],
    }


def test_pipeline_end_to_end_on_generated_idx(tmp_path, idx_dataset, venv_env):
    mirror, files = idx_dataset
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(fixture_config(mirror, files)))
    _run(["--snakefile", str(REPO / "Snakefile"), "--configfile", "config.yaml", "--cores", "2"], work, venv_env)
    html = (work / "results/report/index.html").read_text()
    assert "Claims ledger" in html and "snakemake-job-properties" not in html
    ledger = pd.read_csv(work / "results/report/ledger.csv")
    assert ledger.loc[ledger.claim == "P1", "verdict"].item() == "reproduced"
    runs = pd.read_csv(work / "results/tables/runs.csv")
    assert set(runs["family"]) == {"fold", "plain"} and (runs["status"] == "completed").all()
    metrics = pd.read_csv(work / "results/tables/metrics.csv")
    assert set(metrics["epoch"]) == {0, 1, 2}
    summary = json.loads((work / "results/runs/tiny/family=fold/config.json").read_text())
    assert summary["config"]["dataset"] == "fixture" and summary["steps"] == 20
    for name in ("accuracy", "loss", "accuracy_vs_depth", "singular_values", "layer_defect"):
        assert (work / f"results/figures/{name}.png").stat().st_size > 1000


def test_snakefmt_is_clean(venv_env):
    snakefmt = Path(sys.executable).parent / "snakefmt"
    proc = subprocess.run(
        [str(snakefmt), "--check", "Snakefile", "workflow/rules"], cwd=REPO, env=venv_env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

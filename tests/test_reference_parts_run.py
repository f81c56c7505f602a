"""The reference made in parts, end to end on the tiny configuration (.test/config.yaml on generated
data) with a `reference_parts:` of two parts, as `make reference PART=…` runs each step: a part's
invocation (`--config reference_part=NAME`) trains and measures only its jobs and writes its
manifest; the report step refuses while a part is missing, then plans and runs no part's job,
builds the report from the parts' outputs, and snapshots it with every part's manifest."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, fixture_config, job_counts, make_idx_dataset, outside_checkout, run_snakemake
from orthojac.reference import ROUNDING_PINS, check_report, part_manifest_path
from orthojac.workflow import SECTIONS, Pipeline, load_config

PART_RULES = {"train", "select", "spectrum", *SECTIONS, *(f"{s}_table" for s in SECTIONS)}


def reference(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orthojac", "reference", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def latest_log(work: Path) -> str:
    return str(max((work / ".snakemake/log").glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime))


def test_parts_then_report_train_each_job_once_and_gather_every_manifest(tmp_path, venv_env, monkeypatch):
    config = fixture_config(tmp_path / "mirror", make_idx_dataset(tmp_path / "mirror"))
    merged = load_config([], base=REPO / "config/config.yaml") | config
    sections = [name for name in SECTIONS if isinstance(merged.get(name), dict)]
    config["reference_parts"] = {"runs": [e["name"] for e in config["experiments"]], "thesis": sections}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    work, snapshot = tmp_path / "work", tmp_path / "work/snapshot"
    work.mkdir()
    env = {**venv_env, **ROUNDING_PINS}
    snakemake = [*outside_checkout(configfile), "--cores", "2"]

    experiments = [e["name"] for e in config["experiments"]]
    runs = sum(1 for e, _ in Pipeline(load_config([configfile], base=REPO / "config/config.yaml")).runs)
    screens = {e["select"]["from"] for e in config["experiments"] if "select" in e}
    out = run_snakemake([*snakemake, "--config", "reference_part=runs"], work, env)
    assert set(job_counts(out)) - {"total", "all", "fetch_data"} == {"train", "spectrum"} | ({"select"} if screens else set()), out
    assert (work / "results/runs/tiny").is_dir() and not (work / "results/tables").exists()
    assert not (work / "results/hlav").exists()
    made = reference(["part-manifest", "runs", "--configfile", str(configfile), "--out", str(snapshot),
                      "--command", "make reference PART=runs", "--wall-seconds", "12", "--log", latest_log(work)],
                     work, env)
    assert made.returncode == 0, made.stderr
    manifest = json.loads(part_manifest_path(snapshot, "runs").read_text())
    assert manifest["part"] == "runs" and manifest["jobs"] == experiments and manifest["rounding"]["pinned"]
    assert manifest["rules"]["train"]["jobs"] == runs and manifest["wall_seconds"] == 12.0

    monkeypatch.chdir(work)  # the checks read git's state of the working folder, as make's do
    with pytest.raises(SystemExit, match=r"manifest-thesis.json: no manifest of part 'thesis': run `make "
                                         r"reference PART=thesis` first"):
        check_report([configfile], snapshot)

    out = run_snakemake([*snakemake, "--config", "reference_part=thesis"], work, env)
    assert "train" not in job_counts(out) and "tables" not in job_counts(out), out
    assert set(job_counts(out)) & set(sections), out
    made = reference(["part-manifest", "thesis", "--configfile", str(configfile), "--out", str(snapshot),
                      "--command", "make reference PART=thesis", "--log", latest_log(work)], work, env)
    assert made.returncode == 0, made.stderr

    assert check_report([configfile], snapshot) == ["runs", "thesis"]
    out = run_snakemake(snakemake, work, env)
    assert not set(job_counts(out)) & PART_RULES and "tables" in job_counts(out), out
    made = reference(["snapshot", "results", "--out", str(snapshot), "--command", "make reference PART=report",
                      "--wall-seconds", "3", "--log", latest_log(work), "--parts", "runs", "thesis"], work, env)
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in snapshot.iterdir()) == ["figures", "manifest-runs.json", "manifest-thesis.json",
                                                          "manifest.json", "report", "tables"]
    final = json.loads((snapshot / "manifest.json").read_text())
    assert list(final["parts"]) == ["runs", "thesis"] and final["parts"]["runs"]["jobs"] == experiments
    assert final["rules"]["train"]["jobs"] == runs and "train" not in final["report_rules"]
    assert final["report_wall_seconds"] == 3.0 and final["wall_seconds"] is None  # thesis gave no wall time
    compared = subprocess.run([sys.executable, "-m", "orthojac", "compare", str(snapshot), str(snapshot)], cwd=work,
                              env=env, capture_output=True, text=True, timeout=600)
    assert compared.returncode == 0, compared.stdout + compared.stderr

    # before a report step (no tables, figures or pages yet) a part's output gone: the job that would
    # train again is named (with the report made, Snakemake does not remake a missing intermediate file)
    for made in ("tables", "figures", "report", "report_site"):
        shutil.rmtree(work / "results" / made)
    (work / "results/runs/tiny").joinpath(next(p.name for p in (work / "results/runs/tiny").iterdir()),
                                          "metrics.csv").unlink()
    with pytest.raises(SystemExit, match=r"Snakemake would run again \{.*'train': 1"):
        check_report([configfile], snapshot)

"""The conda environments pin exactly the versions of requirements.lock, and every rule has one;
the checker catches a drifted pin, a loose pin and a rule without conda:."""

from __future__ import annotations

import shutil

from conftest import REPO
from env_pins import check, read_lock


def copy_repo_parts(dest):
    for part in ("envs", "workflow/rules"):
        shutil.copytree(REPO / part, dest / part)
    for name in ("Snakefile", "requirements.lock"):
        shutil.copy(REPO / name, dest / name)
    return dest


def test_envs_agree_with_lock_and_every_rule_has_conda():
    assert sorted(p.name for p in (REPO / "envs").glob("*.yaml")) == ["data.yaml", "report.yaml", "train.yaml"]
    assert check(REPO) == []


def test_drifted_pin_is_reported_with_both_versions(tmp_path):
    repo = copy_repo_parts(tmp_path)
    assert read_lock(repo / "requirements.lock")["torch"] == "2.14.1"
    env = repo / "envs/train.yaml"
    env.write_text(env.read_text().replace("torch==2.14.1", "torch==2.13.0"))
    assert check(repo) == ["train.yaml: torch 2.13.0 differs from requirements.lock 2.14.1"]


def test_drift_of_the_lock_is_reported_for_every_env(tmp_path):
    repo = copy_repo_parts(tmp_path)
    lock = repo / "requirements.lock"
    lock.write_text(lock.read_text().replace("numpy==2.4.6", "numpy==2.5.0"))
    assert check(repo) == [
        f"{name}: numpy 2.4.6 differs from requirements.lock 2.5.0"
        for name in ("data.yaml", "report.yaml", "train.yaml")
    ]


def test_loose_pins_and_unknown_packages_are_reported(tmp_path):
    repo = copy_repo_parts(tmp_path)
    env = repo / "envs/report.yaml"
    text = env.read_text().replace("seaborn==0.13.2", "seaborn>=0.13").replace("python=3.11.7", "python=3.11.8")
    env.write_text(text.replace("nbformat==5.11.1", "nbformat==5.11.1\n      - scipy==1.16.0"))
    problems = check(repo)
    assert "report.yaml: pip dependency 'seaborn>=0.13' is not pinned exactly (name==version)" in problems
    assert "report.yaml: pip package scipy 1.16.0 is not in requirements.lock" in problems
    assert any(p.startswith("conda pin python differs between envs") and "3.11.8" in p for p in problems)
    assert len(problems) == 3, problems


def test_rule_without_conda_is_reported(tmp_path):
    repo = copy_repo_parts(tmp_path)
    rules = repo / "workflow/rules/data.smk"
    rules.write_text(rules.read_text().replace('    conda:\n        "../../envs/data.yaml"\n', ""))
    assert check(repo) == ["data.smk: rule fetch_data has no conda: directive"]

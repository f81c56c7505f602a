"""The reference's parts (config/cpu.yaml `reference_parts:`, `make reference PART=NAME`): the
config's checks, what each part's invocation requests, the part manifests and why the report step
refuses to gather them. End to end on the tiny configuration: tests/test_reference_parts_run.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from conftest import REPO, job_counts, outside_checkout, run_snakemake
from orthojac import reference
from orthojac.reference import ROUNDING_PINS, gather_parts, parts_errors, write_part_manifest
from orthojac.workflow import SECTIONS, Pipeline, config_errors, load_config

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
CPU = load_config([REPO / "config/cpu.yaml"], base=REPO / "config/config.yaml")


def test_the_cpu_config_puts_every_experiment_and_section_in_exactly_one_part():
    assert config_errors(CPU, SCHEMA) == []
    pipeline = Pipeline(CPU)
    names = [n for jobs in CPU["reference_parts"].values() for n in jobs]
    assert sorted(names) == sorted([*pipeline.experiments, *(s.name for s in pipeline.sections)])
    made = [o for part in CPU["reference_parts"] for o in pipeline.part_outputs(part)]
    assert len(made) == len(set(made))  # no output made by two parts
    sections = [s for s in pipeline.sections]
    assert set(made) == {*pipeline.run_files("metrics.csv"), *pipeline.run_files("config.json"),
                         *pipeline.spectra_files("body"), *pipeline.spectra_files("layers"),
                         *(t for s in sections if s.folder for t in pipeline.seed_tables(s.name)),
                         *(s.table for s in sections)}


@pytest.mark.parametrize("edit, error", [
    (lambda p: p["thesis"].append("nope"),
     "config: reference_parts.thesis[5]: 'nope' is neither an experiment nor a thesis section of this config"),
    (lambda p: p["thesis"].append("depth200_fold"),
     "config: reference_parts.thesis[5]: 'depth200_fold' is also in part 'paper'"),
    (lambda p: p["paper"].remove("depth200_fold"), "config: reference_parts: ['depth200_fold'] are in no part"),
    (lambda p: p.update(report=p.pop("thesis")), "config: reference_parts.report: `report` names the step"),
    (lambda p: p.update({"bad name": ["h4"]}), "config: reference_parts: 'bad name' does not match"),
    (lambda p: p.update(empty=[]), "config: reference_parts.empty: [] should be non-empty"),
])
def test_a_wrong_part_is_refused_naming_its_key(edit, error):
    cfg = copy.deepcopy(CPU)
    edit(cfg["reference_parts"])
    errors = config_errors(cfg, SCHEMA)
    assert any(e.startswith(error) for e in errors), errors


def test_reference_part_must_name_a_part():
    cfg = {**copy.deepcopy(CPU), "reference_part": "paper_c"}
    assert config_errors(cfg, SCHEMA) == ["config: reference_part: 'paper_c' is not a key of reference_parts: "
                                          "(have ['paper', 'thesis'])"]
    quick = {**load_config([REPO / "config/quick.yaml"], base=REPO / "config/config.yaml"), "reference_part": "x"}
    assert "config: reference_part: 'x' is not a key of reference_parts: (have no reference_parts: in this config)" \
        in config_errors(quick, SCHEMA)


def test_a_part_requests_only_its_own_jobs_and_no_part_the_report(tmp_path, venv_env):
    pipeline = Pipeline({**CPU, "reference_part": "thesis"})
    assert pipeline.targets() == pipeline.part_outputs("thesis")
    assert Pipeline(CPU).targets() == Pipeline(CPU).all_outputs()
    out = run_snakemake(["-n", "--cores", "1", *outside_checkout(REPO / "config/cpu.yaml"),
                         "--config", "reference_part=paper"], tmp_path, venv_env)
    counts = job_counts(out)
    runs = sum(1 for e, _ in Pipeline(CPU).runs if e in CPU["reference_parts"]["paper"])
    assert counts["train"] == runs and not set(counts) & {*SECTIONS, "tables", "figures", "report_index"}, counts


def _manifest(part: str, jobs: list[str], commit: str = "a" * 40, dirty: bool = False, pinned: bool = True) -> dict:
    return {"part": part, "jobs": jobs, "commit": commit, "dirty": dirty, "date": "2026-12-04T18:00:00Z",
            "command": f"make reference PART={part}", "wall_seconds": 100.0, "rounding": {"pinned": pinned},
            "rules": {"train": {"jobs": 2, "seconds": 150.0, "unfinished": 0}}}


PARTS = {"one": ["a", "b"], "two": ["c"]}
HEAD = {"commit": "a" * 40, "dirty": False}


def _write(out: Path, **manifests) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for part, m in manifests.items():
        (out / f"manifest-{part}.json").write_text(json.dumps(m))
    return out


def test_the_report_step_accepts_parts_made_on_this_commit_clean_and_pinned(tmp_path):
    out = _write(tmp_path, one=_manifest("one", ["a", "b"]), two=_manifest("two", ["c"]))
    assert parts_errors(PARTS, out, HEAD) == []


@pytest.mark.parametrize("manifests, state, error", [
    ({"one": _manifest("one", ["a", "b"])}, HEAD,
     "manifest-two.json: no manifest of part 'two': run `make reference PART=two` first"),
    ({"one": _manifest("one", ["a", "b"]), "two": _manifest("two", ["c"], commit="b" * 40)}, HEAD,
     "manifest-two.json: made at commit bbbbbbbbbbbb, this checkout is at aaaaaaaaaaaa and git does not know that commit"),
    ({"one": _manifest("one", ["a", "b"], dirty=True), "two": _manifest("two", ["c"])}, HEAD,
     "manifest-one.json: made with uncommitted changes"),
    ({"one": _manifest("one", ["a", "b"]), "two": _manifest("two", ["c"])}, {**HEAD, "dirty": True},
     "this checkout has uncommitted changes"),
    ({"one": _manifest("one", ["a"]), "two": _manifest("two", ["c"])}, HEAD,
     "manifest-one.json: made for ['a'], the config's reference_parts.one is ['a', 'b']"),
    ({"one": _manifest("one", ["a", "b"]), "two": _manifest("two", ["c"], pinned=False)}, HEAD,
     "manifest-two.json: not made under the rounding pins"),
    ({"one": _manifest("one", ["a", "b"]), "two": _manifest("two", ["c"]), "old": _manifest("old", ["d"])}, HEAD,
     "['manifest-old.json'] are manifests of parts the config's reference_parts no longer has"),
])
def test_the_report_step_refuses_naming_the_part_and_why(tmp_path, manifests, state, error):
    errors = parts_errors(PARTS, _write(tmp_path, **manifests), state)
    assert len(errors) == 1 and error in errors[0], errors
    if "uncommitted" in error:
        assert parts_errors(PARTS, tmp_path, state, allow_dirty=True) == []


def test_a_part_manifest_and_the_gathered_one(tmp_path, monkeypatch):
    for name, value in ROUNDING_PINS.items():
        monkeypatch.setenv(name, value)
    log = tmp_path / "part.snakemake.log"
    log.write_text("[Fri Dec  4 18:00:00 2026]\nrule train:\n    jobid: 1\n[Fri Dec  4 18:02:00 2026]\n"
                   "Finished jobid: 1 (Rule: train)\n")
    out = tmp_path / "snapshot"
    info = write_part_manifest(out, "one", ["a", "b"], "make reference PART=one", 130.0, log)
    assert json.loads((out / "manifest-one.json").read_text()) == info
    assert info["part"] == "one" and info["jobs"] == ["a", "b"] and info["rounding"]["pinned"]
    assert info["rules"]["train"] == {"jobs": 1, "seconds": 120.0, "unfinished": 0}
    assert sorted(p.name for p in out.iterdir()) == ["manifest-one.json"]

    report = {**info, "part": None, "wall_seconds": 20.0,
              "rules": {"tables": {"jobs": 1, "seconds": 5.0, "unfinished": 0}}}
    gathered = gather_parts(report, {"one": info, "two": _manifest("two", ["c"])})
    assert gathered["wall_seconds"] == 250.0 and gathered["report_wall_seconds"] == 20.0
    assert gathered["rules"]["train"] == {"jobs": 3, "seconds": 270.0, "unfinished": 0}
    assert gathered["report_rules"] == {"tables": {"jobs": 1, "seconds": 5.0, "unfinished": 0}}
    assert gathered["parts"]["two"]["manifest"] == "manifest-two.json"
    assert gathered["parts"]["one"]["jobs"] == ["a", "b"]


def test_a_snapshot_keeps_the_named_parts_manifests_only_and_refuses_a_missing_one(tmp_path):
    results = tmp_path / "results"
    for part in reference.PARTS:
        (results / part).mkdir(parents=True)
    out = _write(tmp_path / "snap", one=_manifest("one", ["a", "b"]), old=_manifest("old", ["x"]))
    with pytest.raises(SystemExit, match="manifest-two.json"):
        reference.snapshot(results, out, "make reference PART=report", 1.0, None, reference_parts=["one", "two"])
    info = reference.snapshot(results, out, "make reference PART=report", 1.0, None, reference_parts=["one"])
    assert sorted(p.name for p in out.iterdir()) == sorted([*reference.PARTS, "manifest.json", "manifest-one.json"])
    assert list(info["parts"]) == ["one"] and info["wall_seconds"] == 101.0
    assert "parts" not in reference.snapshot(results, out, "make reference", 1.0, None)
    assert not list(out.glob("manifest-*.json"))


def test_job_counts_reads_snakemakes_table_and_nothing_to_do():
    out = ("Job stats:\njob          count\n---------  -------\nall            1\ntrain          3\n"
           "total          4\n\nReasons:\n")
    assert reference.job_counts(out) == {"all": 1, "train": 3}
    assert reference.job_counts("Nothing to be done (all requested files are present and up to date).") == {}


def test_make_reference_runs_a_part_or_the_report_or_all_parts_in_order():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nreference:")[1].split("\n\n")[0]
    part = recipe.split("\nelse\n")[1]
    assert "--config reference_part=$(PART)" in part and "orthojac reference part-manifest $(PART)" in part
    report = recipe.split("else ifeq ($(PART),report)")[1].split("\nelse\n")[0]
    assert report.index("orthojac reference check-report") < report.index("env $$pins $(SNAKEMAKE)")
    assert "--parts $$parts" in report
    every = recipe.split("ifeq ($(PART),)")[1].split("else ifeq")[0]
    assert "orthojac reference parts --configfile $(REFERENCE_CONFIG) $(if $(ALLOW_DIRTY),,--clean)" in every
    assert every.index("for part in $$parts") < every.index("PART=report")


def test_parts_prints_the_configs_parts_and_with_clean_refuses_a_dirty_checkout(monkeypatch, capsys):
    reference.main(["parts", "--configfile", str(REPO / "config/cpu.yaml")])
    assert capsys.readouterr().out.split() == list(CPU["reference_parts"])
    monkeypatch.setattr(reference, "git_state", lambda repo: {"commit": "a" * 40, "dirty": True})
    with pytest.raises(SystemExit, match="uncommitted changes .* commit them first, or set ALLOW_DIRTY=1"):
        reference.main(["parts", "--configfile", str(REPO / "config/cpu.yaml"), "--clean"])
    reference.main(["parts", "--configfile", str(REPO / "config/cpu.yaml")])
    assert capsys.readouterr().out.split() == list(CPU["reference_parts"])


def _git_repo(folder):
    """A new git repository in `folder` (its committer set) and `git(*args)`: its stdout, stripped."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    return git


def test_a_part_of_an_earlier_commit_counts_only_if_nothing_that_decides_results_changed(tmp_path):
    """A judge or the report may change after a part was trained; the training code may not."""
    git = _git_repo(tmp_path)
    src = tmp_path / "src/orthojac"
    src.mkdir(parents=True)
    for name in ("claims.py", "train.py"):
        (src / name).write_text("x = 1\n")
    git("add", ".")
    git("commit", "-qm", "part")
    part_commit = git("rev-parse", "HEAD")
    (src / "claims.py").write_text("x = 2\n")
    git("commit", "-qam", "a judge")
    assert reference.result_code_changes(part_commit, tmp_path) == []
    git("rm", "-q", "src/orthojac/claims.py")  # the judges become a package: no file of it decides results
    (src / "claims").mkdir()
    for name in ("__init__.py", "rules.py", "paper.py"):
        (src / "claims" / name).write_text("x = 3\n")
    git("add", ".")
    git("commit", "-qm", "the judges as a package")
    assert reference.result_code_changes(part_commit, tmp_path) == []
    out = tmp_path / "snapshot"
    out.mkdir()
    (out / "manifest-one.json").write_text(json.dumps(_manifest("one", ["a"], commit=part_commit)))
    head = {"commit": git("rev-parse", "HEAD"), "dirty": False}
    assert reference.parts_errors({"one": ["a"]}, out, head, repo=tmp_path) == []
    (src / "train.py").write_text("x = 3\n")
    git("commit", "-qam", "training")
    head = {"commit": git("rev-parse", "HEAD"), "dirty": False}
    errors = reference.parts_errors({"one": ["a"]}, out, head, repo=tmp_path)
    assert len(errors) == 1 and "what decides results differs: src/orthojac/train.py" in errors[0]
    (src / "thesis").mkdir()
    (src / "thesis/theory.py").write_text("x = 4\n")
    git("add", ".")
    git("commit", "-qm", "a thesis program")
    assert reference.result_code_changes(part_commit, tmp_path, thesis=False) == ["src/orthojac/train.py"]
    assert "src/orthojac/thesis/theory.py" in reference.result_code_changes(part_commit, tmp_path)


def test_a_part_made_before_the_packages_counts_when_only_files_that_decide_nothing_moved(tmp_path):
    """The modules became one package per stage: a part made on a commit with the flat modules is
    gathered when only files that decide no result changed (the judges, the planner, the report,
    the reference, the command, in their old places and their new ones), not when a module a job
    computes with changed, in its new place."""
    git = _git_repo(tmp_path)
    src = tmp_path / "src/orthojac"
    flat = ["workflow.py", "workflow_sections.py", "progress.py", "progress_line.py", "report.py", "figures.py",
            "tables.py", "ledgerview.py", "reference.py", "compare.py", "cli.py", "train.py"]
    src.mkdir(parents=True)
    for name in flat:
        (src / name).write_text("x = 1\n")
    git("add", ".")
    git("commit", "-qm", "flat")
    part_commit = git("rev-parse", "HEAD")
    moved = ["workflow/__init__.py", "workflow/sections.py", "workflow/progress.py", "run/progress_line.py",
             "report/__init__.py", "report/figures.py", "claims/tables.py", "claims/ledgerview.py",
             "reference/__init__.py", "reference/compare.py", "cli.py", "__main__.py"]
    for name in flat[:-2]:
        git("rm", "-q", f"src/orthojac/{name}")
    for name in moved:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text("x = 2\n")
    git("add", ".")
    git("commit", "-qm", "one package per stage")
    assert reference.result_code_changes(part_commit, tmp_path) == []
    git("mv", "src/orthojac/train.py", "src/orthojac/run/train.py")
    git("commit", "-qm", "the training moved")
    assert "src/orthojac/run/train.py" in reference.result_code_changes(part_commit, tmp_path)

"""The reference in parts (orthojac.reference; config `reference_parts:`, `make reference
PART=NAME`): which files decide results (a part made on an earlier commit counts when none of them
changed), why the report step may not gather the parts, and the report step's check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .env import git_state, pins_for_env
from .snapshot import part_manifest_path

ROOT = Path(__file__).resolve().parents[3]  # the checkout: Snakefile, config/, workflow/


# The files of src/orthojac that decide no number of a run, a spectrum or a thesis table: the
# judges and the tables, the planner and the progress viewer, the report, the reference, the
# command. A part made on an earlier commit is gathered when nothing else differs between that
# commit and this checkout (result_code_changes): a change to a judge or to the report does not
# force retraining, a change to anything a job computes with does. What a part's jobs were given is
# checked apart: its manifest's job list, and Snakemake's dry run, which would train again a job
# whose parameters changed. Each is named as it is now (a package: its folder) and as it was before
# the modules became one package per stage (a flat file), so that a part made before that move
# still counts these files as deciding nothing.
NOT_RESULT_CODE = frozenset(f"src/orthojac/{name}.py" for name in (
    "cli", "__main__", "run/progress_line",  # the progress lines: logging only
    # before the packages, the flat modules:
    "claims", "compare", "figures", "ledgerview", "render", "report", "reportcheck", "tables", "reference",
    "reference_env", "reference_snapshot", "reference_parts", "workflow", "workflow_config", "workflow_sections",
    "progress", "progress_line"))
# … and the packages of src/orthojac that decide none: the judges with the tables and the ledger's
# view (orthojac.claims), the planner and the progress viewer (orthojac.workflow), the report, the
# reference.
NOT_RESULT_PACKAGES = ("src/orthojac/claims/", "src/orthojac/workflow/", "src/orthojac/report/",
                       "src/orthojac/reference/")
# (pyproject.toml is not among them: the installed versions are requirements.lock's, and its console
# scripts decide nothing.)
RESULT_PATHS = ("src/orthojac", "requirements.lock", "envs")


THESIS_PROGRAMS = "src/orthojac/thesis/"  # the thesis sections' programs (the paper's jobs import none)


def result_code_changes(commit: str, repo: Path = Path("."), thesis: bool = True) -> list[str] | None:
    """The files that decide results (RESULT_PATHS but NOT_RESULT_CODE and NOT_RESULT_PACKAGES) that differ between
    `commit` and this checkout's HEAD; None if git cannot tell (an unknown commit). `thesis`
    False: for a part without thesis sections, whose jobs run none of the thesis' programs."""
    done = subprocess.run(["git", "-C", str(repo), "diff", "--name-only", commit, "HEAD", "--", *RESULT_PATHS],
                          capture_output=True, text=True)
    if done.returncode:
        return None
    return [f for f in done.stdout.split() if f not in NOT_RESULT_CODE and not f.startswith(NOT_RESULT_PACKAGES)
            and (thesis or not f.startswith(THESIS_PROGRAMS))]


def parts_errors(parts: dict[str, list[str]], out: Path, state: dict, allow_dirty: bool = False,
                 repo: Path = Path(".")) -> list[str]:
    """Why the report step may not gather the parts' outputs, one line each: a part without its
    manifest in `out`, made for other jobs than the config's list, at another commit than this
    checkout's (`state`: git_state) whose code that decides results differs (result_code_changes),
    with uncommitted changes (unless allow_dirty), or not under
    the rounding pins; a part manifest in `out` of a part the config no longer has."""
    from ..workflow import SECTIONS as THESIS_SECTIONS

    errors = []
    if state["dirty"] and not allow_dirty:
        errors.append("this checkout has uncommitted changes (src, config, workflow, Snakefile, notebooks): commit "
                      "them, then make every part again on that commit")
    for part, jobs in parts.items():
        path = part_manifest_path(out, part)
        if not path.is_file():
            errors.append(f"{path}: no manifest of part {part!r}: run `make reference PART={part}` first")
            continue
        try:
            m = json.loads(path.read_text())
        except ValueError as error:
            errors.append(f"{path}: not a manifest ({error}): run `make reference PART={part}` again")
            continue
        again = f"run `make reference PART={part}` again"
        if m.get("jobs") != list(jobs):
            errors.append(f"{path}: made for {m.get('jobs')}, the config's reference_parts.{part} is "
                          f"{list(jobs)}: {again}")
        if m.get("commit") != state["commit"]:
            thesis = any(job in THESIS_SECTIONS for job in jobs)
            changed = result_code_changes(str(m.get("commit")), repo, thesis)
            if changed is None or changed:
                why = ("git does not know that commit" if changed is None
                       else f"what decides results differs: {', '.join(changed)}")
                errors.append(f"{path}: made at commit {str(m.get('commit'))[:12]}, this checkout is at "
                              f"{state['commit'][:12]} and {why}; {again}")
        if m.get("dirty") and not allow_dirty:
            errors.append(f"{path}: made with uncommitted changes: {again} on a clean checkout")
        if not (m.get("rounding") or {}).get("pinned"):
            errors.append(f"{path}: not made under the rounding pins ({pins_for_env()}): {again}")
    stray = sorted(p.name for p in Path(out).glob("manifest-*.json") if p.stem[len("manifest-"):] not in parts)
    if stray:
        errors.append(f"{out}: {stray} are manifests of parts the config's reference_parts no longer has: remove them")
    return errors


def job_counts(snakemake_output: str) -> dict[str, int]:
    """{rule: jobs} of the "Job stats:" table Snakemake prints (a dry run too); {} when it has
    nothing to do."""
    if "Job stats:" not in snakemake_output:
        return {}
    counts = {}
    for line in snakemake_output.split("Job stats:", 1)[1].splitlines()[3:]:
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            break
        counts[fields[0]] = int(fields[1])
    counts.pop("total", None)
    return counts


def config_parts(configfiles: list[Path]) -> tuple[dict, dict[str, list[str]]]:
    """The validated config of `--configfile configfiles` (over config/config.yaml) and its
    `reference_parts:`; refuses a config with errors or without parts, naming them."""
    from ..workflow import config_errors, load_config

    cfg = load_config(configfiles, base=ROOT / "config/config.yaml")
    errors = config_errors(cfg, ROOT / "workflow/schemas/config.schema.yaml")  # its settings generated
    if errors:
        raise SystemExit("the config does not match config.schema.yaml:\n  " + "\n  ".join(errors))
    if not cfg.get("reference_parts"):
        raise SystemExit(f"{', '.join(map(str, configfiles))}: no reference_parts: (the reference's parts)")
    return cfg, cfg["reference_parts"]


def check_report(configfiles: list[Path], out: Path, allow_dirty: bool = False) -> list[str]:
    """Refuse (SystemExit naming every reason) the report step unless every part's manifest is in
    `out`, on this checkout's commit, clean and pinned (parts_errors), and Snakemake's dry run of
    the whole config plans no job of a part's rules (Pipeline.part_rules: nothing is trained
    again). Returns the parts' names, in the config's order."""
    from ..workflow import Pipeline

    cfg, parts = config_parts(configfiles)
    errors = parts_errors(parts, out, git_state(Path.cwd()), allow_dirty)
    if errors:
        raise SystemExit("make reference PART=report: the parts cannot be gathered:\n  " + "\n  ".join(errors))
    command = [sys.executable, "-m", "snakemake", "-n", "--cores", "2",
               "--snakefile", str(ROOT / "Snakefile"),
               *(arg for c in [ROOT / "config/config.yaml", *configfiles] for arg in ("--configfile", str(c)))]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    planned = {rule: n for rule, n in job_counts(proc.stdout + proc.stderr).items()
               if rule in Pipeline(cfg).part_rules()}
    if planned:
        raise SystemExit(f"make reference PART=report: Snakemake would run again {planned} (jobs of the parts, "
                         "their outputs missing or out of date): make the parts again, then the report")
    return list(parts)

"""Snapshot a finished run of the pipeline as a reference: its tables, figures, report pages, the
ledger, and a manifest of how it was made.

    python -m orthojac.reference snapshot results --out results/reference/cpu \
        --command "make reference" --wall-seconds 4200 --log .snakemake/log/….snakemake.log
    python -m orthojac.reference part-manifest paper --configfile config/cpu.yaml --out … --log …
    python -m orthojac.reference check-report --configfile config/cpu.yaml --out results/reference/cpu

The snapshot mirrors `results/`' layout (`tables/`, `figures/`, `report/`; not `report_site/`,
which holds the same pages again, for `--report`), so
`python -m orthojac.compare` reads a snapshot and a results folder alike. No checkpoints, no
weights: only what the report is made of. `manifest.json` records the commit (and whether the
working tree had changes), the CPU model and cores, torch, Python, the date, the command, the
wall time in all and per rule (from Snakemake's log: each job's start to its finish), and what
decides the rounding of a CPU run (`rounding`: the pins of ROUNDING_PINS as set, torch's CPU
capability, the BLAS, the CPU's vendor and vector extensions, threads).

In parts (a config's `reference_parts:`, `make reference PART=NAME`): each part's Snakemake
invocation trains only its jobs and `part-manifest` writes OUT/manifest-<part>.json (the manifest
above, with the part's name and jobs); `check-report` refuses the report step unless every part's
manifest is there, clean and pinned, on this checkout's commit or on one whose code that decides
results is the same (result_code_changes), and Snakemake's dry run plans no part's job; `snapshot --parts …` keeps those manifests and gathers them into manifest.json
(`parts`, wall time and rules' times summed). `parts` prints a config's parts, in order.

Bit for bit on any x86-64 machine. A trained network amplifies the last bit of every sum, and
the last bit depends on which kernels run: torch picks its vectorised kernels by the CPU's
capability (AVX2 or AVX-512), oneDNN and MKL pick theirs too, and threads change the order of
sums. `make reference` runs every job under ROUNDING_PINS (`python -m orthojac.reference pins`
prints them as `NAME=value` for `env`): ATEN_CPU_CAPABILITY=avx2 (torch's kernels: AVX2, which
every x86-64 CPU since 2013–2015 has), ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN's), MKL_CBWR=AVX2 (MKL's
conditional numerical reproducibility, AVX2 branch; Intel documents it for Intel CPUs, on others
MKL may use its automatic branch, so the manifest records the CPU vendor), and one thread
(OMP_NUM_THREADS, MKL_NUM_THREADS; each job also asks torch for one). With the same torch, MKL
and oneDNN (requirements.lock), these give the same bits on AVX-512 and AVX2 machines alike; a
rerun records its own `rounding`, and `python -m orthojac.compare` names what differs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: Snakefile, config/, workflow/
PARTS = ("tables", "figures", "report")
# What decides a CPU run's rounding, pinned by `make reference` for every job (see the docstring).
ROUNDING_PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's vectorised kernels: AVX2, not AVX-512 where the CPU has it
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's (MKL-DNN) kernels: the same instruction set
    "MKL_CBWR": "AVX2",  # MKL's conditional numerical reproducibility, AVX2 branch
    "OMP_NUM_THREADS": "1",  # one thread a job: a fixed order of every sum
    "MKL_NUM_THREADS": "1",
}
CPU_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")  # vector extensions that pick kernels
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
START = re.compile(r"^(?:local)?(?:checkpoint|rule) (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)")


def rule_times(log_text: str) -> dict[str, dict]:
    """Per rule: jobs and wall seconds (sum over its jobs of finish − start), from a Snakemake
    log. A job that started but never finished is counted in `unfinished`."""
    started, rules, stamp, pending = {}, {}, None, None
    per_rule = defaultdict(lambda: {"jobs": 0, "seconds": 0.0, "unfinished": 0})
    for line in log_text.splitlines():
        if m := STAMP.match(line):
            stamp = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            pending = None
        elif m := START.match(line):
            pending = m.group(1)
        elif (m := JOBID.match(line)) and pending is not None and stamp is not None:
            started[m.group(1)], rules[m.group(1)] = stamp, pending
            pending = None
        elif (m := FINISHED.match(line)) and stamp is not None:
            job, rule = m.groups()
            if job in started:
                per_rule[rule]["jobs"] += 1
                per_rule[rule]["seconds"] += (stamp - started.pop(job)).total_seconds()
    for job in started:
        per_rule[rules[job]]["unfinished"] += 1
    return {rule: per_rule[rule] for rule in sorted(per_rule)}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_info() -> dict:
    """The CPU's vendor and which of CPU_FLAGS it has (from /proc/cpuinfo; empty where unreadable)."""
    vendor, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "vendor_id":
                vendor = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return {"vendor": vendor, "flags": [f for f in CPU_FLAGS if f in flags]}


def blas_info(config: str) -> dict:
    """torch's BLAS and LAPACK and their versions, from torch.__config__.show()'s text."""
    def find(pattern):
        m = re.search(pattern, config)
        return m.group(1) if m else "unknown"
    return {"blas": find(r"BLAS_INFO=(\w+)"), "lapack": find(r"LAPACK_INFO=(\w+)"),
            "mkl": find(r"Math Kernel Library Version ([\w.]+)"), "onednn": find(r"MKL-DNN (v[\w.]+)")}


def rounding() -> dict:
    """What decides this process' rounding: each pin of ROUNDING_PINS as the environment sets it
    (None: not set) and whether all are set to their value (`pinned`), torch's CPU capability (what
    it uses, after ATEN_CPU_CAPABILITY), its BLAS, threads, and the CPU's vendor and flags."""
    import torch

    pins = {name: os.environ.get(name) for name in ROUNDING_PINS}
    return {"pins": pins, "pinned": pins == ROUNDING_PINS,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), **blas_info(torch.__config__.show()), **cpu_info()}


def pins_for_env() -> str:
    """ROUNDING_PINS as `NAME=value …`, for `env $(python -m orthojac.reference pins) command`."""
    return " ".join(f"{k}={v}" for k, v in ROUNDING_PINS.items())


def git_state(repo: Path) -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "src", "config", "workflow",
                     "Snakefile", "notebooks"))
    return {"commit": commit or "unknown", "dirty": dirty}


def merge_rule_times(logs: list[Path]) -> dict[str, dict]:
    """rule_times over several Snakemake logs (a run finished by a second invocation), summed."""
    total: dict[str, dict] = {}
    for log in logs:
        for rule, t in rule_times(Path(log).read_text()).items():
            acc = total.setdefault(rule, {"jobs": 0, "seconds": 0.0, "unfinished": 0})
            for key in acc:
                acc[key] += t[key]
    return {rule: total[rule] for rule in sorted(total)}


def manifest(results: Path, command: str, wall_seconds: float | None, log: Path | list[Path] | None,
             notes: list[str] | None = None) -> dict:
    import torch  # the environment's torch, as the runs recorded it

    logs = [] if log is None else [log] if isinstance(log, (str, Path)) else list(log)
    rules = merge_rule_times(logs)
    return {
        **git_state(Path.cwd()),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wall_seconds": wall_seconds,
        "rounding": rounding(),
        "rules": rules,
        "snakemake_logs": [Path(p).name for p in logs],
        "notes": notes or [],
    }


def snapshot(results: Path, out: Path, command: str, wall_seconds: float | None,
             log: Path | list[Path] | None, notes: list[str] | None = None,
             reference_parts: list[str] | None = None) -> dict:
    """Copy results' PARTS into `out` (replacing what was there) and write out/manifest.json.

    reference_parts: the names of the reference's parts whose manifests (out/manifest-<part>.json,
    written by write_part_manifest) this snapshot gathers: they are kept beside manifest.json,
    which lists them under `parts` and counts their wall time and rules' times with this step's
    (`report_wall_seconds`, `report_rules`: this step alone). Without it, no part manifest is kept."""
    missing = [p for p in PARTS if not (results / p).is_dir()]
    if missing:
        raise SystemExit(f"{results}: no {', '.join(missing)}: run the pipeline first")
    info = manifest(results, command, wall_seconds, log, notes)
    part_files = [part_manifest_path(out, part) for part in reference_parts or []]
    if reference_parts is not None:
        absent = [str(p) for p in part_files if not p.is_file()]
        if absent:
            raise SystemExit(f"no manifest of the part(s) {absent}: make each part first (make reference PART=…)")
        manifests = {part: json.loads(p.read_text()) for part, p in zip(reference_parts, part_files)}
        info = gather_parts(info, manifests)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for part in PARTS:
        # The executed notebooks beside the pages are Snakemake's logs of rendering them: they hold
        # the injected cell with this machine's absolute paths, and the pages are made from them.
        shutil.copytree(results / part, staging / part, ignore=shutil.ignore_patterns("*.ipynb"))
    for path in part_files:
        shutil.copy2(path, staging / path.name)
    (staging / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return info


# -- the reference in parts (config `reference_parts:`, `make reference PART=NAME`) -------------
def part_manifest_path(out: Path, part: str) -> Path:
    """Where part `part`'s manifest goes in the snapshot folder `out`."""
    return Path(out) / f"manifest-{part}.json"


def write_part_manifest(out: Path, part: str, jobs: list[str], command: str, wall_seconds: float | None,
                        log: Path | list[Path] | None) -> dict:
    """out/manifest-<part>.json: the manifest of one part's invocation (as manifest(): commit,
    dirty flag, command, wall time, rules' times, rounding, CPU) with the part's name and the
    experiments and sections it made (`jobs`). The rest of `out` is left as it is."""
    info = {"part": part, "jobs": list(jobs), **manifest(Path("results"), command, wall_seconds, log)}
    path = part_manifest_path(out, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(info, indent=2) + "\n")
    partial.rename(path)
    return info


def gather_parts(info: dict, manifests: dict[str, dict]) -> dict:
    """The report step's manifest `info` with the parts' `manifests` ({part: manifest}) counted in:
    `parts` (each part's commit, dirty flag, date, command, wall time, jobs), `wall_seconds` and
    `rules` summed over the parts and this step, this step's own as `report_wall_seconds` and
    `report_rules`."""
    rules: dict[str, dict] = {}
    for m in [*manifests.values(), info]:
        for rule, t in m.get("rules", {}).items():
            acc = rules.setdefault(rule, {"jobs": 0, "seconds": 0.0, "unfinished": 0})
            for key in acc:
                acc[key] += t.get(key, 0)
    walls = [m.get("wall_seconds") for m in [*manifests.values(), info]]
    return {**info, "wall_seconds": sum(walls) if None not in walls else None,
            "rules": {rule: rules[rule] for rule in sorted(rules)},
            "report_wall_seconds": info["wall_seconds"], "report_rules": info["rules"],
            "parts": {part: {key: m.get(key) for key in ("commit", "dirty", "date", "command", "wall_seconds", "jobs")}
                      | {"manifest": part_manifest_path(Path(), part).name} for part, m in manifests.items()}}


# The modules of src/orthojac that decide no number of a run, a spectrum or a thesis table: the
# judges, the tables and the report, the planner and the progress viewer, this module. A part made
# on an earlier commit is gathered when nothing else differs between that commit and this checkout
# (result_code_changes): a change to a judge or to the report does not force retraining, a change to
# anything a job computes with does. What a part's jobs were given is checked apart: its manifest's
# job list, and Snakemake's dry run, which would train again a job whose parameters changed.
NOT_RESULT_CODE = frozenset(f"src/orthojac/{name}.py" for name in (
    "claims", "compare", "figures", "ledgerview", "render", "report", "reportcheck", "tables", "reference",
    "workflow", "progress", "progress_line", "cli", "__main__"))
# … and the packages of src/orthojac that decide none: the judges (orthojac.claims, a package since
# it was split from claims.py, which stays above so that a part made before the split counts).
NOT_RESULT_PACKAGES = ("src/orthojac/claims/",)
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
    from .workflow import SECTIONS as THESIS_SECTIONS

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
    from .workflow import config_errors, load_config

    cfg = load_config(configfiles, base=ROOT / "config/config.yaml")
    errors = config_errors(cfg, ROOT / "workflow/schemas/config.schema.yaml")
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
    from .workflow import Pipeline

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command_name", required=True)
    sn = sub.add_parser("snapshot", help="copy a results folder's report material and write a manifest")
    sn.add_argument("results", type=Path, help="the pipeline's results folder")
    sn.add_argument("--out", type=Path, required=True, help="the snapshot folder (replaced)")
    sn.add_argument("--command", default="", help="the command that produced the results")
    sn.add_argument("--wall-seconds", type=float, default=None, help="wall time of that command")
    sn.add_argument("--log", type=Path, nargs="*", default=None,
                    help="Snakemake's log(s) of that command (per-rule times, summed over the logs)")
    sn.add_argument("--note", action="append", default=[], help="a line for the manifest's notes (repeatable)")
    sn.add_argument("--parts", nargs="+", default=None,
                    help="the reference's parts whose manifests (OUT/manifest-<part>.json) it gathers")
    sub.add_parser("pins", help="print the rounding pins as NAME=value (for env) and exit")
    ps = sub.add_parser("parts", help="print the config's reference parts, one a line, and exit")
    ps.add_argument("--configfile", type=Path, nargs="+", required=True)
    ps.add_argument("--clean", action="store_true",
                    help="refuse a checkout with uncommitted changes (the report step would refuse it after the parts)")
    pm = sub.add_parser("part-manifest", help="write OUT/manifest-<part>.json for one part's invocation")
    pm.add_argument("part")
    pm.add_argument("--configfile", type=Path, nargs="+", required=True)
    pm.add_argument("--out", type=Path, required=True, help="the snapshot folder (only that file is written)")
    pm.add_argument("--command", default="")
    pm.add_argument("--wall-seconds", type=float, default=None)
    pm.add_argument("--log", type=Path, nargs="*", default=None)
    cr = sub.add_parser("check-report", help="refuse the report step unless every part is made, on this commit, "
                        "clean and pinned, and nothing would be trained again; print the parts")
    cr.add_argument("--configfile", type=Path, nargs="+", required=True)
    cr.add_argument("--out", type=Path, required=True)
    cr.add_argument("--allow-dirty", action="store_true", help="accept uncommitted changes (recorded as dirty)")
    args = parser.parse_args(argv)
    if args.command_name == "pins":
        print(pins_for_env())
        return
    if args.command_name == "parts":
        parts = config_parts(args.configfile)[1]
        if args.clean and git_state(Path.cwd())["dirty"]:
            raise SystemExit("make reference: this checkout has uncommitted changes (src, config, workflow, Snakefile, "
                             "notebooks), which the report step refuses: commit them first, or set ALLOW_DIRTY=1")
        print("\n".join(parts))
        return
    if args.command_name == "part-manifest":
        parts = config_parts(args.configfile)[1]
        if args.part not in parts:
            raise SystemExit(f"{args.part!r} is not a part of reference_parts: (have {sorted(parts)})")
        info = write_part_manifest(args.out, args.part, parts[args.part], args.command, args.wall_seconds, args.log)
        print(f"{part_manifest_path(args.out, args.part)}: part {args.part} at {info['commit'][:12]}"
              f"{' (uncommitted changes)' if info['dirty'] else ''}", file=sys.stderr)
        return
    if args.command_name == "check-report":
        print(" ".join(check_report(args.configfile, args.out, args.allow_dirty)))
        return
    info = snapshot(args.results, args.out, args.command, args.wall_seconds, args.log, args.note, args.parts)
    if not info["rounding"]["pinned"]:
        print(f"warning: not every rounding pin was set ({pins_for_env()}): this snapshot is reproducible "
              "bit for bit only on a CPU like this one (see manifest.json's rounding)", file=sys.stderr)
    print(f"{args.out}: snapshot of {args.results} at {info['commit'][:12]}"
          f"{' (uncommitted changes)' if info['dirty'] else ''}", file=sys.stderr)


if __name__ == "__main__":
    main()

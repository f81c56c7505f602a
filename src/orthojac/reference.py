"""Snapshot a finished run of the pipeline as a reference: its tables, figures, report pages, the
ledger, and a manifest of how it was made.

    python -m orthojac.reference snapshot results --out results/reference/cpu \
        --command "make reference" --wall-seconds 4200 --log .snakemake/log/….snakemake.log

The snapshot mirrors `results/`' layout (`tables/`, `figures/`, `report/`; not `report_site/`,
which holds the same pages again, for `--report`), so
`python -m orthojac.compare` reads a snapshot and a results folder alike. No checkpoints, no
weights: only what the report is made of. `manifest.json` records the commit (and whether the
working tree had changes), the CPU model and cores, torch, Python, the date, the command, the
wall time in all and per rule (from Snakemake's log: each job's start to its finish).
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

PARTS = ("tables", "figures", "report")
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
        "rules": rules,
        "snakemake_logs": [Path(p).name for p in logs],
        "notes": notes or [],
    }


def snapshot(results: Path, out: Path, command: str, wall_seconds: float | None,
             log: Path | list[Path] | None, notes: list[str] | None = None) -> dict:
    """Copy results' PARTS into `out` (replacing what was there) and write out/manifest.json."""
    missing = [p for p in PARTS if not (results / p).is_dir()]
    if missing:
        raise SystemExit(f"{results}: no {', '.join(missing)}: run the pipeline first")
    info = manifest(results, command, wall_seconds, log, notes)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for part in PARTS:
        # The executed notebooks beside the pages are Snakemake's logs of rendering them: they hold
        # the injected cell with this machine's absolute paths, and the pages are made from them.
        shutil.copytree(results / part, staging / part, ignore=shutil.ignore_patterns("*.ipynb"))
    (staging / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac-reference", description=__doc__,
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
    args = parser.parse_args(argv)
    info = snapshot(args.results, args.out, args.command, args.wall_seconds, args.log, args.note)
    print(f"{args.out}: snapshot of {args.results} at {info['commit'][:12]}"
          f"{' (uncommitted changes)' if info['dirty'] else ''}", file=sys.stderr)


if __name__ == "__main__":
    main()

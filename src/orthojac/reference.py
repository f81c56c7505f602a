"""Snapshot a finished run of the pipeline as a reference: its tables, figures, report pages, the
ledger, and a manifest of how it was made.

    python -m orthojac.reference snapshot results --out results/reference/cpu \
        --command "make reference" --wall-seconds 4200 --log .snakemake/log/….snakemake.log

The snapshot mirrors `results/`' layout (`tables/`, `figures/`, `report/`; not `report_site/`,
which holds the same pages again, for `--report`), so
`python -m orthojac.compare` reads a snapshot and a results folder alike. No checkpoints, no
weights: only what the report is made of. `manifest.json` records the commit (and whether the
working tree had changes), the CPU model and cores, torch, Python, the date, the command, the
wall time in all and per rule (from Snakemake's log: each job's start to its finish), and what
decides the rounding of a CPU run (`rounding`: the pins of ROUNDING_PINS as set, torch's CPU
capability, the BLAS, the CPU's vendor and vector extensions, threads).

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
    sub.add_parser("pins", help="print the rounding pins as NAME=value (for env) and exit")
    args = parser.parse_args(argv)
    if args.command_name == "pins":
        print(pins_for_env())
        return
    info = snapshot(args.results, args.out, args.command, args.wall_seconds, args.log, args.note)
    if not info["rounding"]["pinned"]:
        print(f"warning: not every rounding pin was set ({pins_for_env()}): this snapshot is reproducible "
              "bit for bit only on a CPU like this one (see manifest.json's rounding)", file=sys.stderr)
    print(f"{args.out}: snapshot of {args.results} at {info['commit'][:12]}"
          f"{' (uncommitted changes)' if info['dirty'] else ''}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""What a reference's manifest records of the machine and the run (orthojac.reference): the
rounding pins (ROUNDING_PINS, what `make reference` sets for every job) and what decides the
rounding of this process, the CPU, the BLAS, the checkout's git state, and each rule's wall time
from Snakemake's logs."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections import defaultdict
from datetime import datetime
from pathlib import Path

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


def bit_reproducible(a: dict, b: dict) -> bool:
    """Whether the pins make two machines' rounding the same bits: both record an Intel CPU with
    AVX2 (`rounding()`'s vendor and flags). MKL's reproducible branch is Intel's only: "On non-Intel
    CPUs and on Intel CPUs that do not support Intel AVX2, this environment setting may cause
    results to differ because the AUTO branch is used instead" (oneMKL Developer Guide, Getting
    Started with Conditional Numerical Reproducibility)."""
    return all(r.get("vendor") == "GenuineIntel" and "avx2" in r.get("flags", []) for r in (a, b))


def pins_for_env() -> str:
    """ROUNDING_PINS as `NAME=value …`, for `env $(python -m orthojac reference pins) command`."""
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

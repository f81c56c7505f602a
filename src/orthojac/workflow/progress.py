"""Progress a researcher can watch: one view of every run of a configuration, from the lines every
training and thesis job writes to its log (orthojac.run.progress_line).

    orthojac progress [results] [--configfile config/quick.yaml]   (also: make progress)

Reads only what the runs already write (logs, metrics.csv, config.json, checkpoint.pt, the thesis
jobs' per-seed CSVs, the benchmarks' wall times) and config/*.yaml for which runs exist, expanded
by the workflow's own functions (orthojac.workflow). One row per job: done, diverged, running
(epoch k of n, the last validation accuracy, time left), stopped, failed or waiting; then the job
time left for the whole configuration, estimated from the runs already finished.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..run.progress_line import PREFIX, clock, number_text, seconds_of
from . import IDX_FILES, SECTIONS, expand_experiment, load_config, values


# -- reading a log ----------------------------------------------------------------------------
EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+) step (\d+)/(\d+) train_loss (\S+) val_accuracy (\S+) "
                        r"images/s (\S+) elapsed (\S+) eta (\S+)")
RUN_OF = re.compile(r"\(run (\d+)/(\d+)\)")
POINT_LINE = re.compile(r"point (\d+)/(\d+) elapsed (\S+) eta (\S+)")
FINISHED = re.compile(r"finished: (\d+) \w+ in \S+ \(seconds ([0-9.]+)\)")


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass
class LogState:
    """What a job's log says about it."""

    epoch: int | None = None
    epochs: int | None = None
    run: str = ""  # "k/n" of a job of several runs
    val_accuracy: float | None = None
    eta: float | None = None  # seconds left when the last progress line was written
    elapsed: float | None = None
    finished_seconds: float | None = None
    diverged: str = ""
    resumed: str = ""
    failed: str = ""
    stopped: str = ""


def read_log(path: Path) -> LogState:
    """The last progress line of a job's log and the events it names (resumed, diverged, stopped
    by SIGTERM, a Python traceback)."""
    state = LogState()
    for line in path.read_text(errors="replace").replace("\r", "\n").splitlines():
        if line.startswith(PREFIX) and (run := RUN_OF.search(line)):
            state.run = f"{run[1]}/{run[2]}"
        if m := EPOCH_LINE.search(line):
            state.epoch, state.epochs = int(m[1]), int(m[2])
            state.val_accuracy = _float(m[6])
            state.elapsed, state.eta = seconds_of(m[8]), seconds_of(m[9])
        elif m := POINT_LINE.search(line):
            state.epoch, state.epochs = int(m[1]), int(m[2])
            state.elapsed, state.eta = seconds_of(m[3]), seconds_of(m[4])
        elif m := FINISHED.search(line):
            state.finished_seconds = float(m[2])
        elif "diverged at step" in line:
            state.diverged = line.removeprefix(PREFIX).strip()
        elif line.startswith("resuming from"):
            state.resumed = line.split(": ", 1)[-1]
        elif line.startswith("SIGTERM"):
            state.stopped = line
        elif line.startswith("Traceback") or re.match(r"^\w+(Error|Exception): ", line):
            state.failed = line if not line.startswith("Traceback") else state.failed or "Traceback"
    return state


# -- which runs the configuration has: as the workflow has them (orthojac.workflow) -----------
def _under(results: Path, path: str) -> Path:
    """A workflow path (results/…) under the results folder being viewed."""
    return results / Path(path).relative_to("results")


@dataclass
class Job:
    kind: str  # "train" (an experiment's run) or H1 … H5
    name: str
    log: Path
    output: Path
    epochs: int = 0
    cost: float = math.nan  # training work (images × epochs × depth) for the estimate of a train run
    group: tuple = ()  # jobs whose timings stand for each other (same experiment and family)
    status: str = "waiting"
    progress: str = ""
    val_accuracy: float | None = None
    seconds: float | None = None  # done: the job's time; running: its time left (eta)
    note: str = ""
    extra: dict = field(default_factory=dict)
    benchmark: Path | None = None  # a thesis job's benchmark file (its wall time)


def _train_images(results: Path, settings: dict) -> int:
    """Training images of a run: `train_size`, else the training split (its IDX header, 60000
    when the data is not there yet) less `val_size`."""
    from ..config import RunConfig

    if settings.get("train_size", RunConfig.train_size):
        return int(settings["train_size"])
    n = 60000
    header = results / "data" / settings.get("dataset", RunConfig.dataset) / IDX_FILES[0]
    if header.exists():
        with header.open("rb") as f:
            n = int.from_bytes(f.read(8)[4:8], "big")
    return max(0, n - int(settings.get("val_size", RunConfig.val_size)))


def jobs(config: dict, results: Path) -> list[Job]:
    """The training and thesis jobs of `config`, with what their files say."""
    from ..config import RunConfig

    out = []
    for experiment in config.get("experiments", []):
        for run, settings in expand_experiment(experiment).items():
            name = f"{experiment['name']}/{run}"
            epochs = int(settings.get("epochs", RunConfig.epochs))
            depth = int(settings.get("depth", RunConfig.depth))
            cost = _train_images(results, settings) * epochs * max(depth, 1)
            out.append(Job("train", name, results / "logs/train" / f"{name}.log",
                           results / "runs" / name, epochs, cost,
                           (experiment["name"], settings.get("family", RunConfig.family))))
    for section in SECTIONS.values():  # the thesis jobs, one per seed (H4: one job)
        if section.name not in config:
            continue
        if not section.folder:
            out.append(Job(section.label, section.name, _under(results, section.log()), _under(results, section.table),
                           benchmark=_under(results, section.benchmark())))
            continue
        cfg = config[section.name]
        epochs = int(values(cfg["epochs"])[0]) if "epochs" in cfg else 0
        for seed in values(cfg["seeds"]):
            out.append(Job(section.label, f"{section.name} seed={seed}", _under(results, section.log(seed)),
                           _under(results, section.seed_table(seed)), epochs, group=(section.label,),
                           benchmark=_under(results, section.benchmark(seed))))
    for job in out:
        _inspect(job, results)
    return out


def _last_val_accuracy(metrics_csv: Path) -> float | None:
    last = None
    with metrics_csv.open() as f:
        for row in csv.DictReader(f):
            if row["split"] == "val" and row["metric"] == "accuracy":
                last = float(row["value"])
    return last


def _benchmark_seconds(results: Path, job: Job) -> float | None:
    """Wall seconds of a finished thesis job from its benchmark file (logs of older code have no
    `finished` line)."""
    if job.benchmark is None:
        return None
    try:
        rows = list(csv.DictReader(job.benchmark.read_text().splitlines(), delimiter="\t"))
        return float(rows[-1]["s"])
    except (OSError, KeyError, IndexError, ValueError):
        return None


def _inspect(job: Job, results: Path) -> None:
    log = read_log(job.log) if job.log.exists() else None
    if job.kind == "train":
        summary = job.output / "config.json"
        if summary.exists():
            info = json.loads(summary.read_text())
            job.status = info["status"] if info["status"] != "completed" else "done"
            job.seconds = float(info["train_seconds"])
            job.extra = {"steps": info["steps"], "batch_size": info["config"]["batch_size"],
                         "depth": info["config"]["depth"]}
            job.progress = f"{info['steps']} steps"
            if (job.output / "metrics.csv").exists():
                job.val_accuracy = _last_val_accuracy(job.output / "metrics.csv")
            if info["status"] == "diverged":
                job.note = f"diverged at step {info['diverged_step']}"
            return
        checkpoint = (job.output / "checkpoint.pt").exists()
    else:
        if job.output.exists():
            job.status = "done"
            job.seconds = (log.finished_seconds if log and log.finished_seconds is not None
                           else _benchmark_seconds(results, job))
            job.note = log.diverged if log else ""
            return
        checkpoint = False
    if log is None:
        if checkpoint:
            job.status, job.note = "stopped", "checkpoint.pt: resumes when rerun"
        return
    age = time.time() - job.log.stat().st_mtime
    if log.failed:
        job.status, job.note = "failed", log.failed + (" (checkpoint.pt: resumes when rerun)" if checkpoint else "")
    elif log.stopped:
        job.status, job.note = "stopped", log.stopped
    else:
        job.status = "running"
        job.note = f"log written {clock(age)} ago" + (f"; resumed from {log.resumed}" if log.resumed else "")
        if log.diverged:
            job.note = log.diverged + "; " + job.note
        if log.eta is not None:
            job.seconds = max(0.0, log.eta - age)
    if log.epoch is not None:
        unit = "point" if job.kind == "H4" else "epoch"
        job.progress = (f"run {log.run} " if log.run else "") + f"{unit} {log.epoch}/{log.epochs}"
        job.val_accuracy = log.val_accuracy
    elif job.status == "running":
        job.progress = f"epoch 0/{job.epochs}" if job.epochs else "started"


def estimate(all_jobs: list[Job]) -> tuple[float, int]:
    """(seconds, jobs without an estimate) of job time left: running jobs' time left plus, for
    each waiting (or stopped, failed) job, the time of finished jobs like it: a training run's
    seconds per image-epoch-layer of finished runs of its experiment and family (else of its
    experiment, else of any), times its images × epochs × depth; a thesis job's mean time of its
    finished seeds."""
    left, unknown = 0.0, 0
    finished = [j for j in all_jobs if j.status in ("done", "diverged") and j.seconds is not None]

    def train_rate(pick) -> float | None:
        runs = [j for j in finished if j.kind == "train" and pick(j)]
        work = sum(j.extra["steps"] * j.extra["batch_size"] * max(j.extra["depth"], 1) for j in runs)
        return sum(j.seconds for j in runs) / work if work else None

    for job in all_jobs:
        if job.status in ("done", "diverged"):
            continue
        if job.status == "running":
            if job.seconds is None:
                unknown += 1
            else:
                left += job.seconds
            continue
        if job.kind == "train":
            rate = next((r for r in (train_rate(lambda j: j.group == job.group),
                                     train_rate(lambda j: j.group[0] == job.group[0]),
                                     train_rate(lambda j: True)) if r is not None), None)
            guess = None if rate is None or not math.isfinite(job.cost) else rate * job.cost
        else:
            same = [j.seconds for j in finished if j.kind == job.kind]
            guess = sum(same) / len(same) if same else None
        if guess is None:
            unknown += 1
        else:
            job.extra["estimate"] = guess
            left += guess
    return left, unknown


def table(all_jobs: list[Job]) -> str:
    header = ("job", "status", "progress", "val acc", "time", "note")
    rows = []
    for j in all_jobs:
        if j.status in ("done", "diverged"):
            time_text = clock(j.seconds)
        elif j.status == "running":
            time_text = f"{clock(j.seconds)} left"
        else:
            guess = j.extra.get("estimate")
            time_text = f"~{clock(guess)}" if guess is not None else ""
        name = j.name if j.kind == "train" else f"{j.kind} {j.name}"
        rows.append((name, j.status, j.progress, number_text(j.val_accuracy, ".4f") if j.val_accuracy is not None
                     else "", time_text, j.note))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac progress", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="?", default=Path("results"),
                        help="the results folder (default: results)")
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"),
                        help="the base configuration (the Snakefile's: config/config.yaml)")
    parser.add_argument("--configfile", type=Path, action="append", default=[],
                        help="the --configfile the workflow was run with (e.g. config/quick.yaml); repeatable")
    args = parser.parse_args(argv)
    all_jobs = jobs(load_config(args.configfile, args.config), args.results)
    left, unknown = estimate(all_jobs)
    print(table(all_jobs))
    counts = {s: sum(j.status == s for j in all_jobs) for s in
              ("done", "diverged", "running", "stopped", "failed", "waiting")}
    print("\n" + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {len(all_jobs)} jobs "
          "(training and thesis jobs; data, spectra, tables and the report are not counted)")
    more = f" (+ {unknown} job{'s' * (unknown != 1)} with no estimate yet: none like them has finished)" if unknown else ""
    print(f"time left: {clock(left)} of job time, one job at a time{more}")


if __name__ == "__main__":
    main()

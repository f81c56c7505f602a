"""Progress a researcher can watch: the lines every training and thesis job writes to its log, and
one view of every run of a configuration.

    python -m orthojac.progress [results] [--configfile config/quick.yaml]   (also: make progress)

Writing (`Progress`): a job's training loop reports each step and each epoch's end; the job's log
(its stderr, `2> {log}` in the rules) gets one line per epoch, flushed as it is written:

    [progress] Orthogonal_NoReg (run 4/7) epoch 3/20 step 564/3760 train_loss 0.4123
        val_accuracy 0.8512 images/s 1534 elapsed 0:02:13 eta 0:05:10      (one line)

`step` counts the run's optimisation steps, `train_loss` is the mean training loss of the epoch's
steps taken by this job, `images/s` the epoch's training throughput, `elapsed` the job's wall time
and `eta` the job's time left at its rate so far (for a job of several runs, assuming each later
run takes all its epochs). A diverging run says so at the step it happens
(`[progress] … diverged at step N …`). Where stderr is a terminal, a bar rewritten in place shows
the epoch under way. Logging only: nothing here touches a random number generator, the data order
or a floating-point operation of training; losses are summed as tensors and read once an epoch,
so a CUDA run gains no per-step synchronisation.

Viewing (`main`): reads only what the runs already write (logs, metrics.csv, config.json,
checkpoint.pt, the thesis jobs' per-seed CSVs, the benchmarks' wall times) and config/*.yaml for
which runs exist, expanded by the workflow's own functions (orthojac.workflow). One row per job: done, diverged, running (epoch k of n, the last
validation accuracy, time left), stopped, failed or waiting; then the job time left for the whole
configuration, estimated from the runs already finished.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


from .workflow import IDX_FILES, SECTIONS, expand_experiment, load_config, values

PREFIX = "[progress]"


def clock(seconds: float | None) -> str:
    """H:MM:SS (hours unbounded); '?' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def seconds_of(text: str) -> float | None:
    """The seconds of an H:MM:SS `clock` text; None for '?'."""
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    h, m, s = (int(p) for p in parts)
    return 3600 * h + 60 * m + s


class Progress:
    """One job's progress on `stream` (default: sys.stderr, the job's log).

    A job trains `runs` runs one after the other (a training job one, an H1 job its seven
    configurations, an H3 job every (weights, depth)) of `total_steps` optimisation steps in all
    (or, for a job without training such as H4, `total_steps` points). Call `run` at the start of
    each run (with the epoch and step it resumes from), `step` after each optimisation step,
    `epoch_end` after each epoch's evaluation, `diverged` when a non-finite value ends the run,
    and `finish` at the end of the job.
    """

    BAR_SECONDS = 0.25  # the terminal bar is redrawn at most this often

    def __init__(self, total_steps: int, runs: int = 1, stream=None, clock_fn=time.monotonic,
                 unit: str = "steps"):
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.now = clock_fn
        self.started = self.now()
        self.total, self.runs = total_steps, runs
        self.offset = 0  # steps done before this job (a resumed run)
        self.done = 0  # steps done by this job
        self.run_index, self.epoch = 0, 0
        self.label, self.epochs, self.steps_per_epoch = "", 0, 0
        self.run_step, self.run_planned = 0, 0
        self.last_drawn = -math.inf
        self._new_epoch(self.started)

    # -- writing -----------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def clear(self) -> None:
        """Erase the terminal bar (before other output; a no-op in a log)."""
        if self.tty and self.last_drawn > -math.inf:
            self._write("\r\x1b[K")
            self.last_drawn = -math.inf

    def _line(self, text: str) -> None:
        """A line of its own, in place of the terminal bar."""
        self.clear()
        self._write(f"{PREFIX} {text}\n")

    def _draw(self) -> None:
        """The terminal bar of the epoch under way, rewritten in place."""
        now = self.now()
        if now - self.last_drawn < self.BAR_SECONDS:
            return
        self.last_drawn = now
        in_epoch = self.run_step - self.epoch * self.steps_per_epoch
        frac = min(1.0, max(0.0, in_epoch / self.steps_per_epoch)) if self.steps_per_epoch else 0.0
        bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
        spent = now - self.epoch_started
        rate = self.images / spent if spent > 0 else math.nan
        self._write(f"\r{self._who()}epoch {min(self.epoch + 1, self.epochs)}/{self.epochs} [{bar}] "
                    f"step {self.run_step}/{self.run_planned} images/s {_number(rate, '.0f')} "
                    f"elapsed {clock(now - self.started)} eta {clock(self.eta(now))}\x1b[K")

    def _who(self) -> str:
        runs = f" (run {self.run_index}/{self.runs})" if self.runs > 1 else ""
        return f"{self.label}{runs} " if self.label or runs else ""

    # -- accounting --------------------------------------------------------------------------
    def _new_epoch(self, now: float) -> None:
        self.loss_sum, self.loss_steps, self.images = 0.0, 0, 0
        self.epoch_started = self.last_step_at = now

    def eta(self, now: float | None = None) -> float | None:
        """Seconds the job has left at its rate so far; None before its first step."""
        now = self.now() if now is None else now
        if self.done == 0:
            return None
        left = max(0, self.total - self.offset - self.done)
        return left * (now - self.started) / self.done

    def run(self, label: str, epochs: int, steps_per_epoch: int, epoch: int = 0, step: int = 0) -> None:
        """Start run `label` of `epochs` × `steps_per_epoch` steps, at `epoch`, `step` when resumed."""
        self._close_run()
        self.run_index += 1
        self.label, self.epochs, self.steps_per_epoch = label, epochs, steps_per_epoch
        self.epoch, self.run_step, self.run_planned = epoch, step, epochs * steps_per_epoch
        self.offset += step
        self._new_epoch(self.now())

    def _close_run(self) -> None:
        """A run that ended early (reached its target, diverged) has no steps left to wait for."""
        if self.run_index:
            self.total -= self.run_planned - self.run_step
            self.run_planned = self.run_step

    def step(self, loss, images: int) -> None:
        """One optimisation step on `images` images with training loss `loss` (a float or a 0-dim
        tensor: summed as it is, read at the epoch's end)."""
        self.loss_sum = self.loss_sum + loss
        self.loss_steps += 1
        self.images += images
        self.run_step += 1
        self.done += 1
        self.last_step_at = self.now()
        if self.tty:
            self._draw()

    def epoch_end(self, epoch: int, val_accuracy: float | None, train_loss: float | None = None) -> None:
        """Epoch `epoch` (1-based) is over and evaluated: its line. `train_loss` (default: the mean
        of the losses given to `step`) as the job records it."""
        now = self.now()
        if train_loss is None and self.loss_steps:
            train_loss = float(self.loss_sum) / self.loss_steps
        spent = self.last_step_at - self.epoch_started
        rate = self.images / spent if spent > 0 else math.nan
        self.epoch = epoch
        self._line(f"{self._who()}epoch {epoch}/{self.epochs} step {self.run_step}/{self.run_planned} "
                   f"train_loss {_number(train_loss)} val_accuracy {_number(val_accuracy)} "
                   f"images/s {_number(rate, '.0f')} elapsed {clock(now - self.started)} "
                   f"eta {clock(self.eta(now))}")
        self._new_epoch(now)

    def point(self, label: str) -> None:
        """One point of a job without training (H4) is done: its line."""
        self.done += 1
        now = self.now()
        self._line(f"{label} point {self.done}/{self.total} elapsed {clock(now - self.started)} "
                   f"eta {clock(self.eta(now))}")

    def diverged(self, step: int, why: str) -> None:
        """The run ends at `step`: a non-finite value (`why`). Said at once, on a line of its own."""
        self.run_step = min(self.run_step, self.run_planned)
        self._line(f"{self._who()}diverged at step {step} (epoch {min(self.epoch + 1, self.epochs)}/"
                   f"{self.epochs}): {why}; elapsed {clock(self.now() - self.started)}")

    def ended(self, step: int, why: str) -> None:
        """The run ends before its last epoch at `step`, not diverged (e.g. H3: target reached)."""
        self._line(f"{self._who()}ended at step {step} (epoch {min(self.epoch + 1, self.epochs)}/"
                   f"{self.epochs}): {why}; elapsed {clock(self.now() - self.started)} "
                   f"eta {clock(self.eta())}")

    def finish(self) -> None:
        """The job's last line: its steps and wall time (read back by the view)."""
        self._close_run()
        seconds = self.now() - self.started
        self._line(f"finished: {self.done} {self.unit} in {clock(seconds)} (seconds {seconds:.1f})")


def _number(value: float | None, spec: str = ".4g") -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


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
    from .config import RunConfig

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
    from .config import RunConfig

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
        rows.append((name, j.status, j.progress, _number(j.val_accuracy, ".4f") if j.val_accuracy is not None
                     else "", time_text, j.note))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac-progress", description=__doc__,
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

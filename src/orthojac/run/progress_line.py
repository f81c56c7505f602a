"""The progress lines every training and thesis job writes to its log (`Progress`); orthojac.workflow.progress
reads them back. Imported by the training loops: nothing of the workflow.

A job's training loop reports each step and each epoch's end; the job's log (its stderr,
`2> {log}` in the rules) gets one line per epoch, flushed as it is written:

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
"""

from __future__ import annotations

import math
import sys
import time

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
                    f"step {self.run_step}/{self.run_planned} images/s {number_text(rate, '.0f')} "
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
                   f"train_loss {number_text(train_loss)} val_accuracy {number_text(val_accuracy)} "
                   f"images/s {number_text(rate, '.0f')} elapsed {clock(now - self.started)} "
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


def number_text(value: float | None, spec: str = ".4g") -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)

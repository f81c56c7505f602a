"""Progress a researcher can watch: the per-epoch lines every training and thesis job writes to its
log while it runs (orthojac.run.progress_line), divergence said at its step, the terminal bar, logging
that leaves every result bit for bit as it was, and the view of a results folder
(orthojac.workflow.progress)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, stop_process
from orthojac.workflow import progress
from orthojac.run import optimisers, progress_line, train
from orthojac.run.checkpoint import load_checkpoint
from orthojac.data import load_images
from orthojac.config import RunConfig
from orthojac.thesis import common, dense, rnn, theory

torch.set_num_threads(1)

LINE = re.compile(r"^\[progress\] (?P<label>.*?) ?epoch (?P<epoch>\d+)/(?P<epochs>\d+) step (?P<step>\d+)/(?P<steps>\d+) "
                  r"train_loss (?P<loss>\S+) val_accuracy (?P<val>\S+) images/s (?P<rate>\S+) "
                  r"elapsed (?P<elapsed>\d+:\d\d:\d\d) eta (?P<eta>\d+:\d\d:\d\d|\?)$")


def epoch_lines(text: str) -> list[re.Match]:
    return [m for line in text.splitlines() if (m := LINE.match(line))]


# -- a training job's log, read while it runs ---------------------------------------------------
def test_a_training_job_logs_one_line_per_epoch_while_it_runs(idx_folder, tmp_path, venv_env):
    """The job's stderr goes to its log as in the train rule (`2> {log}`). The log is read while
    the job runs: once its first epoch line is there the job is paused (SIGSTOP), the log holds
    epoch lines and no output is written yet; at the end there is one line per epoch, in order,
    with every field, agreeing with metrics.csv."""
    out, log = tmp_path / "run", tmp_path / "run.log"
    epochs, steps_per_epoch = 4, 100  # 500 training images in batches of 5
    cmd = [sys.executable, "-m", "orthojac", "train", "--family", "fold", "--depth", "2", "--channels", "1",
           "--bias-init", "-0.5", "--lr", "0.01", "--epochs", str(epochs), "--val-size", "100",
           "--batch-size", "5", "--data-dir", str(idx_folder), "--out-dir", str(out), "--threads", "1"]
    with log.open("w") as stderr:
        proc = subprocess.Popen(cmd, env=venv_env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 240
        while not epoch_lines(log.read_text()):
            assert proc.poll() is None, "the job ended before its log showed an epoch:\n" + log.read_text()
            assert time.monotonic() < deadline, "no epoch line within 240 s"
            time.sleep(0.005)
        stop_process(proc.pid)
        seen = [m.group(0) for m in epoch_lines(log.read_text())]
        assert not (out / "metrics.csv").exists() and not (out / "config.json").exists()
        assert 1 <= len(seen) < epochs
        os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=240) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
    lines = epoch_lines(log.read_text())
    assert [m.group(0) for m in lines[: len(seen)]] == seen  # written before the job ended
    assert [int(m["epoch"]) for m in lines] == list(range(1, epochs + 1))
    assert [int(m["step"]) for m in lines] == [k * steps_per_epoch for k in range(1, epochs + 1)]
    assert {(int(m["epochs"]), int(m["steps"])) for m in lines} == {(epochs, epochs * steps_per_epoch)}
    assert lines[0]["label"] == f"{out.parent.name}/{out.name}"
    metrics = pd.read_csv(out / "metrics.csv")
    val = metrics[(metrics.split == "val") & (metrics.metric == "accuracy") & (metrics.epoch > 0)]
    assert [float(m["val"]) for m in lines] == [float(f"{v:.4g}") for v in val["value"]]
    for m in lines:
        assert float(m["loss"]) > 0 and float(m["rate"]) > 0
        assert progress.seconds_of(m["elapsed"]) is not None and progress.seconds_of(m["eta"]) is not None
    assert progress.seconds_of(lines[-1]["eta"]) == 0
    elapsed = [progress.seconds_of(m["elapsed"]) for m in lines]
    assert elapsed == sorted(elapsed)
    assert json.loads(log.read_text().splitlines()[-1])["status"] == "completed"


def small_config(**changes) -> RunConfig:
    return RunConfig(**{"dataset": "fixture", "family": "fold", "depth": 2, "channels": 1,
                        "bias_init": -0.5, "lr": 0.01, "epochs": 2, "val_size": 100,
                        "train_size": 100, "test_size": 50, "batch_size": 20, **changes})


def test_a_resumed_run_says_from_where_and_counts_on_from_there(idx_folder, tmp_path, capsys, monkeypatch):
    """A run stopped after its first epoch (a SIGTERM at the epoch's last step) resumes: its log
    says from where, and its epoch lines go on from epoch 2, step 10."""
    step = optimisers.Adam.step
    calls = {"n": 0}

    def stop_after_epoch_one(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        calls["n"] += 1
        train.Stop.requested = calls["n"] == 5
        return out

    monkeypatch.setattr(optimisers.Adam, "step", stop_after_epoch_one)
    with pytest.raises(SystemExit):
        train.train(small_config(epochs=3), idx_folder, tmp_path, torch.device("cpu"), 0)
    train.Stop.requested = False
    monkeypatch.setattr(optimisers.Adam, "step", step)
    capsys.readouterr()
    train.train(small_config(epochs=3), idx_folder, tmp_path, torch.device("cpu"), 0)
    err = capsys.readouterr().err
    assert "resuming from" in err and "epoch 0, step 5" in err
    lines = epoch_lines(err)
    assert [(int(m["epoch"]), int(m["step"])) for m in lines] == [(1, 5), (2, 10), (3, 15)]
    # epoch 1 had no step left to take in this job: no loss, rate or time left to tell yet
    assert (lines[0]["loss"], lines[0]["rate"], lines[0]["eta"]) == ("n/a", "n/a", "?")


# -- divergence: said at its step ---------------------------------------------------------------
def test_a_diverging_training_run_says_so_at_its_step(idx_folder, tmp_path, capsys, monkeypatch):
    """Parameters turned NaN by step 3 make step 4's loss non-finite: the log says so there, before
    the run's outputs are written, naming the step the run records."""
    adam_step = optimisers.Adam.step
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        out = adam_step(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return out

    said = {}
    write_csv = train.write_csv_atomic

    def write_and_look(*args, **kwargs):  # what the log held when the outputs were written
        said.setdefault("err", capsys.readouterr().err)
        return write_csv(*args, **kwargs)

    monkeypatch.setattr(optimisers.Adam, "step", poisoned)
    monkeypatch.setattr(train, "write_csv_atomic", write_and_look)
    summary = train.train(small_config(epochs=2), idx_folder, tmp_path, torch.device("cpu"), 0)
    assert summary["status"] == "diverged" and summary["diverged_step"] == 3
    lines = [line for line in said["err"].splitlines() if "diverged" in line]
    assert len(lines) == 1 and re.fullmatch(
        rf"\[progress\] {tmp_path.parent.name}/{tmp_path.name} diverged at step 3 \(epoch 1/2\): "
        r"the training loss is not finite; elapsed \d+:\d\d:\d\d", lines[0])
    assert not epoch_lines(said["err"])


def test_thesis_loops_log_each_epoch_and_say_divergence_at_its_step(idx_folder, capsys):
    data = load_images(idx_folder, 100, 100, 100)
    run = {"configuration": "Orthogonal_NoReg", "label": "Orthogonal_NoReg", "variant": "none",
           "gain": 1.0, "lam": 0.0}
    rows = pd.DataFrame(rnn.train_one(run, data, 0, 2, 8, 50, 1e-3))  # H1 (and H2: the same fit)
    lines = epoch_lines(capsys.readouterr().err)
    assert [(m["label"], int(m["epoch"]), int(m["step"])) for m in lines] == [
        ("Orthogonal_NoReg (none)", 1, 2), ("Orthogonal_NoReg (none)", 2, 4)]
    recorded = rows[rows.metric.isin(["train_loss", "val_accuracy"]) & (rows.epoch > 0)].pivot(index="epoch", columns="metric", values="value")
    assert [(float(m["loss"]), float(m["val"])) for m in lines] == [
        (float(f"{r.train_loss:.4g}"), float(f"{r.val_accuracy:.4g}")) for r in recorded.itertuples()]

    bad = run | {"configuration": "Orthogonal_GainA_adj_RegB", "variant": "eq11", "lam": float("inf")}
    rnn.train_one(bad, data, 0, 2, 8, 50, 1e-3)
    assert "diverged at step 1 (epoch 1/2): the objective is not finite in epoch 1" in capsys.readouterr().err

    model = dense.build(2, 16, "tanh", "orthogonal", 1.05, seed=0)  # H5 (and H3: the same loop)
    dense.train_curve(model, data, "sgd", 0.1, 2, 50, 0, seed=0, label="tanh:1.05 orthogonal")
    lines = epoch_lines(capsys.readouterr().err)
    assert [(m["label"], int(m["epoch"]), int(m["step"])) for m in lines] == [
        ("tanh:1.05 orthogonal", 1, 2), ("tanh:1.05 orthogonal", 2, 4)]
    model = dense.build(8, 16, "linear", "gaussian", 1.0, seed=0)
    rows = pd.DataFrame(dense.train_curve(model, data, "sgd", 1e6, 2, 50, 2, seed=0, label="gaussian L=8"))
    step = int(rows.loc[rows.metric == "diverged", "step"].iloc[0])
    assert f"[progress] gaussian L=8 diverged at step {step} (epoch " in capsys.readouterr().err


def test_h4_logs_a_line_per_point(tmp_path, capsys):
    theory.main(["--activations", "relu", "tanh", "--weights", "gaussian", "--depths", "2", "4", "--width", "8",
             "--seeds", "0", "1", "--out", str(tmp_path / "h4.csv")])
    err = capsys.readouterr().err
    points = re.findall(r"^\[progress\] (\w+) gaussian seed (\d) \(depths 2–4\) point (\d)/4 ", err, re.M)
    assert points == [("relu", "0", "1"), ("relu", "1", "2"), ("tanh", "0", "3"), ("tanh", "1", "4")]
    assert re.search(r"^\[progress\] finished: 4 points in \d+:\d\d:\d\d \(seconds [0-9.]+\)$", err, re.M)


# -- logging only: the same results bit for bit -------------------------------------------------
class Silent:
    """A Progress that does nothing: the loops as they were before they reported progress."""

    def __init__(self, *args, **kwargs):
        self.run_step = 0

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def test_progress_reporting_leaves_every_result_bit_for_bit(idx_folder, tmp_path, monkeypatch):
    """With and without the progress reporting: the same metrics (but the wall-clock `seconds`),
    the same weights, the same H1 and H3/H5 rows."""
    def outputs(name):
        out = tmp_path / name
        train.train(small_config(seed=3, regime="soft"), idx_folder, out, torch.device("cpu"), 7, save_epochs=(1,))
        metrics = [line for line in (out / "metrics.csv").read_text().splitlines() if ",seconds," not in line]
        weights = {f: load_checkpoint(out / f) for f in ("init.pt", "final.pt", "epochs.pt")}
        data = load_images(idx_folder, 100, 100, 100)
        run = {"configuration": "Orthogonal_GainA_adj_RegB", "label": "x", "variant": "listing", "gain": 1.1,
               "lam": 0.01}
        h1 = rnn.train_one(run, data, 0, 2, 8, 50, 1e-3)
        model = dense.build(3, 16, "linear", "orthogonal", 1.0, seed=0)
        h3 = dense.train_curve(model, data, "sgd", 0.3, 2, 30, 3, seed=0, stop=lambda rows: len(rows) > 12)
        return metrics, weights, h1, h3

    reported = outputs("reported")
    for module in (train, common, dense):
        monkeypatch.setattr(module, "Progress", Silent)
    silent = outputs("silent")
    assert reported[0] == silent[0]
    for f, a in reported[1].items():
        b = silent[1][f]
        models = (a["model"], b["model"]) if "model" in a else (a["models"]["1"], b["models"]["1"])
        assert models[0].keys() == models[1].keys()
        assert all(torch.equal(models[0][k], models[1][k]) for k in models[0]), f
    assert reported[2] == silent[2] and reported[3] == silent[3]


# -- the terminal bar ---------------------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_a_terminal_gets_a_bar_rewritten_in_place_and_the_eta_follows_the_rate():
    clock, screen = Clock(), Terminal()
    p = progress_line.Progress(20, runs=2, stream=screen, clock_fn=clock)
    p.run("a", 2, 5)
    for _ in range(4):
        clock.t += 1.0
        p.step(torch.tensor(0.5), 10)
    assert p.eta() == pytest.approx(16.0)  # 16 steps left at 1 s a step
    bar = screen.getvalue()
    assert bar.startswith("\ra (run 1/2) epoch 1/2 [") and "\n" not in bar and bar.count("\r") == 4
    assert "step 4/10 images/s 10 elapsed 0:00:04 eta 0:00:16" in bar.split("\r")[-1]
    clock.t += 1.0
    p.step(torch.tensor(1.0), 10)
    p.epoch_end(1, 0.75)
    line = screen.getvalue().split("\r\x1b[K")[-1]  # the bar erased, the epoch's line in its place
    assert line == ("[progress] a (run 1/2) epoch 1/2 step 5/10 train_loss 0.6 val_accuracy 0.75 "
                    "images/s 10 elapsed 0:00:05 eta 0:00:15\n")
    log = io.StringIO()  # not a terminal: lines only, no bar
    q = progress_line.Progress(4, stream=log, clock_fn=clock)
    q.run("b", 1, 4)
    for _ in range(4):
        q.step(1.0, 3)
    q.epoch_end(1, None)
    q.finish()
    assert "\r" not in log.getvalue() and len(log.getvalue().splitlines()) == 2
    assert "val_accuracy n/a" in log.getvalue()


def test_a_run_that_ends_early_leaves_no_steps_to_wait_for():
    clock = Clock()
    p = progress_line.Progress(40, runs=2, stream=io.StringIO(), clock_fn=clock)
    p.run("first", 2, 10)
    for _ in range(5):
        clock.t += 2.0
        p.step(0.1, 1)
    p.ended(5, "target reached")
    p.run("second", 2, 10)
    assert p.eta() == pytest.approx(20 * 2.0)  # the second run's 20 steps; none of the first's


# -- the view of a results folder ---------------------------------------------------------------
def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(SystemExit, match="nothere.yaml: no such config file"):
        progress.load_config([tmp_path / "nothere.yaml"], REPO / "config/config.yaml")


def view_config() -> dict:
    settings = {"dataset": "fixture", "family": "fold", "depth": 2, "channels": 1, "bias_init": -0.5,
                "lr": 0.01, "epochs": 2, "val_size": 100, "train_size": 100, "test_size": 50, "batch_size": 20}
    return {
        "experiments": [{"name": "tiny", "description": "view test", "settings": {
            **{k: {"value": v, "choice": "test"} for k, v in settings.items()},
            "seed": {"grid": [0, 1, 2, 3, 4], "choice": "test"}}}],
        "hlav_rnn": {"epochs": {"value": 3, "choice": "test"}, "seeds": {"grid": [0, 1], "choice": "test"}},
        "hlav_linear": {"epochs": {"value": 2, "choice": "test"}, "seeds": {"grid": [0], "choice": "test"}},
        "hlav_deep": {"epochs": {"value": 1, "choice": "test"}, "seeds": {"grid": [0], "choice": "test"}},
    }


def test_the_view_of_finished_running_and_missing_runs(idx_folder, tmp_path, capsys):
    """tiny/seed=0 finished (a real run), seed=1 running (its log after one epoch of two, a
    checkpoint), seed=2 never started, seed=3 failed, seed=4 stopped by SIGTERM; H1 seed 0
    finished in 30 s, seed 1 waiting; H3 seed 0 finished, its log of code without progress lines
    (its time from its benchmark file); H5 (left out by the --configfile) not listed."""
    results = tmp_path / "results"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(view_config()))
    (tmp_path / "quick.yaml").write_text(yaml.safe_dump({"hlav_deep": None}))
    config = progress.load_config([tmp_path / "quick.yaml"], tmp_path / "config.yaml")
    cfg = {k: v["value"] for k, v in config["experiments"][0]["settings"].items() if "value" in v}
    runs, logs = results / "runs/tiny", results / "logs/train/tiny"
    logs.mkdir(parents=True)
    with (logs / "seed=0.log").open("w") as log:
        sys.stderr, saved = log, sys.stderr
        try:
            summary = train.train(RunConfig(**cfg, seed=0), idx_folder, runs / "seed=0", torch.device("cpu"), 0)
        finally:
            sys.stderr = saved
    clock = Clock()
    with (logs / "seed=1.log").open("w") as log:
        print("resuming from results/runs/tiny/seed=1/checkpoint.pt: epoch 0, step 2", file=log)
        p = progress_line.Progress(10, stream=log, clock_fn=clock)
        p.run("tiny/seed=1", 2, 5, step=2)
        for _ in range(3):
            clock.t += 100.0
            p.step(0.5, 20)
        p.epoch_end(1, 0.625)  # 5 steps left at 100 s a step
    (runs / "seed=1").mkdir(parents=True)
    (runs / "seed=1/checkpoint.pt").write_bytes(b"")
    (logs / "seed=3.log").write_text("Traceback (most recent call last):\n  ...\nValueError: bad\n")
    (runs / "seed=3").mkdir()
    (runs / "seed=3/checkpoint.pt").write_bytes(b"")
    (logs / "seed=4.log").write_text("SIGTERM: checkpoint saved at step 7; exiting\n")
    h1_logs = results / "logs/hlav_rnn"
    h1_logs.mkdir(parents=True)
    with (h1_logs / "seed=0.log").open("w") as log:
        p = progress_line.Progress(3, stream=log, clock_fn=clock)
        clock.t += 30.0
        p.finish()
    (results / "hlav/rnn").mkdir(parents=True)
    (results / "hlav/rnn/seed=0.csv").write_text("configuration\n")
    (results / "logs/hlav_linear").mkdir(parents=True)
    (results / "logs/hlav_linear/seed=0.log").write_text("orthogonal L=2: reached at step 4.0\n")
    (results / "hlav/linear").mkdir(parents=True)
    (results / "hlav/linear/seed=0.csv").write_text("weights\n")
    (results / "benchmarks/hlav_linear").mkdir(parents=True)
    (results / "benchmarks/hlav_linear/seed=0.tsv").write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t100\n")

    jobs = {j.name if j.kind == "train" else f"{j.kind} {j.name}": j for j in progress.jobs(config, results)}
    assert list(jobs) == [f"tiny/seed={s}" for s in range(5)] + ["H1 hlav_rnn seed=0", "H1 hlav_rnn seed=1",
                                                                 "H3 hlav_linear seed=0"]
    done, running, missing = jobs["tiny/seed=0"], jobs["tiny/seed=1"], jobs["tiny/seed=2"]
    metrics = pd.read_csv(runs / "seed=0/metrics.csv")
    assert (done.status, done.seconds, done.progress) == ("done", summary["train_seconds"], "10 steps")
    assert done.val_accuracy == metrics[(metrics.split == "val") & (metrics.metric == "accuracy")]["value"].iloc[-1]
    assert (running.status, running.progress, running.val_accuracy) == ("running", "epoch 1/2", 0.625)
    assert 490 <= running.seconds <= 500  # the line's eta (500 s) less the seconds since it was written
    assert "resumed from epoch 0, step 2" in running.note
    assert (missing.status, missing.progress, missing.seconds) == ("waiting", "", None)
    assert jobs["tiny/seed=3"].status == "failed" and "ValueError: bad" in jobs["tiny/seed=3"].note
    assert "resumes when rerun" in jobs["tiny/seed=3"].note
    assert jobs["tiny/seed=4"].status == "stopped"
    assert (jobs["H1 hlav_rnn seed=0"].status, jobs["H1 hlav_rnn seed=0"].seconds) == ("done", 30.0)
    assert jobs["H1 hlav_rnn seed=1"].status == "waiting"
    assert (jobs["H3 hlav_linear seed=0"].status, jobs["H3 hlav_linear seed=0"].seconds) == ("done", 12.5)

    left, unknown = progress.estimate(list(jobs.values()))
    # seeds 2, 3, 4 cost what seed 0 did (same images, epochs and depth); H1 seed 1 what seed 0 did
    assert unknown == 0
    assert left == pytest.approx(running.seconds + 3 * summary["train_seconds"] + 30.0)

    progress.main([str(results), "--config", str(tmp_path / "config.yaml"), "--configfile", str(tmp_path / "quick.yaml")])
    out = capsys.readouterr().out
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:8]}
    assert table["tiny/seed=1"][:4] == ["running", "epoch", "1/2", "0.6250"]
    assert table["tiny/seed=2"][0] == "waiting" and table["tiny/seed=2"][1].startswith("~")
    assert "3 done, 1 running, 1 stopped, 1 failed, 2 waiting of 8 jobs" in out
    shown = re.search(r"^time left: (\d+:\d\d:\d\d) of job time, one job at a time$", out, re.M)
    assert abs(progress.seconds_of(shown[1]) - left) <= 2  # the running job's time left moves on

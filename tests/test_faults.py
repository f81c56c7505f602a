"""Nothing lost, nothing wrong: a killed or preempted run resumes to the same result, bad data and
bad config fail early and by name, divergence is recorded as a result, writes are atomic and
checkpoints are loaded without unpickling arbitrary objects (issue 9).

Metrics are compared on every row except `seconds` (wall time, which differs between any two runs).
On CPU with one thread the rest is bit-identical, and so are the final weights. GPU tolerance is
not measured here (no GPU in CI).
"""

from __future__ import annotations

import gzip
import hashlib
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

from conftest import REPO, dying_kernel, make_idx_dataset, stop_process
from orthojac.run import checkpoint, optimisers, train
from orthojac.report import figures
from orthojac.workflow import Pipeline
from orthojac.run.checkpoint import atomic_save, load_checkpoint
from orthojac.config import RunConfig
from orthojac.data import IDX_FILES, Expected, fetch

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
             "--configfile", "config.yaml", "--cores", "1"]

# 500 training images in batches of 5: 100 steps per epoch, so a kill can land mid-epoch.
SETTINGS = {"dataset": "fixture", "family": "fold", "depth": 2, "channels": 1, "bias_init": -0.5,
            "lr": 0.01, "epochs": 3, "val_size": 100, "batch_size": 5}
STEPS_PER_EPOCH, TOTAL_STEPS = 100, 300
CHECKPOINT_EVERY = "7"  # not a divisor of 100: the killed run replays steps after its checkpoint


def flags(settings: dict) -> list[str]:
    return [arg for k, v in settings.items() for arg in ("--" + k.replace("_", "-"), str(v))]


def config_for(mirror: Path, files: dict, settings: dict, **experiment) -> dict:
    return {
        "data": {"fixture": {"mirrors": [str(mirror)], "files": files}},
        "experiments": [{
            "name": "tiny", "description": "fault test on generated IDX data",
            "spectra": {"checkpoints": ["final"], "points": 1, "layers": False, "choice": "test"},
            "settings": {k: {"grid" if isinstance(v, list) else "value": v, "choice": "test"}
                         for k, v in settings.items()},
            **experiment,
        }],
    }


def without_timing(metrics_csv: Path) -> list[str]:
    return [line for line in metrics_csv.read_text().splitlines() if ",seconds," not in line]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory):
    """The generated mirror, its digests, and the verified IDX folder the direct runs read."""
    root = tmp_path_factory.mktemp("data")
    files = make_idx_dataset(root / "mirror")
    expected = [Expected(name, f["size"], f["sha256"]) for name, f in files.items()]
    fetch(expected, root / "idx", urls=[], mirrors=[root / "mirror"])
    return root / "mirror", files, root / "idx"


@pytest.fixture(scope="module")
def reference(fixture_data, tmp_path_factory, venv_env):
    """An uninterrupted run of SETTINGS: the result every interrupted run must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    subprocess.run([sys.executable, "-m", "orthojac", "train", *flags(SETTINGS), "--data-dir",
                    str(fixture_data[2]), "--out-dir", str(out), "--threads", "1"],
                   env=venv_env, check=True, capture_output=True, timeout=300)
    return out


def checkpoint_state(path: Path) -> dict | None:
    try:
        return load_checkpoint(path)["state"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return None


def pause_mid_epoch(pid: int, ckpt: Path, proc: subprocess.Popen, after_step: int) -> dict:
    """Stop process `pid` once its newest checkpoint is past `after_step` and mid-epoch; return
    that checkpoint's state. The process stays stopped (SIGSTOP), so the checkpoint cannot change."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        state = checkpoint_state(ckpt)
        if state and state["global_step"] > after_step:
            stop_process(pid)
            state = checkpoint_state(ckpt)
            if 0 < state["step_in_epoch"] < STEPS_PER_EPOCH:
                return state
            os.kill(pid, signal.SIGCONT)  # an epoch-end checkpoint: wait for a mid-epoch one
        time.sleep(0.02)
    raise AssertionError("no mid-epoch checkpoint within 240 s")


def training_pid(work: Path, deadline_s: float = 240) -> int:
    """The pid of the `python -m orthojac train` process Snakemake started in `work`."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            try:
                cmd = (proc / "cmdline").read_bytes()
                if b"\0-m\0orthojac\0train\0" in cmd and Path(os.readlink(proc / "cwd")) == work:
                    return int(proc.name)
            except (FileNotFoundError, PermissionError, ProcessLookupError, NotADirectoryError):
                continue
        time.sleep(0.05)
    raise AssertionError("Snakemake did not start the training job")


def test_kill_9_mid_epoch_then_snakemake_resumes_to_the_same_metrics(
        tmp_path, fixture_data, reference, venv_env):
    mirror, files, _ = fixture_data
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config_for(mirror, files, SETTINGS)))
    env = {**venv_env, "ORTHOJAC_CHECKPOINT_EVERY": CHECKPOINT_EVERY}
    run_dir = work / "results/runs/tiny/default"
    target = ["results/runs/tiny/default/metrics.csv"]
    first = subprocess.Popen(SNAKEMAKE + target, cwd=work, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    pid = training_pid(work)
    killed_at = pause_mid_epoch(pid, run_dir / "checkpoint.pt", first, after_step=STEPS_PER_EPOCH)
    os.kill(pid, signal.SIGKILL)
    out, _ = first.communicate(timeout=120)
    assert first.returncode != 0, out  # Snakemake saw the job die and stopped by itself
    assert not (run_dir / "metrics.csv").exists()

    second = subprocess.run(SNAKEMAKE + target, cwd=work, env=env, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    log = (work / "results/logs/train/tiny/default.log").read_text()
    resumed = re.search(r"resuming from \S+: epoch (\d+), step (\d+)", log)
    assert resumed, log
    assert (int(resumed[1]), int(resumed[2])) == (killed_at["epoch"], killed_at["global_step"])
    assert 0 < killed_at["global_step"] < TOTAL_STEPS and killed_at["step_in_epoch"] > 0
    assert without_timing(run_dir / "metrics.csv") == without_timing(reference / "metrics.csv")
    assert same_weights(run_dir / "final.pt", reference / "final.pt")
    assert same_weights(run_dir / "init.pt", reference / "init.pt")
    assert not list(run_dir.glob(".*.tmp"))


def test_sigterm_checkpoints_exits_143_and_the_rerun_resumes(tmp_path, fixture_data, reference,
                                                             venv_env):
    cmd = [sys.executable, "-m", "orthojac", "train", *flags(SETTINGS), "--data-dir",
           str(fixture_data[2]), "--out-dir", str(tmp_path), "--threads", "1",
           "--checkpoint-every", CHECKPOINT_EVERY]
    proc = subprocess.Popen(cmd, env=venv_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    pause_mid_epoch(proc.pid, tmp_path / "checkpoint.pt", proc, after_step=10)
    os.kill(proc.pid, signal.SIGTERM)
    os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    saved = checkpoint_state(tmp_path / "checkpoint.pt")
    assert f"SIGTERM: checkpoint saved at step {saved['global_step']}" in err
    assert 0 < saved["global_step"] < TOTAL_STEPS and saved["status"] == "running"
    assert not (tmp_path / "metrics.csv").exists()

    rerun = subprocess.run(cmd, env=venv_env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"step {saved['global_step']}" in rerun.stderr and "resuming from" in rerun.stderr
    assert without_timing(tmp_path / "metrics.csv") == without_timing(reference / "metrics.csv")
    assert same_weights(tmp_path / "final.pt", reference / "final.pt")


def test_corrupt_or_truncated_mirror_fails_the_data_rule_by_name(tmp_path, venv_env):
    mirror = tmp_path / "mirror"
    files = make_idx_dataset(mirror, n_train=200, n_test=50)
    # Corrupted: a valid gzip of a different payload. Truncated: half of a gzip file.
    labels = gzip.decompress((mirror / "train-labels-idx1-ubyte.gz").read_bytes())
    (mirror / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels[:-1] + b"\x09"))
    images = (mirror / "t10k-images-idx3-ubyte.gz").read_bytes()
    (mirror / "t10k-images-idx3-ubyte.gz").write_bytes(images[: len(images) // 2])
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config_for(mirror, files, SETTINGS)))
    proc = subprocess.run(SNAKEMAKE + ["results/runs/tiny/default/metrics.csv"], cwd=work,
                          env=venv_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    log = (work / "results/logs/fetch_data/fixture.log").read_text()
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        want = files[name]
        assert f"no verified copy of {name} (want {want['size']} B, sha256 {want['sha256']})" in log
    bad_labels = hashlib.sha256(labels[:-1] + b"\x09").hexdigest()
    assert f"got {len(labels)} B sha256 {bad_labels}" in log
    assert hashlib.sha256(images[: len(images) // 2]).hexdigest() in log
    assert "corrupt gzip" in log
    assert not (work / "results/runs").exists() and not (work / "results/logs/train").exists()
    data_dir = work / "results/data"
    assert not data_dir.exists() or not [p for p in data_dir.rglob("*") if p.is_file()]


def _numeric_settings() -> list[str]:
    """Settings whose schema is a number: "α given as text" is checked for each (alpha included,
    once the schema has it)."""
    from orthojac.workflow import config_schema

    settings = config_schema()["$defs"]["experiment"]["properties"]["settings"]["properties"]
    return sorted(k for k, s in settings.items() if "number_setting" in str(s))


def test_bad_config_values_fail_before_any_job_naming_the_key(tmp_path, venv_env):
    numeric = _numeric_settings()
    assert "lr" in numeric and "bias_init" in numeric
    base = {"family": "fold", "depth": 2, "channels": 1}
    faults = {  # experiment name → (its settings, what the error must name)
        "unknown_family": ({**base, "family": "fnord"}, "settings.family.value: 'fnord' is not one of"),
        "depth_zero": ({**base, "depth": 0}, "settings.depth.value: 0 is less than the minimum of 1"),
        **{f"text_{key}": ({**base, key: "fast"}, f"settings.{key}.value: 'fast' is not of type 'number'")
           for key in numeric},
        "unknown_key": ({**base, "colour": 3}, "Additional properties are not allowed ('colour' was unexpected)"),
    }
    config = {"data": {"fixture": {"files": {name: {"size": 1, "sha256": "0" * 64} for name in IDX_FILES}}},
              "experiments": [config_for(Path("m"), {}, s, name=name)["experiments"][0]
                              for name, (s, _) in faults.items()]}
    missing = config_for(Path("m"), {}, base, name="missing_key")["experiments"][0]
    del missing["description"]
    no_provenance = config_for(Path("m"), {}, base, name="missing_provenance")["experiments"][0]
    del no_provenance["settings"]["depth"]["choice"]
    config["experiments"] += [missing, no_provenance]
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run(SNAKEMAKE, cwd=work, env=venv_env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    errors = [line.strip() for line in (proc.stdout + proc.stderr).splitlines()
              if line.strip().startswith("config: ")]
    for i, (name, (_, message)) in enumerate(faults.items()):
        assert any(line.startswith(f"config: experiments[{i}]({name}).") and message in line
                   for line in errors), (name, errors)
    n = len(faults)
    assert f"config: experiments[{n}](missing_key): 'description' is a required property" in errors
    assert any(line.startswith(f"config: experiments[{n + 1}](missing_provenance).settings.depth")
               for line in errors), errors
    assert len(errors) == n + 2, errors  # one line per fault, none about the valid parts
    assert not (work / "results").exists()


def test_divergence_is_a_result_in_tables_figures_and_report(tmp_path, fixture_data, venv_env):
    mirror, files, _ = fixture_data
    settings = {**SETTINGS, "epochs": 1, "batch_size": 100, "lr": [0.01, 1e6]}
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config_for(mirror, files, settings,
                                                                claims=["P1"])))
    proc = subprocess.run(SNAKEMAKE[:-1] + ["2"], cwd=work, env=venv_env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = yaml.safe_load((work / "results/runs/tiny/lr=1000000.0/config.json").read_text())
    assert summary["status"] == "diverged" and 0 <= summary["diverged_step"] < 5
    metrics = pd.read_csv(work / "results/runs/tiny/lr=1000000.0/metrics.csv")
    assert metrics.loc[metrics.metric == "diverged_at_step", "value"].tolist() == [summary["diverged_step"]]
    runs = pd.read_csv(work / "results/tables/runs.csv").set_index("run")
    assert runs.loc["lr=1000000.0", "status"] == "diverged"
    assert runs.loc["lr=1000000.0", "diverged_step"] == summary["diverged_step"]
    assert runs.loc["lr=0.01", "status"] == "completed"
    html = (work / "results/report/index.html").read_text()
    rows = re.findall(r"<tr>.*?</tr>", html, flags=re.S)
    diverged_row = next(r for r in rows if "lr=1000000.0" in r)
    assert "diverged" in diverged_row and str(summary["diverged_step"]) in diverged_row
    assert "diverged" not in next(r for r in rows if "lr=0.01" in r)
    labels = figures.model_label(runs.reset_index())
    assert labels.tolist() == ["fold (relu, b₀=-0.5)",
                               f"fold (relu, b₀=-0.5), diverged at step {summary['diverged_step']}"]
    assert (work / "results/figures/accuracy.png").stat().st_size > 1000


def run_with_dying_kernels(tmp_path, fixture_data, venv_env, dying: str):
    """The tiny workflow (one run, claim P1) with the stand-in kernel: (Snakemake's process, its
    output, the launches' folder)."""
    mirror, files, _ = fixture_data
    work = tmp_path / "work"
    work.mkdir()
    settings = {**SETTINGS, "epochs": 1, "batch_size": 100}
    (work / "config.yaml").write_text(yaml.safe_dump(config_for(mirror, files, settings, claims=["P1"])))
    launches = tmp_path / "launches"
    env = {**venv_env, "JUPYTER_PATH": str(dying_kernel(tmp_path / "jupyter", launches, dying))}
    proc = subprocess.run(SNAKEMAKE[:-1] + ["2"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    return proc, proc.stdout + proc.stderr, launches


def test_a_report_kernel_that_dies_at_start_is_run_again_and_the_report_completes(tmp_path, fixture_data,
                                                                                  venv_env):
    # the 1st and 2nd launches are the index's page, which every other page waits for; the 4th,
    # another page
    proc, out, launches = run_with_dying_kernels(tmp_path, fixture_data, venv_env, "1,2,4")
    assert proc.returncode == 0, out[-3000:]
    work = tmp_path / "work"
    # the stand-in was the kernel, the deaths were seen, and the index's and another page's job ran again
    assert all(f"launch {n} dies" in out for n in (1, 2, 4)), out[-3000:]
    assert re.search(r"Error in rule report_index", out) and re.search(r"Error in rule report_section", out)
    pages = Pipeline.pages()
    # every page once, the index twice more, another page once more (more only if a real kernel
    # also died: the race this handles)
    assert len(list(launches.iterdir())) >= len(pages) + 3
    assert all((work / f"results/report/{page}.html").stat().st_size > 1000 for page in pages)


def test_a_report_page_that_fails_three_times_stops_the_workflow(tmp_path, fixture_data, venv_env):
    proc, out, launches = run_with_dying_kernels(tmp_path, fixture_data, venv_env, "1,2,3")
    assert proc.returncode != 0 and "launch 3 dies" in out, out[-3000:]
    assert len(list(launches.iterdir())) == 3  # the index's page three times; no other page started
    assert not (tmp_path / "work/results/report/ledger.csv").exists()


def small_config(**changes) -> RunConfig:
    return RunConfig(**{"dataset": "fixture", "family": "fold", "depth": 2, "channels": 1,
                        "bias_init": -0.5, "lr": 0.01, "epochs": 2, "val_size": 100,
                        "train_size": 100, "test_size": 50, "batch_size": 20, **changes})


def test_same_seed_on_cpu_gives_identical_metrics_and_weights(tmp_path, fixture_data):
    data = fixture_data[2]
    for name in ("a", "b"):
        train.train(small_config(seed=3), data, tmp_path / name, torch.device("cpu"), 0)
    assert without_timing(tmp_path / "a/metrics.csv") == without_timing(tmp_path / "b/metrics.csv")
    assert same_weights(tmp_path / "a/final.pt", tmp_path / "b/final.pt")
    train.train(small_config(seed=4), data, tmp_path / "c", torch.device("cpu"), 0)
    assert not same_weights(tmp_path / "a/final.pt", tmp_path / "c/final.pt")


def test_non_finite_parameters_are_detected():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    assert train.all_finite(model)
    for bad in (float("nan"), float("inf"), float("-inf")):
        with torch.no_grad():
            model[1].bias.fill_(bad)
        assert not train.all_finite(model)


def test_parameters_turning_nan_end_the_run_as_diverged_at_that_step(tmp_path, fixture_data,
                                                                     monkeypatch):
    """A NaN written into the weights by the last step of an epoch (caught by the epoch-end check)
    and by a step mid-epoch (caught by the next loss): both record the step of the bad update."""
    adam_step = optimisers.Adam.step
    for poison_at in (5, 3):  # 5 steps per epoch: the epoch's last step, then a middle one
        calls = {"n": 0}

        def poisoned(self, *args, **kwargs):
            out = adam_step(self, *args, **kwargs)
            calls["n"] += 1
            if calls["n"] == poison_at:
                with torch.no_grad():
                    self.param_groups[0]["params"][0].fill_(float("nan"))
            return out

        monkeypatch.setattr(optimisers.Adam, "step", poisoned)
        out = tmp_path / str(poison_at)
        summary = train.train(small_config(epochs=1), fixture_data[2], out, torch.device("cpu"), 0)
        assert summary["status"] == "diverged" and summary["diverged_step"] == poison_at
        metrics = pd.read_csv(out / "metrics.csv")
        assert metrics.loc[metrics.metric == "diverged_at_step", "value"].tolist() == [poison_at]


def test_infinite_initial_bias_diverges_at_step_zero(tmp_path, fixture_data):
    summary = train.train(small_config(bias_init=float("inf")), fixture_data[2], tmp_path,
                          torch.device("cpu"), 0)
    assert summary["status"] == "diverged" and summary["diverged_step"] == 0


@pytest.mark.parametrize("fail", ["os.replace", "os.fsync"])
def test_a_failed_checkpoint_write_leaves_the_previous_one_intact(tmp_path, monkeypatch, fail):
    path = tmp_path / "checkpoint.pt"
    previous = {"model": {"w": torch.arange(4.0)}, "state": {"global_step": 7}}
    atomic_save(previous, path)

    def broken(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(f"orthojac.files.{fail}", broken)  # the atomic writer under atomic_save
    with pytest.raises(OSError, match="simulated"):
        atomic_save({"model": {"w": torch.zeros(4)}, "state": {"global_step": 8}}, path)
    monkeypatch.undo()
    loaded = load_checkpoint(path)
    assert loaded["state"] == {"global_step": 7} and torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_a_failure_while_checkpointing_in_training_keeps_the_last_checkpoint(
        tmp_path, fixture_data, monkeypatch):
    cfg = small_config()
    saves = {"n": 0}
    real_save = train.atomic_save

    def flaky(obj, path):
        saves["n"] += 1
        if saves["n"] == 3:
            raise OSError("disk full (simulated)")
        real_save(obj, path)

    monkeypatch.setattr(train, "atomic_save", flaky)
    with pytest.raises(OSError, match="simulated"):
        train.train(cfg, fixture_data[2], tmp_path, torch.device("cpu"), 2)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["state"]["global_step"] == 4
    assert not list(tmp_path.glob(".*.tmp"))


def test_stale_temporaries_of_a_killed_write_are_removed_on_restart(tmp_path, fixture_data):
    stale = tmp_path / ".checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoi")
    train.train(small_config(epochs=1), fixture_data[2], tmp_path, torch.device("cpu"), 0)
    assert not stale.exists() and (tmp_path / "metrics.csv").exists()
    assert not (tmp_path / "checkpoint.pt").exists()  # a finished run keeps no resume point


def test_forced_rerun_under_snakemake_starts_clean_and_gives_the_same_numbers(
        tmp_path, fixture_data, reference, venv_env):
    """Snakemake reruns a finished job (--forcerun, deleted outputs, changed code or params): the
    run starts from the beginning, not from a finished run's checkpoint, and gives the same
    numbers."""
    mirror, files, _ = fixture_data
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config_for(mirror, files, SETTINGS)))
    target = "results/runs/tiny/default/final.pt"
    run_dir = work / "results/runs/tiny/default"
    for extra in ([], ["--forcerun", target]):
        done = subprocess.run(SNAKEMAKE + extra + ["--until", target, target], cwd=work, env=venv_env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert not (run_dir / "checkpoint.pt").exists()
        assert without_timing(run_dir / "metrics.csv") == without_timing(reference / "metrics.csv")
        assert same_weights(run_dir / "final.pt", reference / "final.pt")
    log = (work / "results/logs/train/tiny/default.log").read_text()
    assert "resuming" not in log and "diverged" not in log, log
    (run_dir / "metrics.csv").unlink()  # outputs deleted by hand: the rerun starts clean too
    again = subprocess.run(SNAKEMAKE + ["results/runs/tiny/default/metrics.csv"], cwd=work, env=venv_env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert without_timing(run_dir / "metrics.csv") == without_timing(reference / "metrics.csv")


def test_a_checkpoint_of_a_finished_run_is_not_resumed(tmp_path, fixture_data, capsys):
    cfg = small_config()
    train.train(cfg, fixture_data[2], tmp_path / "ref", torch.device("cpu"), 0)
    out = tmp_path / "run"
    out.mkdir()
    finished = {"model": {}, "optimizer": {}, "torch_rng": torch.get_rng_state(), "config": cfg.to_dict(),
                "code": checkpoint.code_fingerprint(),
                "state": {"epoch": 2, "step_in_epoch": 0, "global_step": 10, "metrics": [],
                          "status": "completed", "diverged_step": None, "seconds": 1.0}}
    atomic_save(finished, out / "checkpoint.pt")
    train.train(cfg, fixture_data[2], out, torch.device("cpu"), 0)
    assert "not resumed: its run already ended (completed); starting afresh" in capsys.readouterr().err
    assert without_timing(out / "metrics.csv") == without_timing(tmp_path / "ref" / "metrics.csv")


def test_a_checkpoint_written_by_other_code_starts_the_run_afresh(tmp_path, fixture_data, capsys,
                                                                 monkeypatch):
    cfg = small_config(epochs=2)
    train.train(cfg, fixture_data[2], tmp_path / "ref", torch.device("cpu"), 0)
    # An interrupted run: SIGTERM-like stop after 3 steps leaves a running checkpoint.
    out = tmp_path / "run"
    monkeypatch.setattr(train.Stop, "requested", False)
    real_step = train.training_step
    calls = {"n": 0}

    def stop_after_three(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            train.Stop.requested = True
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train, "training_step", stop_after_three)
    with pytest.raises(SystemExit):
        train.train(cfg, fixture_data[2], out, torch.device("cpu"), 0)
    monkeypatch.setattr(train, "training_step", real_step)
    monkeypatch.setattr(train.Stop, "requested", False)
    saved = load_checkpoint(out / "checkpoint.pt")
    assert saved["state"]["status"] == "running" and saved["code"] == checkpoint.code_fingerprint()
    # The same checkpoint, as another version of orthojac would have written it.
    atomic_save({**saved, "code": "0" * 64}, out / "checkpoint.pt")
    capsys.readouterr()
    train.train(cfg, fixture_data[2], out, torch.device("cpu"), 0)
    err = capsys.readouterr().err
    assert "not resumed: it was written by other code (fingerprint 000000000000" in err, err
    assert "resuming" not in err
    assert without_timing(out / "metrics.csv") == without_timing(tmp_path / "ref" / "metrics.csv")


def test_the_code_fingerprint_changes_with_any_module(tmp_path, monkeypatch):
    import shutil

    package = tmp_path / "orthojac"
    shutil.copytree(Path(checkpoint.__file__).parents[1], package, ignore=shutil.ignore_patterns("__pycache__"))
    before = checkpoint.code_fingerprint()
    fake = package / "run" / "checkpoint.py"
    monkeypatch.setattr(checkpoint, "__file__", str(fake))
    checkpoint.code_fingerprint.cache_clear()
    try:
        assert checkpoint.code_fingerprint() == before  # same bytes, same fingerprint
        layers = package / "nets" / "layers.py"
        layers.write_text(layers.read_text() + "\n# edited\n")
        checkpoint.code_fingerprint.cache_clear()
        assert checkpoint.code_fingerprint() != before
    finally:
        checkpoint.code_fingerprint.cache_clear()


class Payload:
    """An object a pickle would rebuild by calling a function: what weights_only refuses."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoints_are_loaded_with_weights_only(tmp_path):
    marker = tmp_path / "executed"
    torch.save({"model": {"w": torch.ones(1)}, "extra": Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="Weights only load failed"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    atomic_save({"model": {"w": torch.ones(1)}, "config": {"lr": 0.1}}, tmp_path / "ok.pt")
    assert load_checkpoint(tmp_path / "ok.pt")["config"] == {"lr": 0.1}


def test_a_spectra_checkpoint_past_the_last_epoch_fails_before_any_job(tmp_path, venv_env):
    config = config_for(Path("m"), {}, {"dataset": "fixture", "family": "fold", "depth": 2, "channels": 1, "epochs": 2},
                        name="late")
    config["data"] = {"fixture": {"files": {name: {"size": 1, "sha256": "0" * 64} for name in IDX_FILES}}}
    config["experiments"][0]["spectra"] = {"checkpoints": ["init", "epoch3"], "choice": "test"}
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run(SNAKEMAKE, cwd=work, env=venv_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "config: experiments[late].spectra.checkpoints: epoch3 is past the 2 epochs" in proc.stdout + proc.stderr
    config["experiments"][0]["spectra"]["checkpoints"] = ["epoch0"]
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run(SNAKEMAKE, cwd=work, env=venv_env, capture_output=True, text=True, timeout=300)
    assert "config: experiments[0](late).spectra.checkpoints[0]: 'epoch0' does not match" in proc.stdout + proc.stderr
    assert not (work / "results").exists()

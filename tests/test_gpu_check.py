"""benchmarks/gpu_check.sh rehearsed on the CPU (issue 17): the one command that a GPU machine runs,
every stage shrunk (--rehearse), so that the GPU minutes are not spent on a typo.

The rehearsal runs the same script, the same Python entry points and the verify DAG's every rule
(config/verify.yaml with each grid cut to one value and tiny networks) to the report, and writes
the same ≤ 6 result files. It needs the Fashion-MNIST mirror (Debian's dataset-fashion-mnist, which
CI installs): verify's data rule checks the real files' digests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from conftest import REPO

MIRROR = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(not (MIRROR / "train-images-idx3-ubyte.gz").is_file(),
                                reason=f"no Fashion-MNIST mirror at {MIRROR}")


def gpu_check(out: Path, *args: str, env: dict, timeout: int = 2400) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(out), "--rehearse", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def env() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHON"] = sys.executable
    env.pop("ORTHOJAC_FAST_PATH", None)
    return env


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, env):
    root = tmp_path_factory.mktemp("gpu_check")
    proc = gpu_check(root / "out", "--work", str(root / "work"), env=env)
    return root, proc


def test_rehearsal_runs_every_stage_and_writes_at_most_six_files(rehearsal):
    root, proc = rehearsal
    log = (root / "out" / "gpu_check.log").read_text()
    assert proc.returncode == 0, log[-6000:]
    files = sorted(p.name for p in (root / "out").iterdir())
    assert files == ["gpu-verify.tar.gz", "gpu_check.log", "manifest.json", "smoke.json",
                     "throughput.json", "verify.log"]
    for stage in ("a", "b", "c"):
        assert f"=== stage {stage}: ok after" in log


def test_smoke_checks_each_regime_with_a_smaller_last_batch(rehearsal):
    root, _ = rehearsal
    smoke = json.loads((root / "out" / "smoke.json").read_text())
    checks = {c["check"]: c for c in smoke["checks"]}
    assert set(checks) == {"fast_path/fold", "fast_path/orthoff", "fast_path/limit", "fast_path/hard",
                           "fast_path/soft", "kill_and_resume", "spectra_device_vs_cpu",
                           "bf16_vs_fp32_depth3"}
    assert all(c["ok"] for c in checks.values()), checks
    for name in ("fold", "orthoff", "limit", "hard", "soft"):
        c = checks[f"fast_path/{name}"]
        assert c["last_batch"] > 0 and c["dynamo_graphs"] == 1 and c["fast_path"]["compile"]
        assert sum(c["cuda_graph_captures_by_phase"].values()) == c["cuda_graph_captures"]
    assert checks["kill_and_resume"]["resumed"] and checks["kill_and_resume"]["killed_before_the_end"]
    assert checks["kill_and_resume"]["max_relative_weight_difference"] == 0.0  # CPU: bit-identical


def test_throughput_stage_measures_the_training_path(rehearsal):
    root, _ = rehearsal
    result = json.loads((root / "out" / "throughput.json").read_text())
    paths = [(r["path"], r["batch_size"]) for r in result["results"]]
    assert paths == [("naive", 128), ("pipeline", 16), ("pipeline", 32)]
    assert result["accuracy"]["fp32"]["status"] == "completed"


def test_verify_stage_reaches_the_report_and_its_manifest(rehearsal):
    root, _ = rehearsal
    with tarfile.open(root / "out" / "gpu-verify.tar.gz") as tar:
        names = tar.getnames()
    assert "gpu-verify/manifest.json" in names and "gpu-verify/report/ledger.csv" in names
    assert "gpu-verify/report/index.html" in names
    assert any(n.startswith("gpu-verify/tables/") for n in names)
    assert any(n.startswith("gpu-verify/figures/") for n in names)
    # every run's metrics and config, and the spectra's rows, as a stopped stage would leave them
    runs = {n.split("/")[2] for n in names if n.startswith("gpu-verify/runs/") and n.endswith("metrics.csv")}
    assert runs == {e["name"] for e in yaml.safe_load((REPO / "config" / "verify.yaml").read_text())["experiments"]}
    assert any(n.startswith("gpu-verify/spectra/") and n.endswith(".csv") for n in names)
    manifest = json.loads((root / "out" / "manifest.json").read_text())
    assert {"commit", "torch", "date", "stages", "rules", "command"} <= set(manifest)
    # the checkout's HEAD, the tracked files that differ from it, and the bundle's commit, each recorded
    changed = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    assert manifest["changed_from_commit"] == [line[3:] for line in changed]
    bundle = REPO / ".gpu-check" / "commit"
    assert manifest["bundle_commit"] == (bundle.read_text().strip() if bundle.exists() else "unknown")
    assert manifest["stages"]["c"]["status"] == "ok"
    assert {"train", "spectrum", "report_index"} <= set(manifest["rules"])
    assert all(r["jobs"] >= 1 and r["seconds"] >= 0 for r in manifest["rules"].values())
    assert "ORTHOJAC_FAST_PATH='--no-compile --no-cuda-graphs --precision fp32'" in manifest["command"]
    config = json.loads(next((root / "work" / "results" / "runs").glob("*/*/config.json")).read_text())
    assert config["environment"]["fast_path"]["compile"] is False


def test_a_stage_past_its_timeout_is_recorded_and_the_next_stage_still_runs(tmp_path, env):
    """Stage a killed by its timeout: its log so far stays in gpu_check.log, the stage is
    recorded as timed out, stage b runs after it, the exit status says a stage failed."""
    proc = gpu_check(tmp_path / "out", "--stages", "ab", "--work", str(tmp_path / "work"),
                     env={**env, "GPU_CHECK_TIMEOUT_A": "8"}, timeout=1200)
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    assert proc.returncode == 1
    assert "=== stage a: timeout after" in log and "=== stage b: ok after" in log
    assert "a timeout" in log


def test_rehearsal_config_keeps_every_experiment_and_section_of_verify():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "rehearse-config",
                          "--out", "/dev/stdout"], capture_output=True, text=True, check=True).stdout
    small, verify = yaml.safe_load(out), yaml.safe_load((REPO / "config" / "verify.yaml").read_text())
    assert [e["name"] for e in small["experiments"]] == [e["name"] for e in verify["experiments"]]
    assert [e["claims"] for e in small["experiments"]] == [e["claims"] for e in verify["experiments"]]
    assert set(small) == set(verify)
    for exp in small["experiments"]:
        assert exp["settings"]["depth"]["value"] == 2
        assert all(len(s.get("grid", [0])) == 1 for s in exp["settings"].values())


def test_stage_times_need_no_bc(tmp_path, env):
    """The H200 had no `bc`: every stage time came out empty and the manifest step crashed. With a
    `bc` that fails placed first on PATH, set-up still records its seconds."""
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "bc").write_text("#!/bin/sh\nexit 127\n")
    (shims / "bc").chmod(0o755)
    proc = gpu_check(tmp_path / "out", "--stages", "none", "--work", str(tmp_path / "work"),
                     env={**env, "PATH": f"{shims}{os.pathsep}{env['PATH']}"}, timeout=600)
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    setup = [line.split() for line in log.splitlines() if line.startswith("setup ok")]
    assert proc.returncode == 0, log
    assert setup and float(setup[-1][2]) >= 0


def test_data_step_leaves_verified_files_untouched(tmp_path):
    """A rerun of the data step on the same machine keeps the verified files as they are (same
    modification time), so Snakemake resumes the verify run instead of retraining every run."""
    command = [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "data", "--work", str(tmp_path),
               "--mirror", str(MIRROR)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run(command, check=True, capture_output=True, env=env)
    files = sorted((tmp_path / "results" / "data" / "fashion_mnist").iterdir())
    assert len(files) == 4
    before = {f.name: f.stat().st_mtime_ns for f in files}
    second = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    assert "left untouched" in second.stdout
    assert {f.name: f.stat().st_mtime_ns for f in files} == before
    files[0].write_bytes(b"corrupt")  # a file that no longer verifies is fetched again
    subprocess.run(command, check=True, capture_output=True, env=env)
    assert files[0].stat().st_size > 100


def test_graph_counter_tells_training_captures_from_evaluation_ones(monkeypatch):
    """The smoke check's CUDA-graph count by phase (both GPUs so far recorded 5 captures where the
    bound allows 4): a capture inside orthojac.run.train.evaluate counts as evaluation, any other as
    training, also after an evaluation that raised; every capture still reaches the real
    capture_begin; both patches are undone afterwards. A stand-in graph class: the CPU has no CUDA."""
    import importlib

    import torch

    from orthojac.run import train

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    gpu_check_module = importlib.import_module("gpu_check")
    reached = []

    class Graph:
        def capture_begin(self, *args, **kwargs):
            reached.append(args)

    def evaluate(fail=False):
        Graph().capture_begin("evaluation")
        if fail:
            raise RuntimeError("an evaluation that fails")

    original = Graph.capture_begin
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph)
    monkeypatch.setattr(train, "evaluate", evaluate)
    with gpu_check_module.graph_counter() as count:
        Graph().capture_begin("training")
        train.evaluate()
        with pytest.raises(RuntimeError):
            train.evaluate(fail=True)
        Graph().capture_begin("training")
    assert count == {"captures": 4, "training": 2, "evaluation": 2}
    assert reached == [("training",), ("evaluation",), ("evaluation",), ("training",)]
    assert Graph.capture_begin is original and train.evaluate is evaluate

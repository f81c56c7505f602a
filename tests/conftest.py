"""Shared fixtures: a tiny IDX data set made by the test, the repository's paths, the tiny
pipeline run once per session (its working folder is shared by the workflow and report tests),
the dry runs of the configurations (one per configuration and session, each in a folder of its
own), and the tiers.

Tiers (markers registered in pyproject.toml; README "Tests"): every test has exactly one, set here
from FILE_TIERS, the table of test files, and not by hand:
- fast: the library and the workflow's logic (layers, activations, orthogonality, spectra on
  small networks, judges, config and dry runs, tables, figures); `make test-fast`, under 2 minutes;
- pipeline: the tests that read the tiny pipeline's outputs (the `tiny_pipeline` fixture, run once
  per session and shared): a test of a fast file that asks for that fixture is a pipeline test;
- system: the machine around the code: SLURM, the browser, faults with kill -9, a fresh machine,
  the GPU check's rehearsal.
`make test` runs all three.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from orthojac.reference import ROUNDING_PINS

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)

TIERS = ("fast", "pipeline", "system")
# The tier of every test file (a new file must be added here: collection stops naming it).
FILE_TIERS = {
    **dict.fromkeys([
        "test_activations.py", "test_checkpoints.py", "test_claims.py", "test_claims_h2.py",
        "test_claims_h3.py", "test_claims_hlav.py", "test_claims_registry.py", "test_claims_rule.py", "test_compare.py",
        "test_config.py", "test_config_fuzz.py", "test_config_hardening.py",
        "test_console_scripts.py", "test_data.py", "test_downloads.py", "test_envs.py",
        "test_families.py", "test_fastpath.py", "test_figure_registry.py", "test_files.py", "test_h4.py", "test_hlav.py",
        "test_hlav_depth.py", "test_hlav_lstm.py", "test_import_graph.py", "test_init_study.py",
        "test_layers.py", "test_mnist.py", "test_native.py", "test_new_setting.py", "test_optimisers.py", "test_progress.py", "test_reference_cpu.py", "test_reference_parts.py",
        "test_reference_rounding.py", "test_regularisers.py", "test_report.py", "test_report_overview.py", "test_scale.py",
        "test_screens.py", "test_spectra.py",
        "test_thesis_settings.py", "test_tiers.py", "test_workflow.py", "test_workflow_lib.py",
        "test_zoo.py",
    ], "fast"),
    **dict.fromkeys(["test_outputs_unchanged.py", "test_reference_parts_run.py", "test_reference_rerun.py",
                     "test_report_render.py"], "pipeline"),
    **dict.fromkeys(["test_faults.py", "test_fresh_machine.py", "test_gpu_check.py", "test_report_browser.py",
                     "test_slurm.py"], "system"),
}


def tier_of(file_name: str, fixturenames) -> str:
    """The one tier of a test in `file_name` that asks for `fixturenames`."""
    if file_name not in FILE_TIERS:
        raise pytest.UsageError(f"tests/{file_name} has no tier: add it to FILE_TIERS in tests/conftest.py "
                                f"(one of {', '.join(TIERS)})")
    tier = FILE_TIERS[file_name]
    if tier == "fast" and "tiny_pipeline" in fixturenames:
        return "pipeline"
    return tier


# {nodeid: tier} of every collected test, before `-m` deselects any (tests/test_tiers.py reads it).
COLLECTED_TIERS = pytest.StashKey[dict]()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    tiers = config.stash.setdefault(COLLECTED_TIERS, {})
    for item in items:
        by_hand = [m.name for m in item.iter_markers() if m.name in TIERS]
        if by_hand:
            raise pytest.UsageError(f"{item.nodeid}: marked {by_hand} by hand; tiers come from FILE_TIERS "
                                    "in tests/conftest.py")
        tiers[item.nodeid] = tier_of(item.path.name, item.fixturenames)
        item.add_marker(getattr(pytest.mark, tiers[item.nodeid]))


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> bytes:
    """Write a uint8 array in IDX format (gzip-compressed by default); return the raw payload."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return payload


def make_idx_dataset(folder: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> dict:
    """A learnable 10-class data set of 28×28 images: class c is a bright bar at row 2c + noise.

    Returns {file name: {"size": …, "sha256": …}} of the decompressed payloads.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 4 + 2 * c : 6 + 2 * c, 4:24] = 250
        for name, array in ((f"{split}-images-idx3-ubyte", images), (f"{split}-labels-idx1-ubyte", labels)):
            payload = write_idx(folder / f"{name}.gz", array)
            files[name] = {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    return files


@pytest.fixture
def idx_dataset(tmp_path) -> tuple[Path, dict]:
    folder = tmp_path / "mirror"
    return folder, make_idx_dataset(folder)


@pytest.fixture
def idx_folder(idx_dataset, tmp_path) -> Path:
    """The generated IDX data set, decompressed as the fetch rule leaves it."""
    mirror, files = idx_dataset
    folder = tmp_path / "data"
    folder.mkdir()
    for name in files:
        (folder / name).write_bytes(gzip.decompress((mirror / f"{name}.gz").read_bytes()))
    return folder


# A stand-in for the python3 kernel. Its launches are numbered in the order they start; those in
# `dying` exit before they reply to kernel_info, as a kernel does when another process took one of
# the ports Jupyter chose for it before it bound them (jupyter_client#154). Every other launch is
# ipykernel itself.
DYING_KERNEL = """import os, sys
folder, dying = sys.argv.pop(1), [int(n) for n in sys.argv.pop(1).split(",")]
n = 1
while True:
    try:
        os.close(os.open(os.path.join(folder, str(n)), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        break
    except FileExistsError:
        n += 1
if n in dying:
    sys.exit("stand-in kernel: launch %d dies before kernel_info" % n)
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


def dying_kernel(jupyter: Path, launches: Path, dying: str) -> Path:
    """A Jupyter data folder whose python3 kernel is the stand-in above, dying at the launches named
    in `dying` ("1,3") and leaving one file per launch in `launches`; put it first on JUPYTER_PATH."""
    spec = jupyter / "kernels/python3"
    spec.mkdir(parents=True)
    launches.mkdir()
    (spec / "launcher.py").write_text(DYING_KERNEL)
    argv = [sys.executable, str(spec / "launcher.py"), str(launches), dying, "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    return jupyter


def stop_process(pid: int, timeout: float = 10.0) -> None:
    """SIGSTOP `pid` and return once it is stopped: kill() only queues the signal, and a process
    running on the other core can go on (finish a checkpoint's rename, say) until it is delivered."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
        assert time.monotonic() < deadline, f"process {pid} not stopped {timeout} s after SIGSTOP"
        time.sleep(0.001)


def _venv_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@pytest.fixture(scope="session")
def venv_env() -> dict:
    """Environment for subprocesses: the interpreter running the tests first on PATH."""
    return _venv_env()


SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_snakemake(args: list[str], cwd: Path, env: dict, timeout: int = 900) -> str:
    """Run Snakemake; fail the test with the end of its output if it fails."""
    proc = subprocess.run(SNAKEMAKE + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def outside_checkout(*configfiles: Path) -> list:
    """Snakemake's arguments for the checkout's Snakefile run from another folder: the Snakefile,
    and config/config.yaml (which its `configfile:` names relative to the working folder) before
    the given config files."""
    base = REPO / "config/config.yaml"
    return ["--snakefile", str(REPO / "Snakefile"), "--configfile", str(base),
            *[str(c) for c in configfiles if Path(c) != base]]


def job_counts(out: str) -> dict:
    """{rule: jobs} of a Snakemake run's "Job stats:" table (its `total` row included)."""
    lines = out.split("Job stats:", 1)[1].splitlines()[3:]
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="session")
def plan(tmp_path_factory):
    """plan("config/quick.yaml") is the output of the Snakefile's dry run of that configuration
    (`-n -p --forceall --cores 1`, every job with its output files and shell command) in an empty
    folder of its own, so what the user's checkout holds plans nothing away. Each configuration is
    planned once per session, however many tests read its plan."""
    plans = {}

    def dry_run(configfile: str) -> str:
        if configfile not in plans:
            work = tmp_path_factory.mktemp("plan")
            plans[configfile] = run_snakemake(["-n", "-p", "--forceall", "--cores", "1",
                                               *outside_checkout(REPO / configfile)], work, _venv_env())
        return plans[configfile]

    return dry_run


TEST_CONFIG = REPO / ".test" / "config.yaml"


def fixture_config(mirror: Path, files: dict) -> dict:
    """The tiny pipeline's config (.test/config.yaml: two tiny runs, H1, H3, H4, H5 on generated
    IDX data; H2 whose downloads find no source) with its data set at `mirror`, holding `files`
    ({name: {"size", "sha256"}}, as make_idx_dataset returns them)."""
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["data"]["fixture"].update(mirrors=[str(mirror)], files=files)
    for download in config["downloads"].values():
        download["mirrors"] = [str(mirror / "no_such_folder")]
    return config


# What decides the rounding of the tiny pipeline's numbers on an x86-64 CPU, pinned for its run so
# that its tables are the same bit for bit on any such machine (tests/test_outputs_unchanged.py):
# the instruction set of torch's own kernels (ATen), of oneDNN's and of MKL's (torch's BLAS and
# LAPACK: H4's svdvals), and one thread each (torch's intra-op pool, OpenMP, MKL, OpenBLAS).
# AVX2, not the machine's best, because every x86-64 CPU of the last ten years has it and
# .test/expected/ was written on an AVX2 machine. .test/expected/pinned.json records the pins it
# was written under.
# The reference's pins (orthojac.reference.ROUNDING_PINS, the one list of what decides rounding),
# with MKL's most portable branch instead of its AVX2 one (the tiny pipeline is too small for
# MKL's speed to matter, and the copy was written under it) and OpenBLAS's threads too.
PINNED_ENV = {**ROUNDING_PINS, "MKL_CBWR": "COMPATIBLE", "OPENBLAS_NUM_THREADS": "1"}


def run_tiny_pipeline(root: Path, env_overrides: dict | None = None, targets: tuple = ()) -> Path:
    """Run the Snakefile on the tiny configuration under `root` (the generated data set in
    root/mirror, the working folder root/work) with PINNED_ENV and then `env_overrides` in its
    environment; return the working folder (results/ under it)."""
    files = make_idx_dataset(root / "mirror")
    assert files == yaml.safe_load(TEST_CONFIG.read_text())["data"]["fixture"]["files"], \
        "make_idx_dataset no longer writes the files .test/config.yaml names"
    work = root / "work"
    work.mkdir()
    env = {**_venv_env(), **PINNED_ENV, **(env_overrides or {})}
    run_snakemake(["--snakefile", str(REPO / "Snakefile"), "--configfile", str(TEST_CONFIG), "--cores", "2",
                   *targets], work, env)
    return work


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> Path:
    """The working folder of one end-to-end run of the Snakefile on the tiny configuration
    (results/ under it), under PINNED_ENV. Run once per session; tests only read it, or write
    beside results/."""
    return run_tiny_pipeline(tmp_path_factory.mktemp("tiny_pipeline"))

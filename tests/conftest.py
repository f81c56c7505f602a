"""Shared fixtures: a tiny IDX data set made by the test, the repository's paths, and the tiny
pipeline run once per session (its working folder is shared by the workflow and report tests)."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


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


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> Path:
    """The working folder of one end-to-end run of the Snakefile on the tiny configuration
    (results/ under it). Run once per session; tests only read it, or write beside results/."""
    root = tmp_path_factory.mktemp("tiny_pipeline")
    files = make_idx_dataset(root / "mirror")
    assert files == yaml.safe_load(TEST_CONFIG.read_text())["data"]["fixture"]["files"], \
        "make_idx_dataset no longer writes the files .test/config.yaml names"
    work = root / "work"
    work.mkdir()
    run_snakemake(["--snakefile", str(REPO / "Snakefile"), "--configfile", str(TEST_CONFIG), "--cores", "2"],
                  work, _venv_env())
    return work

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


def fixture_config(mirror: Path, files: dict) -> dict:
    """Two tiny runs (fold, plain ReLU), a tiny H1 (RNN), H3 (deep linear) and H5 (deep tanh/ReLU)
    on the generated IDX data, a tiny H4 (spectra at initialisation, no data), every stage of the
    pipeline; H2 (LSTM) whose downloads find no source."""
    return {
        "data": {"fixture": {"urls": ["http://nonexistent.invalid/"], "mirrors": [str(mirror)], "files": files}},
        "experiments": [{
            "name": "tiny",
            "description": "pipeline test on generated IDX data",
            "claims": ["P1", "P2", "P3"],
            "spectra": {"checkpoints": ["init", "epoch1", "final"], "points": 1, "layers": True, "choice": "test"},
            "settings": {
                "dataset": {"value": "fixture", "choice": "test"},
                "family": {"grid": ["fold", "plain"], "choice": "test"},
                "depth": {"value": 2, "choice": "test"},
                "channels": {"value": 1, "choice": "test"},
                "bias_init": {"value": -0.5, "choice": "test"},
                "lr": {"value": 0.01, "choice": "test"},
                "epochs": {"value": 2, "choice": "test"},
                "val_size": {"value": 100, "choice": "test"},
                "batch_size": {"value": 50, "choice": "test"},
            },
        }],
        "h4": {
            "description": "H4 pipeline test: tiny dense networks at initialisation",
            "activations": {"grid": ["relu", "tanh"], "choice": "test"},
            "weights": {"grid": ["gaussian", "orthogonal"], "choice": "test"},
            "width": {"value": 16, "choice": "test"},
            "depths": {"grid": [2, 4], "choice": "test"},
            "seeds": {"grid": [0], "choice": "test"},
            "q_star": {"value": 0.015625, "choice": "test"},
        },
        "hlav_rnn": {
            "description": "H1 pipeline test on generated IDX data",
            "dataset": {"value": "fixture", "choice": "test"},
            "hidden": {"value": 8, "choice": "test"},
            "batch_size": {"value": 50, "choice": "test"},
            "train_size": {"value": 200, "choice": "test"},
            "val_size": {"value": 100, "choice": "test"},
            "test_size": {"value": 100, "choice": "test"},
            "epochs": {"value": 1, "choice": "test"},
            "lr": {"value": 0.01, "choice": "test"},
            "gain": {"value": 1.1, "choice": "test"},
            "lambdas": {"grid": [0.01], "choice": "test"},
            "variants": {"grid": ["eq11", "listing"], "choice": "test"},
            "seeds": {"grid": [0, 1], "choice": "test"},
        },
        # H2 with no reachable source: the report must say "data unavailable" and render the rest
        "downloads": {key: {"file": file, "urls": ["http://nonexistent.invalid/" + file],
                            "mirrors": [str(mirror / "no_such_folder")], "size": None, "sha256": None,
                            "choice": "test"}
                      for key, file in (("text", "rt-polaritydata.tar.gz"), ("vectors", "glove.6B.zip"))},
        "hlav_lstm": {
            "description": "H2 pipeline test: data unavailable",
            "data": {"value": "optional", "choice": "test"},
            "text": {"value": "text", "choice": "test"},
            "embeddings": {"value": "vectors", "choice": "test"},
            "embeddings_member": {"value": "glove.6B.300d.txt", "choice": "test"},
            **{k: {"value": v, "choice": "test"} for k, v in (
                ("seq_len", 10), ("hidden", 4), ("batch_size", 10), ("train_size", 20), ("val_size", 10),
                ("test_size", 10), ("corpus_seed", 0), ("epochs", 1), ("lr", 0.01), ("gain", 1.1))},
            "lambdas": {"grid": [0.01], "choice": "test"},
            "variants": {"grid": ["eq11"], "choice": "test"},
            "seeds": {"grid": [0], "choice": "test"},
        },
        "hlav_linear": {
            "description": "H3 pipeline test on generated IDX data",
            **{k: {"value": v, "choice": "test"} for k, v in {
                "dataset": "fixture", "width": 16, "sigma_w2": 1.0, "optimizer": "sgd", "lr": 0.5,
                "lr_scaling": "inverse_depth", "target": 0.5, "epochs": 2, "batch_size": 50, "eval_every": 2,
                "train_size": 200, "val_size": 100}.items()},
            "depths": {"grid": [1, 4], "choice": "test"},
            "weights": {"grid": ["orthogonal", "gaussian"], "choice": "test"},
            "seeds": {"grid": [0], "choice": "test"},
        },
        "hlav_deep": {
            "description": "H5 pipeline test on generated IDX data",
            **{k: {"value": v, "choice": "test"} for k, v in {
                "dataset": "fixture", "depth": 4, "width": 16, "optimizer": "momentum", "lr": 0.05, "epochs": 1,
                "batch_size": 50, "train_size": 200, "val_size": 100, "test_size": 100}.items()},
            "networks": {"grid": ["tanh:1.05", "relu:2"], "choice": "test"},
            "weights": {"grid": ["orthogonal", "gaussian"], "choice": "test"},
            "seeds": {"grid": [0], "choice": "test"},
        },
    }


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> Path:
    """The working folder of one end-to-end run of the Snakefile on the tiny configuration
    (results/ under it). Run once per session; tests only read it, or write beside results/."""
    root = tmp_path_factory.mktemp("tiny_pipeline")
    files = make_idx_dataset(root / "mirror")
    work = root / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(fixture_config(root / "mirror", files)))
    run_snakemake(["--snakefile", str(REPO / "Snakefile"), "--configfile", "config.yaml", "--cores", "2"],
                  work, _venv_env())
    return work

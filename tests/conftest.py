"""Shared fixtures: a tiny IDX data set made by the test, and the repository's paths."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

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


@pytest.fixture(scope="session")
def venv_env() -> dict:
    """Environment for subprocesses: the interpreter running the tests first on PATH."""
    import sys

    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env

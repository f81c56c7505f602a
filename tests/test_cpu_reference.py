"""The CPU fp32 path stays bit-identical to a reference checkout's (the GPU path's changes of
issue 17 — fp32 residual stream under autocast, ReLU_k's signs as a buffer, cached penalty masks,
the device-side divergence test, the dynamic batch dimension — must not move a CPU result by one
bit).

Each run below trains with `python -m orthojac.train` twice on the generated IDX fixture: once with
this checkout's code and once with the reference code (ORTHOJAC_REFERENCE_SRC, default
/work/main/src: the main checkout of the project), each into a temporary folder, and compares
metrics.csv (every value but the timings) and final.pt's weights exactly. Skipped where no
reference checkout exists (it is a check for a developer's machine, beside the tests of each
mechanism).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import REPO, make_idx_dataset

REFERENCE = Path(os.environ.get("ORTHOJAC_REFERENCE_SRC", "/work/main/src"))
pytestmark = pytest.mark.skipif(
    not (REFERENCE / "orthojac" / "train.py").is_file() or REFERENCE.resolve() == (REPO / "src").resolve(),
    reason=f"no reference checkout at {REFERENCE} (set ORTHOJAC_REFERENCE_SRC)")

COMMON = ["--val-size=40", "--test-size=60", "--train-size=90", "--batch-size=32", "--epochs=2",
          "--depth=2", "--seed=5"]  # 90 images: two batches of 32 and a last one of 26
RUNS = {
    # relu_k (its signs), the soft penalty on convolutions (its masks), the fold stream; a
    # checkpoint every 2 steps is written and removed on the way
    "fold_relu_k_soft": ["--family=fold", "--activation=relu_k", "--k=2", "--channels=2",
                         "--regime=soft", "--alpha=0.01", "--bias-init=-0.5", "--lr=0.01"],
    # sigma_k, the orthoff output, regime hard (torch's orthogonal parametrisation)
    "orthoff_sigma_k_hard": ["--family=orthoff", "--activation=sigma_k", "--k=1", "--channels=2",
                             "--regime=hard", "--lr=0.01"],
    # the limit stream, and a run that diverges: the diverged step and the last weights
    "limit_diverges": ["--family=limit", "--delta=0.1", "--channels=2", "--bias-init=-0.5",
                       "--lr=1e6"],
}


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reference_data")
    files = make_idx_dataset(root / "mirror", n_train=130, n_test=60)
    folder = root / "idx"
    folder.mkdir()
    for name in files:
        (folder / name).write_bytes(gzip.decompress((root / "mirror" / f"{name}.gz").read_bytes()))
    return folder


def train(src: Path, args: list[str], data: Path, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("ORTHOJAC_FAST_PATH", None)
    subprocess.run([sys.executable, "-m", "orthojac.train", *args, *COMMON, "--device=cpu",
                    "--threads=1", "--checkpoint-every=2", f"--data-dir={data}", f"--out-dir={out}"],
                   check=True, env=env, cwd=out.parent, capture_output=True, text=True)


@pytest.mark.parametrize("name", list(RUNS))
def test_cpu_run_is_bit_identical_to_the_reference_code(name, idx_dir, tmp_path):
    outs = {}
    for label, src in (("here", REPO / "src"), ("reference", REFERENCE)):
        outs[label] = tmp_path / label
        train(src, RUNS[name], idx_dir, outs[label])
    metrics = {k: pd.read_csv(o / "metrics.csv") for k, o in outs.items()}
    assert list(metrics["here"]["metric"]) == list(metrics["reference"]["metric"])
    timing = metrics["here"]["metric"] == "seconds"
    pd.testing.assert_frame_equal(metrics["here"][~timing], metrics["reference"][~timing],
                                  check_exact=True)
    if name == "limit_diverges":
        assert "diverged_at_step" in set(metrics["here"]["metric"])
    finals = {k: torch.load(o / "final.pt", weights_only=False) for k, o in outs.items()}
    assert finals["here"]["status"] == finals["reference"]["status"]
    here, ref = finals["here"]["model"], finals["reference"]["model"]
    assert list(here) == list(ref)
    for key in ref:
        assert torch.equal(here[key], ref[key]), key

"""The thesis' CPU reference jobs, whole, before and after: H1, H3 and H5 as the CPU reference runs
them (config/cpu.yaml's hlav_rnn, hlav_linear and hlav_deep sections, one seed), timed as processes from start to
exit, with this checkout's code and with an earlier commit's (default: 1dd5a27, the last before
issue 24's levers), in turns (now, before, now, before, …: a machine whose speed drifts weighs on
both), one thread each, nothing else asked of the machine. Each job's table is kept and the two
compared: the levers must not change a number (the hand-written nodes of orthojac.nets.fused run
torch's own kernels in their order; H3/H5's evaluation reads accuracy and loss from one forward pass).

    PYTHONPATH=src python benchmarks/thesis_jobs.py --data-dir results/data/fashion_mnist \\
        --jobs h5 h3 h1 --rounds 1 --json benchmarks/thesis_jobs_cpu.json

The earlier commit is checked out with `git worktree` into a temporary folder and removed after.
Both run as `python -m orthojac.thesis.<section> train …` (a module path both commits have), with
the rounding pins of orthojac.reference.env. H1 reads whatever IDX files --data-dir holds (the
reference trains on MNIST; Fashion-MNIST has the same shapes, so the same work; H3's steps to the
target accuracy depend on the data, so its time does too).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from orthojac.reference.env import ROUNDING_PINS

REPO = Path(__file__).resolve().parents[1]
BEFORE = "1dd5a27"  # the commit before issue 24's first lever (3434df8, the fused Adam)

# config/cpu.yaml's sections, one seed (the flags both commits' programs take)
JOBS = {
    "h5": ("orthojac.thesis.deep", ["--networks", "tanh:1.05", "tanh:2", "relu:2", "--weights", "orthogonal",
                                    "gaussian", "--depth", "200", "--width", "400", "--optimizer", "momentum",
                                    "--lr", "0.001", "--epochs", "2", "--batch-size", "128", "--train-size", "2000",
                                    "--val-size", "2000", "--test-size", "2000", "--seed", "0"]),
    "h3": ("orthojac.thesis.linear", ["--depths", "2", "8", "32", "128", "--width", "128", "--weights", "orthogonal",
                                      "gaussian", "--sigma-w2", "1.0", "--optimizer", "sgd", "--lr", "0.3",
                                      "--lr-scaling", "inverse_depth", "--target", "0.75", "--epochs", "2",
                                      "--batch-size", "128", "--eval-every", "3", "--train-size", "0",
                                      "--val-size", "2000", "--seed", "1"]),
    "h1": ("orthojac.thesis.rnn", ["--hidden", "64", "--batch-size", "256", "--train-size", "48000",
                                   "--val-size", "12000", "--test-size", "10000", "--epochs", "5", "--lr", "0.001",
                                   "--gain", "1.1", "--lambdas", "0.01", "--variants", "eq11", "--seed", "2"]),
}


def run_job(src: Path, job: str, data: Path, out: Path) -> float:
    """One job with the code in `src`: its wall time in seconds (the process, start to exit)."""
    module, flags = JOBS[job]
    cmd = [sys.executable, "-m", module, "train", "--data", str(data), "--threads", "1", "--out", str(out), *flags]
    env = dict(os.environ, PYTHONPATH=str(src), **ROUNDING_PINS)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=src.parent)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{job} with {src} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall


def compare_tables(a: Path, b: Path) -> tuple[bool, float | None]:
    """Whether two jobs' tables hold the same rows, every number to the bit (NaN equal to NaN), and
    the largest |difference| of their `value` columns (None when their rows are not the same keys)."""
    left, right = pd.read_csv(a), pd.read_csv(b)
    same = list(left.columns) == list(right.columns) and left.equals(right)
    keys = [c for c in left.columns if c != "value"]
    if list(left.columns) != list(right.columns) or not left[keys].equals(right[keys]):
        return same, None
    return same, float((left["value"] - right["value"]).abs().max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", nargs="+", choices=list(JOBS), default=list(JOBS))
    parser.add_argument("--before", default=BEFORE, help=f"the earlier commit (default {BEFORE})")
    parser.add_argument("--data-dir", type=Path, default=REPO / "results/data/fashion_mnist")
    parser.add_argument("--rounds", type=int, default=1, help="jobs of each kind and code, in turns")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "before": args.before, "now": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                                           capture_output=True, text=True).stdout.strip(),
              "load_average": os.getloadavg(), "jobs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(before), args.before], cwd=REPO, check=True)
        try:
            for job in args.jobs:
                times: dict[str, list[float]] = {"now": [], "before": []}
                same, largest = [], []
                for turn in range(args.rounds):
                    tables = {}
                    for name, src in (("now", REPO / "src"), ("before", before / "src")):
                        tables[name] = Path(tmp) / f"{job}-{name}-{turn}.csv"
                        times[name].append(run_job(src, job, args.data_dir.resolve(), tables[name]))
                        print(f"{job} {name} (round {turn + 1}): {times[name][-1]:.1f} s", flush=True)
                    equal, difference = compare_tables(tables["now"], tables["before"])
                    same.append(equal)
                    largest.append(difference)
                median = {name: statistics.median(t) for name, t in times.items()}
                result["jobs"][job] = {"seconds": times, "median": median,
                                       "before_over_now": median["before"] / median["now"],
                                       "same_table": all(same), "largest_value_difference": largest}
                print(f"{job}: now {median['now']:.1f} s, before {median['before']:.1f} s (medians): "
                      f"{median['before'] / median['now']:.2f}× (target ≥ 2); tables the same to the bit: "
                      f"{all(same)} (largest |difference| of a value: {largest})", flush=True)
                if args.json:
                    args.json.write_text(json.dumps(result, indent=2) + "\n")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=REPO, check=False)
    result["load_average_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""What a training job pays before and around its first step: torch's optimisers import torch._dynamo.

    PYTHONPATH=src python benchmarks/startup.py --data-dir results/data/fashion_mnist \
        --json benchmarks/startup_cpu.json

In fresh processes, one thread, timed in turns (`--rounds` each, the median reported):

- `import torch` alone, and `import torch._dynamo` after it: what a job pays before any of its code;
- a whole `python -m orthojac train` job with the optimiser it builds now
  (`orthojac.run.optimisers`: torch's bodies, never importing torch._dynamo) and with torch's own
  class (`torch.optim.Adam`, the code before), for each job of `--jobs`: `init` is `make quick`'s P1
  job (a depth-4 dense fold network evaluated at initialisation, epochs 0: twelve such jobs in
  `config/quick.yaml`), `epoch` one epoch of 2,000 images of the same network. Both write
  metrics.csv, compared to the bit but for the training time: the benchmark fails if they differ.
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

SRC = Path(__file__).resolve().parents[1] / "src"
# torch's Adam put back in place of orthojac's, in the job's own process (the code before).
TORCH_OPTIMISER = ("import torch, orthojac.run.fastpath as f\n"
                   "f.make_optimiser = lambda params, lr, fast: torch.optim.Adam(\n"
                   "    params, lr=lr, fused=True if fast.fused_adam else None)\n")
JOB = "import sys, orthojac.run.train as t\nt.main(sys.argv[1:])\n"
NETWORK = ["--dataset", "fashion_mnist", "--family", "fold", "--arch", "dense", "--depth", "4", "--width", "64",
           "--init", "cayley", "--bias-init", "0.0", "--val-size", "256", "--test-size", "256",
           "--threads", "1", "--device", "cpu"]
JOBS = {"init": ["--epochs", "0", "--train-size", "256"], "epoch": ["--epochs", "1", "--train-size", "2000"]}


def timed(code: str, args: list[str] = ()) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"the process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall


def numbers(path: Path) -> list[str]:
    """metrics.csv's lines but the training time's (metric `seconds`), which no two runs share."""
    return [line for line in path.read_text().splitlines() if line.split(",")[3:4] != ["seconds"]]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("results/data/fashion_mnist"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", nargs="*", default=list(JOBS), choices=list(JOBS))
    parser.add_argument("--network", nargs="*", help="replace the network's flags (tests: a fixture dataset)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    network = args.network if args.network is not None else NETWORK
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "load_average": os.getloadavg(), "rounds": args.rounds}

    imports = {"import torch": [], "import torch, then torch._dynamo": []}
    for _ in range(args.rounds):
        imports["import torch"].append(timed("import torch"))
        imports["import torch, then torch._dynamo"].append(timed("import torch, torch._dynamo"))
    result["imports_s"] = {k: statistics.median(v) for k, v in imports.items()}
    print(f"import torch {result['imports_s']['import torch']:.2f} s; with torch._dynamo "
          f"{result['imports_s']['import torch, then torch._dynamo']:.2f} s (medians of {args.rounds})")

    result["jobs"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for job in args.jobs:
            walls = {"orthojac's optimiser": [], "torch's optimiser": []}
            metrics = {}
            for r in range(args.rounds):
                for name, prefix in (("orthojac's optimiser", ""), ("torch's optimiser", TORCH_OPTIMISER)):
                    out = Path(tmp) / f"{job}-{r}-{name[:5]}"
                    walls[name].append(timed(prefix + JOB, [*network, *JOBS[job], "--data-dir", str(args.data_dir),
                                                           "--out-dir", str(out)]))
                    metrics.setdefault(name, numbers(out / "metrics.csv"))
            if metrics["orthojac's optimiser"] != metrics["torch's optimiser"]:
                raise RuntimeError(f"job {job}: the two optimisers wrote different metrics.csv")
            now, before = (statistics.median(walls[k]) for k in walls)
            result["jobs"][job] = {"wall_s": {k: statistics.median(v) for k, v in walls.items()},
                                   "all_wall_s": walls, "speed_up": before / now, "saved_s": before - now,
                                   "same_metrics": True}
            print(f"job {job}: {now:.2f} s against {before:.2f} s with torch's optimiser "
                  f"({before / now:.2f}×, {before - now:.2f} s saved; medians of {args.rounds}; metrics.csv the same)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()

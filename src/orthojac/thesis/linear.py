"""H3 (Hlav §3, Fig. 2, after Saxe et al. 2013): the time a deep linear network needs to reach a
fixed accuracy, against depth, for orthogonal and Gaussian weights.

    python -m orthojac hlav-linear train --data results/data/fashion_mnist --seed 0 \
        --depths 2 4 8 16 32 64 128 --width 128 --target 0.8 --out results/hlav/linear/seed=0.csv
    python -m orthojac hlav-linear collect results/hlav/linear/seed=*.csv --out results/tables/hlav_linear.csv

Hlav §3: "For a deep linear network, they obtain a training time (number of epochs required to
achieve a certain degree of accuracy) that is independent of depth, unlike Gaussian initialization
that scales linearly with depth." Network: orthojac.thesis.dense.DenseNet with φ(x) = x (L hidden
layers of width n, linear read-out), σ_w² = 1 (Hlav §3: the linear network's critical point),
biases 0, SGD (docs/replication.md §3) with learning rate η_L = η / L (`inverse_depth`: each of the L layers adds one
gradient step to the end-to-end map, so η / L keeps its step size independent of depth; orthojac's
choice, the thesis states none) or η (`constant`).

Time to accuracy: the first evaluation step at which the validation accuracy is ≥ the target;
training stops there. A run that never reaches it is `not reached` (steps_to_target NaN); one
whose loss stops being finite is `diverged` (metric `diverged` = the step).
"""

from __future__ import annotations

import argparse
import math
import sys

import pandas as pd

from ..data import load_images
from ..run.progress_line import Progress
from ..device import select_device
from .common import IDX_INPUT, section_main
from .dense import build, train_curve, train_each
from .settings import LR_SCALINGS
from .settings import Linear as Settings

COLUMNS = ["weights", "depth", "width", "seed", "lr", "target", "step", "epoch", "metric", "value"]
REACHED, NOT_REACHED, DIVERGED = "reached", "not reached", "diverged"



def time_to_accuracy(curve: pd.DataFrame, target: float) -> tuple[str, float]:
    """(status, step) of one run's curve (columns step, metric, value): `reached` at the first
    step whose val_accuracy ≥ target; else `diverged` at the step of its `diverged` row; else
    `not reached` (step NaN). A run that reached the target before diverging counts as reached."""
    acc = curve[(curve["metric"] == "val_accuracy") & (curve["value"] >= target)]
    if not acc.empty:
        return REACHED, float(acc["step"].min())
    diverged = curve[curve["metric"] == "diverged"]
    if not diverged.empty:
        return DIVERGED, float(diverged["step"].min())
    return NOT_REACHED, math.nan


def learning_rate(lr: float, depth: int, scaling: str) -> float:
    """η_L = η / L (`inverse_depth`) or η (`constant`)."""
    if scaling not in LR_SCALINGS:
        raise ValueError(f"unknown learning-rate scaling {scaling!r}; have {list(LR_SCALINGS)}")
    return lr / depth if scaling == "inverse_depth" else lr


def train_one(weights: str, depth: int, data: dict, args: argparse.Namespace,
              progress: Progress | None = None) -> list[dict]:
    """One run's curve and its summary row (metric steps_to_target: the step, NaN if not reached)."""
    lr = learning_rate(args.lr, depth, args.lr_scaling)
    model = build(depth, args.width, "linear", weights, args.sigma_w2, args.seed)

    def reached(rows: list[dict]) -> bool:
        return any(r["metric"] == "val_accuracy" and r["value"] >= args.target for r in rows)

    rows = train_curve(model, data, args.optimizer, lr, args.epochs, args.batch_size, args.eval_every, args.seed,
                       stop=reached, device=select_device(args.device), progress=progress,
                       label=f"{weights} L={depth}")
    curve = pd.DataFrame(rows)
    status, step = time_to_accuracy(curve, args.target)
    per_epoch = math.ceil(len(data["train"][0]) / args.batch_size)
    rows.append({"step": step, "epoch": step / per_epoch, "metric": "steps_to_target",
                 "value": step if status == REACHED else math.nan})
    base = {"weights": weights, "depth": depth, "width": args.width, "seed": args.seed, "lr": lr,
            "target": args.target}
    print(f"{weights} L={depth}: {status} at step {step}", file=sys.stderr)
    return [base | r for r in rows]


def _train_main(args: argparse.Namespace) -> None:
    if min(args.depths) < 1 or min(args.width, args.epochs, args.batch_size, args.eval_every) < 1:
        raise SystemExit(f"--depths, --width, --epochs, --batch-size and --eval-every must be ≥ 1, got "
                         f"{args.depths}, {args.width}, {args.epochs}, {args.batch_size}, {args.eval_every}")
    if args.sigma_w2 <= 0:
        raise SystemExit(f"--sigma-w2 must be > 0, got {args.sigma_w2}")
    if not 0 < args.target <= 1:
        raise SystemExit(f"--target must be an accuracy in (0, 1], got {args.target}")
    data = load_images(args.data, args.train_size, args.val_size, 1)
    train_each([(w, d) for w in args.weights for d in args.depths], train_one, data, args, COLUMNS)


def main(argv: list[str] | None = None) -> None:
    section_main(argv, Settings, _train_main, COLUMNS, prog="orthojac hlav-linear", doc=__doc__,
                 train_help="train every (weights, depth) for one seed; write a tidy CSV",
                 out_help="tidy CSV of curves and times to accuracy", inputs=IDX_INPUT, device=True)


if __name__ == "__main__":
    main()

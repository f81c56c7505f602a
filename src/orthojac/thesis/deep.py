"""H5 (Hlav §3, Fig. 3, after Pennington et al. 2017): deep dense tanh and ReLU networks, depth
200, width 400, orthogonal vs Gaussian weights; the test accuracy during training.

    python -m orthojac hlav-deep train --data results/data/fashion_mnist --seed 0 \
        --networks tanh:1.05 tanh:2 relu:2 --depth 200 --width 400 --out results/hlav/deep/seed=0.csv
    python -m orthojac hlav-deep collect results/hlav/deep/seed=*.csv --out results/tables/hlav_deep.csv

Hlav Fig. 3 (caption): "networks of depth 200 and width 400 trained on CIFAR-10 with 4 different
optimizer. Blue is tanh with σ_w² = 1.05, red is tanh with σ_w² = 2, and black is ReLU with
σ_w² = 2. The solid lines represent orthogonal initialization and dashed lines are Gaussian".
Hlav §3 reads it as: orthogonal is "consistently better than Gaussian initialization" and "ReLU
networks are much slower". orthojac trains on Fashion-MNIST (or MNIST), not CIFAR-10, with one
optimizer a run (the thesis does not name its four). Network: orthojac.thesis.dense.DenseNet, a
network `activation:σ_w²` with hidden weights of variance σ_w²/fan_in (Gaussian) or σ_w · Haar
(orthogonal), biases 0. Per epoch (epoch 0: at initialisation): training loss, validation and
test accuracy and loss; a non-finite loss is recorded as `diverged` (the step).
"""

from __future__ import annotations

import argparse
import sys

from ..data import load_images
from ..run.progress_line import Progress
from ..device import select_device
from .common import IDX_INPUT, section_main
from .dense import ACTIVATIONS, build, train_curve, train_each
from .settings import Deep as Settings

COLUMNS = ["network", "activation", "sigma_w2", "weights", "depth", "width", "optimizer", "lr", "seed",
           "step", "epoch", "metric", "value"]



def parse_network(text: str) -> tuple[str, float]:
    """`tanh:1.05` → ("tanh", 1.05): an activation and its σ_w²."""
    activation, _, sigma = text.partition(":")
    try:
        sigma_w2 = float(sigma)
    except ValueError:
        sigma_w2 = -1.0
    if activation not in ACTIVATIONS or sigma_w2 <= 0:
        raise ValueError(f"network {text!r} is not activation:σ_w² with activation in {list(ACTIVATIONS)} "
                         "and σ_w² > 0 (e.g. tanh:1.05)")
    return activation, sigma_w2


def train_one(network: str, weights: str, data: dict, args: argparse.Namespace,
              progress: Progress | None = None) -> list[dict]:
    activation, sigma_w2 = parse_network(network)
    model = build(args.depth, args.width, activation, weights, sigma_w2, args.seed)
    rows = train_curve(model, data, args.optimizer, args.lr, args.epochs, args.batch_size, 0, args.seed,
                       evaluate=("val", "test"), device=select_device(args.device), progress=progress,
                       label=f"{network} {weights}")
    base = {"network": network, "activation": activation, "sigma_w2": sigma_w2, "weights": weights,
            "depth": args.depth, "width": args.width, "optimizer": args.optimizer, "lr": args.lr, "seed": args.seed}
    last = [r for r in rows if r["metric"] in ("test_accuracy", "diverged")][-1]
    print(f"{network} {weights}: {last['metric']} {last['value']:.4g} at epoch {last['epoch']:.2f}", file=sys.stderr)
    return [base | r for r in rows]


def _train_main(args: argparse.Namespace) -> None:
    if min(args.depth, args.width, args.epochs, args.batch_size) < 1:
        raise SystemExit(f"--depth, --width, --epochs and --batch-size must be ≥ 1, got {args.depth}, "
                         f"{args.width}, {args.epochs}, {args.batch_size}")
    try:
        for network in args.networks:
            parse_network(network)
    except ValueError as error:
        raise SystemExit(f"--networks: {error}") from None
    data = load_images(args.data, args.train_size, args.val_size, args.test_size)
    train_each([(n, w) for n in args.networks for w in args.weights], train_one, data, args, COLUMNS)


def main(argv: list[str] | None = None) -> None:
    section_main(argv, Settings, _train_main, COLUMNS, prog="orthojac hlav-deep", doc=__doc__,
                 train_help="train every (network, weights) for one seed; write a tidy CSV",
                 out_help="tidy CSV of per-epoch metrics", inputs=IDX_INPUT, device=True)


if __name__ == "__main__":
    main()

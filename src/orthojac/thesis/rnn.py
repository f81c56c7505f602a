"""H1 (Hlav §5, Figs. 7–8): a vanilla RNN on sequential MNIST (rows), five configurations.

    python -m orthojac hlav train --data results/data/mnist --seed 0 --epochs 20 \
        --gain 1.1 --lambdas 0.001 0.01 --variants eq11 listing --out results/hlav/rnn/seed=0.csv
    python -m orthojac hlav collect results/hlav/rnn/seed=*.csv --out results/tables/hlav_rnn.csv

Model (Hlav §5): many-to-one RNN, h_t = tanh(W h_{t−1} + U x_t + b), t = 1 … 28 (one image row
x_t ∈ R²⁸ a step), hidden 64, a linear read-out of h_28, cross-entropy, batch 256. The five
configurations (Hlav §5, list under Figs. 7–8), with gain A and penalty λ = B:

- Orthogonal_GainA_adj_RegB: W = A·Q (Q Haar-orthogonal) + λ R(W, g = A)   (gain-adjusted)
- Orthogonal_GainA_RegB:     W = A·Q + λ R(W, g = 1)                        (not adjusted)
- Orthogonal_GainA_NoReg:    W = A·Q
- Orthogonal_NoReg:          W = Q
- NoOrthogonal:              W Glorot-uniform (Keras' `glorot_uniform`)

R is eq. (11), ‖WWᵀ/g² − I‖²_F (variant `eq11`), or the thesis' code listing,
mean((WWᵀ/g² − 1)²) (variant `listing`); both from orthojac.nets.regularisers. The unregularised
configurations do not depend on the variant and are trained once (variant `none`).
Input kernel U: Glorot-uniform, bias 0 (Keras' SimpleRNN defaults: choice).

Tracked per epoch (epoch 0 = at initialisation): the singular values of the recurrent kernel W
(mean, std, min, max: Fig. 7) and the validation accuracy (Fig. 8); also the training loss, and the
test accuracy after the last epoch. A non-finite loss stops that configuration (metric `diverged`
= the epoch) instead of crashing the run.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from torch import nn

from ..data import load_images
from ..files import write_csv_atomic
from ..nets import fused
from ..nets.orthogonal import haar
from ..run.progress_line import Progress
from ..nets.regularisers import dense_defect, listing_defect
from . import settings
from .settings import RNN as Settings
from .common import IDX_INPUT, accuracy, fit, flag, glorot_uniform_, init_readout_and_recurrent_, section_main

CONFIGURATIONS = ("Orthogonal_GainA_adj_RegB", "Orthogonal_GainA_RegB", "Orthogonal_GainA_NoReg",
                  "Orthogonal_NoReg", "NoOrthogonal")
VARIANTS = dict(zip(settings.VARIANTS, (dense_defect, listing_defect)))  # form → its defect
COLUMNS = ["configuration", "label", "variant", "gain", "lam", "seed", "dataset", "train_size", "epoch",
           "metric", "value"]
STEPS = 28  # rows of a 28×28 image, one a time step (Hlav §5)



class SequentialRNN(nn.Module):
    """Many-to-one tanh RNN over the rows of an image, read out from the last hidden state.

    On a CPU, training with gradients or evaluating without, the RNN runs as one hand-written
    autograd node (`fused.TanhRNN`: torch's own kernels in their order, so the bits of `nn.RNN`)
    unless `fused` is False (benchmarks/cpu_speed.py's old code) or the RNN is hooked."""

    fused = True

    def __init__(self, hidden: int = 64, inputs: int = 28, classes: int = 10):
        super().__init__()
        self.rnn = nn.RNN(inputs, hidden, nonlinearity="tanh", batch_first=True)
        self.readout = nn.Linear(hidden, classes)

    @property
    def recurrent(self) -> torch.Tensor:
        """The recurrent kernel W (hidden × hidden) of h_t = tanh(W h_{t−1} + U x_t + b)."""
        return self.rnn.weight_hh_l0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.rnn
        if (self.fused and x.device.type == "cpu" and fused.hand_written_context(x, self.training, dim=3)
                and fused.unhooked(r)):
            w_hh = r.weight_hh_l0  # once an edge a step: see fused.TanhRNN
            return self.readout(fused.TanhRNN.apply(x, r.weight_ih_l0, w_hh, r.bias_ih_l0, r.bias_hh_l0,
                                                    *[w_hh] * (x.shape[1] - 1)))
        out, _ = r(x)
        return self.readout(out[:, -1])


def build(configuration: str, gain: float, hidden: int, seed: int) -> SequentialRNN:
    """The RNN of `configuration` (module docstring), initialised from `seed`."""
    if configuration not in CONFIGURATIONS:
        raise ValueError(f"unknown configuration {configuration!r}; have {list(CONFIGURATIONS)}")
    gen = torch.Generator().manual_seed(seed)
    model = SequentialRNN(hidden)
    with torch.no_grad():
        glorot_uniform_(model.rnn.weight_ih_l0, gen)
        model.rnn.bias_ih_l0.zero_()
        model.rnn.bias_hh_l0.zero_()
        init_readout_and_recurrent_(model, configuration, gain, gen, lambda gen: haar(hidden, gen))
    return model


def runs(gain: float, lambdas: list[float], variants: list[str]) -> list[dict]:
    """Every (configuration, variant, gain, λ) to train, with its label (A and B filled in)."""
    out = [{"configuration": "NoOrthogonal", "variant": "none", "gain": 1.0, "lam": 0.0},
           {"configuration": "Orthogonal_NoReg", "variant": "none", "gain": 1.0, "lam": 0.0},
           {"configuration": "Orthogonal_GainA_NoReg", "variant": "none", "gain": gain, "lam": 0.0}]
    for variant in variants:
        for lam in lambdas:
            out += [{"configuration": c, "variant": variant, "gain": gain, "lam": lam}
                    for c in ("Orthogonal_GainA_adj_RegB", "Orthogonal_GainA_RegB")]
    for r in out:
        r["label"] = (r["configuration"].replace("GainA", f"Gain{r['gain']:g}")
                      .replace("RegB", f"Reg{r['lam']:g}"))
    return out


def penalty(model: SequentialRNN, run: dict) -> torch.Tensor | None:
    """λ R(W, g): g = the gain for `adj`, 1 for the unadjusted configuration; None unregularised."""
    if run["lam"] == 0.0 or run["variant"] == "none":
        return None
    g = run["gain"] if "_adj_" in run["configuration"] else 1.0
    return run["lam"] * VARIANTS[run["variant"]](model.recurrent, g)


def train_one(run: dict, data: dict, seed: int, epochs: int, hidden: int, batch_size: int, lr: float,
              progress: Progress | None = None) -> list[dict]:
    """Train one configuration with Adam; the tidy rows of its per-epoch record."""
    torch.manual_seed(seed)
    model = build(run["configuration"], run["gain"], hidden, seed)
    return fit(model, run, data, seed, epochs, batch_size, lr, nn.functional.cross_entropy, accuracy, penalty,
               progress=progress)


def _train_main(args: argparse.Namespace) -> None:
    if args.epochs < 1 or args.hidden < 1 or args.batch_size < 1:
        raise SystemExit(f"--epochs, --hidden and --batch-size must be ≥ 1, got {args.epochs}, "
                         f"{args.hidden}, {args.batch_size}")
    if any(lam <= 0 for lam in args.lambdas):
        raise SystemExit(f"--lambdas must be > 0 (the unregularised configurations are always run), got {args.lambdas}")
    data = load_images(args.data, args.train_size, args.val_size, args.test_size)
    rows = []
    configurations = runs(args.gain, args.lambdas, args.variants)
    per_epoch = math.ceil(len(data["train"][0]) / args.batch_size)
    progress = Progress(len(configurations) * args.epochs * per_epoch, runs=len(configurations))
    for run in configurations:
        rows += train_one(run, data, args.seed, args.epochs, args.hidden, args.batch_size, args.lr, progress)
        print(f"{run['label']} ({run['variant']}): done", file=sys.stderr)
    progress.finish()
    # Which data set the sequences came from (H-C1..H-C3 are about MNIST): the data folder is
    # named after its data set (results/data/DATASET) unless --dataset says otherwise.
    dataset = args.dataset or Path(args.data).name
    write_csv_atomic(args.out, [row | {"dataset": dataset} for row in rows], COLUMNS)


def main(argv: list[str] | None = None) -> None:
    section_main(argv, Settings, _train_main, COLUMNS, prog="orthojac hlav", doc=__doc__,
                 train_help="train every configuration for one seed; write a tidy CSV",
                 out_help="tidy CSV of per-epoch metrics",
                 inputs=IDX_INPUT + (flag("--dataset", default="", help="data set name recorded in the table "
                                          "(default: the --data folder's name)"),))


if __name__ == "__main__":
    main()

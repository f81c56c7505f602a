"""H1 (Hlav §5, Figs. 7–8): a vanilla RNN on sequential MNIST (rows), five configurations.

    python -m orthojac.hlav train --data results/data/mnist --seed 0 --epochs 20 \
        --gain 1.1 --lambdas 0.001 0.01 --variants eq11 listing --out results/hlav/rnn/seed=0.csv
    python -m orthojac.hlav collect results/hlav/rnn/seed=*.csv --out results/tables/hlav_rnn.csv

Model (Hlav §5): many-to-one RNN, h_t = tanh(W h_{t−1} + U x_t + b), t = 1 … 28 (one image row
x_t ∈ R²⁸ a step), hidden 64, a linear read-out of h_28, cross-entropy, batch 256. The five
configurations (Hlav §5, list under Figs. 7–8), with gain A and penalty λ = B:

- Orthogonal_GainA_adj_RegB: W = A·Q (Q Haar-orthogonal) + λ R(W, g = A)   (gain-adjusted)
- Orthogonal_GainA_RegB:     W = A·Q + λ R(W, g = 1)                        (not adjusted)
- Orthogonal_GainA_NoReg:    W = A·Q
- Orthogonal_NoReg:          W = Q
- NoOrthogonal:              W Glorot-uniform (Keras' `glorot_uniform`)

R is eq. (11), ‖WWᵀ/g² − I‖²_F (variant `eq11`), or the thesis' code listing,
mean((WWᵀ/g² − 1)²) (variant `listing`); both from orthojac.regularisers. The unregularised
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

import pandas as pd
import torch
from torch import nn

from .data import load_split
from .files import write_csv_atomic
from .orthogonal import haar
from .progress import Progress
from .regularisers import dense_defect, listing_defect

CONFIGURATIONS = ("Orthogonal_GainA_adj_RegB", "Orthogonal_GainA_RegB", "Orthogonal_GainA_NoReg",
                  "Orthogonal_NoReg", "NoOrthogonal")
VARIANTS = {"eq11": dense_defect, "listing": listing_defect}
COLUMNS = ["configuration", "label", "variant", "gain", "lam", "seed", "dataset", "train_size", "epoch",
           "metric", "value"]
STEPS = 28  # rows of a 28×28 image, one a time step (Hlav §5)


class SequentialRNN(nn.Module):
    """Many-to-one tanh RNN over the rows of an image, read out from the last hidden state."""

    def __init__(self, hidden: int = 64, inputs: int = 28, classes: int = 10):
        super().__init__()
        self.rnn = nn.RNN(inputs, hidden, nonlinearity="tanh", batch_first=True)
        self.readout = nn.Linear(hidden, classes)

    @property
    def recurrent(self) -> torch.Tensor:
        """The recurrent kernel W (hidden × hidden) of h_t = tanh(W h_{t−1} + U x_t + b)."""
        return self.rnn.weight_hh_l0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.readout(out[:, -1])


def _glorot_uniform_(w: torch.Tensor, gen: torch.Generator) -> None:
    """U(−a, a), a = √(6 / (fan_in + fan_out)) (Keras' glorot_uniform)."""
    a = math.sqrt(6.0 / sum(w.shape))
    w.copy_((torch.rand(w.shape, generator=gen) * 2 - 1) * a)


def build(configuration: str, gain: float, hidden: int, seed: int) -> SequentialRNN:
    """The RNN of `configuration` (module docstring), initialised from `seed`."""
    if configuration not in CONFIGURATIONS:
        raise ValueError(f"unknown configuration {configuration!r}; have {list(CONFIGURATIONS)}")
    gen = torch.Generator().manual_seed(seed)
    model = SequentialRNN(hidden)
    with torch.no_grad():
        _glorot_uniform_(model.rnn.weight_ih_l0, gen)
        model.rnn.bias_ih_l0.zero_()
        model.rnn.bias_hh_l0.zero_()
        _glorot_uniform_(model.readout.weight, gen)
        model.readout.bias.zero_()
        if configuration == "NoOrthogonal":
            _glorot_uniform_(model.recurrent, gen)
        else:
            g = 1.0 if configuration == "Orthogonal_NoReg" else gain
            model.recurrent.copy_(g * haar(hidden, gen).float())
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


def load_sequences(data_dir: Path, train_size: int, val_size: int, test_size: int) -> dict:
    """Images as (N, 28 steps, 28) float tensors in [0, 1], labels int64. Validation: the last
    `val_size` of the official training split; training: the first `train_size` of the rest
    (Hlav §5: 48000/12000/10000); test: the first `test_size` of t10k (0: all)."""
    x_all, y_all = load_split(data_dir, "train")
    x_test, y_test = load_split(data_dir, "t10k")
    if val_size >= len(x_all):
        raise ValueError(f"--val-size {val_size} leaves no training images out of {len(x_all)} in {data_dir}")
    n = len(x_all) - val_size
    parts = {"train": (x_all[:n][: train_size or None], y_all[:n][: train_size or None]),
             "val": (x_all[n:], y_all[n:]),
             "test": (x_test[: test_size or None], y_test[: test_size or None])}
    return {k: (torch.as_tensor(x.copy(), dtype=torch.float32) / 255.0,
                torch.as_tensor(y.astype("int64"))) for k, (x, y) in parts.items()}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2000) -> float:
    hits = sum((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item() for i in range(0, len(x), batch))
    return hits / len(x)


def spectrum_rows(model: SequentialRNN) -> dict:
    """mean, std, min, max of the singular values of the recurrent kernel (Hlav Fig. 7)."""
    s = torch.linalg.svdvals(model.recurrent.detach().double())
    return {"sv_mean": s.mean().item(), "sv_std": s.std(unbiased=False).item(),
            "sv_min": s.min().item(), "sv_max": s.max().item()}


def train_one(run: dict, data: dict, seed: int, epochs: int, hidden: int, batch_size: int, lr: float,
              progress: Progress | None = None) -> list[dict]:
    """Train one configuration with Adam; the tidy rows of its per-epoch record."""
    torch.manual_seed(seed)
    model = build(run["configuration"], run["gain"], hidden, seed)
    return fit(model, run, data, seed, epochs, batch_size, lr, nn.functional.cross_entropy, accuracy,
               progress=progress)


def fit(model: nn.Module, run: dict, data: dict, seed: int, epochs: int, batch_size: int, lr: float,
        loss_fn, accuracy_fn, penalty_fn=penalty, extra: dict | None = None,
        progress: Progress | None = None) -> list[dict]:
    """Adam on `loss_fn` plus the run's `penalty_fn` (H1 and H2 alike); the tidy rows: per epoch
    (0 = at initialisation) the recurrent kernel's singular values, the training loss and the
    validation accuracy, then the test accuracy; `extra` columns on every row. A non-finite
    objective stops the run with metric `diverged` = the epoch (a result, not a crash).
    `progress`: the job's progress lines (default: lines for this run alone)."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    x, y = data["train"]
    order = torch.Generator().manual_seed(seed)
    base = {k: run[k] for k in ("configuration", "label", "variant", "gain", "lam")} | {"seed": seed, "train_size": len(x)}
    rows = []
    per_epoch = math.ceil(len(x) / batch_size)
    progress = progress or Progress(epochs * per_epoch)
    progress.run(f"{run['label']} ({run['variant']})", epochs, per_epoch)

    def record(epoch: int, values: dict) -> None:
        rows.extend(base | {"epoch": epoch, "metric": m, "value": v} | (extra or {}) for m, v in values.items())

    record(0, spectrum_rows(model) | {"val_accuracy": accuracy_fn(model, *data["val"])})
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(x), generator=order)
        total, count = 0.0, 0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            loss = loss_fn(model(x[idx]), y[idx])
            reg = penalty_fn(model, run)
            objective = loss if reg is None else loss + reg
            if not torch.isfinite(objective):
                record(epoch, {"diverged": float(epoch)})
                progress.diverged(progress.run_step + 1, f"the objective is not finite in epoch {epoch}")
                return rows
            opt.zero_grad()
            objective.backward()
            opt.step()
            value = loss.item()
            total, count = total + value * len(idx), count + len(idx)
            progress.step(value, len(idx))
        record(epoch, spectrum_rows(model) | {"train_loss": total / count,
                                              "val_accuracy": accuracy_fn(model, *data["val"])})
        progress.epoch_end(epoch, next(r["value"] for r in reversed(rows) if r["metric"] == "val_accuracy"),
                           train_loss=total / count)
    record(epochs, {"test_accuracy": accuracy_fn(model, *data["test"])})
    return rows


def _train_main(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.epochs < 1 or args.hidden < 1 or args.batch_size < 1:
        raise SystemExit(f"--epochs, --hidden and --batch-size must be ≥ 1, got {args.epochs}, "
                         f"{args.hidden}, {args.batch_size}")
    if any(lam <= 0 for lam in args.lambdas):
        raise SystemExit(f"--lambdas must be > 0 (the unregularised configurations are always run), got {args.lambdas}")
    data = load_sequences(args.data, args.train_size, args.val_size, args.test_size)
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


def collect(tables: list[Path], out: Path, columns: list[str]) -> None:
    """Concatenate per-seed CSVs with exactly `columns` into `out` (names the file on a mismatch).
    Only empty cells are missing values: labels such as "none" or "NA" stay text. Shared by the
    `collect` commands of H1, H2, H3 and H5."""
    frames = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in tables]
    for path, frame in zip(tables, frames):
        if list(frame.columns) != columns:
            raise SystemExit(f"{path}: columns {list(frame.columns)}, expected {columns}")
    write_csv_atomic(out, pd.concat(frames, ignore_index=True).to_dict("records"), columns)


def run_command(parser: argparse.ArgumentParser, sub, argv: list[str] | None, train_main,
                columns: list[str]) -> None:
    """Add the `collect` subcommand (shared by H1, H2, H3 and H5) to `sub`, parse `argv`, and run
    `train_main(args)` or `collect`."""
    co = sub.add_parser("collect", help="concatenate the per-seed CSVs into one table")
    co.add_argument("tables", type=Path, nargs="+", help="per-seed CSVs written by `train`")
    co.add_argument("--out", type=Path, required=True, help="the combined tidy CSV")
    args = parser.parse_args(argv)
    if args.command == "train":
        train_main(args)
    else:
        collect(args.tables, args.out, columns)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac-hlav", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train every configuration for one seed; write a tidy CSV")
    tr.add_argument("--data", type=Path, required=True, help="folder with the four IDX files")
    tr.add_argument("--dataset", default="", help="data set name recorded in the table (default: the --data folder's name)")
    tr.add_argument("--seed", type=int, default=0, help="seed of the initialisation and of the batch order")
    tr.add_argument("--epochs", type=int, default=20, help="training epochs")
    tr.add_argument("--hidden", type=int, default=64, help="hidden units of the RNN")
    tr.add_argument("--batch-size", type=int, default=256, help="mini-batch size")
    tr.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    tr.add_argument("--gain", type=float, default=1.1, help="gain A of the GainA configurations")
    tr.add_argument("--lambdas", type=float, nargs="+", default=[0.001, 0.01], help="penalties λ = B")
    tr.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS),
                    help="regulariser forms: eq11 (‖WWᵀ/g² − I‖²_F) and/or listing (mean((WWᵀ/g² − 1)²))")
    tr.add_argument("--train-size", type=int, default=48000, help="training images (0: all but validation)")
    tr.add_argument("--val-size", type=int, default=12000, help="validation images (the last of the training split)")
    tr.add_argument("--test-size", type=int, default=0, help="test images (0: all)")
    tr.add_argument("--threads", type=int, default=0, help="CPU threads for PyTorch (0: its default)")
    tr.add_argument("--out", type=Path, required=True, help="tidy CSV of per-epoch metrics")
    run_command(parser, sub, argv, _train_main, COLUMNS)


if __name__ == "__main__":
    main()

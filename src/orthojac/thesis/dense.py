"""Dense networks of Hlav §3 (H3: deep linear nets after Saxe et al. 2013; H5: deep tanh/ReLU
nets after Pennington et al. 2017), their initialisations and one training loop for both.

Network (Hlav §3): x₀ = the flattened image ∈ R⁷⁸⁴, then L hidden layers of width n,
    h_ℓ = W_ℓ x_{ℓ−1} + b_ℓ,  x_ℓ = φ(h_ℓ),  ℓ = 1 … L,
and a linear read-out W_{L+1} x_L + b_{L+1} ∈ R¹⁰ (cross-entropy). φ(x) = x for the deep linear
network (Hlav §3: "we have φ(x) = x"), tanh or ReLU for H5. Biases start at 0 (Hlav §3: the
linear network's only critical point is (σ_w, σ_b) = (1, 0) "for a non-bias network").

Weights (Hlav §3: "random orthogonal matrices" vs "random Gaussian matrices"), both with
E[W Wᵀ] = σ_w² I on the smaller side:
- `gaussian`:   W_ij ~ N(0, σ_w² / fan_in)
- `orthogonal`: W = σ_w Q, Q with orthonormal rows (fan_out ≤ fan_in) or columns, Haar (QR of a
  Gaussian, Mezzadri 2007), so W Wᵀ = σ_w² I for every square hidden layer.
The read-out uses the same scheme with σ_w² = 1 (orthojac's choice).

A non-finite training loss stops the run and is recorded (metric `diverged` = the step); it is a
result, not a crash.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..files import write_csv_atomic
from ..nets import fused
from ..nets.orthogonal import random_weight
from ..run import optimisers
from ..run.progress_line import Progress
from .common import batches, descend
from . import settings
from .settings import DENSE_WEIGHTS as WEIGHTS

# The module of each activation and the optimiser of each name: the names are the settings'
# (orthojac.thesis.settings, which the flags and the schema take them from), checked here at import.
ACTIVATIONS = {"linear": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU}
# The fused implementations where torch has them (SGD, Adam: one kernel for all parameters, CPU
# and CUDA; RMSprop has none), as orthojac.run.train's Adam (orthojac.run.fastpath); torch's, without the
# import of torch._dynamo their first call pays (orthojac.run.optimisers).
OPTIMIZERS = {"sgd": lambda p, lr: optimisers.sgd(p, lr=lr),
              "momentum": lambda p, lr: optimisers.sgd(p, lr=lr, momentum=0.9),
              "rmsprop": lambda p, lr: optimisers.rmsprop(p, lr=lr),
              "adam": lambda p, lr: optimisers.adam(p, lr=lr)}
# The hidden layers after the first as one hand-written autograd node on a CPU (orthojac.nets.fused):
# autograd's own kernels in its order, so the same bits as the layers one by one (tests/test_hlav_depth.py).
KERNELS = {"linear": fused.Affine, "tanh": fused.AffineTanh, "relu": fused.AffineReLU}
if (set(ACTIVATIONS) != set(settings.DENSE_ACTIVATIONS) or set(OPTIMIZERS) != set(settings.OPTIMIZERS)
        or set(KERNELS) != set(ACTIVATIONS)):
    raise ImportError(f"orthojac.thesis.dense: activations {sorted(ACTIVATIONS)} (kernels {sorted(KERNELS)}) and "
                      f"optimisers {sorted(OPTIMIZERS)} are not the settings' {sorted(settings.DENSE_ACTIVATIONS)} "
                      f"and {sorted(settings.OPTIMIZERS)}")
INPUTS, CLASSES = 28 * 28, 10


def init_weight_(w: torch.Tensor, weights: str, sigma_w2: float, gen: torch.Generator) -> None:
    """Fill a (fan_out, fan_in) weight in place: N(0, σ_w²/fan_in) entries or σ_w · Haar rows."""
    w.copy_(random_weight(*w.shape, weights, sigma_w2, gen, dtype=w.dtype))


class DenseNet(nn.Module):
    """L hidden layers of width n with activation φ, and a linear read-out (module docstring).

    On a CPU, training with gradients or evaluating without, hidden layers 2 … L run as one
    autograd node (`fused.run_body`: the same kernels as the modules, so the same bits) unless
    `fused` is False (benchmarks/cpu_speed.py's old code) or a module is hooked; the first layer
    (from the image's 784 pixels, no gradient wanted for its input) stays a module."""

    fused = True

    def __init__(self, depth: int, width: int, activation: str = "linear"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; have {list(ACTIVATIONS)}")
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be ≥ 1, got {depth}, {width}")
        sizes = [INPUTS] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.phi = ACTIVATIONS[activation]()
        self.kernel = KERNELS[activation]
        self.readout = nn.Linear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, *rest = self.hidden
        x = self.phi(first(x.flatten(1)))
        if (rest and self.fused and x.device.type == "cpu" and fused.hand_written_context(x, self.training)
                and fused.unhooked(self)):
            x = fused.run_body(self.kernel, [(layer.weight, layer.bias) for layer in rest], x)
        else:
            for layer in rest:
                x = self.phi(layer(x))
        return self.readout(x)


def build(depth: int, width: int, activation: str, weights: str, sigma_w2: float, seed: int) -> DenseNet:
    """A DenseNet initialised from `seed`: hidden layers with (weights, σ_w²), read-out σ_w² = 1."""
    gen = torch.Generator().manual_seed(seed)
    model = DenseNet(depth, width, activation)
    with torch.no_grad():
        for layer in model.hidden:
            init_weight_(layer.weight, weights, sigma_w2, gen)
            layer.bias.zero_()
        init_weight_(model.readout.weight, weights, 1.0, gen)
        model.readout.bias.zero_()
    return model


@torch.no_grad()
def accuracy_and_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2000) -> tuple[float, float]:
    """The share of images whose largest logit is the label's and the mean cross-entropy, from one
    forward pass a chunk of `batch` images (the chunks of orthojac.thesis.common.accuracy, so the
    same logits and the same accuracy)."""
    hits, total = 0, 0.0
    for i in range(0, len(x), batch):
        logits, labels = model(x[i:i + batch]), y[i:i + batch]
        hits += (logits.argmax(1) == labels).sum().item()
        total += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
    return hits / len(x), total / len(x)


def train_curve(model: nn.Module, data: dict, optimizer: str, lr: float, epochs: int, batch_size: int,
                eval_every: int, seed: int, evaluate: tuple[str, ...] = ("val",),
                stop=None, device: torch.device = torch.device("cpu"), progress: Progress | None = None,
                label: str = "") -> list[dict]:
    """Mini-batch training; every `eval_every` steps (0: at the end of each epoch) and at step 0,
    rows {step, epoch, metric, value}: train_loss (mean since the last evaluation) and the accuracy
    and loss of each split in `evaluate`. `stop(rows)` → True ends training after an evaluation.
    A non-finite loss ends it with a `diverged` row (value: the step). Model and data move to
    `device` (the data sets are small). `progress`: the job's progress lines, one an epoch with the
    last evaluation's validation accuracy (default: lines for this run alone, named `label`)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; have {list(OPTIMIZERS)}")
    torch.manual_seed(seed)
    model.to(device)
    data = {k: (x.to(device), y.to(device)) for k, (x, y) in data.items()}
    opt = OPTIMIZERS[optimizer](model.parameters(), lr)
    x, y = data["train"]
    per_epoch = math.ceil(len(x) / batch_size)
    every = eval_every or per_epoch
    order = torch.Generator().manual_seed(seed)
    rows: list[dict] = []
    progress = progress or Progress(epochs * per_epoch)
    progress.run(label, epochs, per_epoch)
    last = {"val_accuracy": None}

    def record(step: int, values: dict) -> None:
        rows.extend({"step": step, "epoch": step / per_epoch, "metric": m, "value": v} for m, v in values.items())

    def evaluation(step: int, train_loss: float | None) -> bool:
        values = {} if train_loss is None else {"train_loss": train_loss}
        for split in evaluate:
            values[f"{split}_accuracy"], values[f"{split}_loss"] = accuracy_and_loss(model, *data[split])
        record(step, values)
        last["val_accuracy"] = values.get("val_accuracy", last["val_accuracy"])
        return stop is not None and stop(rows)

    def ended(step: int) -> list[dict]:
        progress.ended(step, f"its stop condition holds (val_accuracy {last['val_accuracy']})")
        return rows

    if evaluation(0, None):
        return ended(0)
    step, total, count = 0, 0.0, 0
    for epoch in range(epochs):
        for idx in batches(len(x), batch_size, order):
            idx = idx.to(device)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            step += 1
            if not descend(opt, loss):
                record(step, {"diverged": float(step)})
                progress.diverged(step, "the training loss is not finite")
                return rows
            value = loss.item()
            total, count = total + value, count + 1
            progress.step(value, len(idx))
            if step % every == 0:
                if evaluation(step, total / count):
                    return ended(step)
                total, count = 0.0, 0
        if epoch + 1 < epochs:
            progress.epoch_end(epoch + 1, last["val_accuracy"])
    if count:  # steps since the last evaluation
        evaluation(step, total / count)
    if epochs:
        progress.epoch_end(epochs, last["val_accuracy"])
    return rows


def train_each(grid: list[tuple], train_one, data: dict, args, columns: list[str]) -> None:
    """One seed's job of H3 and H5: train_one(*point, data, args, progress) → rows, for every point
    of `grid` in order, under one progress line over all their steps; their rows to args.out."""
    progress = Progress(len(grid) * args.epochs * math.ceil(len(data["train"][0]) / args.batch_size),
                        runs=len(grid))
    rows = [row for point in grid for row in train_one(*point, data, args, progress)]
    progress.finish()
    write_csv_atomic(args.out, rows, columns)

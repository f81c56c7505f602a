"""What the thesis sections share: accuracy, Keras' Glorot-uniform initialisation, the training
loop of H1 and H2 (`fit`) and what it shares with that of H3 and H5 (orthojac.thesis.dense.
train_curve): the mini-batch order (`batches`) and the guarded optimiser step (`descend`); and
the one command line of every section (`section_main`: `train`, whose flags are the section's
settings', and `collect`). Their images come from orthojac.data.load_images.

Each section module (rnn, lstm, linear, deep, theory) declares its config section's settings as a
dataclass `Settings` (field names: the config keys; default, help and choices in the fields'
metadata); `add_settings` turns it into the `train` parser's flags (orthojac.config.add_arguments,
which does the same for RunConfig). A section module's `main` is one call of `section_main`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ..config import add_arguments
from ..device import add_device_flags, use_threads
from ..files import write_csv_atomic
from ..run import optimisers
from ..run.progress_line import Progress


def add_settings(parser: argparse.ArgumentParser, settings) -> None:
    """One flag per field of the section's `settings` dataclass, its help text as written."""
    add_arguments(parser, settings, defaults_in_help=False)


def glorot_uniform_(w: torch.Tensor, gen: torch.Generator) -> None:
    """U(−a, a), a = √(6 / (fan_in + fan_out)) (Keras' glorot_uniform)."""
    a = math.sqrt(6.0 / sum(w.shape))
    w.copy_((torch.rand(w.shape, generator=gen) * 2 - 1) * a)


def init_readout_and_recurrent_(model: nn.Module, configuration: str, gain: float, gen: torch.Generator,
                                orthogonal) -> None:
    """The last draws of an H1 or H2 network's initialisation (Hlav §5), in this order: the
    readout's weight Glorot-uniform and its bias zero, then the recurrent kernel (model.recurrent):
    Glorot-uniform for NoOrthogonal, else orthogonal(gen), a Haar matrix of its shape, times the
    gain (1 for Orthogonal_NoReg). Call it under torch.no_grad, as the models' builders do."""
    glorot_uniform_(model.readout.weight, gen)
    model.readout.bias.zero_()
    if configuration == "NoOrthogonal":
        glorot_uniform_(model.recurrent, gen)
    else:
        g = 1.0 if configuration == "Orthogonal_NoReg" else gain
        model.recurrent.copy_(g * orthogonal(gen).float())


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2000) -> float:
    """Share of images whose largest logit is the label's."""
    hits = sum((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item() for i in range(0, len(x), batch))
    return hits / len(x)


def spectrum_rows(model: nn.Module) -> dict:
    """mean, std, min, max of the singular values of the model's recurrent kernel (Hlav Figs. 7, 9);
    NaN each when the kernel is not finite (a diverged run) or its SVD fails: a result, not a crash."""
    kernel = model.recurrent.detach().double()
    nan = {"sv_mean": float("nan"), "sv_std": float("nan"), "sv_min": float("nan"), "sv_max": float("nan")}
    if not torch.isfinite(kernel).all():
        return nan
    try:
        s = torch.linalg.svdvals(kernel)
    except (torch.linalg.LinAlgError, RuntimeError):
        return nan
    return {"sv_mean": s.mean().item(), "sv_std": s.std(unbiased=False).item(),
            "sv_min": s.min().item(), "sv_max": s.max().item()}


def batches(n: int, batch_size: int, order: torch.Generator):
    """One epoch's mini-batches (the H1–H3 and H5 loops alike): index tensors of a permutation of
    range(n) drawn from `order` when the epoch starts, `batch_size` each (the last one shorter)."""
    perm = torch.randperm(n, generator=order)
    for i in range(0, n, batch_size):
        yield perm[i:i + batch_size]


def descend(opt: torch.optim.Optimizer, objective: torch.Tensor) -> bool:
    """One optimiser step on `objective`; False, and no step, when it is not finite (the caller
    records the divergence: a result, not a crash)."""
    if not torch.isfinite(objective):
        return False
    opt.zero_grad()
    objective.backward()
    opt.step()
    return True


def fit(model: nn.Module, run: dict, data: dict, seed: int, epochs: int, batch_size: int, lr: float,
        loss_fn, accuracy_fn, penalty_fn, extra: dict | None = None,
        progress: Progress | None = None) -> list[dict]:
    """Adam on `loss_fn` plus the run's `penalty_fn(model, run)` (H1 and H2 alike); the tidy rows:
    per epoch (0 = at initialisation) the recurrent kernel's singular values, the training loss and
    the validation accuracy, then the test accuracy; `extra` columns on every row. A non-finite
    objective stops the run with metric `diverged` = the epoch (a result, not a crash).
    `progress`: the job's progress lines (default: lines for this run alone)."""
    # The fused Adam (one kernel for all parameters), as orthojac.run.train's default; like it, without
    # the import of torch._dynamo torch's optimisers pay on their first call (orthojac.run.optimisers).
    opt = optimisers.adam([p for p in model.parameters() if p.requires_grad], lr=lr)
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
        total, count = 0.0, 0
        for idx in batches(len(x), batch_size, order):
            loss = loss_fn(model(x[idx]), y[idx])
            reg = penalty_fn(model, run)
            if not descend(opt, loss if reg is None else loss + reg):
                record(epoch, {"diverged": float(epoch)})
                progress.diverged(progress.run_step + 1, f"the objective is not finite in epoch {epoch}")
                return rows
            value = loss.item()
            total, count = total + value * len(idx), count + len(idx)
            progress.step(value, len(idx))
        record(epoch, spectrum_rows(model) | {"train_loss": total / count,
                                              "val_accuracy": accuracy_fn(model, *data["val"])})
        progress.epoch_end(epoch, next(r["value"] for r in reversed(rows) if r["metric"] == "val_accuracy"),
                           train_loss=total / count)
    record(epochs, {"test_accuracy": accuracy_fn(model, *data["test"])})
    return rows


def collect(tables: list[Path], out: Path, columns: list[str]) -> None:
    """Concatenate per-seed CSVs with exactly `columns` into `out` (names the file on a mismatch).
    Only empty cells are missing values: labels such as "none" or "NA" stay text. Shared by the
    `collect` commands of H1, H2, H3 and H5."""
    frames = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in tables]
    for path, frame in zip(tables, frames):
        if list(frame.columns) != columns:
            raise SystemExit(f"{path}: columns {list(frame.columns)}, expected {columns}")
    write_csv_atomic(out, pd.concat(frames, ignore_index=True).to_dict("records"), columns)


def flag(name: str, **kwargs) -> tuple[str, dict]:
    """One flag of a section's command line: `parser.add_argument(name, **kwargs)`."""
    return name, kwargs


# The inputs of a section's `train`: the IDX folder (H1, H3, H5) or H2's two download receipts.
IDX_INPUT = (flag("--data", type=Path, required=True, help="folder with the four IDX files"),)


def section_main(argv: list[str] | None, settings, train_main, columns: list[str] | None, *, prog: str,
                 doc: str, out_help: str, train_help: str = "", inputs=(), device: bool = False) -> None:
    """The command line of a thesis section, shared by all of them, and its run.

    A section trained once per seed (H1, H2, H3, H5: `columns`, its per-seed CSV's) has two
    subcommands: `train` (the `inputs` flags, --seed, one flag per field of `settings`,
    --threads, --device when `device`, --out) runs `train_main(args)`, and `collect`
    concatenates the per-seed CSVs (`collect`). A section run once (H4: `columns` None) takes
    the settings' flags, --threads and --out at the top level and runs `train_main(args)`.
    --threads (0: PyTorch's default) is applied before `train_main` runs."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if columns is None:
        train = parser
    else:
        sub = parser.add_subparsers(dest="command", required=True)
        train = sub.add_parser("train", help=train_help)
        for name, kwargs in inputs:
            train.add_argument(name, **kwargs)
        train.add_argument("--seed", type=int, default=0, help="seed of the initialisation and of the batch order")
    add_settings(train, settings)
    add_device_flags(train, device)
    train.add_argument("--out", type=Path, required=True, help=out_help)
    if columns is not None:
        co = sub.add_parser("collect", help="concatenate the per-seed CSVs into one table")
        co.add_argument("tables", type=Path, nargs="+", help="per-seed CSVs written by `train`")
        co.add_argument("--out", type=Path, required=True, help="the combined tidy CSV")
    args = parser.parse_args(argv)
    if columns is not None and args.command == "collect":
        collect(args.tables, args.out, columns)
        return
    use_threads(args.threads)
    train_main(args)

"""Train one run: seed, data, model, optimiser, loop, evaluate, save.

    python -m orthojac train --family fold --depth 10 --data-dir results/data/fashion_mnist \
        --out-dir results/runs/demo/fold

Writes into --out-dir: `init.pt` and `final.pt` (weights + config), `epochs.pt` (the weights after
each epoch named by --save-epochs, for the spectra of intermediate checkpoints `epochN`; empty when
none), `metrics.csv` (tidy: one row per epoch × split × metric), `config.json` (the resolved
config, the status, the environment, and under `evaluated` the number of images each split's loss
and accuracy are computed on).
Evaluation (at initialisation and after each epoch): the validation and test splits whole; the
training split on a fixed subset of TRAIN_EVAL_SIZE images (the same for every run and seed, drawn
once from EVAL_SEED; all of it when smaller) — its loss and accuracy feed only the training curves,
and the whole 50,000 images each epoch cost about a third of the epoch's training.
`checkpoint.pt` is saved every --checkpoint-every steps and at each epoch's end; a run that finds
one with the same config resumes from it. A loss or parameter that is not finite ends the run as
`diverged` at that step: a result, not a crash.

Runtime flags (not config: they change results by rounding only, and are recorded in config.json)
pick the fast path's levers, orthojac.run.fastpath: on by default on CUDA; on CPU the fused Adam, the
hand-written dense bodies and the one-channel convolutions as one depthwise convolution only
(deterministic: a rerun on the same machine and thread count gives identical metrics).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import config as run_config
from . import fastpath
from .checkpoint import atomic_save, code_fingerprint, load_checkpoint
from ..data import load_images
from ..device import add_device_flags, select_device, use_threads
from .fastpath import FastPath
from ..files import remove_stale_temporaries, write_csv_atomic, write_text_atomic
from ..nets import native
from ..nets.models import build_model
from .progress_line import Progress
from ..nets.regularisers import regularisation

METRIC_COLUMNS = ["epoch", "step", "split", "metric", "value"]
TRAIN_EVAL_SIZE = 10_000  # training images evaluated each epoch (a fixed subset; see the docstring)
EVAL_SEED = 0


def train_evaluation_subset(n: int) -> torch.Tensor:
    """The indices (increasing) of the training images evaluated each epoch: TRAIN_EVAL_SIZE of
    the n drawn once from EVAL_SEED, independent of the run's seed; all n when n is smaller."""
    if n <= TRAIN_EVAL_SIZE:
        return torch.arange(n)
    chosen = torch.randperm(n, generator=torch.Generator().manual_seed(EVAL_SEED))[:TRAIN_EVAL_SIZE]
    return chosen.sort().values


def prepare_data(cfg: run_config.RunConfig, data_dir: Path, device: torch.device) -> dict:
    """The three splits as normalised float tensors (N, 1, 28, 28) held on `device` (the data set
    is small), and the normalisation (mean, std of the training pixels) under "normalisation".

    The splits and their [0, 1] pixels are orthojac.data.load_images': validation the last
    `val_size` images of the official training split (choice); training the first `train_size` of
    the rest (all when 0); test the first `test_size` of t10k (all when 0).
    """
    parts = load_images(data_dir, cfg.train_size, cfg.val_size, cfg.test_size)
    xt = parts["train"][0].unsqueeze(1)
    mean, std = xt.mean().item(), xt.std().item()
    splits = {"normalisation": (mean, std)}
    for name, (x, y) in parts.items():
        splits[name] = (((x.unsqueeze(1) - mean) / std).to(device), y.to(device))
    return splits


@torch.inference_mode()
def evaluate(model, x, y, batch_size: int = 1000, fast: FastPath = FastPath()) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y), in the fast path's precision and layout
    (eager: evaluation is a small part of a run)."""
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        with fastpath.autocast(fast, x.device), fastpath.weights_once(fast):
            logits = model(fastpath.to_layout(x[i : i + batch_size], fast, model)).float()
        loss += F.cross_entropy(logits, y[i : i + batch_size], reduction="sum").item()
        correct += (logits.argmax(1) == y[i : i + batch_size]).sum().item()
    model.train()
    return loss / len(x), correct / len(x)


def cosine_lr(cfg: run_config.RunConfig, step: int, total: int) -> float:
    if cfg.schedule == "constant":
        return cfg.lr
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * min(step, total) / total))


def all_finite(model) -> bool:
    """Whether every parameter is finite. Checked at each epoch's end; within an epoch a
    non-finite parameter makes the next loss non-finite, which ends the run at the same step."""
    return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())


def training_step(forward, model, optimiser, x, y, cfg: run_config.RunConfig,
                  fast: FastPath, guard: fastpath.DivergenceGuard | None = None) -> torch.Tensor | None:
    """One Adam step on the batch (x, y): cross-entropy in the fast path's precision plus the
    soft penalty in fp32 (an orthogonality defect is a small difference of O(1) numbers, which
    bf16 would round away). Returns the loss, or None (no step taken) when it is not finite; with
    a `guard` the test stays on the device (the fused Adam skips the step) and is read by
    `guard.check`."""
    with fastpath.autocast(fast, x.device), fastpath.weights_once(fast):
        loss = F.cross_entropy(forward(fastpath.to_layout(x, fast, model)).float(), y)
    penalty = regularisation(model, cfg.regime, cfg.alpha, cfg.gain)
    if penalty is not None:
        loss = loss + penalty
    if guard is not None:
        guard.observe(loss)
    elif not torch.isfinite(loss):
        return None
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss


def _weights(model) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


class Stop:
    """Set by SIGTERM (how SLURM ends a job at its time limit): checkpoint, then exit non-zero."""

    requested = False

    @classmethod
    def handler(cls, signum, frame):
        cls.requested = True


def _why_not_resumed(ckpt: dict, cfg: run_config.RunConfig, code: str, fast: FastPath,
                     save_epochs) -> str | None:
    """Why a checkpoint cannot finish this run (the first reason found), or None when it can: it
    must be of this config, by this code, of a run still running, with the weights of the epochs
    --save-epochs wants up to its epoch (else epochs.pt would lack or have extra ones), on the
    same fast path."""
    state = ckpt["state"]
    kept = sorted(int(e) for e in state.get("epoch_models", {}))
    wanted = sorted(e for e in set(save_epochs) if e <= state["epoch"])
    if ckpt["config"] != cfg.to_dict():
        return "its config differs"
    if ckpt.get("code") != code:
        return f"it was written by other code (fingerprint {str(ckpt.get('code'))[:12]} ≠ {code[:12]})"
    if state["status"] != "running":
        return f"its run already ended ({state['status']})"
    if kept != wanted:
        return (f"it kept the weights of epochs {kept or 'none'}, and this run wants {wanted or 'none'} "
                f"by epoch {state['epoch']} (--save-epochs)")
    if ckpt.get("fast_path") != fast.to_dict():
        return f"its fast path differs ({ckpt.get('fast_path')} ≠ {fast.to_dict()})"
    return None


def train(cfg: run_config.RunConfig, data_dir: Path, out_dir: Path, device: torch.device,
          checkpoint_every: int, fast: FastPath = FastPath(), save_epochs: tuple[int, ...] = ()) -> dict:
    """Train `cfg`, resuming from out_dir/checkpoint.pt when it holds the same config. The weights
    after each epoch in `save_epochs` are kept in the checkpoint (so a resumed run still has them)
    and written to epochs.pt at the end."""
    late = [e for e in save_epochs if not 1 <= e <= cfg.epochs]
    if late:
        raise ValueError(f"--save-epochs {late}: a run of {cfg.epochs} epochs has epochs 1 … {cfg.epochs}")
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)  # left by a run killed (SIGKILL) while writing
    ckpt_path = out_dir / "checkpoint.pt"
    splits = prepare_data(cfg, data_dir, device)
    x_train, y_train = splits["train"]
    subset = train_evaluation_subset(len(x_train)).to(device)
    evaluated = {"train": (x_train[subset], y_train[subset]), "val": splits["val"], "test": splits["test"]}
    model = build_model(cfg).to(device)
    forward = fastpath.prepare_model(model, fast)
    optimiser = fastpath.make_optimiser(model.parameters(), cfg.lr, fast)
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs

    state = {
        "epoch": 0, "step_in_epoch": 0, "global_step": 0, "metrics": [], "status": "running",
        "diverged_step": None, "seconds": 0.0, "init_model": _weights(model), "epoch_models": {},
    }
    code = code_fingerprint()
    if ckpt_path.exists():
        # A checkpoint finishes an interrupted run of this config by this code, nothing else: one
        # of a finished run (status not running), of another config or of other code is set aside.
        ckpt = load_checkpoint(ckpt_path)
        why = _why_not_resumed(ckpt, cfg, code, fast, save_epochs)
        if why is None:
            model.load_state_dict(ckpt["model"])
            optimiser.load_state_dict(ckpt["optimizer"])
            torch.set_rng_state(ckpt["torch_rng"])
            state = ckpt["state"]
            print(f"resuming from {ckpt_path}: epoch {state['epoch']}, step {state['global_step']}",
                  file=sys.stderr)
        else:
            print(f"{ckpt_path} not resumed: {why}; starting afresh", file=sys.stderr)
            ckpt_path.unlink()

    def save_checkpoint():
        atomic_save({
            "model": model.state_dict(), "optimizer": optimiser.state_dict(),
            "torch_rng": torch.get_rng_state(), "config": cfg.to_dict(), "state": state, "code": code,
            "fast_path": fast.to_dict(),
        }, ckpt_path)

    def record(split: str, metric: str, value: float):
        state["metrics"].append({"epoch": state["epoch"], "step": state["global_step"],
                                 "split": split, "metric": metric, "value": value})

    def evaluate_all():
        for split, (x, y) in evaluated.items():
            loss, acc = evaluate(model, x, y, fast=fast)
            record(split, "loss", loss)
            record(split, "accuracy", acc)
            if not math.isfinite(loss):
                return False
        return True

    if state["global_step"] == 0 and not state["metrics"]:
        evaluate_all()  # epoch 0: the network at initialisation
    # One line per epoch in the log (stderr); logging only, read from `state` and the losses.
    progress = Progress(total_steps)
    progress.run(f"{out_dir.parent.name}/{out_dir.name}", cfg.epochs, steps_per_epoch,
                 epoch=state["epoch"], step=state["global_step"])

    def last_val_accuracy():
        return next((r["value"] for r in reversed(state["metrics"])
                     if r["split"] == "val" and r["metric"] == "accuracy" and r["epoch"] == state["epoch"]),
                    None)

    model.train()
    guard = fastpath.divergence_guard(optimiser, fast, device, state["global_step"])
    while state["status"] == "running" and state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        started = time.perf_counter()
        # The data order depends only on (seed, epoch), so a resumed epoch replays the same batches.
        perm = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(
            cfg.seed * 1_000_003 + epoch)).to(device)
        for s in range(state["step_in_epoch"], steps_per_epoch):
            idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            for group in optimiser.param_groups:
                group["lr"] = cosine_lr(cfg, state["global_step"], total_steps)
            loss = training_step(forward, model, optimiser, x_train[idx], y_train[idx], cfg, fast, guard)
            if loss is None:
                state["status"], state["diverged_step"] = "diverged", state["global_step"]
                progress.diverged(state["global_step"], "the training loss is not finite")
                break
            progress.step(loss.detach(), len(idx))
            state["global_step"] += 1
            state["step_in_epoch"] = s + 1
            save = Stop.requested or (checkpoint_every and state["global_step"] % checkpoint_every == 0)
            if guard is not None and (save or s + 1 == steps_per_epoch
                                      or state["global_step"] % fastpath.CHECK_EVERY == 0):
                bad = guard.check(state["global_step"])
                if bad is not None:  # as the per-step test would have stopped: at step `bad`
                    state["status"], state["diverged_step"] = "diverged", bad
                    progress.diverged(bad, "the training loss is not finite")
                    state["global_step"] = bad
                    state["step_in_epoch"] = bad - epoch * steps_per_epoch
                    break
            if save:
                state["seconds"] += time.perf_counter() - started
                started = time.perf_counter()
                save_checkpoint()
                if Stop.requested:
                    progress.clear()
                    print(f"SIGTERM: checkpoint saved at step {state['global_step']}; exiting",
                          file=sys.stderr)
                    sys.exit(143)
        state["seconds"] += time.perf_counter() - started
        if state["status"] == "running":
            state["epoch"] = epoch + 1
            state["step_in_epoch"] = 0
            if not all_finite(model) or not evaluate_all():
                state["status"], state["diverged_step"] = "diverged", state["global_step"]
                progress.diverged(state["global_step"], "a parameter or an evaluation loss is not finite "
                                  f"after epoch {state['epoch']}")
            else:
                progress.epoch_end(state["epoch"], last_val_accuracy())
            record("train", "seconds", state["seconds"])
            if state["epoch"] in save_epochs:
                state.setdefault("epoch_models", {})[str(state["epoch"])] = _weights(model)
            record("train", "lr", cosine_lr(cfg, state["global_step"], total_steps))
        save_checkpoint()
    if state["status"] == "running":
        state["status"] = "completed"
    else:
        record("train", "diverged_at_step", float(state["diverged_step"]))

    summary = {
        "config": cfg.to_dict(), "status": state["status"], "diverged_step": state["diverged_step"],
        "steps": state["global_step"], "train_seconds": state["seconds"],
        "evaluated": {split: len(x) for split, (x, _) in evaluated.items()},
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "device": str(device), "threads": torch.get_num_threads(),
                        "fast_path": fast.to_dict(), "native_body": native.used()},
    }
    mean, std = splits["normalisation"]
    common = {"config": cfg.to_dict(), "normalisation": {"mean": mean, "std": std}}
    atomic_save({"model": state["init_model"], **common}, out_dir / "init.pt")
    atomic_save({"model": model.state_dict(), "status": state["status"], **common}, out_dir / "final.pt")
    # An epoch a diverged run never reached has no weights: its spectra are recorded as missing.
    atomic_save({"models": state.get("epoch_models", {}), **common}, out_dir / "epochs.pt")
    write_csv_atomic(out_dir / "metrics.csv", state["metrics"], METRIC_COLUMNS)
    write_text_atomic(out_dir / "config.json", json.dumps(summary, indent=2) + "\n")
    # The outputs are written: the run is over, and a rerun (forced, or after its outputs were
    # deleted) must start from the beginning, not resume a finished run.
    ckpt_path.unlink(missing_ok=True)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    run_config.add_arguments(parser)
    parser.add_argument("--data-dir", type=Path, required=True, help="folder of the IDX files")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for this run's outputs")
    add_device_flags(parser)
    parser.add_argument("--checkpoint-every", type=int,
                        default=int(os.environ.get("ORTHOJAC_CHECKPOINT_EVERY", 200)),
                        help="save checkpoint.pt every this many steps (and at each epoch's end); "
                        "default: $ORTHOJAC_CHECKPOINT_EVERY or 200 (a runtime setting, not "
                        "experiment data: it does not change the results)")
    parser.add_argument("--save-epochs", type=int, nargs="*", default=[],
                        help="epochs after which to keep the weights (epochs.pt), for spectra at "
                        "intermediate checkpoints")
    parser.add_argument("--selection", type=Path,
                        help="a screen's selection file (orthojac.run.select): its chosen settings replace "
                        "the flags' values of the settings named by --selection-keep (config.json records "
                        "the result)")
    parser.add_argument("--selection-keep", nargs="+", default=[],
                        help="with --selection: the settings taken from it (the experiment's select.keep)")
    fastpath.add_arguments(parser)
    args = parser.parse_args(argv)
    cfg = run_config.from_namespace(args)
    if args.selection:
        from .select import apply_selection
        cfg = apply_selection(cfg, args.selection, args.selection_keep)
    use_threads(args.threads)
    device = select_device(args.device)
    # Precision in one place: the fast path's levers (orthojac.run.fastpath), all on for CUDA (bf16
    # autocast, channels-last, torch.compile with CUDA graphs, fused Adam) and off for CPU but the
    # fused Adam and the hand-written layers, where fp32 with TF32 off is the deterministic,
    # resumable reference. Each flag turns one off.
    fast = fastpath.resolve(args, device, cfg.regime)
    fastpath.set_backends(fast)
    signal.signal(signal.SIGTERM, Stop.handler)
    summary = train(cfg, args.data_dir, args.out_dir, device, args.checkpoint_every, fast,
                    tuple(args.save_epochs))
    print(json.dumps({k: summary[k] for k in ("status", "steps", "train_seconds")}), file=sys.stderr)


if __name__ == "__main__":
    main()

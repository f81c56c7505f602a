"""Spectra at intermediate training checkpoints: training keeps the weights after the epochs its
--save-epochs names (in checkpoint.pt, so a resumed run keeps them; epochs.pt at the end), and the
spectrum stage reads one epoch of epochs.pt."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from orthojac import spectra
from orthojac.run import train
from orthojac.run.checkpoint import load_checkpoint
from orthojac.config import RunConfig
from orthojac.report.figures import checkpoint_order


def _cfg(**kw) -> RunConfig:
    base = dict(arch="conv", family="fold", channels=1, depth=2, bias_init=-0.5, lr=0.01, epochs=3,
                val_size=100, batch_size=50)
    return RunConfig(**{**base, **kw})


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_epochs_pt_holds_the_weights_after_each_saved_epoch(tmp_path, idx_folder):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    train.train(_cfg(), idx_folder, out, torch.device("cpu"), checkpoint_every=0, save_epochs=(1, 3))
    epochs = load_checkpoint(out / "epochs.pt")
    final, init = load_checkpoint(out / "final.pt"), load_checkpoint(out / "init.pt")
    assert sorted(epochs["models"]) == ["1", "3"]
    assert _same(epochs["models"]["3"], final["model"])
    assert not _same(epochs["models"]["1"], final["model"])
    assert not _same(epochs["models"]["1"], init["model"])
    assert epochs["config"] == final["config"] and epochs["normalisation"] == final["normalisation"]

    # Epoch 1's weights are those of a run stopped after its first epoch, same seed and schedule.
    class StopAfterEpoch1(Exception):
        pass

    out2 = tmp_path / "run2"
    real_evaluate = train.evaluate
    calls = {"n": 0}

    def evaluate_then_stop(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # epoch 0: train, val, test; the 4th call is after epoch 1
            raise StopAfterEpoch1
        return real_evaluate(*args, **kwargs)

    train.evaluate = evaluate_then_stop
    try:
        with pytest.raises(StopAfterEpoch1):
            train.train(_cfg(), idx_folder, out2, torch.device("cpu"), checkpoint_every=0, save_epochs=(1, 3))
    finally:
        train.evaluate = real_evaluate
    assert not (out2 / "epochs.pt").exists()
    # The killed run resumes from checkpoint.pt (saved after epoch 1's last step) and ends with the
    # same epochs.pt as the uninterrupted one.
    train.train(_cfg(), idx_folder, out2, torch.device("cpu"), checkpoint_every=1, save_epochs=(1, 3))
    resumed = load_checkpoint(out2 / "epochs.pt")
    assert all(_same(resumed["models"][e], epochs["models"][e]) for e in ("1", "3"))


def test_an_epoch_past_the_run_is_refused(tmp_path, idx_folder):
    with pytest.raises(ValueError, match=r"--save-epochs \[4\].*3 epochs"):
        train.train(_cfg(), idx_folder, tmp_path / "run", torch.device("cpu"), 0, save_epochs=(4,))


def test_spectrum_of_an_epoch_and_of_an_epoch_a_diverged_run_never_reached(tmp_path, idx_folder):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    train.train(_cfg(epochs=2), idx_folder, out, torch.device("cpu"), 0, save_epochs=(1, 2))
    rows = {}
    for epoch in (1, 2):
        body, layers, timing = (tmp_path / f"e{epoch}.{k}" for k in ("body.csv", "layers.csv", "json"))
        spectra.main(["--weights", str(out / "epochs.pt"), "--epoch", str(epoch), "--data-dir", str(idx_folder),
                      "--points", "1", "--grad-batch", "8", "--out-body", str(body),
                      "--out-layers", str(layers), "--out-timing", str(timing)])
        rows[epoch] = pd.read_csv(body)["sigma"]
        record = json.loads(timing.read_text())
        assert record["dimension"] == 784 and record["seconds"] > 0
    final_body = tmp_path / "final.body.csv"
    spectra.main(["--weights", str(out / "final.pt"), "--data-dir", str(idx_folder), "--points", "1",
                  "--grad-batch", "0", "--no-layers", "--out-body", str(final_body),
                  "--out-layers", str(tmp_path / "final.layers.csv")])
    assert (rows[2] - pd.read_csv(final_body)["sigma"]).abs().max() < 1e-12  # epoch 2 = final
    assert (rows[1] - rows[2]).abs().max() > 1e-3  # epoch 1 is another network than the final one

    # A run that diverged in epoch 1 kept no weights for epoch 2: NaN rows, not a failed job.
    ckpt = load_checkpoint(out / "epochs.pt")
    ckpt["models"].pop("2")
    torch.save(ckpt, tmp_path / "diverged.pt")
    body = tmp_path / "d.body.csv"
    spectra.main(["--weights", str(tmp_path / "diverged.pt"), "--epoch", "2", "--data-dir", str(idx_folder),
                  "--points", "1", "--out-body", str(body), "--out-layers", str(tmp_path / "d.layers.csv")])
    assert pd.read_csv(body)["sigma"].map(math.isnan).all()


def test_spectrum_refuses_a_mismatched_checkpoint_and_epoch(tmp_path, idx_folder):
    out = tmp_path / "run"
    train.train(_cfg(epochs=1), idx_folder, out, torch.device("cpu"), 0, save_epochs=(1,))
    common = ["--data-dir", str(idx_folder), "--out-body", str(tmp_path / "b.csv"),
              "--out-layers", str(tmp_path / "l.csv")]
    with pytest.raises(ValueError, match="needs an epochs.pt"):
        spectra.main(["--weights", str(out / "final.pt"), "--epoch", "1", *common])
    with pytest.raises(ValueError, match="pass --epoch"):
        spectra.main(["--weights", str(out / "epochs.pt"), *common])
    with pytest.raises(ValueError, match="epoch 5 is past the run's 1 epochs"):
        spectra.main(["--weights", str(out / "epochs.pt"), "--epoch", "5", *common])
    assert not (tmp_path / "b.csv").exists()


def test_figures_order_checkpoints_as_training_went():
    names = ["final", "epoch10", "init", "epoch2"]
    assert sorted(names, key=checkpoint_order) == ["init", "epoch2", "epoch10", "final"]

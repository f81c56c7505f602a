"""The zoo and its settings: the schema's families and activations are the library's, the flags
parse, and train.py adds the regulariser to the loss."""

import dataclasses
import gzip
import shutil

import pytest
import torch

from orthojac import config as run_config
from orthojac.nets.activations import ACTIVATIONS
from orthojac.config import RunConfig
from orthojac.nets.models import MODELS, build_model, orthogonal_operators
from orthojac.config import GAUSSIAN_CONTROL
from orthojac.nets.orthogonal import CONSTRUCTIONS
from orthojac.nets.regularisers import operator_defect
from orthojac.run.train import train
from orthojac.workflow import config_schema

def test_the_schema_and_the_flags_name_the_zoo_and_the_activations():
    """The schema's families and activations (the `$defs` the fields' `values` name: no torch in the
    planner, so not read from the library) are the library's; `init`'s choices its constructions."""
    schema = config_schema()
    assert schema["$defs"]["family"]["enum"] == list(MODELS)
    assert schema["$defs"]["activation"]["enum"] == list(ACTIVATIONS)
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    assert fields["init"].metadata["choices"] == [*CONSTRUCTIONS, GAUSSIAN_CONTROL]  # and the non-orthogonal control


def test_flags_parse_new_settings():
    import argparse

    parser = argparse.ArgumentParser()
    run_config.add_arguments(parser)
    cfg = run_config.from_namespace(parser.parse_args([
        "--family=orthoff", "--activation=sigma_k", "--k=3", "--breakpoints=-1,0,1",
        "--regime=soft_gain", "--gain=1.1", "--alpha=0.01", "--arch=dense", "--width=6", "--depth=1"]))
    assert cfg.breakpoints == "-1,0,1" and cfg.regime == "soft_gain"
    model = build_model(cfg)
    assert model.body[0].sigma.relu_k.breakpoints.tolist() == [-1.0, 0.0, 1.0]


def _decompressed(mirror, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for gz in mirror.glob("*.gz"):
        with gzip.open(gz) as src, open(folder / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return folder


def test_train_adds_the_soft_penalty_to_the_loss(idx_dataset, tmp_path):
    data = _decompressed(idx_dataset[0], tmp_path)
    base = RunConfig(arch="dense", width=8, depth=2, family="fold", lr=0.05, epochs=1, batch_size=50,
                     train_size=200, val_size=100, test_size=100, alpha=10.0)
    defects = {}
    for regime in ("init", "soft"):
        cfg = dataclasses.replace(base, regime=regime)
        summary = train(cfg, data, tmp_path / regime, torch.device("cpu"), checkpoint_every=0)
        assert summary["status"] == "completed"
        model = build_model(cfg)
        model.load_state_dict(torch.load(tmp_path / regime / "final.pt", weights_only=True)["model"])
        defects[regime] = sum(operator_defect(op, 1.0, (28, 28)).item()
                              for op in orthogonal_operators(model.body))
    assert defects["init"] > 1e-6
    assert defects["soft"] < defects["init"] / 2

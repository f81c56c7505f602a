"""The zoo and its settings: schema enums equal the library's dicts, every RunConfig field is a
schema setting with a help text, the flags parse, and train.py adds the regulariser to the loss."""

import dataclasses
import gzip
import shutil

import pytest
import torch
import yaml

from conftest import REPO
from orthojac import config as run_config
from orthojac.activations import ACTIVATIONS
from orthojac.config import RunConfig
from orthojac.models import MODELS, build_model, orthogonal_operators
from orthojac.config import GAUSSIAN_CONTROL
from orthojac.orthogonal import CONSTRUCTIONS
from orthojac.regularisers import operator_defect
from orthojac.train import train

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
SETTINGS = SCHEMA["$defs"]["experiment"]["properties"]["settings"]["properties"]


def _enum(setting: dict) -> list | None:
    """The enum a string setting's `value` is restricted to, following $refs."""
    for part in setting.get("allOf", []):
        value = part.get("properties", {}).get("value")
        if value is None:
            continue
        if "$ref" in value:
            value = SCHEMA["$defs"][value["$ref"].split("/")[-1]]
        if "enum" in value:
            return value["enum"]
    if "$ref" in setting:
        return _enum(SCHEMA["$defs"][setting["$ref"].split("/")[-1]])
    return None


def test_schema_enums_equal_the_zoo_and_the_activations():
    assert SCHEMA["$defs"]["family"]["enum"] == list(MODELS)
    assert SCHEMA["$defs"]["activation"]["enum"] == list(ACTIVATIONS)
    assert _enum(SETTINGS["init"]) == [*CONSTRUCTIONS, GAUSSIAN_CONTROL]  # and the non-orthogonal control


def test_every_field_is_a_setting_with_help_and_matching_choices():
    fields = dataclasses.fields(RunConfig)
    assert set(SETTINGS) == {f.name for f in fields}
    for f in fields:
        assert f.metadata["help"], f.name
        if f.metadata.get("choices"):
            assert _enum(SETTINGS[f.name]) == f.metadata["choices"], f.name


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

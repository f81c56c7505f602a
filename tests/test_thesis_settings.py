"""Each thesis section's `Settings` (orthojac.thesis.<module>) generates its `train` flags
(orthojac.config.add_arguments): one flag a field, the field's default, a list field taking one or more values, a field without a default required."""

from __future__ import annotations

import argparse
import dataclasses
import importlib

import pytest

from orthojac.config import add_arguments
from orthojac.thesis import lstm, theory
from orthojac.workflow import SECTIONS as REGISTRY

SECTIONS = {name: importlib.import_module(section.module) for name, section in REGISTRY.items()}


@pytest.mark.parametrize("section", SECTIONS)
def test_the_flags_carry_the_settings_defaults(section):
    parser = argparse.ArgumentParser()
    add_arguments(parser, SECTIONS[section].Settings, defaults_in_help=False)
    required = ["--depths", "2"] if section == "h4" else []
    args = vars(parser.parse_args(required))
    settings = SECTIONS[section].Settings(**({"depths": [2]} if section == "h4" else {}))
    assert args == dataclasses.asdict(settings)


def test_lists_take_several_values_and_a_field_without_default_is_required():
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser, theory.Settings, defaults_in_help=False)
    args = parser.parse_args(["--depths", "2", "8", "--q-star", "0.25", "--weights", "gaussian"])
    assert args.depths == [2, 8] and args.q_star == 0.25 and args.weights == ["gaussian"]
    with pytest.raises((SystemExit, argparse.ArgumentError)):
        parser.parse_args([])  # --depths is required
    member = argparse.ArgumentParser()
    add_arguments(member, lstm.Settings, defaults_in_help=False)
    assert member.parse_args(["--member", "glove.6B.50d.txt"]).embeddings_member == "glove.6B.50d.txt"


def test_a_section_key_with_a_default_may_be_left_out_and_reads_as_the_default():
    from conftest import REPO
    from orthojac.report import provenance_table
    from orthojac.workflow import Pipeline, config_errors, fill_defaults, load_config

    cfg = fill_defaults(load_config([REPO / "config/quick.yaml"], base=REPO / "config/config.yaml"))
    del cfg["hlav_rnn"]["hidden"]
    assert config_errors(cfg) == []
    assert "--hidden" not in Pipeline(cfg).section_args("hlav_rnn")  # the program takes its default
    table = provenance_table(cfg).set_index(["experiment", "setting"])
    row = table.loc[("hlav_rnn", "hidden")]
    assert (row["value"], row["provenance"], row["where / why"]) == ("64", "choice", "orthojac default")
    del cfg["hlav_rnn"]["seeds"]  # no default: required
    assert "config: hlav_rnn: 'seeds' is a required property" in config_errors(cfg)


def test_the_dense_names_are_the_settings_and_the_schema_takes_them_from_there():
    import re

    from orthojac.thesis import dense, settings
    from orthojac.workflow.schema import config_schema

    assert set(dense.ACTIVATIONS) == set(settings.DENSE_ACTIVATIONS)
    assert set(dense.OPTIMIZERS) == set(settings.OPTIMIZERS)
    pattern = config_schema()["$defs"]["hlav_network"]["pattern"]
    assert all(re.search(pattern, f"{a}:1.05") for a in settings.DENSE_ACTIVATIONS)
    assert not re.search(pattern, "sigmoid:1.05") and not re.search(pattern, "tanh:")

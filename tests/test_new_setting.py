"""A new setting is one dataclass field: added to a copy of RunConfig, of a thesis section's
Settings and of SpectraSettings, it reaches the config's schema (a config with it validates, a bad
value is refused naming its key), the program's flags (`--new-field=…` parses into the dataclass)
and the report's provenance rows, with nothing else written."""

from __future__ import annotations

import argparse
import copy
import dataclasses

import pytest
import yaml

from conftest import REPO
from orthojac.config import RunConfig, add_arguments, from_namespace, setting
from orthojac.report import provenance_table
from orthojac.spectra_settings import SpectraSettings, command_flags
from orthojac.thesis.settings import RNN
from orthojac.workflow import SECTIONS, config_errors, config_schema, fill_defaults, load_config

SECTION_SETTINGS = {name: section.settings for name, section in SECTIONS.items()}


@pytest.fixture(scope="module")
def quick():
    return load_config([REPO / "config/quick.yaml"], base=REPO / "config/config.yaml")


def rows(table, experiment: str) -> dict:
    """{setting: (value, provenance, where / why)} of one experiment's provenance rows."""
    mine = table[table["experiment"] == experiment]
    return {r["setting"]: (r["value"], r["provenance"], r["where / why"]) for _, r in mine.iterrows()}


def test_a_new_run_setting_reaches_the_schema_the_flags_and_the_provenance(quick):
    new_run = dataclasses.make_dataclass(
        "NewRun", [("dropout", float, setting(0.0, "dropout rate of each body layer", bound="nonnegative"))],
        bases=(RunConfig,))
    schema = config_schema(run=new_run)
    cfg = copy.deepcopy(quick)
    first, second = cfg["experiments"][0]["name"], cfg["experiments"][1]["name"]
    cfg["experiments"][0]["settings"]["dropout"] = {"grid": [0.0, 0.25], "choice": "a new knob"}
    assert config_errors(cfg, schema) == []
    refused = config_errors(cfg, REPO / "workflow/schemas/config.schema.yaml")  # the real RunConfig has no such field
    assert any("'dropout' was unexpected" in line for line in refused), refused
    cfg["experiments"][0]["settings"]["dropout"] = {"value": "fast", "choice": "a new knob"}
    assert f"config: experiments[0]({first}).settings.dropout.value: 'fast' is not of type 'number'" \
        in config_errors(cfg, schema)
    cfg["experiments"][0]["settings"]["dropout"] = {"value": -0.5, "choice": "a new knob"}
    assert f"config: experiments[0]({first}).settings.dropout.value: -0.5 is less than the minimum of 0" \
        in config_errors(cfg, schema)

    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser, new_run)
    parsed = from_namespace(parser.parse_args(["--dropout=0.25", "--depth=3"]), new_run)
    assert (parsed.dropout, parsed.depth) == (0.25, 3)
    assert from_namespace(parser.parse_args([]), new_run).dropout == 0.0

    cfg["experiments"][0]["settings"]["dropout"] = {"value": 0.25, "choice": "a new knob"}
    table = provenance_table(cfg, run_settings=new_run)
    assert rows(table, first)["dropout"] == ("0.25", "choice", "a new knob")
    assert rows(table, second)["dropout"] == ("0.0", "choice", "orthojac default")
    assert "dropout" not in rows(provenance_table(quick), first)


def test_a_new_thesis_setting_reaches_the_schema_the_flags_and_the_provenance(quick):
    new_rnn = dataclasses.make_dataclass(
        "NewRNN", [("clip", float, setting(1.0, "gradient-norm clipping", bound="positive"))], bases=(RNN,))
    schema = config_schema(sections={**SECTION_SETTINGS, "hlav_rnn": new_rnn})
    cfg = copy.deepcopy(quick)
    assert config_errors(cfg, schema) == []  # a key with a default may be left out: its program's default
    cfg["hlav_rnn"]["clip"] = {"value": 0, "choice": "test"}
    assert "config: hlav_rnn.clip.value: 0 is less than or equal to the minimum of 0" in config_errors(cfg, schema)
    cfg["hlav_rnn"]["clip"] = {"value": 5.0, "choice": "no clipping in practice"}
    assert config_errors(cfg, schema) == []

    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser, new_rnn, defaults_in_help=False)
    assert from_namespace(parser.parse_args(["--clip", "5"]), new_rnn).clip == 5.0
    assert rows(provenance_table(cfg), "hlav_rnn")["clip"] == ("5.0", "choice", "no clipping in practice")


def test_a_new_spectra_setting_reaches_the_schema_the_command_the_flags_and_the_provenance(quick):
    new_spectra = dataclasses.make_dataclass(
        "NewSpectra", [("lanczos_seed", int, setting(0, "seed of the Lanczos start vector"))],
        bases=(SpectraSettings,))
    schema = config_schema(spectra=new_spectra)
    cfg = fill_defaults(copy.deepcopy(quick), schema)
    first = cfg["experiments"][0]
    assert first["spectra"]["lanczos_seed"] == 0  # its default, filled in
    assert command_flags(first["spectra"], new_spectra)[-2:] == ["--lanczos-seed", "0"]
    assert command_flags(first["spectra"])[:2] == ["--points", str(first["spectra"]["points"])]
    first["spectra"]["lanczos_seed"] = -1
    assert f"config: experiments[0]({first['name']}).spectra.lanczos_seed: -1 is less than the minimum of 0" \
        in config_errors(cfg, schema)

    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser, new_spectra)
    parsed = from_namespace(parser.parse_args(["--lanczos-seed", "3", "--no-layers"]), new_spectra)
    assert (parsed.lanczos_seed, parsed.layers, parsed.checkpoints) == (3, False, ["init", "final"])

    first["spectra"]["lanczos_seed"] = 3
    row = rows(provenance_table(cfg, spectra_settings=new_spectra), first["name"])["spectra.lanczos_seed"]
    assert row == ("3", "choice", first["spectra"]["choice"])


def test_orthojac_schema_prints_the_schema_the_workflow_validates_with(capsys):
    from orthojac import cli

    cli.main(["schema"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == config_schema()
    depth = printed["$defs"]["experiment"]["properties"]["settings"]["properties"]["depth"]
    assert depth == {"allOf": [{"$ref": "#/$defs/positive_int_setting"},
                               {"properties": {"value": {"maximum": 10000}, "grid": {"items": {"maximum": 10000}}}}],
                     "description": "number of layers L in the body"}  # its bound, from the field

"""A new setting is one dataclass field: added to RunConfig or a thesis section's Settings in a
temporary copy of the package (and to a subclass of SpectraSettings), it reaches the config's schema
(a config with it validates, a bad value is refused naming its key), the program's flags, the
command the workflow plans and the report's provenance rows, with nothing else written."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from orthojac.config import add_arguments, from_namespace, setting
from orthojac.report import provenance_table
from orthojac.spectra_settings import SpectraSettings, command_flags
from orthojac.workflow import config_errors, config_schema, fill_defaults, load_config

@pytest.fixture(scope="module")
def quick():
    return load_config([REPO / "config/quick.yaml"], base=REPO / "config/config.yaml")


def rows(table, experiment: str) -> dict:
    """{setting: (value, provenance, where / why)} of one experiment's provenance rows."""
    mine = table[table["experiment"] == experiment]
    return {r["setting"]: (r["value"], r["provenance"], r["where / why"]) for _, r in mine.iterrows()}


# A new setting as it is added: one line in a copy of the package (a field of RunConfig, one of the
# thesis' RNN settings), nothing else edited. A subprocess with the copy first on the path sees it in
# `orthojac schema`, the program's --help, the command the workflow plans and the provenance table.
NEW_RUN_FIELD = '    dropout: float = _f(0.0, "dropout rate of each body layer", bound="nonnegative")\n'
NEW_RNN_FIELD = '    clip: float = setting(1.0, "gradient-norm clipping", bound="positive")\n'
IN_THE_COPY = """
import json, subprocess, sys
from pathlib import Path

import yaml

import orthojac
from orthojac.report import provenance_table
from orthojac.workflow import Pipeline, config_errors, fill_defaults, load_config

repo = Path(sys.argv[1])
cfg = fill_defaults(load_config([repo / "config/quick.yaml"], base=repo / "config/config.yaml"))
first, second = cfg["experiments"][0]["name"], cfg["experiments"][1]["name"]
cfg["experiments"][0]["settings"]["dropout"] = {"value": 0.25, "choice": "a new knob"}
cfg["hlav_rnn"]["clip"] = {"value": 5.0, "choice": "no clipping in practice"}
errors = config_errors(cfg)
bad = json.loads(json.dumps(cfg))
bad["experiments"][0]["settings"]["dropout"] = {"value": -0.5, "choice": "a new knob"}
bad["hlav_rnn"]["clip"] = {"value": 0, "choice": "x"}
pipeline = Pipeline(cfg)
run = next(r for e, r in pipeline.runs if e == first)
table = provenance_table(cfg)
rows = {(r["experiment"], r["setting"]): [r["value"], r["provenance"], r["where / why"]] for _, r in table.iterrows()}
help_of = lambda *cmd: subprocess.run([sys.executable, "-m", "orthojac", *cmd, "--help"], capture_output=True,
                                      text=True, check=True).stdout
schema = yaml.safe_load(subprocess.run([sys.executable, "-m", "orthojac", "schema"], capture_output=True, text=True,
                                       check=True).stdout)
print(json.dumps({
    "package": orthojac.__file__, "errors": errors, "refused": config_errors(bad),
    "schema_dropout": schema["$defs"]["experiment"]["properties"]["settings"]["properties"].get("dropout"),
    "schema_clip": schema["properties"]["hlav_rnn"]["properties"].get("clip"),
    "train_help": help_of("train"), "hlav_help": help_of("hlav", "train"),
    "train_args": pipeline.train_args(first, run), "section_args": pipeline.section_args("hlav_rnn"),
    "rows": {"dropout": rows.get((first, "dropout")), "dropout_default": rows.get((second, "dropout")),
             "clip": rows.get(("hlav_rnn", "clip"))}}))
"""


@pytest.fixture(scope="module")
def in_a_copy(tmp_path_factory):
    """What the copied package with one new field of RunConfig and of the RNN's settings shows."""
    root = tmp_path_factory.mktemp("copy")
    shutil.copytree(REPO / "src/orthojac", root / "src/orthojac", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "workflow/schemas", root / "workflow/schemas")  # the schema's hand-written part
    for path, anchor, line in (("config.py", '    kernel_size: int = _f(3, "kernel size', NEW_RUN_FIELD),
                               ("thesis/settings.py", '    hidden: int = setting(64, "hidden units of the RNN"',
                                NEW_RNN_FIELD)):
        file = root / "src/orthojac" / path
        lines = file.read_text().splitlines(keepends=True)
        at = [i for i, text in enumerate(lines) if text.startswith(anchor)]
        assert len(at) == 1, (path, anchor)
        lines.insert(at[0] + 1, line)
        file.write_text("".join(lines))
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", IN_THE_COPY, str(REPO)], env=env, capture_output=True, text=True,
                         timeout=600, cwd=root)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["package"].startswith(str(root / "src"))  # the copy was imported, not the checkout
    return seen


def test_a_new_run_setting_reaches_the_schema_the_flags_the_command_and_the_provenance(in_a_copy, quick):
    seen = in_a_copy
    assert seen["errors"] == []  # a config setting it validates
    cfg = copy.deepcopy(quick)
    cfg["experiments"][0]["settings"]["dropout"] = {"value": 0.25, "choice": "x"}
    refused = config_errors(cfg)
    assert any("'dropout' was unexpected" in line for line in refused), refused  # the checkout has no such field
    assert seen["schema_dropout"] == {"$ref": "#/$defs/nonnegative_number_setting",
                                      "description": "dropout rate of each body layer"}
    assert any("experiments[0]" in e and "dropout.value: -0.5 is less than the minimum of 0" in e
               for e in seen["refused"]), seen["refused"]
    assert "--dropout DROPOUT" in seen["train_help"] and "dropout rate of each body layer" in seen["train_help"]
    assert "--dropout=0.25" in seen["train_args"].split()
    assert seen["rows"]["dropout"] == ["0.25", "choice", "a new knob"]
    assert seen["rows"]["dropout_default"] == ["0.0", "choice", "orthojac default"]
    assert "dropout" not in rows(provenance_table(quick), quick["experiments"][0]["name"])


def test_a_new_thesis_setting_reaches_the_schema_the_flags_the_command_and_the_provenance(in_a_copy):
    seen = in_a_copy
    assert seen["schema_clip"] == {"$ref": "#/$defs/positive_number_setting", "description": "gradient-norm clipping"}
    assert "config: hlav_rnn.clip.value: 0 is less than or equal to the minimum of 0" in seen["refused"]
    assert "--clip CLIP" in seen["hlav_help"] and "gradient-norm clipping" in seen["hlav_help"]
    assert "--clip 5.0" in seen["section_args"]
    assert seen["rows"]["clip"] == ["5.0", "choice", "no clipping in practice"]


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

"""orthojac.workflow, the workflow's logic as a library: the Snakefile plans exactly the jobs and
files it names, config files combine as documented, and its registry of experiments (the paper's
runs and the thesis sections) agrees with the schema, the report and the programs it runs."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from conftest import REPO
from orthojac.config import add_arguments
from orthojac.workflow import (EXPERIMENTS, PAGES, PAPER_FIGURES, PAPER_TABLES, SECTIONS, Pipeline, config_schema,
                               fill_defaults, load_config, replace_sections_whole, values)

SCHEMA = config_schema()


def validated(configfile: str | None) -> dict:
    """A config file as the workflow validates it (the schema fills in the spectra defaults)."""
    config = load_config([REPO / "config" / configfile] if configfile else [], base=REPO / "config/config.yaml")
    return fill_defaults(config)


@pytest.mark.parametrize("configfile", ["quick.yaml", "cpu.yaml"])
def test_the_snakefile_plans_the_jobs_the_library_names(configfile, plan):
    """Every file of the dry run's jobs is one the library lists, and every listed one is planned:
    the runs, spectra, per-seed thesis tables, section tables and figures, report pages."""
    out = plan(f"config/{configfile}")
    planned = set(re.findall(r"(results/[^\s,]+\.(?:pt|csv|png|html))", out))
    pipeline = Pipeline(validated(configfile))
    named = set(pipeline.run_files("final.pt") + pipeline.run_files("metrics.csv") + pipeline.spectra_files("body")
                + pipeline.report_tables() + pipeline.report_figures() + pipeline.index_outputs()
                + [f for s in pipeline.sections if s.folder for f in pipeline.seed_tables(s.name)]
                + [o for o in pipeline.all_outputs() if o.endswith(".html")])
    assert named - planned == set()
    assert {f for f in planned if f.endswith((".png", ".html")) or f.startswith("results/tables/")} <= named


def test_a_configfile_section_replaces_the_section_whole_and_null_removes_it():
    base = {"h4": {"width": {"value": 400}, "depths": {"grid": [1]}}, "hlav_lstm": {"seeds": {"grid": [0]}},
            "experiments": [{"name": "a"}]}
    out = replace_sections_whole(base, [{"h4": {"width": {"value": 16}}, "hlav_lstm": None}],
                                 {"h4": {"width": {"value": 8}}})
    assert out == {"h4": {"width": {"value": 8}}, "experiments": [{"name": "a"}]}


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(SystemExit, match="nope.yaml: no such config file"):
        load_config([tmp_path / "nope.yaml"])


def test_every_section_of_the_registry_is_a_config_section_with_its_keys_and_a_report_page():
    for name, section in SECTIONS.items():
        assert section.page in PAGES
    # every key of a section is a flag or the workflow's (inputs, seeds per job, provenance)
    workflow_keys = {"description", "dataset", "seeds", "data", "text", "embeddings"}
    for name, section in SECTIONS.items():
        properties = set(SCHEMA["properties"][name]["properties"])
        assert properties - set(section.flags) - workflow_keys == set(), name


def test_a_run_of_an_unknown_dataset_or_a_checkpoint_past_the_epochs_is_refused():
    config = validated("quick.yaml")
    config["experiments"][0]["settings"]["dataset"] = {"value": "nope", "choice": "test"}
    with pytest.raises(ValueError, match=r"settings.dataset = 'nope' is not a key of data"):
        Pipeline(config)
    config = validated("quick.yaml")
    config["experiments"][0]["spectra"]["checkpoints"] = ["epoch99"]
    with pytest.raises(ValueError, match="epoch99 is past the"):
        Pipeline(config)


def test_section_flags_quote_values_and_name_the_lstm_member():
    config = validated(None)
    args = Pipeline(config).section_args("hlav_lstm")
    assert f"--member {config['hlav_lstm']['embeddings_member']['value']}" in args
    config["hlav_linear"]["lr_scaling"] = {"value": "a b", "choice": "test"}
    assert "--lr-scaling 'a b'" in Pipeline(config).section_args("hlav_linear")


@pytest.mark.parametrize("configfile", [None, "quick.yaml", "cpu.yaml", "verify.yaml"])
def test_the_section_flags_parse_back_to_the_config_values(configfile):
    """What a thesis job is given (Pipeline.section_args) is what its program reads: the flags
    generated from the section's Settings parse to the config's values, key by key."""
    config = validated(configfile)
    for section in Pipeline(config).sections:
        parser = argparse.ArgumentParser(exit_on_error=False)
        add_arguments(parser, section.settings, defaults_in_help=False)
        parsed = vars(parser.parse_args(shlex.split(Pipeline(config).section_args(section.name))))
        for key in section.flags:
            if key in config[section.name]:
                got = parsed[key] if isinstance(parsed[key], list) else [parsed[key]]
                assert got == values(config[section.name][key]), (section.name, key)


def test_every_section_is_drawn_and_its_flags_need_no_module_import():
    """orthojac.thesis.figures draws every section of the registry; each section's settings class is
    the one its program parses (the module's `Settings`)."""
    import importlib

    from orthojac.thesis import figures

    for section in SECTIONS.values():
        assert section.figures and all(callable(getattr(figures, f.draw, None)) for f in section.figures.values())
    for section in SECTIONS.values():
        assert importlib.import_module(section.module).Settings is section.settings


def test_the_paper_and_each_thesis_section_are_entries_of_one_registry():
    """One kind of entry: each names its settings class, the `orthojac` command it runs (whose
    module its rule runs), its tables, its figures with their captions and its report page."""
    from orthojac.cli import COMMANDS
    from orthojac.config import RunConfig

    assert list(EXPERIMENTS) == ["paper", *SECTIONS] and not EXPERIMENTS["paper"].is_section
    for name, entry in EXPERIMENTS.items():
        assert entry.program in COMMANDS, name
        assert entry.page in PAGES and entry.tables and all(f.caption for f in entry.figures.values()), name
    paper = EXPERIMENTS["paper"]
    assert paper.settings is RunConfig and paper.tables == PAPER_TABLES
    assert paper.figures is PAPER_FIGURES
    assert all(section.tables == (name,) for name, section in SECTIONS.items())
    pipeline = Pipeline(load_config([], base=REPO / "config/config.yaml"))  # every section configured
    assert pipeline.report_tables() == [f"results/tables/{t}.csv" for t in PAPER_TABLES + tuple(SECTIONS)]
    assert pipeline.report_figures()[:len(PAPER_FIGURES)] == [f"results/figures/{f}.png" for f in PAPER_FIGURES]

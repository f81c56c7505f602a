"""Every configuration in config/ validates, every run of it builds, and every setting carries
exactly one provenance label (`stated` citing a source, or `choice`)."""

from __future__ import annotations

import copy
import re

import jsonschema
import pytest
import yaml

from conftest import REPO, job_counts, outside_checkout, run_snakemake
from orthojac.config import RunConfig
from orthojac.nets.models import build_model
from orthojac.workflow import SECTIONS, config_schema, expand_experiment, load_config

SCHEMA = config_schema()  # the schema file with its settings blocks generated
BASE = REPO / "config/config.yaml"
CONFIGS = sorted(p.name for p in (REPO / "config").glob("*.yaml"))
# A `stated` label begins with a citation of a source text (docs/replication.md, "The source
# texts, and how they are cited"): a section of the paper's summary by its name, the v1/v2 abstract,
# or the thesis by its numbering (Hlav §1–§6, Figs. 1–10, eqs. (1)–(11)).
SUMMARY_SECTIONS = ("Quick Facts", "Executive Summary", "Method Summary", "Key Results", "Mechanism 1",
                    "Mechanism 2", "Mechanism 3", "Foundational Learning", "Architecture Onboarding",
                    "Component map", "Critical path", "Design tradeoffs", "Failure signatures",
                    "First 3 experiments", "Open Question 1", "Open Question 2", "Open Question 3",
                    "Limitations", "Confidence", "Next Checks")
CITATION = re.compile(r"(summary, (" + "|".join(map(re.escape, SUMMARY_SECTIONS)) + r")"
                      r"|abstract v[12]|Hlav (§[1-6]|Figs?\. (10|[1-9])|eq\. \((1[01]|[1-9])\)))(?![\w.])")
# …and holds nothing that is not a source text, nor a part that is orthojac's (that is a `choice`).
NOT_A_SOURCE = re.compile(r"\bspec\b|REPLICATION|docs/|\bchoice\b|\borthojac\b", re.IGNORECASE)


def stated_problem(label: str) -> str | None:
    """Why `label` is not a valid `stated` provenance, or None."""
    if not CITATION.match(label):
        return "does not begin with a citation of a source text (summary, <section>; abstract v1/v2; Hlav §N/Fig. N/eq. (N))"
    if NOT_A_SOURCE.search(label):
        return f"cites something that is not a source text, or a choice: {NOT_A_SOURCE.search(label).group(0)!r}"
    return None


def merged(name: str) -> dict:
    """The config the workflow sees for `--configfile config/<name>` (orthojac.workflow.load_config)."""
    return load_config([] if name == BASE.name else [REPO / "config" / name], base=BASE)


def labelled(config: dict):
    """(where, entry) for every entry that must carry a provenance label."""
    for exp in config["experiments"]:
        for key, setting in exp["settings"].items():
            yield f"experiments[{exp['name']}].settings.{key}", setting
        if "spectra" in exp:
            yield f"experiments[{exp['name']}].spectra", exp["spectra"]
    for section in SECTIONS:
        for key, setting in config.get(section, {}).items():
            if key != "description":
                yield f"{section}.{key}", setting
    for key, download in config.get("downloads", {}).items():
        yield f"downloads.{key}", download


def runs(config: dict):
    """(experiment, settings) of every run, as the workflow expands them."""
    for exp in config["experiments"]:
        for settings in expand_experiment(exp).values():
            yield exp["name"], settings


def test_every_config_file_is_checked():
    assert {"config.yaml", "quick.yaml", "verify.yaml"} <= set(CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates_against_the_schema(name):
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(merged(name))]
    assert errors == []


@pytest.mark.parametrize("name", CONFIGS)
def test_every_setting_has_exactly_one_provenance_label(name):
    config = merged(name)
    missing = []
    for where, entry in labelled(config):
        labels = [k for k in ("stated", "choice") if k in entry]
        if len(labels) != 1 or not str(entry[labels[0]]).strip():
            missing.append(f"{where}: labels {labels}")
        elif labels == ["stated"] and stated_problem(entry["stated"]):
            missing.append(f"{where}: stated {entry['stated']!r} {stated_problem(entry['stated'])}")
    assert missing == []


@pytest.mark.parametrize("label", [
    "summary, Key Results: up to 200 layers",
    "summary, First 3 experiments (2): F(x) = Aᵀ|Bx + b|",
    "summary, Mechanism 2: σ_k(x) = x − 2ReLU_k(x)",
    "abstract v2: isometries only on a non-trivial subspace",
    "Hlav §5: batch size 256",
    "Hlav Fig. 3 caption: width 400",
    "Hlav eq. (11): λ‖WWᵀ/g² − I‖²_F",
])
def test_a_stated_label_citing_a_source_text_is_accepted(label):
    assert stated_problem(label) is None


@pytest.mark.parametrize("label", [
    "spec, §5: −2 trains at depth 200",                        # not a source text
    "REPLICATION §3, H1: gain A = 1.1",
    "docs/replication.md §5: −2 trains at depth 200",          # orthojac's own doc: a choice
    "summary, Method: ReLU_k for the ResNet form, k = 1",       # the summary has no section "Method"
    "summary: Fashion MNIST",                                    # no section
    "abstract v3: persistent subspace orthogonality",
    "Hlav §7: batch size",                                       # the thesis has §1–§6
    "Hlav eq. (12)",
    "Hlav, somewhere",
    "summary, Critical path: Cayley transform (haar: choice)",   # half stated, half choice
    "summary, Key Results; construction: docs/replication.md §1.3",
    "ReLU, as the summary says",                                 # a source word, no citation
])
def test_a_stated_label_without_a_source_citation_is_refused(label):
    assert stated_problem(label) is not None


@pytest.mark.parametrize("name", CONFIGS)
def test_every_run_builds(name):
    """Each grid point is a valid network (family × activation, width_mid, pso_d, regime, …):
    built at depth 1 so the check is cheap."""
    config = merged(name)
    for experiment, settings in runs(config):
        assert settings.get("dataset", "fashion_mnist") in config["data"], experiment
        cfg = RunConfig(**{**settings, "depth": 1})
        assert len(build_model(cfg).body) == 1, (experiment, settings)


def test_a_broken_label_is_caught():
    config = copy.deepcopy(merged("verify.yaml"))
    config["experiments"][0]["settings"]["depth"]["choice"] = "both labels"
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(config))
    assert errors, "a setting with both `stated` and `choice` must fail the schema"


def test_verify_config_plans_every_run(plan):
    assert job_counts(plan("config/verify.yaml"))["train"] == len(list(runs(merged("verify.yaml"))))


def test_a_configfile_section_replaces_the_full_one_whole(venv_env, tmp_path):
    """config.yaml labels H1's epochs `choice`; a --configfile whose `hlav_rnn:` labels them
    `stated` must not be merged key by key into a setting with both labels (a schema error), and
    its seeds are the only ones planned."""
    override = yaml.safe_load((REPO / "config/verify.yaml").read_text())
    override["hlav_rnn"]["epochs"] = {"value": 1, "stated": "Hlav §5 (test)"}
    override["hlav_rnn"]["seeds"] = {"grid": [7], "choice": "test"}
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(override))
    out = run_snakemake([*outside_checkout(path), "-n", "results/tables/hlav_rnn.csv"], tmp_path, venv_env)
    assert "seed=7" in out and "seed=0" not in out


def test_a_null_section_leaves_that_experiment_out(plan):
    """verify.yaml sets `hlav_lstm: null`: no H2 job is planned, H1 still is."""
    assert "hlav_lstm" not in merged("verify.yaml") and "hlav_lstm" in merged("config.yaml")
    out = plan("config/verify.yaml")
    assert "results/hlav/rnn/seed=" in out and "results/hlav/lstm/" not in out and "fetch_download" not in out

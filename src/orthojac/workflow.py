"""The workflow's logic, importable and tested: how the config files combine, which jobs a
configuration has, each job's command-line flags, and the files each stage reads and writes.

`workflow/rules/*.smk` are the Snakemake glue around it (workflow/rules/common.smk builds one
`Pipeline` from the validated config); `orthojac.progress` and the tests read the same functions,
so no copy of the workflow's logic exists outside this module.

Two kinds of jobs:
- the paper's runs: each `experiments:` entry is a grid of `RunConfig` settings (orthojac.config),
  one `orthojac.train` job per grid point, its spectra, then the tables and figures of all runs;
- the thesis sections (`SECTIONS`, one entry per top-level config section such as `hlav_linear:`):
  each runs its own program, one job per seed (H4: one job), whose per-seed CSVs are collected
  into `results/tables/<section>.csv` and drawn as the section's figures.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from .config import RunConfig, flag_of
from .data import IDX_FILES
from .thesis import settings as thesis_settings

# What the paper's stages write: orthojac.tables' tables, orthojac.figures' figures.
PAPER_TABLES = ("runs", "metrics", "spectra", "layers", "init_study", "screens", "diagnostics")
PAPER_FIGURES = {"accuracy": "Training", "loss": "Training", "accuracy_vs_depth": "Training",
                 "singular_values": "Jacobian spectra", "layer_defect": "Jacobian spectra",
                 "grad_norm": "Gradients", "init_study": "Training"}  # figure → report subcategory
STAND_IN_DIR = "results/data/hlav_lstm_stand_in"  # H2's generated stand-in data


@dataclass(frozen=True)
class Section:
    """A thesis section of the config: a program of its own, not `orthojac.train` runs.

    name: the config's top-level key, and the name of its rule (its table's `<name>_table`, its
    figures' `<name>_figure`). label: the thesis' experiment (H1…H5). module: run as
    `python -m <module>`. settings: its dataclass (orthojac.thesis.settings), whose fields are the
    config keys passed to it as flags. inputs: what a job reads ("idx": the IDX files of the
    section's `dataset`; "receipts": H2's two downloads; "": nothing). folder: per-seed CSVs go to
    results/hlav/<folder>/ ("": one job writes the table, H4). figures: the figures
    (results/figures/<name>.png) orthojac.thesis.figures draws from its table. page: the report
    page (a key of PAGES). gpu: whether its jobs take the `gpu` resource."""

    name: str
    label: str
    module: str
    settings: type
    inputs: str
    folder: str
    figures: tuple[str, ...]
    page: str
    gpu: bool = False

    @property
    def flags(self) -> dict[str, str]:
        """{config key: its flag} for every field of the section's settings."""
        return {f.name: flag_of(f) for f in fields(self.settings)}

    @property
    def table(self) -> str:
        return f"results/tables/{self.name}.csv"

    def seed_table(self, seed) -> str:
        """A seed's CSV (a pattern with seed="{seed}")."""
        return f"results/hlav/{self.folder}/seed={seed}.csv"

    def log(self, seed=None) -> str:
        """The log of a seed's job, or of the section's one job (H4)."""
        return f"results/logs/{self.name}.log" if seed is None else f"results/logs/{self.name}/seed={seed}.log"

    def benchmark(self, seed=None) -> str:
        return f"results/benchmarks/{self.name}.tsv" if seed is None else f"results/benchmarks/{self.name}/seed={seed}.tsv"


SECTIONS = {s.name: s for s in (
    Section("h4", "H4", "orthojac.thesis.theory", thesis_settings.Theory, "", "", ("h4_spectra",), "theory"),
    Section("hlav_rnn", "H1", "orthojac.thesis.rnn", thesis_settings.RNN, "idx", "rnn",
            ("hlav_spectrum", "hlav_accuracy"), "hlav"),
    Section("hlav_lstm", "H2", "orthojac.thesis.lstm", thesis_settings.LSTM, "receipts", "lstm",
            ("hlav_lstm_spectrum", "hlav_lstm_accuracy"), "hlav"),
    Section("hlav_linear", "H3", "orthojac.thesis.linear", thesis_settings.Linear, "idx", "linear", ("hlav_linear",),
            "hlav", gpu=True),
    Section("hlav_deep", "H5", "orthojac.thesis.deep", thesis_settings.Deep, "idx", "deep", ("hlav_deep",), "hlav",
            gpu=True),
)}


# The report's pages besides the index, each with its title and the claims it judges (a thesis
# section's page: Section.page); orthojac.report.SECTIONS is this dict.
PAGES = {
    "paper": ("Massucco, Murari, Schönlieb: fold, orthoff and their baselines",
              ("P1", "P2", "P3", "P4", "P5", "P6", "P7")),
    "hlav": ("Hlav (2019): RNNs, LSTMs, deep linear and deep tanh/ReLU networks", ("H-C1", "H-C2", "H-C3", "H-C4", "H-C5")),
    "theory": ("Jacobian spectra at initialisation against theory (H4)", ("H-C6",)),
}


# -- what a config may name -----------------------------------------------------------------
# Names that become folders or files (data sets, downloads, experiments, a data set's files, a
# download's file) are matched whole by the schema's patterns (`\Z`, not `$`, which also matches
# before a trailing newline). A grid value is part of a run name `key=value+key=value` (a folder, a
# Snakemake wildcard, SLURM's `--target-jobs`): no "/", ",", "+", "=", blanks.
SAFE_RUN_VALUE = re.compile(r"[A-Za-z0-9_.:-]*\Z")

# The largest value a size setting may take, wherever it appears (experiments' settings and the
# thesis sections): a typo such as 1000000000 is refused at load, not by a job running out of memory.
SIZE_BOUNDS = {
    "width": 16384, "width_mid": 16384, "hidden": 16384, "channels": 1024, "kernel_size": 63,
    "depth": 10000, "depths": 10000, "k": 1024, "pso_d": 16384, "seq_len": 10000,
    "epochs": 10000, "batch_size": 65536, "train_size": 10_000_000, "val_size": 10_000_000,
    "test_size": 10_000_000, "points": 10000, "grad_batch": 65536, "chunk_size": 65536,
    "exact_max_dim": 1_000_000,
}


class ConfigFileError(ValueError):
    """A config file that cannot be read as a mapping of unique keys (names the file)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader refusing a mapping that repeats a key (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # PyYAML itself reports an unhashable key
            if key in seen:
                raise ConfigFileError(
                    f"{self.name}: key {key!r} appears twice in one mapping (lines "
                    f"{seen[key] + 1} and {key_node.start_mark.line + 1}); YAML would keep only the last")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def read_config_file(path) -> dict:
    """One config file as a mapping: refused (naming the file) when it is empty, not a mapping, not
    YAML, or repeats a key."""
    text = Path(path).read_text(encoding="utf-8")
    loader = _UniqueKeyLoader(text)
    loader.name = str(path)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as err:
        raise ConfigFileError(f"{path}: not valid YAML ({err})") from err
    finally:
        loader.dispose()
    if data is None:
        raise ConfigFileError(f"{path}: the config file is empty (want a mapping of sections)")
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: want a mapping of sections at the top level, got {type(data).__name__}")
    return data


def config_file_errors(paths) -> list[str]:
    """Why each config file cannot be read (read_config_file), one line each."""
    errors = []
    for path in paths:
        try:
            read_config_file(path)
        except (ConfigFileError, OSError) as err:
            errors.append(str(err))
    return errors


# -- the config files ----------------------------------------------------------------------
def update_config(config: dict, overrides: Mapping) -> dict:
    """`--config key=value` overrides merged key by key into `config` (as snakemake.utils does)."""
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            config[key] = update_config(config.get(key, {}), value)
        else:
            config[key] = value
    return config


def replace_sections_whole(config: dict, layers: list[Mapping], overrides: Mapping = {}) -> dict:
    """Each top-level section of a `--configfile` (`layers`, in order) replaces config.yaml's
    section whole; a section set to null (`hlav_lstm: null`) is removed: that configuration does
    not run it. `--config key=value` overrides apply last.

    Snakemake merges config files key by key, so a quick `h4:` laid over the full one would keep
    the full file's keys it does not name, and a setting could end up both `stated` and `choice`."""
    for layer in layers:
        for key, value in (layer or {}).items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = copy.deepcopy(value)
    return update_config(config, overrides)


def load_config(configfiles: list[Path] = (), base: Path = Path("config/config.yaml")) -> dict:
    """The config the workflow sees for `--configfile configfiles…` (before validation)."""
    layers = []
    for path in [base, *configfiles]:
        if not Path(path).exists():
            raise SystemExit(f"{path}: no such config file")
        layers.append(read_config_file(path))
    return replace_sections_whole({}, layers)


def _key_path(cfg, path) -> str:
    """A validation error's location as the config's keys: experiments[0](tiny).settings.lr.value"""
    out, node = "", cfg
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            if isinstance(node, list) and isinstance(node[part], dict) and "name" in node[part]:
                name = str(node[part]["name"])
                out += f"({name})" if re.fullmatch(r"[\w.+=:-]*", name) else f"({name!r})"
        else:
            name = str(part) if re.fullmatch(r"[\w.+=:-]+", str(part)) else repr(part)  # a key with odd
            out += f".{name}" if out else name  # characters (newline, blank) quoted: one line per error
        node = node[part]
    return out or "(top level)"


@functools.lru_cache(maxsize=4)
def _validator(schema_file: str, mtime_ns: int):
    """The schema's validator, read once per version of the file. An `integer` is an int: JSON
    Schema also counts 2.0, which would reach a program's int flag as "2.0" and fail there."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    strict = base.TYPE_CHECKER.redefine(
        "integer", lambda checker, instance: isinstance(instance, int) and not isinstance(instance, bool))
    validator = jsonschema.validators.extend(base, type_checker=strict)
    return validator(yaml.safe_load(Path(schema_file).read_text()))


def config_errors(cfg: dict, schema_file: Path) -> list[str]:
    """Every schema violation of `cfg`, one line each, naming the key and the offending value.
    (snakemake.utils.validate reports only the first, followed by the whole sub-schema.)"""
    import jsonschema

    lines = []
    for error in _validator(str(schema_file), Path(schema_file).stat().st_mtime_ns).iter_errors(cfg):
        leaf = jsonschema.exceptions.best_match([error])
        while leaf.context:
            leaf = jsonschema.exceptions.best_match(leaf.context)
        lines.append(f"config: {_key_path(cfg, leaf.absolute_path)}: {leaf.message}")
    return sorted(set(lines) | set(semantic_errors(cfg)))


def _walk(node, path=()):
    """(path, value) of every leaf and container of a config, depth first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, i))


def _setting_values(setting) -> list:
    """A setting's values, or [] when it is not a well-formed setting (the schema reports that)."""
    if not isinstance(setting, dict):
        return []
    if isinstance(setting.get("grid"), list):
        return setting["grid"]
    return [setting["value"]] if "value" in setting else []


def semantic_errors(cfg) -> list[str]:
    """What the schema cannot say, one line each naming the key: non-finite numbers, sizes past
    SIZE_BOUNDS, repeated grid values (seeds, run names), repeated experiment names, grid values
    unfit for a run name, data sets and downloads that are not configured, a data set whose
    `files:` are not the IDX files the workflow fetches. Tolerates a config the schema refuses."""
    if not isinstance(cfg, dict):
        return []
    errors = []
    where = lambda path: _key_path(cfg, path)  # noqa: E731
    for path, value in _walk(cfg):
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(f"config: {where(path)}: {value} is not a finite number")
        if path and path[-1] == "grid" and isinstance(value, list):
            seen = set()
            for item in value:
                if isinstance(item, (str, int, float)) and str(item) in seen:
                    errors.append(f"config: {where(path)}: {item!r} is repeated (each grid value is one job)")
                seen.add(str(item))
        if path and path[-1] in SIZE_BOUNDS and not isinstance(value, bool):
            key = path[-1]
            for item in _setting_values(value) if isinstance(value, dict) else [value]:
                if isinstance(item, (int, float)) and not isinstance(item, bool) and item > SIZE_BOUNDS[key]:
                    errors.append(f"config: {where(path)}: {item} is past the bound {SIZE_BOUNDS[key]} "
                                  f"for {key} (orthojac.workflow.SIZE_BOUNDS)")
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    downloads = cfg.get("downloads") if isinstance(cfg.get("downloads"), dict) else {}
    for name, spec in data.items():
        files = spec.get("files") if isinstance(spec, dict) else None
        if isinstance(files, dict):
            missing = [f for f in IDX_FILES if f not in files]
            extra = sorted(str(f) for f in files if f not in IDX_FILES)
            if missing or extra:
                errors.append(f"config: data.{name}.files: want exactly the IDX files {list(IDX_FILES)}"
                              + (f"; missing {missing}" if missing else "")
                              + (f"; not fetched by the workflow {extra}" if extra else ""))
    experiments = cfg.get("experiments") if isinstance(cfg.get("experiments"), list) else []
    first = {}
    for i, experiment in enumerate(experiments):
        if not isinstance(experiment, dict):
            continue
        name = experiment.get("name")
        if isinstance(name, str):
            if name in first:
                errors.append(f"config: experiments[{i}]({name}).name: {name!r} is also the name of "
                              f"experiments[{first[name]}] (names must be unique)")
            first.setdefault(name, i)
        settings = experiment.get("settings")
        if not isinstance(settings, dict):
            continue
        for key, setting in settings.items():
            if isinstance(setting, dict) and isinstance(setting.get("grid"), list):
                for j, item in enumerate(setting["grid"]):
                    if not SAFE_RUN_VALUE.match(str(item)):
                        errors.append(
                            f"config: {where(('experiments', i, 'settings', key, 'grid', j))}: {str(item)!r} "
                            "cannot be part of a run name (a folder, a job's wildcard): a grid value may hold "
                            "letters, digits and _ . : - only (a value with commas goes in `value:`)")
        for dataset in _setting_values(settings.get("dataset")):
            if isinstance(dataset, str) and dataset not in data:
                errors.append(f"config: experiments[{i}]({name}).settings.dataset: {dataset!r} is not a "
                              f"key of data: (have {sorted(data)})")
    errors += _selection_errors(experiments)
    for section, spec in SECTIONS.items():
        body = cfg.get(section)
        if not isinstance(body, dict):
            continue
        for key, setting in body.items():
            for item in _setting_values(setting):
                if isinstance(item, str) and item.startswith("-"):
                    errors.append(f"config: {section}.{key}: {item!r} starts with '-': its program would read "
                                  "it as a flag")
        if spec.inputs == "idx":
            for dataset in _setting_values(body.get("dataset")):
                if isinstance(dataset, str) and dataset not in data:
                    errors.append(f"config: {section}.dataset: {dataset!r} is not a key of data: "
                                  f"(have {sorted(data)})")
        if spec.inputs == "receipts" and _setting_values(body.get("data")) != ["generated"]:
            for part in ("text", "embeddings"):
                for key in _setting_values(body.get(part)):
                    if isinstance(key, str) and key not in downloads:
                        errors.append(f"config: {section}.{part}: {key!r} is not a key of downloads: "
                                      f"(have {sorted(downloads)})")
    return errors + reference_part_errors(cfg)


def reference_part_errors(cfg: dict) -> list[str]:
    """What the schema cannot say of `reference_parts:` and `reference_part`: each name in a part is
    an experiment or a thesis section of this config, and each of those is in exactly one part;
    `reference_part` (`--config reference_part=NAME`) is a key of `reference_parts`."""
    parts = cfg.get("reference_parts")
    chosen = cfg.get("reference_part")
    errors = []
    if chosen is not None and not (isinstance(parts, dict) and chosen in parts):
        errors.append(f"config: reference_part: {chosen!r} is not a key of reference_parts: "
                      f"(have {sorted(parts) if isinstance(parts, dict) else 'no reference_parts: in this config'})")
    if not isinstance(parts, dict):
        return errors
    experiments = [e.get("name") for e in cfg.get("experiments") or [] if isinstance(e, dict)]
    jobs = [*experiments, *(name for name in SECTIONS if isinstance(cfg.get(name), dict))]
    if "report" in parts:
        errors.append("config: reference_parts.report: `report` names the step that builds the report from every "
                      "part's outputs (make reference PART=report): give this part another name")
    where = {}
    for part, names in parts.items():
        for i, name in enumerate(names if isinstance(names, list) else []):
            if name not in jobs:
                errors.append(f"config: reference_parts.{part}[{i}]: {name!r} is neither an experiment nor a "
                              f"thesis section of this config (have {jobs})")
            elif name in where:
                errors.append(f"config: reference_parts.{part}[{i}]: {name!r} is also in part {where[name]!r} "
                              "(each experiment and section is in exactly one part)")
            else:
                where[name] = part
    missing = [name for name in jobs if name not in where]
    if missing:
        errors.append(f"config: reference_parts: {missing} are in no part (each experiment and thesis section "
                      "of the config is in exactly one part)")
    return errors


def _selection_errors(experiments: list) -> list[str]:
    """An experiment's `select:` names another experiment (its screen), which selects from nothing
    itself; the settings it keeps are grid axes of the screen, not set by the experiment."""
    by_name = {e.get("name"): e for e in experiments if isinstance(e, dict)}
    errors = []
    for i, experiment in enumerate(experiments):
        select = experiment.get("select") if isinstance(experiment, dict) else None
        if not isinstance(select, dict):
            continue
        name, screen = experiment.get("name"), by_name.get(select.get("from"))
        where = f"config: experiments[{i}]({name}).select"
        if screen is None or screen is experiment:
            errors.append(f"{where}.from: {select.get('from')!r} is not another experiment of the config "
                          f"(have {sorted(n for n in by_name if n != name)})")
            continue
        if isinstance(screen.get("select"), dict):
            errors.append(f"{where}.from: {select['from']!r} selects from {screen['select'].get('from')!r} "
                          "itself: a screen must be trained by its own settings")
        axes = {k for k, v in (screen.get("settings") or {}).items() if isinstance(v, dict) and "grid" in v}
        own = set(experiment.get("settings") or {})
        for key in select.get("keep") or []:
            if key not in axes:
                errors.append(f"{where}.keep: {key!r} is not a grid axis of {select['from']!r} "
                              f"(its axes: {sorted(axes)})")
            if key in own:
                errors.append(f"{where}.keep: {key!r} is also in settings: the screen chooses it")
    return errors


# -- the paper's runs ------------------------------------------------------------------------
def values(setting: dict) -> list:
    """A setting's values: its `grid:`, or its one `value:`."""
    return setting["grid"] if "grid" in setting else [setting["value"]]


def expand_experiment(experiment: dict) -> dict:
    """Every run of an experiment: the product of its `grid:` settings (in the order written),
    each combined with its `value:` settings. Returns {run name: {setting: value}}.
    Run names join `key=value` with "+", not ",": remote jobs (SLURM) receive their wildcards as
    `--target-jobs rule:k=v,k=v`, which Snakemake splits at every comma."""
    settings = experiment["settings"]
    fixed = {k: s["value"] for k, s in settings.items() if "value" in s}
    axes = [(k, s["grid"]) for k, s in settings.items() if "grid" in s]
    runs = {}
    for combo in itertools.product(*(v for _, v in axes)):
        point = dict(zip((k for k, _ in axes), combo))
        runs["+".join(f"{k}={v}" for k, v in point.items()) or "default"] = {**fixed, **point}
    return runs


def epoch_of(checkpoint: str) -> int | None:
    """N for a checkpoint named `epochN`, else None (init, final)."""
    return int(checkpoint[len("epoch"):]) if checkpoint.startswith("epoch") else None


def _flags(pairs) -> str:
    """`--flag v1 v2 …` for each (flag, values); values shell-quoted."""
    return " ".join(f"{flag} " + " ".join(shlex.quote(str(v)) for v in vals) for flag, vals in pairs)


class Pipeline:
    """The jobs of one (validated) configuration and the files between them."""

    def __init__(self, config: dict):
        self.config = config
        self.experiments = {e["name"]: e for e in config["experiments"]}
        self.runs = self._build_runs()
        self.sections = [s for name, s in SECTIONS.items() if name in config]

    def _build_runs(self) -> dict:
        """{(experiment, run): settings} over all experiments; checks cross-references."""
        runs = {}
        for name, experiment in self.experiments.items():
            for run, settings in expand_experiment(experiment).items():
                dataset = settings.get("dataset", RunConfig.dataset)
                if dataset not in self.config["data"]:
                    raise ValueError(f"config: experiments[{name}].settings.dataset = {dataset!r} "
                                     f"is not a key of data: (have {sorted(self.config['data'])})")
                runs[(name, run)] = settings
                epochs = settings.get("epochs", RunConfig.epochs)
                for checkpoint in experiment.get("spectra", {}).get("checkpoints", []):
                    epoch = epoch_of(checkpoint)
                    if epoch and epoch > epochs:
                        raise ValueError(f"config: experiments[{name}].spectra.checkpoints: {checkpoint} is"
                                         f" past the {epochs} epochs of run {run}")
        return runs

    # data
    def data_files(self, dataset: str) -> list[str]:
        return [f"results/data/{dataset}/{name}" for name in IDX_FILES]

    def fetch_args(self, dataset: str) -> str:
        spec = self.config["data"][dataset]
        args = [f"--url {shlex.quote(u)}" for u in spec.get("urls", [])]
        args += [f"--mirror {shlex.quote(m)}" for m in spec.get("mirrors", [])]
        args += ["--pickle " + shlex.quote(f"{p['path']}={p['md5']}") for p in spec.get("pickles", [])]
        args += ["--expect " + shlex.quote(f"{name}={f['size']}:{f['sha256']}") for name, f in spec["files"].items()]
        return " ".join(args)

    @staticmethod
    def data_dir(dataset: str) -> str:
        """The folder of a data set's verified IDX files."""
        return f"results/data/{dataset}"

    @staticmethod
    def run_dir(experiment: str, run: str) -> str:
        """The folder of a run's outputs."""
        return f"results/runs/{experiment}/{run}"

    # training and spectra
    def run_dataset(self, experiment: str, run: str) -> str:
        return self.runs[(experiment, run)].get("dataset", RunConfig.dataset)

    def train_args(self, experiment: str, run: str) -> str:
        """The run's settings as orthojac-train flags; `--flag=value` so that a value starting with
        '-' (breakpoints such as -1,0,1) is not read as a flag."""
        flags = {f.name: flag_of(f) for f in fields(RunConfig)}
        settings = self.runs[(experiment, run)]
        unknown = sorted(set(settings) - set(flags))
        if unknown:
            raise ValueError(f"config: experiments[{experiment}].settings: {unknown} are not settings of a run "
                             "(orthojac.config.RunConfig)")
        args = " ".join(shlex.quote(f"{flags[key]}={value}") for key, value in settings.items())
        selection = self.selection_file(experiment)
        if not selection:
            return args
        keep = " ".join(shlex.quote(k) for k in self.experiments[experiment]["select"]["keep"])
        return args + f" --selection {shlex.quote(selection)} --selection-keep {keep}"

    def selection_file(self, experiment: str) -> str | None:
        """The selection file of the screen whose best setting the experiment trains (`select:`), or None."""
        select = self.experiments[experiment].get("select")
        return f"results/selections/{select['from']}.json" if select else None

    def screen_runs(self, screen: str) -> list[str]:
        """config.json of every run of the experiment `screen` (what its selection reads)."""
        return [f"{self.run_dir(e, r)}/config.json" for e, r in self.runs if e == screen]

    def selection_keep(self, screen: str) -> str:
        """The settings the experiments selecting from `screen` keep, shell-quoted (the union)."""
        keep = sorted({k for e in self.experiments.values() if (e.get("select") or {}).get("from") == screen
                       for k in e["select"]["keep"]})
        return " ".join(shlex.quote(k) for k in keep)

    def selection_files(self) -> list[str]:
        """Every screen's selection file (for the tables: the report shows what each screen chose)."""
        return sorted({f for e in self.experiments if (f := self.selection_file(e))})

    def checkpoints(self, experiment: str) -> list[str]:
        return self.experiments[experiment]["spectra"]["checkpoints"]

    def save_epochs(self, experiment: str) -> str:
        """The epochs whose weights training keeps (epochs.pt): those the spectra name as `epochN`."""
        epochs = [epoch_of(c) for c in self.checkpoints(experiment)]
        return " ".join(shlex.quote(str(e)) for e in sorted(e for e in epochs if e is not None))

    @staticmethod
    def checkpoint_file(experiment: str, run: str, checkpoint: str) -> str:
        name = "epochs" if epoch_of(checkpoint) else checkpoint
        return f"results/runs/{experiment}/{run}/{name}.pt"

    @staticmethod
    def checkpoint_epoch(checkpoint: str) -> str:
        epoch = epoch_of(checkpoint)
        return f"--epoch {shlex.quote(str(epoch))}" if epoch else ""

    def spectra_args(self, experiment: str) -> str:
        spec = self.experiments[experiment]["spectra"]
        layers = "" if spec["layers"] else " --no-layers"
        return _flags((f"--{key.replace('_', '-')}", [spec[key]])
                      for key in ("points", "method", "exact_max_dim", "grad_batch", "chunk_size", "dtype")) + layers

    def run_files(self, name: str) -> list[str]:
        """results/runs/<experiment>/<run>/<name> of every run (metrics.csv, config.json)."""
        return [f"results/runs/{e}/{r}/{name}" for e, r in self.runs]

    def spectra_files(self, kind: str) -> list[str]:
        return [f"results/spectra/{e}/{r}/{c}.{kind}.csv" for e, r in self.runs for c in self.checkpoints(e)]

    def claims_json(self) -> str:
        return shlex.quote(json.dumps({e: x.get("claims", []) for e, x in self.experiments.items()}))

    # the thesis sections
    def section_data(self, section: str) -> list[str]:
        """What a job of `section` reads: the IDX files of its `dataset`, or H2's two receipts."""
        kind = SECTIONS[section].inputs
        if kind == "idx":
            return self.data_files(values(self.config[section]["dataset"])[0])
        if kind == "receipts":
            return list(self.lstm_receipts().values())
        return []

    def section_input_args(self, section: str) -> str:
        """The flags naming a job's inputs: `--data FOLDER`, or H2's `--text R --embeddings R`."""
        kind = SECTIONS[section].inputs
        if kind == "idx":
            return f"--data {shlex.quote(str(Path(self.section_data(section)[0]).parent))}"
        if kind == "receipts":
            return " ".join(f"--{part} {shlex.quote(path)}" for part, path in self.lstm_receipts().items())
        return ""

    def section_args(self, section: str) -> str:
        """The section's settings as `--flag value…` of its program: each key of its `Settings`."""
        cfg = self.config[section]
        return _flags((flag, values(cfg[key])) for key, flag in SECTIONS[section].flags.items() if key in cfg)

    def seeds(self, section: str) -> list[int]:
        return values(self.config[section]["seeds"])

    def seed_tables(self, section: str) -> list[str]:
        return [SECTIONS[section].seed_table(seed) for seed in self.seeds(section)]

    def section_tables(self) -> list[str]:
        return [s.table for s in self.sections]

    def section_figures(self) -> list[str]:
        return [f"results/figures/{f}.png" for s in self.sections for f in s.figures]

    def lstm_receipts(self) -> dict[str, str]:
        """The receipts (status.json) H2 trains from: of the two downloads, or of the generated
        stand-in when `hlav_lstm.data` is `generated`. Checks that the downloads are configured."""
        h2 = self.config["hlav_lstm"]
        if h2["data"]["value"] == "generated":
            return {p: f"{STAND_IN_DIR}/{p}/status.json" for p in ("text", "embeddings")}
        out = {}
        for part in ("text", "embeddings"):
            key = h2[part]["value"]
            if key not in self.config.get("downloads", {}):
                raise ValueError(f"config: hlav_lstm.{part} = {key!r} is not a key of downloads: "
                                 f"(have {sorted(self.config.get('downloads', {}))})")
            out[part] = f"results/data/{key}/status.json"
        return out

    def stand_in_sentences(self) -> int:
        h2 = self.config.get("hlav_lstm")
        return 0 if h2 is None else sum(h2[k]["value"] for k in ("train_size", "val_size", "test_size"))

    def download_args(self, download: str) -> str:
        """`downloads.KEY` as orthojac.downloads flags; `--optional` when H2, the downloads' consumer,
        may report its data as unavailable (`hlav_lstm.data: optional`)."""
        spec = self.config["downloads"][download]
        args = [f"--file {shlex.quote(spec['file'])} --key {shlex.quote(download)}"]
        args += [f"--url {shlex.quote(u)}" for u in spec["urls"]]
        args += [f"--mirror {shlex.quote(m)}" for m in spec["mirrors"]]
        args += [_flags((f"--{key}", [spec.get(key) or "null"]) for key in ("size", "sha256", "md5"))]
        if self.config.get("hlav_lstm", {}).get("data", {}).get("value") == "optional":
            args.append("--optional")
        return " ".join(args)

    # the report
    def report_tables(self) -> list[str]:
        return [f"results/tables/{t}.csv" for t in PAPER_TABLES] + self.section_tables()

    def report_figures(self) -> list[str]:
        return [f"results/figures/{f}.png" for f in PAPER_FIGURES] + self.section_figures()

    @staticmethod
    def index_outputs() -> list[str]:
        """What the index's notebook writes besides its page: the ledger and the overview figure."""
        return ["results/report/ledger.csv", "results/report/overview.png"]

    @staticmethod
    def pages() -> list[str]:
        return ["index", *PAGES]

    def page_inputs(self, page: str) -> list[str]:
        """What a report page is rendered from: its executed notebook's output, and for the index
        the section pages it links to."""
        if page == "index":
            return ["results/report/ledger.csv"] + [f"results/report/{p}.html" for p in self.pages()[1:]]
        return [f"results/report/{page}.provenance.csv"]

    def all_outputs(self) -> list[str]:
        return [f"results/report/{page}.html" for page in self.pages()] + ["results/report_site"]

    # the reference's parts (`reference_parts:`, `make reference PART=NAME`)
    def part_jobs(self, part: str) -> list[str]:
        """The experiments and thesis sections of the reference's part `part`."""
        parts = self.config.get("reference_parts") or {}
        if part not in parts:
            raise ValueError(f"config: reference_parts: no part {part!r} (have {sorted(parts)})")
        return list(parts[part])

    def part_outputs(self, part: str) -> list[str]:
        """What part `part` makes: each of its experiments' runs (metrics.csv, config.json) and
        spectra, each of its thesis sections' per-seed tables and table; not the report's tables,
        figures or pages, which the `report` step makes from every part's outputs."""
        out = []
        for name in self.part_jobs(part):
            if name in self.experiments:
                runs = [r for e, r in self.runs if e == name]
                out += [f"results/runs/{name}/{r}/{f}" for r in runs for f in ("metrics.csv", "config.json")]
                out += [f"results/spectra/{name}/{r}/{c}.{kind}.csv"
                        for r in runs for c in self.checkpoints(name) for kind in ("body", "layers")]
            else:
                section = SECTIONS[name]
                out += (self.seed_tables(name) if section.folder else []) + [section.table]
        return out

    def part_rules(self) -> set[str]:
        """The rules whose jobs belong to a part (training, spectra, the thesis sections' programs
        and tables): the `report` step, which reads their outputs, must run none of them."""
        return {"train", "spectrum", *(s.name for s in self.sections), *(f"{s.name}_table" for s in self.sections)}

    def targets(self) -> list[str]:
        """What `rule all` requests: part `reference_part`'s outputs where the config names one
        (`--config reference_part=NAME`), else everything up to the report."""
        part = self.config.get("reference_part")
        return self.part_outputs(part) if part else self.all_outputs()

"""The workflow's config (orthojac.workflow): how the config files combine (each `--configfile`'s
sections replace config.yaml's whole), reading them (a repeated key refused), and every error of a
merged config, one line each naming the key: the schema's (orthojac.workflow.schema) and what the
schema cannot say."""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from ..data import IDX_FILES
from .schema import SKELETON, config_schema
from .schema import validator as schema_validator
from .sections import SECTIONS


# -- what a config may name -----------------------------------------------------------------
# Names that become folders or files (data sets, downloads, experiments, a data set's files, a
# download's file) are matched whole by the schema's patterns (`\Z`, not `$`, which also matches
# before a trailing newline). A grid value is part of a run name `key=value+key=value` (a folder, a
# Snakemake wildcard, SLURM's `--target-jobs`): no "/", ",", "+", "=", blanks.
SAFE_RUN_VALUE = re.compile(r"[A-Za-z0-9_.:-]*\Z")

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
def _validator(skeleton: str, mtime_ns: int):
    """The whole schema's validator (orthojac.workflow.schema: the file with the settings blocks
    generated from the settings dataclasses), built once per version of the file."""
    return schema_validator(config_schema(Path(skeleton)))


def whole_schema(skeleton: Path = SKELETON) -> dict:
    """The whole schema of `skeleton` (its settings blocks generated), the one config_errors
    validates with: built once per version of the file."""
    return _validator(str(skeleton), Path(skeleton).stat().st_mtime_ns).schema


def config_errors(cfg: dict, schema: Path | dict = SKELETON) -> list[str]:
    """Every schema violation of `cfg`, one line each, naming the key and the offending value.
    (snakemake.utils.validate reports only the first, followed by the whole sub-schema.) `schema`:
    the schema's file (workflow/schemas/config.schema.yaml, its settings blocks generated) or a
    whole schema (orthojac.workflow.schema.config_schema)."""
    import jsonschema

    lines = []
    validator = (schema_validator(schema) if isinstance(schema, dict)
                 else _validator(str(schema), Path(schema).stat().st_mtime_ns))
    for error in validator.iter_errors(cfg):
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
    """What the schema cannot say, one line each naming the key: non-finite numbers, repeated grid values (seeds, run names), repeated experiment names, grid values
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

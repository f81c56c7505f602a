"""The config's schema: the hand-written file workflow/schemas/config.schema.yaml (what is not a
setting: data sets, downloads, experiments' names, the reference's parts, a thesis
section's description, data set and seeds, and the `$defs` a setting refers to) with the settings
blocks generated from the settings dataclasses, the one place of each setting, and the claim ids
an experiment's `claims:` may name from orthojac.claims.CLAIMS, the one place of each claim:

- an experiment's `settings:`, one key per field of RunConfig (orthojac.config), none required;
- an experiment's `spectra:`, one key per field of SpectraSettings, each with its default;
- each thesis section's keys (orthojac.workflow.sections.SECTIONS), one per field of its
  `settings` dataclass (orthojac.thesis.settings); a key left out is its program's default.

A field without a default is a required key.

A field's type, `choices`, `bound`, `values`, `maximum` and `single` (orthojac.config.setting)
choose its block; its help is the block's description. The workflow validates with the whole
(orthojac.workflow.config.config_errors, fill_defaults below); `orthojac schema` prints it.

    orthojac schema [--skeleton FILE]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
from pathlib import Path

import yaml

from ..config import RunConfig, field_kind
from ..spectra_settings import SpectraSettings
from ..thesis.settings import DENSE_ACTIVATIONS
from .sections import SECTIONS

SKELETON = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"

# A setting with its provenance ({value: …} or {grid: […]}, `stated` or `choice`): the `$defs`
# entry of each (type, bound); a text setting is `string_setting` (`single`: one value, no grid).
SETTING_DEFS = {
    ("int", "nonnegative"): "int_setting", ("int", "positive"): "positive_int_setting",
    ("float", None): "number_setting", ("float", "nonnegative"): "nonnegative_number_setting",
    ("float", "positive"): "positive_number_setting",
}
JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def _bound(f: dataclasses.Field, kind: type) -> str | None:
    bound = f.metadata.get("bound")
    return "nonnegative" if bound is None and kind is int else bound


def _each(f: dataclasses.Field) -> dict:
    """What each value of the field must match beyond its type: its choices, a `$defs` entry
    (`values`), its maximum."""
    meta, each = f.metadata, {}
    if meta.get("choices"):
        each["enum"] = list(meta["choices"])
    elif meta.get("values"):
        each["$ref"] = f"#/$defs/{meta['values']}"
    if meta.get("maximum") is not None:
        each["maximum"] = meta["maximum"]
    return each


def setting_schema(f: dataclasses.Field) -> dict:
    """The block of a setting with provenance (experiments' `settings:`, thesis sections): the
    `$defs` setting of its type and bound, and what each value must match."""
    kind, _ = field_kind(f.type)
    if kind is str:
        name = "single_string_setting" if f.metadata.get("single") else "string_setting"
    elif (kind.__name__, _bound(f, kind)) in SETTING_DEFS:
        name = SETTING_DEFS[(kind.__name__, _bound(f, kind))]
    else:
        raise ValueError(f"setting {f.name!r}: no schema for a {kind.__name__} bound {_bound(f, kind)!r}")
    ref = {"$ref": f"#/$defs/{name}"}
    each = _each(f)
    block = {"allOf": [ref, {"properties": {"value": each, "grid": {"items": each}}}]} if each else ref
    return {**block, "description": f.metadata["help"]}


def plain_schema(f: dataclasses.Field) -> dict:
    """The block of a plain value with a default (an experiment's `spectra:`): its type and bound,
    what each value must match; a list: at least one value, none repeated."""
    kind, many = field_kind(f.type)
    each = _each(f)
    if "enum" not in each and "$ref" not in each:
        each = {"type": JSON_TYPES[kind], **each}
        bound = _bound(f, kind) if kind in (int, float) else None
        if bound == "positive":
            each["minimum" if kind is int else "exclusiveMinimum"] = 1 if kind is int else 0
        elif bound == "nonnegative":
            each["minimum"] = 0
    block = {"type": "array", "items": each, "minItems": 1, "uniqueItems": True} if many else each
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return {**block, "default": default, "description": f.metadata["help"]}


def _add(block: dict, settings, schema_of) -> None:
    """Each field of `settings` into `block`'s properties; a field without a default is required."""
    for f in dataclasses.fields(settings):
        if f.name in block.setdefault("properties", {}):
            raise ValueError(f"{f.name!r} is both a field of {settings.__name__} and written in the schema's file")
        block["properties"][f.name] = schema_of(f)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            block.setdefault("required", []).append(f.name)


def config_schema(skeleton: Path = SKELETON, run=RunConfig, spectra=SpectraSettings,
                  sections: dict | None = None) -> dict:
    """The whole schema: `skeleton`'s, with the blocks of `run` (an experiment's settings),
    `spectra` (its `spectra:`) and each section's settings ({config key: dataclass}; default:
    orthojac.workflow.sections.SECTIONS') generated."""
    schema = yaml.safe_load(Path(skeleton).read_text(encoding="utf-8"))
    experiment = schema["$defs"]["experiment"]["properties"]
    _add(experiment["settings"], run, setting_schema)
    _add(experiment["spectra"], spectra, plain_schema)
    from ..claims import CLAIMS  # the ids an experiment's `claims:` may name: the registry's

    experiment["claims"]["items"] = {"enum": list(CLAIMS)}
    schema["$defs"]["hlav_network"]["pattern"] = rf"^({'|'.join(DENSE_ACTIVATIONS)}):[0-9]*\.?[0-9]+\Z"
    sections = {name: s.settings for name, s in SECTIONS.items()} if sections is None else sections
    for name, settings in sections.items():
        _add(schema["properties"][name], settings, setting_schema)
    return schema


def validator(schema: dict):
    """A validator of `schema` whose `integer` is an int: JSON Schema also counts 2.0, which
    would reach a program's int flag as "2.0" and fail there."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    strict = base.TYPE_CHECKER.redefine(
        "integer", lambda checker, instance: isinstance(instance, int) and not isinstance(instance, bool))
    return jsonschema.validators.extend(base, type_checker=strict)(schema)


def fill_defaults(config: dict, schema: dict | None = None) -> dict:
    """`config` validated (jsonschema.ValidationError when it is not) with the schema's defaults
    filled in where a key is left out (an experiment's `spectra:` block and its keys), as
    snakemake.utils.validate fills them. Returns `config`, changed in place."""
    import jsonschema

    properties = jsonschema.Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, props, instance, subschema):
        for name, sub in props.items():
            if isinstance(instance, dict) and "default" in sub:
                instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from properties(validator, props, instance, subschema)

    filling = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"properties": set_defaults})
    filling(config_schema() if schema is None else schema).validate(config)
    return config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac schema", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skeleton", type=Path, default=SKELETON,
                        help="the schema's hand-written part (default: workflow/schemas/config.schema.yaml)")
    args = parser.parse_args(argv)
    class Dumper(yaml.SafeDumper):  # every block written out, no YAML aliases (&id001) between them
        def ignore_aliases(self, data):
            return True

    yaml.dump(config_schema(args.skeleton), sys.stdout, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    main()

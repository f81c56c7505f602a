"""Issue #25: random mutations of config/quick.yaml (types, values, names with shell and path
characters, repeated keys and names). Each is either refused at load, every error naming a key, or
plans jobs whose every output stays inside results/ and whose every command, split as a shell
splits it, gives back the configured values.

Pure library tests (orthojac.workflow's loading, checks and command formatting, as the rules use
them), plus one Snakemake dry run of a mutant with shell characters where the config allows any text."""

from __future__ import annotations

import argparse
import copy
import functools
import os
import random
import re
import shlex
import subprocess
import sys
from dataclasses import fields

import pytest
import yaml

from conftest import REPO
from orthojac.config import RunConfig, add_arguments, flag_of
from orthojac.workflow import (ConfigFileError, Pipeline, config_errors, config_schema, load_config,
                               read_config_file, values)

SCHEMA_FILE = REPO / "workflow/schemas/config.schema.yaml"
MUTANTS = 400

NASTY = ["x$(touch PWNED)", "a b", "a,b", "a\nb", "a\n", "../x", "../../../outside/x", "/abs/x", "..", ".", "",
         "`touch PWNED`", "a;touch PWNED", "a|b", "'", '"', "a=b", "a+b", "é", "x" * 300, "-1", "--flag",
         "{wildcards.run}", "*", "~", "a/b", "-1, 0, 1", "1\n,2", "\t", "a\\b"]
SAFE = ["ok", "fashion_mnist", "0", "2", "cayley", "fold", "relu", "x.y", "tanh:2", "sgd", "eq11"]
NUMBERS = [0, -1, 1, 3, 2**40, 10**9, 1e308, float("nan"), float("inf"), float("-inf"), 0.5, 1e-300, 2.0,
           True, False]


def random_value(rng: random.Random):
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(NASTY)
    if kind < 0.5:
        return rng.choice(SAFE)
    if kind < 0.8:
        return rng.choice(NUMBERS)
    return rng.choice([None, [], {}, [1, 1], [rng.choice(NASTY)], {"value": rng.choice(NASTY)},
                       {"grid": [rng.choice(NUMBERS), rng.choice(NASTY)], "choice": "fuzz"}])


def paths(node, path=()):
    """Every (path, node) of a config, containers included."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*path, i))


def at(cfg, path):
    for part in path:
        cfg = cfg[part]
    return cfg


def mutate(cfg: dict, rng: random.Random) -> tuple[dict, str, tuple]:
    """One random change of `cfg` (a deep copy), what was changed, and the keys it touched."""
    cfg = copy.deepcopy(cfg)
    every = list(paths(cfg))
    dicts = [(p, n) for p, n in every if isinstance(n, dict)]
    settings = [(p, n) for p, n in dicts if ("value" in n or "grid" in n)]
    kind = rng.choice(["leaf", "leaf", "rename", "add", "grid", "grid", "delete", "repeat", "text", "text",
                       "value", "value"])
    if kind == "value":  # a setting's one value, of any type
        path, node = rng.choice([(p, n) for p, n in settings if "value" in n])
        node["value"] = value = random_value(rng)
        return cfg, f"set {path}.value = {value!r}", (*path, "value")
    if kind == "text":  # where a config may hold any text: notes, descriptions, mirror folders, URLs
        free = [(p, n) for p, n in every if isinstance(n, str) and p and (
            p[-1] in ("description", "choice", "stated") or (len(p) > 1 and p[-2] in ("mirrors", "urls")))]
        path, _ = rng.choice(free)
        at(cfg, path[:-1])[path[-1]] = value = rng.choice(NASTY[:30]) + rng.choice(["", " x"])
        return cfg, f"set {path} = {value!r}", path
    if kind == "leaf":
        path, _ = rng.choice([(p, n) for p, n in every if p])
        at(cfg, path[:-1])[path[-1]] = value = random_value(rng)
        return cfg, f"set {path} = {value!r}", path
    if kind == "rename":
        path, node = rng.choice([(p, n) for p, n in dicts if n])
        old = rng.choice(list(node))
        new = rng.choice(NASTY + SAFE)
        node[new] = node.pop(old)
        return cfg, f"renamed {(*path, old)} to {new!r}", (*path, old, new)
    if kind == "add":
        path, node = rng.choice(dicts)
        node[key := rng.choice(NASTY)] = random_value(rng)
        return cfg, f"added {key!r} to {path}", (*path, key)
    if kind == "grid":
        path, node = rng.choice(settings)
        provenance = {k: node[k] for k in ("stated", "choice") if k in node}
        node.clear()
        node.update({"grid": [random_value(rng) for _ in range(rng.randint(1, 3))], **provenance})
        return cfg, f"grid {path} = {node['grid']!r}", (*path, "grid")
    if kind == "delete":
        path, node = rng.choice([(p, n) for p, n in dicts if n])
        del node[key := rng.choice(list(node))]
        return cfg, f"deleted {key!r} of {path}", (*path, key)
    # repeat: an experiment twice (a repeated name), or a grid value or seed twice
    lists = [(p, n) for p, n in every if isinstance(n, list) and n]
    path, node = rng.choice(lists)
    node.append(copy.deepcopy(rng.choice(node)))
    return cfg, f"repeated an item of {path}", path


@functools.lru_cache(maxsize=1)
def _filling_validator():
    """The schema's validator that fills in defaults, as snakemake.utils.validate does (cached)."""
    from jsonschema import Draft202012Validator, validators

    schema = config_schema(SCHEMA_FILE)
    properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, props, instance, schema):
        for name, sub in props.items():
            if "default" in sub and isinstance(instance, dict):
                instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from properties(validator, props, instance, schema)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})(schema)


def inside_results(path: str) -> bool:
    norm = os.path.normpath(path)
    return (not os.path.isabs(path) and norm.split(os.sep)[0] == "results" and ".." not in norm.split(os.sep)
            and "\n" not in path)


def same(parsed, configured) -> bool:
    """A flag's parsed value is the configured one (an int given to a float flag: the same number)."""
    if isinstance(configured, (int, float)) and not isinstance(configured, bool):
        return float(parsed) == float(configured)
    return parsed == configured


def pairs(tokens: list[str], flag: str) -> list[str]:
    """The value after each occurrence of `flag`."""
    return [tokens[i + 1] for i, t in enumerate(tokens) if t == flag]


def check_planned(cfg: dict) -> None:
    """Every job of an accepted config: outputs inside results/, commands that parse back."""
    pipeline = Pipeline(cfg)
    run_flags = {f.name: flag_of(f) for f in fields(RunConfig)}
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser, RunConfig, defaults_in_help=False)
    outputs = pipeline.run_files("metrics.csv") + pipeline.spectra_files("body") + pipeline.report_tables()
    outputs += pipeline.report_figures() + pipeline.all_outputs()
    for (experiment, run), settings in pipeline.runs.items():
        outputs += [pipeline.run_dir(experiment, run), pipeline.data_dir(pipeline.run_dataset(experiment, run))]
        assert "/" not in run and "," not in run and run not in ("", ".", "..")
        tokens = shlex.split(pipeline.train_args(experiment, run))
        assert tokens == [f"{run_flags[k]}={v}" for k, v in settings.items()]
        parsed = vars(parser.parse_args(tokens))
        for key, value in settings.items():
            assert same(parsed[key], value), (key, value, parsed[key])
        assert [int(t) for t in shlex.split(pipeline.save_epochs(experiment))] == sorted(
            int(c[5:]) for c in pipeline.checkpoints(experiment) if c.startswith("epoch"))
        spectra = shlex.split(pipeline.spectra_args(experiment))
        spec = pipeline.experiments[experiment]["spectra"]
        assert pairs(spectra, "--points") == [str(spec["points"])] and pairs(spectra, "--dtype") == [spec["dtype"]]
    for dataset, spec in cfg["data"].items():
        outputs += pipeline.data_files(dataset)
        tokens = shlex.split(pipeline.fetch_args(dataset))
        assert pairs(tokens, "--mirror") == list(spec.get("mirrors", []))
        assert pairs(tokens, "--url") == list(spec.get("urls", []))
        assert pairs(tokens, "--expect") == [f"{n}={f['size']}:{f['sha256']}" for n, f in spec["files"].items()]
    for key, spec in cfg.get("downloads", {}).items():
        outputs += [pipeline.data_dir(key) + "/status.json", pipeline.data_dir(key) + "/" + spec["file"]]
        tokens = shlex.split(pipeline.download_args(key))
        assert pairs(tokens, "--file") == [spec["file"]] and pairs(tokens, "--key") == [key]
        assert pairs(tokens, "--mirror") == list(spec["mirrors"]) and pairs(tokens, "--url") == list(spec["urls"])
    for section in pipeline.sections:
        outputs += [section.table, *pipeline.seed_tables(section.name), *pipeline.section_data(section.name)]
        section_parser = argparse.ArgumentParser(exit_on_error=False)
        add_arguments(section_parser, section.settings, defaults_in_help=False)
        parsed = vars(section_parser.parse_args(shlex.split(pipeline.section_args(section.name))))
        for key in section.flags:
            if key in cfg[section.name]:
                got = parsed[key] if isinstance(parsed[key], list) else [parsed[key]]
                assert [same(g, v) for g, v in zip(got, values(cfg[section.name][key]), strict=True)], \
                    (section.name, key)
        inputs = shlex.split(pipeline.section_input_args(section.name))
        assert all(inside_results(t) for t in inputs if not t.startswith("--"))
    bad = [o for o in outputs if not inside_results(o)]
    assert bad == []


KEY_LINE = re.compile(r"config: (\S.*?): ")


def check_refused(errors: list[str], touched: tuple) -> None:
    """Every error is one line naming where (a key path of the config) and what; one of them
    names a key the mutation touched (or a name it changed: a data set, an experiment)."""
    for line in errors:
        assert KEY_LINE.match(line) and "\n" not in line, line
    names = {str(part) for part in touched if not isinstance(part, int)}
    assert any(any(name in line or repr(name)[1:-1] in line for name in names) for line in errors), \
        (touched, errors)


@pytest.fixture(scope="module")
def quick():
    return load_config([REPO / "config/quick.yaml"], base=REPO / "config/config.yaml")


def test_random_mutations_are_refused_naming_a_key_or_plan_safe_commands(quick):
    rng = random.Random(25)
    outcomes = {"refused": 0, "planned": 0}
    for i in range(MUTANTS):
        mutant, what, touched = mutate(quick, rng)
        try:
            errors = config_errors(mutant, SCHEMA_FILE)
        except Exception as err:  # the checks must report, never crash
            raise AssertionError(f"mutant {i} ({what}): config_errors raised {err!r}") from err
        if errors:
            check_refused(errors, touched)
            outcomes["refused"] += 1
            continue
        filled = copy.deepcopy(mutant)
        assert list(_filling_validator().iter_errors(filled)) == [], what
        try:
            check_planned(filled)
        except AssertionError as err:
            raise AssertionError(f"mutant {i} ({what}): {err}") from err
        except ValueError as err:  # Pipeline's own cross-checks: at load, naming the key
            assert str(err).startswith("config: "), (what, err)
            outcomes["refused"] += 1
            continue
        outcomes["planned"] += 1
    # both kinds occur: the fuzzing reaches past the checks, and the checks refuse
    assert outcomes["refused"] > MUTANTS // 4 and outcomes["planned"] > MUTANTS // 10, outcomes


@pytest.mark.parametrize("seed", range(40))
def test_a_repeated_key_in_a_mutated_file_is_refused_naming_file_and_key(tmp_path, quick, seed):
    """A key written twice (at any depth of the file) is refused by the loader, naming both."""
    rng = random.Random(seed)
    text = (REPO / "config/quick.yaml").read_text()
    lines = [i for i, line in enumerate(text.splitlines()) if re.match(r"\s*[A-Za-z_]+:", line)]
    n = rng.choice(lines)
    line = text.splitlines()[n]
    key = line.split(":")[0].strip()
    out = text.splitlines()
    # the same key again at the same indentation, right after this entry's block
    indent = len(line) - len(line.lstrip())
    end = n + 1
    while end < len(out) and (not out[end].strip() or len(out[end]) - len(out[end].lstrip()) > indent
                              or out[end].lstrip().startswith("#")):
        end += 1
    out.insert(end, " " * indent + f"{key}: null")
    path = tmp_path / "mutant.yaml"
    path.write_text("\n".join(out) + "\n")
    with pytest.raises(ConfigFileError, match=rf"mutant\.yaml: key '{re.escape(key)}' appears twice"):
        read_config_file(path)


def test_a_dry_run_of_a_mutant_with_shell_characters_prints_commands_that_parse_back(tmp_path, venv_env):
    """Where a config may hold any text (a mirror folder, a URL), Snakemake's printed commands
    carry it as one argument, and nothing runs."""
    mirror = "/tmp/fuzz dir/$(touch PWNED)/`touch PWNED`;x"
    extra = tmp_path / "extra.yaml"
    base = yaml.safe_load((REPO / "config/config.yaml").read_text())["data"]
    base["fashion_mnist"]["mirrors"] = [mirror]
    base["fashion_mnist"]["urls"] = ["http://example.invalid/a b?c=$(id)"]
    extra.write_text(yaml.safe_dump({"data": base}))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--forceall", "--cores", "1",
                           "--configfile", "config/quick.yaml", str(extra), "--", "results/data/fashion_mnist/train-images-idx3-ubyte"],
                          cwd=REPO, env=venv_env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    commands = [line.split("Shell command: ", 1)[1] for line in out.splitlines() if "python -m orthojac fetch" in line
                and "Shell command: " in line]
    if not commands:  # older Snakemake prints the command on its own line
        commands = [line.strip() for line in out.splitlines() if line.strip().startswith("python -m orthojac fetch")]
    assert commands, out[-3000:]
    tokens = shlex.split(commands[0])
    assert pairs(tokens, "--mirror") == [mirror]
    assert pairs(tokens, "--url") == ["http://example.invalid/a b?c=$(id)"]
    assert not (REPO / "PWNED").exists() and not (tmp_path / "PWNED").exists()


def test_the_unmutated_quick_config_plans_safe_commands(quick):
    filled = copy.deepcopy(quick)
    assert config_errors(filled, SCHEMA_FILE) == []
    assert list(_filling_validator().iter_errors(filled)) == []
    check_planned(filled)
    assert len(Pipeline(filled).runs) == 8 + 4 + 6  # quick.yaml: P1 fold, P1 orthoff, the depth sweep

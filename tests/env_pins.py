"""Consistency of the conda environments with the pip lock and the rules.

`check(repo)` returns one message per problem (an empty list when all agree):
- a rule that runs something (shell:, script:, notebook:, run:) without `conda:`, or whose conda
  file does not exist;
- an env dependency that is not an exact pin (`name=version` for conda, `name==version` for pip);
- a pinned version that differs from requirements.lock, or a pip package the lock lacks;
- conda-level pins (python, pip: not in a pip freeze) that differ between envs.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

CONDA_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)=([A-Za-z0-9_.+!]+)$")
PIP_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+!]+)$")
# pip lines that are not packages: the editable install of this checkout, the lock as constraints
PIP_OPTIONS = re.compile(r"^-(e|c) \S+$")
RULE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
CONDA_DIRECTIVE = re.compile(r"^\s+conda:\s*\n\s+\"([^\"]+)\"", re.MULTILINE)
ACTION = re.compile(r"^\s+(shell|script|notebook|run|wrapper):", re.MULTILINE)


def normalise(name: str) -> str:
    """PEP 503 name: case and runs of - _ . do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict:
    """{normalised name: version} of a `name==version` per line file (comments allowed)."""
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIP_PIN.match(line)
        if not match:
            raise ValueError(f"{path}:{number}: not an exact pin `name==version`: {line!r}")
        pins[normalise(match[1])] = match[2]
    return pins


def check_env(path: Path, lock: dict) -> tuple[list, dict]:
    """Problems of one env file, and its conda-level pins {name: version}."""
    problems, conda_pins = [], {}
    deps = (yaml.safe_load(path.read_text()) or {}).get("dependencies")
    if not deps:
        return [f"{path.name}: no dependencies: list"], conda_pins
    for dep in deps:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                problems += check_pip_line(path, str(line), lock)
            continue
        match = CONDA_PIN.match(str(dep))
        if not match:
            problems.append(f"{path.name}: conda dependency {dep!r} is not pinned exactly (name=version)")
            continue
        name, version = normalise(match[1]), match[2]
        conda_pins[name] = version
        if name in lock and lock[name] != version:
            problems.append(f"{path.name}: {name} {version} differs from requirements.lock {lock[name]}")
    return problems, conda_pins


def check_pip_line(path: Path, line: str, lock: dict) -> list:
    if PIP_OPTIONS.match(line):
        return []
    match = PIP_PIN.match(line)
    if not match:
        return [f"{path.name}: pip dependency {line!r} is not pinned exactly (name==version)"]
    name, version = normalise(match[1]), match[2]
    if name not in lock:
        return [f"{path.name}: pip package {name} {version} is not in requirements.lock"]
    if lock[name] != version:
        return [f"{path.name}: {name} {version} differs from requirements.lock {lock[name]}"]
    return []


def check_rules(rule_files: list) -> list:
    """Every rule that runs something names an existing conda file."""
    problems = []
    for path in rule_files:
        text = path.read_text()
        starts = [m.start() for m in RULE.finditer(text)] + [len(text)]
        for match, end in zip(RULE.finditer(text), starts[1:]):
            body = text[match.start() : end]
            if not ACTION.search(body):
                continue
            conda = CONDA_DIRECTIVE.search(body)
            if not conda:
                problems.append(f"{path.name}: rule {match[1]} has no conda: directive")
            elif not (path.parent / conda[1]).resolve().is_file():
                problems.append(f"{path.name}: rule {match[1]}: conda file {conda[1]} does not exist")
    return problems


def check(repo: Path) -> list:
    lock = read_lock(repo / "requirements.lock")
    envs = sorted((repo / "envs").glob("*.yaml"))
    problems = [] if envs else [f"{repo / 'envs'}: no *.yaml environments"]
    conda_pins = {}
    for env in envs:
        env_problems, pins = check_env(env, lock)
        problems += env_problems
        for name, version in pins.items():
            conda_pins.setdefault(name, {})[env.name] = version
    for name, versions in conda_pins.items():
        if len(set(versions.values())) > 1:
            problems.append(f"conda pin {name} differs between envs: {versions}")
    rule_files = [repo / "Snakefile"] + sorted((repo / "workflow/rules").glob("*.smk"))
    return problems + check_rules(rule_files)

"""Every module whose parser declares `prog="orthojac-…"` is a console script of that name in
pyproject.toml, pointing at the module's `main`, and every console script is such a module."""

from __future__ import annotations

import importlib
import re
import tomllib

from conftest import REPO

PROG = re.compile(r'prog="(orthojac-[A-Za-z0-9-]+)"')


def declared_progs() -> dict[str, str]:
    """{prog: module} of every `prog="orthojac-…"` under src/."""
    progs = {}
    for path in sorted((REPO / "src").rglob("*.py")):
        for prog in PROG.findall(path.read_text()):
            assert prog not in progs, f"{prog} is declared by {progs[prog]} and {path}"
            progs[prog] = ".".join(path.relative_to(REPO / "src").with_suffix("").parts)
    return progs


def test_every_prog_is_a_console_script_of_its_module_main():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    progs = declared_progs()
    assert set(scripts) == set(progs)
    assert scripts == {prog: f"{module}:main" for prog, module in progs.items()}


def test_every_entry_point_imports():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name

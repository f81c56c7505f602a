"""The `orthojac` command: pyproject.toml's one console script is orthojac.cli, whose subcommands
are exactly the modules whose parser declares `prog="orthojac <name>"`, each run with the arguments
it is given, importing only the chosen module. (The console script exists once the package is
installed; here the same dispatcher runs as `python -m orthojac` and through `main(argv)`.)"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import tomllib

import pytest

from conftest import REPO
from orthojac import cli

PROG = re.compile(r'prog="orthojac ([A-Za-z0-9-]+)"')


def declared_progs() -> dict[str, str]:
    """{subcommand: module} of every `prog="orthojac …"` under src/."""
    progs = {}
    for path in sorted((REPO / "src").rglob("*.py")):
        for prog in PROG.findall(path.read_text()):
            assert prog not in progs, f"{prog} is declared by {progs[prog]} and {path}"
            parts = path.relative_to(REPO / "src").with_suffix("").parts
            progs[prog] = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return progs


def run_orthojac(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "orthojac", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_the_one_console_script_is_the_dispatcher():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"orthojac": "orthojac.cli:main"}


def test_every_prog_is_a_subcommand_of_its_module():
    assert {name: command.module for name, command in cli.COMMANDS.items()} == declared_progs()
    assert len(cli.COMMANDS) == 21


def test_every_subcommand_prints_its_own_help(capsys):
    for name, command in cli.COMMANDS.items():
        assert callable(importlib.import_module(command.module).main), name
        with pytest.raises(SystemExit) as stop:
            cli.main([name, "--help"])
        assert stop.value.code == 0, name
        assert capsys.readouterr().out.startswith(f"usage: orthojac {name} "), name


def test_help_lists_each_subcommand_on_one_line():
    done = run_orthojac("--help")
    assert done.returncode == 0, done.stderr
    listed = [line.split(None, 1) for line in done.stdout.splitlines() if line.startswith("  ")]
    assert listed == [[name, command.summary] for name, command in cli.COMMANDS.items()]


def test_a_subcommand_is_given_exactly_its_arguments(tmp_path, monkeypatch):
    (tmp_path / "echo_argv.py").write_text("seen = []\ndef main(argv):\n    seen.append(argv)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "echo", cli.Command("echo_argv", "records its arguments"))
    cli.main(["echo", "results", "--configfile", "config/quick.yaml", "--help", "echo"])
    assert importlib.import_module("echo_argv").seen == [["results", "--configfile", "config/quick.yaml",
                                                          "--help", "echo"]]


def test_python_m_orthojac_runs_a_subcommand(tmp_path):
    (tmp_path / "config.yaml").write_text("experiments: []\n")
    done = run_orthojac("progress", str(tmp_path / "results"), "--config", str(tmp_path / "config.yaml"))
    assert done.returncode == 0, done.stderr
    assert "time left: 0:00:00 of job time" in done.stdout


def test_an_unknown_or_missing_subcommand_is_refused():
    done = run_orthojac("trian", "--epochs", "1")
    assert done.returncode == 2
    assert "unknown command 'trian'" in done.stderr and "train" in done.stderr
    missing = run_orthojac()
    assert missing.returncode == 2 and "name a command" in missing.stderr


def test_train_imports_no_report_or_workflow_code():
    """`orthojac train` loads the run's modules only: not the planner, the claims, the report or
    their libraries (pandas, matplotlib, yaml's planner use)."""
    code = ("import sys\nfrom orthojac import cli\ntry:\n    cli.main(['train', '--help'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'matplotlib', 'snakemake')\n"
            "      or m in ('orthojac.workflow', 'orthojac.workflow.progress', 'orthojac.claims', 'orthojac.report',\n"
            "               'orthojac.report.figures', 'orthojac.thesis.settings')))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_the_install_finds_every_package_of_the_tree():
    """pyproject.toml's package discovery (setuptools, under src/) finds each folder of modules of
    src/orthojac, so an installed orthojac has every stage's package (a folder without an
    __init__.py would be left out)."""
    from setuptools import find_packages

    where = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["where"]
    assert where == ["src"]
    folders = {".".join(p.parent.relative_to(REPO / "src").parts) for p in (REPO / "src").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert {"orthojac.data", "orthojac.nets", "orthojac.run", "orthojac.spectra", "orthojac.claims",
            "orthojac.workflow", "orthojac.report", "orthojac.reference", "orthojac.thesis"} < folders
    assert set(find_packages(str(REPO / "src"))) == folders

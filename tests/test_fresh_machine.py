"""The README's commands on a fresh machine, as a new user types them.

`make test` on a machine state set up here: the Makefile is run in a folder of its own with a PATH
of stub commands only (`id` says who we are, `apt-get` logs its calls and "installs" a package by
writing stubs of its commands, `python` logs what it was asked to run), so nothing is installed or
removed on the machine that runs the tests.

`.venv/bin/snakemake` typed in a shell where the virtualenv is not active: the workflow's jobs
must run with the project's interpreter, not with a `python` found first on the shell's PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, make_idx_dataset

MAKE = shutil.which("make")
# The Makefile's PACKAGE:COMMAND pairs, as a Debian install gives them.
PACKAGE_COMMANDS = {
    "chromium": ["chromium"],
    "slurm-wlm": ["sbatch", "slurmctld", "slurmd"],
    "munge": ["munged", "mungekey"],
}
TEST_PACKAGES = ["chromium", "slurm-wlm", "munge"]


def write_stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


class Machine:
    """A fresh clone (the project's Makefile and the files its .venv rule depends on, no .venv) and
    a bin/ folder of stubs that is the whole PATH. Every stub appends its command line to `log`:
    `python3 -m venv .venv` makes a .venv whose python is a stub too ("python …" in the log)."""

    def __init__(self, root: Path, uid: int, apt: bool, installed=(), mirror: bool = True):
        self.root, self.bin, self.log = root / "clone", root / "bin", root / "calls.log"
        self.mirror = root / "fashion-mnist"
        self.root.mkdir()
        self.bin.mkdir()
        self.log.write_text("")
        shutil.copy(REPO / "Makefile", self.root / "Makefile")
        for name in ("requirements.lock", "pyproject.toml"):
            (self.root / name).write_text("")
        if mirror:
            self.mirror.mkdir()
        write_stub(self.bin / "id", f'echo "id $*" >> {self.log}; echo {uid}\n')
        (self.bin / "touch").symlink_to(shutil.which("touch"))  # the .venv rule's last step
        write_stub(self.bin / "venv-python", f'echo "python $*" >> {self.log}\n')
        write_stub(self.bin / "python3", f'echo "python3 $*" >> {self.log}\n'
                   f'[ "$1 $2" = "-m venv" ] && /bin/mkdir -p "$3/bin" && /bin/cp {self.bin / "venv-python"} "$3/bin/python"\n')
        for package in installed:
            self.install(package)
        if apt:
            lines = [f'echo "apt-get $*" >> {self.log}',
                     '[ "$1" = install ] && echo "Selecting previously unselected package (apt-get noise)"',
                     'for arg in "$@"; do case "$arg" in']
            for package, commands in PACKAGE_COMMANDS.items():
                stubs = "; ".join(f"printf '#!/bin/sh\\n' > {self.bin / c}; /bin/chmod 755 {self.bin / c}"
                                  for c in commands)
                lines.append(f"  {package}) {stubs};;")
            lines.append(f"  dataset-fashion-mnist) /bin/mkdir -p {self.mirror};;")
            lines.append("esac; done\n")
            write_stub(self.bin / "apt-get", "\n".join(lines))

    def install(self, package: str) -> None:
        for command in PACKAGE_COMMANDS[package]:
            write_stub(self.bin / command, "")

    def make_test(self) -> subprocess.CompletedProcess:
        """`make test` as typed in the clone, the mirror folder and the daemons' folders (SBIN)
        pointed into this machine instead of the real /usr/share/datasets, /usr/sbin and /sbin."""
        args = [MAKE, "test", f"MIRROR={self.mirror}", f"SBIN={self.bin}"]
        return subprocess.run(args, cwd=self.root, env={"PATH": str(self.bin)}, capture_output=True,
                              text=True, timeout=60)

    def calls(self) -> list[str]:
        return [c for c in self.log.read_text().splitlines() if not c.startswith("id ")]


pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def test_root_with_apt_installs_what_is_missing_once_then_runs_the_tests(tmp_path):
    machine = Machine(tmp_path, uid=0, apt=True, mirror=False)
    first = machine.make_test()
    assert first.returncode == 0, first.stdout + first.stderr
    calls = machine.calls()
    apt = [c for c in calls if c.startswith("apt-get")]
    # one update and one install, of the test packages and the missing Fashion-MNIST mirror, quietly
    assert apt == ["apt-get update -qq",
                   "apt-get install -y -qq " + " ".join(TEST_PACKAGES + ["dataset-fashion-mnist"])], calls
    # installed before the environment is made and before the tests run
    assert calls[2] == "python3 -m venv .venv", calls
    assert calls[-1] == "python -m pytest", calls
    assert "apt-get noise" not in first.stdout + first.stderr  # quiet
    assert "installing Debian's chromium slurm-wlm munge dataset-fashion-mnist" in first.stdout

    # idempotent: a second `make test` installs nothing and runs the tests
    machine.log.write_text("")
    second = machine.make_test()
    assert second.returncode == 0, second.stdout + second.stderr
    assert machine.calls() == ["python -m pytest"]  # .venv/.installed is up to date now
    assert "apt-get" not in second.stdout + second.stderr


def test_root_with_apt_installs_only_the_missing_package(tmp_path):
    machine = Machine(tmp_path, uid=0, apt=True, installed=["chromium", "munge"])
    proc = machine.make_test()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [c for c in machine.calls() if c.startswith("apt-get")] == [
        "apt-get update -qq", "apt-get install -y -qq slurm-wlm"]


@pytest.mark.parametrize("uid, apt", [(1000, True), (0, False)], ids=["not-root", "no-apt-get"])
def test_stops_before_running_anything_naming_the_one_command(tmp_path, uid, apt):
    machine = Machine(tmp_path, uid=uid, apt=apt, installed=["munge"])
    proc = machine.make_test()
    assert proc.returncode != 0
    calls = machine.calls()
    assert calls == [], calls  # no apt-get, no venv, no pip, no pytest
    assert not (machine.root / ".venv").exists()
    message = [line for line in proc.stderr.splitlines() if line.startswith("make test:")]
    assert message == ["make test: the tests need Debian's chromium slurm-wlm, not installed; "
                       "as root run: apt-get install -y chromium slurm-wlm"], proc.stderr


def test_everything_installed_needs_neither_root_nor_apt(tmp_path):
    machine = Machine(tmp_path, uid=1000, apt=False, installed=TEST_PACKAGES)
    proc = machine.make_test()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert machine.calls()[-1] == "python -m pytest"


def test_ci_runs_only_the_readme_test_command():
    """.ci/run is `make test` and nothing else (no apt-get of its own): the README's command."""
    commands = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == "exec make test", commands
    assert not any("apt-get" in c for c in commands), commands
    assert "make test" in (REPO / "README.md").read_text()


# -- `.venv/bin/snakemake` typed in a plain shell ---------------------------------------------------
VENV_BIN = Path(sys.executable).parent


def plain_shell_env(stub_bin: Path) -> dict:
    """The environment of a shell where the project's virtualenv is not active: its bin/ is not on
    PATH, and the first `python` on PATH is a stand-in for the system's, which fails and says so."""
    write_stub(stub_bin / "python", f'echo "system python $*" >> {stub_bin / "calls.log"}; exit 1\n')
    path = [str(stub_bin)] + [d for d in os.environ.get("PATH", "").split(os.pathsep)
                              if d and Path(d) != VENV_BIN and not (Path(d) / "activate").exists()]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(path)
    return env


@pytest.fixture
def data_only_workdir(tmp_path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    from conftest import fixture_config

    files = make_idx_dataset(tmp_path / "mirror")
    (work / "config.yaml").write_text(yaml.safe_dump(fixture_config(tmp_path / "mirror", files)))
    return work


def test_venv_snakemake_in_a_plain_shell_runs_jobs_with_the_projects_python(tmp_path, data_only_workdir):
    stub_bin = tmp_path / "bin"
    stub_bin.mkdir()
    env = plain_shell_env(stub_bin)
    target = "results/data/fixture/train-images-idx3-ubyte"
    proc = subprocess.run([str(VENV_BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"),
                           "--configfile", "config.yaml", "--cores", "1", target],
                          cwd=data_only_workdir, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (data_only_workdir / target).stat().st_size > 0
    assert not (stub_bin / "calls.log").exists(), (stub_bin / "calls.log").read_text()


def test_snakemake_that_cannot_import_orthojac_stops_when_the_snakefile_loads(tmp_path, data_only_workdir):
    """A Snakemake whose interpreter lacks orthojac (a system-wide one, say) stops before any job,
    naming the fix."""
    env = plain_shell_env(tmp_path)
    without_orthojac = ("import sys; sys.modules['orthojac'] = None; from snakemake.cli import main; "
                        "sys.argv[0] = 'snakemake'; sys.exit(main())")
    proc = subprocess.run([sys.executable, "-c", without_orthojac, "--snakefile", str(REPO / "Snakefile"),
                           "--configfile", "config.yaml", "--cores", "1"],
                          cwd=data_only_workdir, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log
    assert "cannot import orthojac" in log and "make .venv/.installed" in log and ".venv/bin/snakemake" in log, log
    assert "Building DAG" not in log and not (data_only_workdir / "results").exists(), log


def test_interpreter_without_python_beside_it_stops_when_the_snakefile_loads(tmp_path, data_only_workdir):
    """An interpreter that imports orthojac but has no `python` in its folder (the rules' command)
    stops at load too: here a virtualenv of the test's own, seeing the project's packages through a
    .pth file, with bin/python removed (bin/python3 left)."""
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = Path(subprocess.run([str(venv / "bin/python3"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "project.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    (venv / "bin/python").unlink()
    proc = subprocess.run([str(venv / "bin/python3"), "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                           "--configfile", "config.yaml", "--cores", "1", "-n"],
                          cwd=data_only_workdir, env=plain_shell_env(tmp_path), capture_output=True, text=True,
                          timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log
    assert f"{venv / 'bin'} has none beside" in log and ".venv/bin/snakemake" in log, log

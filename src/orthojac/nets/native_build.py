"""Building orthojac.nets.native's library: native_body.c compiled on first use with the system's C
compiler against the running torch's libtorch_cpu, into a cache keyed by the source, the compiler
command and torch (`cache_dir`); a build lands there by atomic renames with the hash of its bytes,
and a cached build that does not match its hash is built again."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("native_body.c")
# no -march: one cache may serve several CPUs; -ffp-contract=off after $CC's own flags: never a fused
# multiply-add where torch rounds twice (a CC with -march=native would fuse u - 2r otherwise)
FLAGS = ("-O3", "-fPIC", "-shared", "-fno-fast-math", "-ffp-contract=off")


def cache_dir() -> Path:
    if os.environ.get("ORTHOJAC_CACHE"):
        return Path(os.environ["ORTHOJAC_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "orthojac"


def compiler() -> list[str] | None:
    """The C compiler's command ($CC may hold flags), or None."""
    if os.environ.get("CC"):
        return shlex.split(os.environ["CC"])
    found = shutil.which("cc") or shutil.which("gcc")
    return [found] if found else None


class CacheUnwritable(Exception):
    """The cache folder cannot take a build (its path is not a writable folder)."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(target: Path) -> bool:
    """Whether a cached build is whole: its bytes hash to what its build recorded beside it (a
    library cut short, by a crash or a full disk, would kill the process that maps it with SIGBUS,
    beyond any `except`)."""
    try:
        return target.with_suffix(".sha256").read_text().strip() == _digest(target)
    except OSError:
        return False


def _fsync(path: str) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def build(cc: list[str], out_dir: Path) -> Path:
    """Compile native_body.c against the running torch's libtorch_cpu into out_dir, cached by a key of
    the source, the command and torch's version; a cached build that is not `_intact` is built again.
    The library and its hash land by atomic renames after an fsync. Raises CacheUnwritable when
    out_dir cannot take it, RuntimeError when the compiler fails."""
    lib = Path(torch.__file__).parent / "lib"
    link = [f"-L{lib}", "-ltorch_cpu", f"-Wl,-rpath,{lib}"]
    command = [*cc, *FLAGS, str(SOURCE), *link]
    key = hashlib.sha256(SOURCE.read_bytes() + "\0".join([*command, torch.__version__]).encode()).hexdigest()[:16]
    target = out_dir / f"native_body-{key}.so"
    if _intact(target):
        return target
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".native_body-", suffix=".so", dir=out_dir)
        os.close(fd)
    except OSError as error:
        raise CacheUnwritable(f"{out_dir}: {error}") from error
    tmp_hash = tmp[:-len(".so")] + ".sha256"
    try:
        done = subprocess.run([*cc, *FLAGS, "-o", tmp, str(SOURCE), *link], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        _fsync(tmp)
        Path(tmp_hash).write_text(_digest(Path(tmp)) + "\n")
        _fsync(tmp_hash)
        os.replace(tmp, target)
        os.replace(tmp_hash, target.with_suffix(".sha256"))
    finally:
        for left in (tmp, tmp_hash):
            if os.path.exists(left):
                os.unlink(left)
    return target

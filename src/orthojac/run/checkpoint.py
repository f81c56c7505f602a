"""The checkpoint format (atomic writes: orthojac.files).

Every output is written to a temporary file beside its destination and renamed into place
(orthojac.files), so a reader (or a killed run) sees the old file or the new one, never half of
one. Checkpoints are plain dicts of tensors and Python primitives, loaded with
`weights_only=True`: no pickle of arbitrary objects is ever executed.
"""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from pathlib import Path

import torch

from ..files import atomic_write_bytes


def atomic_save(obj: dict, path: Path) -> None:
    """torch.save through a temporary file: a crash while writing leaves the previous file intact."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    return torch.load(path, map_location=map_location, weights_only=True)


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 over the orthojac package's version and the bytes of every module of it, Python and C
    (orthojac.nets.native's source), sorted by path: a checkpoint is resumed only by the code that
    wrote it. Any edit to `src/orthojac/` changes it, and a run whose checkpoint carries another
    fingerprint starts afresh."""
    try:
        from importlib.metadata import version

        __version__ = version("orthojac")
    except Exception:  # not installed (a source tree on PYTHONPATH): the module bytes still count
        __version__ = "unknown"
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(f"orthojac {__version__}\n".encode())
    for module in sorted([*package.rglob("*.py"), *package.rglob("*.c")]):
        digest.update(str(module.relative_to(package)).encode() + b"\0")
        digest.update(module.read_bytes() + b"\0")
    return digest.hexdigest()

"""Atomic writes, and the error a data file that is not what it should be raises. No torch.

Every output is written to a temporary file beside its destination and renamed into place, so a
reader (or a killed run) sees the old file or the new one, never half of one. The data rules
(orthojac.data, orthojac.data.downloads, orthojac.data.mnist) import only this module of orthojac's
writers, so their environment needs no torch.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path


class DataError(RuntimeError):
    """No source gave a verified copy of a file, or a file on disk is not what it should be."""


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files `atomic_write_bytes` leaves in `folder` when its process is killed
    (SIGKILL) between creating and renaming one; return them. Only for a folder no other process
    is writing to (a run's own folder)."""
    stale = sorted(Path(folder).glob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_csv_atomic(path: Path, rows: list[dict], columns: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())

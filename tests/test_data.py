"""Data: fetching (verified payloads, clear errors, nothing partial left behind) and the one loader
of every program's images (orthojac.data.load_images, pixels), bit for bit as before."""

import gzip

import numpy as np
import pytest
import torch

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


# The formulas by which each program made its tensors before orthojac.data.load_images and
# orthojac.data.pixels were the one loader: the paper's runs (orthojac.run.train.prepare_data), the
# thesis' H1, H3 and H5 (their load_sequences) and the spectra's test images (orthojac.spectra).
def _old_paper(data_dir, train_size, val_size, test_size):
    x_all, y_all = load_split(data_dir, "train")
    x_test, y_test = load_split(data_dir, "t10k")
    x_train, y_train = x_all[: len(x_all) - val_size], y_all[: len(y_all) - val_size]
    x_val, y_val = x_all[len(x_all) - val_size:], y_all[len(y_all) - val_size:]
    if train_size:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    if test_size:
        x_test, y_test = x_test[:test_size], y_test[:test_size]

    def tensor(x):
        return torch.as_tensor(x.copy(), dtype=torch.float32).unsqueeze(1) / 255.0

    xt = tensor(x_train)
    mean, std = xt.mean().item(), xt.std().item()
    splits = {"normalisation": (mean, std)}
    for name, (x, y) in {"train": (xt, y_train), "val": (tensor(x_val), y_val),
                         "test": (tensor(x_test), y_test)}.items():
        splits[name] = ((x - mean) / std, torch.as_tensor(y.astype("int64")))
    return splits


def _old_thesis(data_dir, train_size, val_size, test_size):
    x_all, y_all = load_split(data_dir, "train")
    x_test, y_test = load_split(data_dir, "t10k")
    n = len(x_all) - val_size
    parts = {"train": (x_all[:n][: train_size or None], y_all[:n][: train_size or None]),
             "val": (x_all[n:], y_all[n:]),
             "test": (x_test[: test_size or None], y_test[: test_size or None])}
    return {k: (torch.as_tensor(x.copy(), dtype=torch.float32) / 255.0, torch.as_tensor(y.astype("int64")))
            for k, (x, y) in parts.items()}


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit: dtype, shape, layout and every value."""
    return a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride() and torch.equal(a, b)


@pytest.mark.parametrize("sizes", [(0, 100, 0), (300, 50, 40), (1, 599, 1)])
def test_every_program_trains_on_the_tensors_the_old_formulas_made(idx_folder, sizes):
    """orthojac.data.load_images (the thesis' H1, H3, H5) and orthojac.run.train.prepare_data (the
    paper's runs, built on it) give bit-identical tensors to the formulas each program had."""
    from orthojac.run import train
    from orthojac.config import RunConfig
    from orthojac.data import load_images

    new, old = load_images(idx_folder, *sizes), _old_thesis(idx_folder, *sizes)
    assert list(new) == list(old) == ["train", "val", "test"]
    assert all(_same(new[k][0], old[k][0]) and _same(new[k][1], old[k][1]) for k in old)
    assert new["train"][0].dtype == torch.float32 and new["train"][0].shape[1:] == (28, 28)

    cfg = RunConfig(train_size=sizes[0], val_size=sizes[1], test_size=sizes[2])
    new, old = train.prepare_data(cfg, idx_folder, torch.device("cpu")), _old_paper(idx_folder, *sizes)
    assert list(new) == list(old) and new["normalisation"] == old["normalisation"]
    assert all(_same(new[k][0], old[k][0]) and _same(new[k][1], old[k][1]) for k in ("train", "val", "test"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_spectra_images_and_every_pixel_value_scale_as_before(idx_folder, dtype):
    """orthojac.data.pixels, as orthojac.spectra uses it, against the spectra's old formula
    (integer 255, unsqueezed first), on the fixture's test images and on all 256 pixel values."""
    from orthojac.data import pixels

    x_test, _ = load_split(idx_folder, "t10k")
    mean, std = 0.1307, 0.3081
    old = (torch.as_tensor(x_test[:50].copy(), dtype=dtype).unsqueeze(1) / 255 - mean) / std
    assert _same((pixels(x_test[:50], dtype).unsqueeze(1) - mean) / std, old)
    every = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert _same(pixels(every, dtype), torch.as_tensor(every.copy(), dtype=dtype) / 255)
    assert _same(pixels(every), torch.as_tensor(every.copy(), dtype=torch.float32) / 255.0)


def test_a_validation_split_that_leaves_no_training_image_is_refused(idx_folder):
    from orthojac.data import load_images

    with pytest.raises(ValueError, match="--val-size 600 leaves no training images out of 600"):
        load_images(idx_folder, 0, 600, 0)

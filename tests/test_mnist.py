"""MNIST from mnist.pkl.gz: verified before it is opened, read by an unpickler that builds arrays only."""

import gzip
import hashlib
import os
import pickle

import numpy as np
import pytest

from orthojac.data import load_split
from orthojac.files import DataError
from orthojac.data.mnist import load_mnist_pkl, restricted_loads, write_idx_files


def _pkl(path, obj) -> str:
    blob = gzip.compress(pickle.dumps(obj, protocol=2))
    path.write_bytes(blob)
    return hashlib.md5(blob).hexdigest()


def _splits(n=(20, 5, 7), seed=0):
    rng = np.random.default_rng(seed)
    return tuple((rng.integers(0, 256, (k, 784)).astype(np.float32) / 256,
                  rng.integers(0, 10, k).astype(np.int64)) for k in n)


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_arrays_round_trip_through_idx(tmp_path):
    data = _splits()
    md5 = _pkl(tmp_path / "mnist.pkl.gz", data)
    write_idx_files(load_mnist_pkl(tmp_path / "mnist.pkl.gz", md5), tmp_path / "idx")
    x, y = load_split(tmp_path / "idx", "train")
    assert x.shape == (25, 28, 28)
    np.testing.assert_array_equal(x.reshape(25, 784), np.rint(np.concatenate([data[0][0], data[1][0]]) * 256))
    np.testing.assert_array_equal(y, np.concatenate([data[0][1], data[1][1]]))
    assert load_split(tmp_path / "idx", "t10k")[0].shape == (7, 28, 28)


def test_restricted_unpickler_refuses_anything_but_arrays():
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        restricted_loads(pickle.dumps(Exploit(), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="collections.OrderedDict"):
        from collections import OrderedDict
        restricted_loads(pickle.dumps(OrderedDict(a=1)))
    arrays = restricted_loads(pickle.dumps((np.arange(3), np.eye(2, dtype=np.float32)), protocol=2))
    np.testing.assert_array_equal(arrays[0], np.arange(3))


def test_tampered_pickle_is_refused_before_it_is_opened(tmp_path, monkeypatch):
    path = tmp_path / "mnist.pkl.gz"
    md5 = _pkl(path, _splits())
    _pkl(path, Exploit())  # same name, other content: the md5 no longer matches

    def never(*args, **kwargs):
        raise AssertionError("the file was opened for unpickling before its md5 was checked")

    monkeypatch.setattr("orthojac.data.mnist.restricted_loads", never)
    with pytest.raises(DataError, match=f"expected {md5}"):
        load_mnist_pkl(path, md5)


def test_exploit_with_matching_md5_is_still_refused(tmp_path):
    """Even a file whose md5 was (wrongly) configured to match cannot run code."""
    md5 = _pkl(tmp_path / "evil.pkl.gz", Exploit())
    with pytest.raises(pickle.UnpicklingError):
        load_mnist_pkl(tmp_path / "evil.pkl.gz", md5)


def test_data_rule_falls_back_to_the_verified_pickle(tmp_path):
    """No URL, no mirror: the IDX files come from the pickle, each verified by sha256."""
    from orthojac.data import Expected, fetch
    from orthojac.data.mnist import idx_payloads

    data = _splits()
    md5 = _pkl(tmp_path / "mnist.pkl.gz", data)
    expected = [Expected(name, len(p), hashlib.sha256(p).hexdigest()) for name, p in idx_payloads(data).items()]
    fetch(expected, tmp_path / "out", urls=["http://nonexistent.invalid/"], mirrors=[tmp_path / "none"],
          timeout=2, pickles=[(str(tmp_path / "mnist.pkl.gz"), md5)])
    assert load_split(tmp_path / "out", "t10k")[1].shape == (7,)
    bad = [Expected(expected[0].name, expected[0].size, "0" * 64)]
    with pytest.raises(DataError) as err:
        fetch(bad, tmp_path / "out2", urls=[], mirrors=[], pickles=[(str(tmp_path / "mnist.pkl.gz"), "f" * 32)])
    assert "mnist.pkl.gz: " in str(err.value) and "refusing to unpickle an unverified file" in str(err.value)

"""orthojac.data.downloads: pinned single-file downloads, refusals, and the optional receipt."""

import hashlib
import json

import pytest

from orthojac.data import downloads
from orthojac.thesis import sentiment
from orthojac.files import DataError

DEAD_URL = "http://nonexistent.invalid/rt-polaritydata.tar.gz"


@pytest.fixture
def archive(tmp_path):
    """The generated polarity archive in a mirror folder: (mirror, size, sha256)."""
    digests = sentiment.write_stand_in(tmp_path / "gen", sentences=20, dim=4)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    blob = (tmp_path / "gen/text" / sentiment.TEXT_FILE).read_bytes()
    (mirror / sentiment.TEXT_FILE).write_bytes(blob)
    assert hashlib.sha256(blob).hexdigest() == digests[sentiment.TEXT_FILE]
    return mirror, len(blob), digests[sentiment.TEXT_FILE]


def _fetch(out, mirrors, size, sha256, optional=False, urls=(DEAD_URL,)):
    return downloads.fetch(sentiment.TEXT_FILE, "sentence_polarity", size, sha256, list(urls), mirrors, out,
                           optional, timeout=5)


def test_verified_copy_from_a_mirror_after_a_dead_url(archive, tmp_path):
    mirror, size, digest = archive
    receipt = _fetch(tmp_path / "out", [tmp_path / "empty", mirror], size, digest)
    assert receipt["status"] == "verified" and receipt["source"] == str(mirror / sentiment.TEXT_FILE)
    assert [t.split(":")[0] for t in receipt["tried"]] == ["http", str(tmp_path / "empty" / sentiment.TEXT_FILE)]
    assert hashlib.sha256((tmp_path / "out" / sentiment.TEXT_FILE).read_bytes()).hexdigest() == digest
    assert json.loads((tmp_path / "out/status.json").read_text())["sha256"] == digest


def test_a_file_url_is_tried_first(archive, tmp_path):
    mirror, size, digest = archive
    url = (mirror / sentiment.TEXT_FILE).as_uri()
    receipt = _fetch(tmp_path / "out", [], size, digest, urls=[url])
    assert receipt["source"] == url and receipt["tried"] == []


def test_corrupted_copy_is_refused_naming_file_and_both_digests(archive, tmp_path):
    mirror, size, digest = archive
    path = mirror / sentiment.TEXT_FILE
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0xFF
    path.write_bytes(bytes(blob))
    bad = hashlib.sha256(bytes(blob)).hexdigest()
    with pytest.raises(DataError) as err:
        _fetch(tmp_path / "out", [mirror], size, digest)
    message = str(err.value)
    assert str(path) in message and digest in message and bad in message and DEAD_URL in message
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_unpinned_file_is_refused_and_its_digest_given(archive, tmp_path):
    mirror, size, digest = archive
    with pytest.raises(DataError, match=f"no sha256 or md5 pinned.*{digest}"):
        _fetch(tmp_path / "out", [mirror], None, None)


def test_optional_writes_only_an_unavailable_receipt(tmp_path, capsys):
    receipt = _fetch(tmp_path / "out", [tmp_path / "nowhere"], None, None, optional=True)
    assert receipt["status"] == "unavailable"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["status.json"]
    saved = json.loads((tmp_path / "out/status.json").read_text())
    assert saved["tried"][0].startswith(DEAD_URL) and "not found" in saved["tried"][1]
    assert "downloads.sentence_polarity.mirrors" in saved["how_to"]
    assert "DATA UNAVAILABLE" in capsys.readouterr().err


def test_command_line_fails_naming_every_source(tmp_path):
    with pytest.raises(SystemExit, match="nowhere") as err:
        downloads.main(["--file", "x.zip", "--key", "k", "--sha256", "null", "--url", DEAD_URL,
                        "--mirror", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path / "out"), "--timeout", "5"])
    assert DEAD_URL in str(err.value.code)
    with pytest.raises(SystemExit):
        downloads.main(["--file", "x.zip", "--key", "k", "--sha256", "abc", "--out-dir", str(tmp_path)])


def test_an_md5_pin_alone_accepts_the_file_and_refuses_another(tmp_path, archive, capsys):
    """Some files are published with an md5 only (glove.6B.zip): pinned alone, it decides."""
    mirror, size, digest = archive
    md5 = hashlib.md5((mirror / sentiment.TEXT_FILE).read_bytes()).hexdigest()
    receipt = downloads.fetch(sentiment.TEXT_FILE, "sentence_polarity", size, None, [DEAD_URL], [mirror],
                              tmp_path / "ok", optional=False, md5=md5)
    assert receipt["status"] == "verified" and receipt["md5"] == md5 and receipt["sha256"] == digest
    wrong = "0" * 32
    with pytest.raises(DataError, match=f"expected {size} B md5 {wrong}, got {size} B sha256 {digest} md5 {md5}"):
        downloads.fetch(sentiment.TEXT_FILE, "sentence_polarity", size, None, [DEAD_URL], [mirror],
                        tmp_path / "bad", optional=False, md5=wrong)
    assert not (tmp_path / "bad" / sentiment.TEXT_FILE).exists()
    with pytest.raises(SystemExit):
        downloads.main(["--file", "x", "--key", "k", "--md5", "abc", "--out-dir", str(tmp_path)])
    assert "--md5 'abc': want 32 hex digits or null" in capsys.readouterr().err


def test_the_fetch_loop_tries_each_source_in_order_and_says_why_each_was_refused(tmp_path):
    """orthojac.data.downloads.first_accepted, the loop of both fetchers (orthojac.data's IDX files too):
    a URL base found unreachable is skipped for the next file, a missing file is `not found`, a
    copy `accept` refuses is listed with its reason, and the first accepted copy ends the loop."""
    (tmp_path / "bad").write_bytes(b"no")
    (tmp_path / "good").write_bytes(b"yes")
    (tmp_path / "later").write_bytes(b"yes")

    def accept(reader):
        blob = reader.read()
        if blob != b"yes":
            raise downloads.Refused(f"got {blob!r}")
        return blob

    base = "http://nonexistent.invalid/"
    unreachable = {}
    sources = [downloads.Source(base + "x", url=True, base=base), downloads.Source(str(tmp_path / "missing")),
               downloads.Source(str(tmp_path / "bad")), downloads.Source(str(tmp_path / "good")),
               downloads.Source(str(tmp_path / "later"))]
    found, tried = downloads.first_accepted(sources, accept, timeout=5, unreachable=unreachable)
    assert found == (str(tmp_path / "good"), b"yes")
    assert tried[0].startswith(f"{base}x: unreachable or unreadable (") and list(unreachable) == [base]
    assert tried[1:] == [f"{tmp_path / 'missing'}: not found", f"{tmp_path / 'bad'}: got b'no'"]
    again, tried = downloads.first_accepted([downloads.Source(base + "y", url=True, base=base)], accept, 5,
                                            unreachable)
    assert again is None and tried == [f"{base}y: skipped, {unreachable[base]}"]
    assert downloads.not_verified("f", "3 B", []).endswith("Sources tried, in order:\n  (no URL and no mirror configured)")

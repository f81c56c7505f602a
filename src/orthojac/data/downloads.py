"""Single-file downloads (an archive such as glove.6B.zip) verified by sha256 or md5, with a receipt;
and the fetch loop they share with the IDX data sets (orthojac.data): `first_accepted`.

    python -m orthojac download --file glove.6B.zip --size 862182613 --md5 <32 hex> \
        --url https://nlp.stanford.edu/data/glove.6B.zip --mirror /data/glove \
        --out-dir results/data/glove_6b [--optional]

Sources in order: each URL, then `MIRROR/FILE` for each mirror folder. A copy is accepted only when
its size (when pinned) and every digest pinned in the config (sha256, md5: some publishers and
data-set libraries record only one) match; the first accepted copy is streamed to a temporary file
beside its destination, hashed as it is written, and renamed into place (`OUT_DIR/FILE`). Then the
receipt `OUT_DIR/status.json` is written atomically: {"status": "verified", "file", "size",
"sha256", "md5", "source", "tried"}.

Unpinned files. Where no digest of an official file is known, the config says `sha256: null` (and no
md5). Such a file is never used: every copy found is refused, and the refusal gives its size, sha256
and md5, so that a person who has checked the copy (against the publisher, or a second download)
can pin it in the config. Nothing unverified is ever read by the pipeline.

When no source gives an accepted copy: by default the program fails naming every source tried and
what each gave (`not_verified`), and writes nothing (as orthojac.data does). With `--optional` (the consumer can
report "data unavailable" instead), it writes only the receipt, {"status": "unavailable",
"tried", "how_to"}, logs the failure loudly and exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..files import DataError, write_text_atomic

CHUNK = 1 << 20
STATUS = "status.json"


class Refused(Exception):
    """A source's copy is not the wanted file; the message says why (with what it got)."""


@dataclass(frozen=True)
class Source:
    """One place a copy may be: a local file, or with `url` a URL (`base`: the server or URL base
    that, once unreachable, is not asked again for other files; the URL itself by default)."""

    name: str
    url: bool = False
    base: str = ""

    def open(self, timeout: float):
        """A binary reader of the copy (a context manager); FileNotFoundError where there is none."""
        if self.url:
            return urllib.request.urlopen(self.name, timeout=timeout)
        if not Path(self.name).is_file():
            raise FileNotFoundError(self.name)
        return open(self.name, "rb")


def first_accepted(sources, accept, timeout: float, unreachable: dict[str, str] | None = None):
    """Try `sources` in order: open each and hand its reader to `accept`, which returns what the
    copy gives or raises Refused. ((source name, that), tried) for the first accepted copy, or
    (None, tried); `tried`: one line for each source before it, "NAME: why not" (HTTP status, not
    found, unreachable or unreadable, refused and why). A URL base found unreachable is recorded
    in `unreachable` and skipped from then on (shared by the calls for one data set's files)."""
    unreachable = {} if unreachable is None else unreachable
    tried: list[str] = []
    for source in sources:
        base = source.base or source.name
        if source.url and base in unreachable:
            tried.append(f"{source.name}: skipped, {unreachable[base]}")
            continue
        try:
            with source.open(timeout) as reader:
                got = accept(reader)
        except Refused as why:
            tried.append(f"{source.name}: {why}")
            continue
        except urllib.error.HTTPError as err:
            tried.append(f"{source.name}: HTTP {err.code}")
            continue
        except FileNotFoundError:
            tried.append(f"{source.name}: not found")
            continue
        except (urllib.error.URLError, OSError) as err:
            if source.url:
                unreachable[base] = f"unreachable or unreadable ({getattr(err, 'reason', err)})"
                tried.append(f"{source.name}: {unreachable[base]}")
            else:
                tried.append(f"{source.name}: unreadable ({err})")
            continue
        return (source.name, got), tried
    return None, tried


def not_verified(file: str, want: str, tried: list[str]) -> str:
    """The error of a file no source gave: what was wanted and every source tried, in order."""
    return (f"no verified copy of {file} (want {want}).\nSources tried, in order:\n  "
            + "\n  ".join(tried or ["(no URL and no mirror configured)"]))


def how_to(file: str, key: str, receipt: Path) -> str:
    """What a person does to provide `file` (config key `downloads.KEY`, receipt `receipt`)."""
    return (f"Download {file} from one of the URLs above on a machine with internet access, check it "
            f"(size and digest), put it in a folder listed under `downloads.{key}.mirrors` in the config "
            f"(or add the folder there), and pin its size and sha256 in `downloads.{key}` if they are "
            f"null (a refused copy's digest is listed above); then delete {receipt} and rerun.")


def _stream_copy(reader, out_dir: Path, file: str, limit: int | None = None) -> tuple[Path, int, dict[str, str]]:
    """Copy `reader` to a temporary file in `out_dir`; (its path, size, {"sha256": …, "md5": …}).
    With `limit` (the pinned size) the copy stops one chunk past it: size > limit says "too large"."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{file}.", suffix=".tmp")
    digests, size = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}, 0
    try:
        with os.fdopen(fd, "wb") as fh:
            while (limit is None or size <= limit) and (chunk := reader.read(CHUNK)):
                fh.write(chunk)
                for digest in digests.values():
                    digest.update(chunk)
                size += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), size, {name: d.hexdigest() for name, d in digests.items()}


def _refusal(size: int, got: dict[str, str], want_size: int | None, want: dict[str, str | None]) -> str | None:
    """Why a copy of `size` B with digests `got` is refused, or None when it is the pinned file
    (`want`: the pinned digests by algorithm, None where not pinned)."""
    pinned = {name: value for name, value in want.items() if value is not None}
    seen = f"got {size} B sha256 {got['sha256']} md5 {got['md5']}"
    if not pinned:
        return f"refused: no sha256 or md5 pinned in the config, {seen} (pin them once this copy is checked)"
    if any(got[name] != value for name, value in pinned.items()) or (want_size is not None and size != want_size):
        expected = " ".join(f"{name} {value}" for name, value in pinned.items())
        return f"expected {want_size if want_size is not None else '?'} B {expected}, {seen}"
    return None


def fetch_file(file: str, size: int | None, sha256: str | None, urls: list[str], mirrors: list[Path],
               out_dir: Path, timeout: float = 30.0, md5: str | None = None) -> tuple[dict | None, list[str]]:
    """The receipt of the first accepted copy of `file` (now at out_dir/file), or None; and what
    every source tried gave."""
    if Path(file).name != file or file in ("", ".", ".."):
        raise ValueError(f"--file {file!r}: want a file name, not a path (the copy goes to {out_dir})")

    def accept(reader) -> tuple[Path, int, dict[str, str]]:
        tmp, got_size, got = _stream_copy(reader, out_dir, file, size)
        why = (f"expected {size} B, got more (the copy stopped after {got_size} B)"
               if size is not None and got_size > size else _refusal(got_size, got, size, {"sha256": sha256, "md5": md5}))
        if why:
            tmp.unlink()
            raise Refused(why)
        return tmp, got_size, got

    sources = [Source(u, url=True) for u in urls] + [Source(str(Path(m) / file)) for m in mirrors]
    found, tried = first_accepted(sources, accept, timeout)
    if found is None:
        return None, tried
    name, (tmp, got_size, got) = found
    os.replace(tmp, out_dir / file)
    return {"status": "verified", "file": file, "size": got_size, **got, "source": name, "tried": tried}, tried


def fetch(file: str, key: str, size: int | None, sha256: str | None, urls: list[str], mirrors: list[Path],
          out_dir: Path, optional: bool, timeout: float = 30.0, md5: str | None = None) -> dict:
    """Fetch `file` (config `downloads.KEY`) into `out_dir` and write its receipt; see the module."""
    out_dir = Path(out_dir)
    receipt, tried = fetch_file(file, size, sha256, urls, mirrors, out_dir, timeout, md5=md5)
    if receipt is None:
        lines = tried or ["(no URL and no mirror configured)"]
        wanted = f"sha256 {sha256 or 'not pinned'}" + (f", md5 {md5}" if md5 else "")
        message = not_verified(file, f"{size if size is not None else '?'} B, {wanted}", tried)
        if not optional:
            raise DataError(message + "\nNothing was written. " + how_to(file, key, out_dir / STATUS))
        print(f"DATA UNAVAILABLE: {message}\nWriting only the receipt {out_dir / STATUS}: its consumer "
              "reports the data as unavailable.", file=sys.stderr)
        receipt = {"status": "unavailable", "file": file, "tried": lines,
                   "how_to": how_to(file, key, out_dir / STATUS)}
    else:
        print(f"{file}: verified ({receipt['size']} B, sha256 {receipt['sha256'][:12]}…) from "
              f"{receipt['source']}", file=sys.stderr)
    write_text_atomic(out_dir / STATUS, json.dumps(receipt, indent=1) + "\n")
    return receipt


def _size(text: str) -> int | None:
    return None if text == "null" else int(text)


def _hex(flag: str, digits: int):
    def parse(text: str) -> str | None:
        if text == "null":
            return None
        if len(text) != digits or any(c not in "0123456789abcdef" for c in text.lower()):
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: want {digits} hex digits or null")
        return text.lower()
    return parse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac download", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", required=True, help="file name (the official archive's)")
    parser.add_argument("--key", required=True, help="its key under `downloads:` in the config (for messages)")
    parser.add_argument("--size", type=_size, default=None, help="pinned size in bytes, or null")
    parser.add_argument("--sha256", type=_hex("--sha256", 64), default=None, help="pinned sha256, or null")
    parser.add_argument("--md5", type=_hex("--md5", 32), default=None,
                        help="pinned md5, or null (with neither digest pinned every copy is refused)")
    parser.add_argument("--url", action="append", default=[], help="full URL to try (repeatable, in order)")
    parser.add_argument("--mirror", type=Path, action="append", default=[],
                        help="local folder holding FILE, tried after the URLs (repeatable)")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for FILE and its receipt status.json")
    parser.add_argument("--optional", action="store_true",
                        help="when no source gives a verified copy, write an 'unavailable' receipt and exit 0")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per URL request")
    args = parser.parse_args(argv)
    try:
        fetch(args.file, args.key, args.size, args.sha256, args.url, args.mirror, args.out_dir,
              args.optional, args.timeout, md5=args.md5)
    except DataError as err:
        sys.exit(f"orthojac download: {err}")


if __name__ == "__main__":
    main()

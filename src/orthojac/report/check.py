"""Checks that the rendered report is what a person sees: every figure and every link resolves.

    python -m orthojac reportcheck results/report

Reads every *.html of the folder with the standard library's HTML parser. An <img> resolves when
its `src` is a data: URI whose base64 payload decodes to a PNG, or a relative path to a file that
exists; an <a href> to another page of the report resolves when that file exists (links out of
the report, `http(s):`, `mailto:` and in-page `#anchors`, are not followed), and its `#anchor`, if
any, names an element of that page. The claims ledger is the table with class `claims-ledger`; its
body rows are counted. A claim's part of a section page (from an element with id `claim-<id>` to
the next such, or to the next h1/h2 heading) must show at least one figure.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEDGER_CLASS = "claims-ledger"
CLAIM_PREFIX = "claim-"  # the id of a claim's part of a section page (orthojac.report.claim_anchor)


@dataclass
class Page:
    """What one HTML page refers to."""

    images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    ledger_rows: list[list[str]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    claim_images: dict[str, int] = field(default_factory=dict)  # claim → images in its part


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._in_ledger = self._in_body = self._in_cell = False
        self._row: list[str] | None = None
        self._claim: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.page.ids.add(a["id"])
            if a["id"].startswith(CLAIM_PREFIX):
                self._claim = a["id"][len(CLAIM_PREFIX):]
                self.page.claim_images[self._claim] = 0
        if tag in ("h1", "h2") and not (a.get("id") or "").startswith(CLAIM_PREFIX):
            self._claim = None  # a heading of the page's own ends the claim's part
        if tag == "img":
            self.page.images.append(a.get("src") or "")
            if self._claim is not None:
                self.page.claim_images[self._claim] += 1
        elif tag == "a" and a.get("href"):
            self.page.links.append(a["href"])
        elif tag == "table" and LEDGER_CLASS in (a.get("class") or "").split():
            self._in_ledger = True
        elif self._in_ledger and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self._row = []
        elif self._row is not None and tag in ("td", "th"):
            self._row.append("")
            self._in_cell = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False
        elif tag == "tr" and self._row is not None:
            self.page.ledger_rows.append([c.strip() for c in self._row])
            self._row = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._in_ledger = False

    def handle_data(self, data):
        if self._in_cell and self._row:
            self._row[-1] += data


def parse_page(path: Path) -> Page:
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser.page


def _is_external(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https", "mailto") or (not parts.scheme and not parts.path)


def image_problem(src: str, folder: Path) -> str | None:
    """Why the image `src` (on a page in `folder`) does not show, or None if it does."""
    if src.startswith("data:"):
        header, _, payload = src.partition(",")
        if not header.endswith(";base64"):
            return f"data URI {header!r} is not base64"
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as err:
            return f"data URI does not decode: {err}"
        return None if raw.startswith(PNG_SIGNATURE) else "data URI is not a PNG"
    if not src:
        return "empty src"
    if urlsplit(src).scheme:
        return f"{src!r} is not part of the report"
    return None if (folder / unquote(urlsplit(src).path)).is_file() else f"{src!r} does not exist"


def check_report(folder: Path) -> list[str]:
    """Every problem with the pages of `folder`, as 'page: problem' lines (empty: all resolve)."""
    pages = sorted(folder.glob("*.html"))
    if not pages:
        return [f"{folder}: no HTML pages"]
    problems = []
    parsed = {path.name: parse_page(path) for path in pages}
    for name, page in parsed.items():
        for src in page.images:
            if why := image_problem(src, folder):
                problems.append(f"{name}: image {why}")
        for href in page.links:
            if _is_external(href):
                continue
            parts = urlsplit(href)
            target = unquote(parts.path)
            if not (folder / target).is_file():
                problems.append(f"{name}: link {href!r} does not resolve")
            elif parts.fragment and target in parsed and unquote(parts.fragment) not in parsed[target].ids:
                problems.append(f"{name}: link {href!r}: {target} has no element #{unquote(parts.fragment)}")
        for claim, count in page.claim_images.items():
            if count == 0:
                problems.append(f"{name}: claim {claim} shows no figure")
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac reportcheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="folder of the rendered report (index.html, …)")
    args = parser.parse_args(argv)
    problems = check_report(args.folder)
    for line in problems:
        print(line, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

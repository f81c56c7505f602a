"""The report seen as a person sees it, in Debian's headless Chromium (CI installs `chromium`):
every page renders to a non-blank screenshot, and at a 1280 px window no page scrolls sideways
(neither the page nor a box in it), every image loads, and every claim's part shows its figure."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import matplotlib.image
import pytest

from conftest import REPO
from orthojac.claims import CLAIMS
from orthojac.report import claim_page
from orthojac.report.check import check_report, parse_page
from orthojac.workflow import PAGES as REPORT_PAGES

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars",
                  # no name resolves: the scripts nbconvert's template loads from a CDN (require.js,
                  # MathJax) fail at once on every machine, instead of waiting on a resolver, or
                  # loading where there is a network and changing the layout measured
                  "--host-resolver-rules=MAP * ~NOTFOUND"]
WIDTH = 1280  # a laptop's browser window
PAGES = ["index", *REPORT_PAGES]
REFERENCE = REPO / "results/reference/cpu"
# Run in the page once it has loaded: the document's width, the boxes that scroll sideways inside
# it, the elements whose right edge lies beyond the window (cut off by a box that hides its
# overflow), the images that did not load; written into the DOM, which --dump-dom prints.
MEASURE = """<script>
window.addEventListener("load", () => {
  const wide = [...document.querySelectorAll("body *")].filter(el => {
    const o = getComputedStyle(el).overflowX;
    return (o === "auto" || o === "scroll") && el.scrollWidth > el.clientWidth + 1;
  }).map(el => `${el.tagName.toLowerCase()}.${el.className} (${el.scrollWidth} > ${el.clientWidth} px)`);
  const off = [...document.querySelectorAll("body *")].filter(el => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.right > window.innerWidth + 1;
  }).map(el => `${el.tagName.toLowerCase()}.${el.className} (right edge ${Math.round(el.getBoundingClientRect().right)} px)`);
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80));
  const out = document.createElement("pre");
  out.id = "orthojac-measure";
  out.textContent = JSON.stringify({scrollWidth: document.documentElement.scrollWidth, wide: wide, off: off.slice(0, 10),
                                    broken: broken, images: document.images.length});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, "Debian's `chromium` is not installed (apt-get install chromium)"
    return path


def screenshot(page, png, profile, height: int = 3000, width: int = 1400) -> None:
    """Render the HTML file `page` with headless Chromium to the PNG `png` (fresh profile)."""
    proc = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}",
                           f"--screenshot={png}", page.resolve().as_uri()], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0 and png.is_file(), proc.stderr[-3000:]


def measure(page, folder, profile) -> dict:
    """Load the HTML file `page` at WIDTH px in headless Chromium (a copy with MEASURE added, in
    `folder`) and return what MEASURE found."""
    copy = folder / page.name
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    proc = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--window-size={WIDTH},900", f"--user-data-dir={profile}",
                           "--virtual-time-budget=20000", "--dump-dom", copy.resolve().as_uri()],
                          capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="orthojac-measure">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"{page.name}: the measurement did not run; chromium said: {proc.stderr[-2000:]}"
    return json.loads(html.unescape(found[1]))


@pytest.mark.parametrize("page", ["index", "paper"])
def test_chromium_renders_a_non_blank_page(tiny_pipeline, tmp_path, page):
    png = tmp_path / f"{page}.png"
    screenshot(tiny_pipeline / f"results/report/{page}.html", png, tmp_path / "profile")
    pixels = matplotlib.image.imread(png)[..., :3]
    assert pixels.shape[:2] == (3000, 1400)
    assert pixels.std() > 0.05  # text, tables and figures, not one flat colour
    ink = (pixels.mean(axis=-1) < 0.9).mean()  # measured: 2.7 % (index), 3.3 % (paper)
    assert ink > 0.01


def test_every_page_fits_1280_px_loads_its_images_and_shows_each_claims_figure(tiny_pipeline, tmp_path):
    folder = tiny_pipeline / "results/report"
    assert check_report(folder) == []  # links and anchors resolve, every claim's part has a figure
    for name in PAGES:
        page = folder / f"{name}.html"
        found = measure(page, tmp_path, tmp_path / "profile")
        assert found["scrollWidth"] <= WIDTH, f"{name}.html is {found['scrollWidth']} px wide"
        assert found["wide"] == [], f"{name}.html scrolls sideways inside: {found['wide']}"
        assert found["off"] == [], f"{name}.html runs off the right edge: {found['off']}"
        assert found["broken"] == [] and found["images"] >= 1, f"{name}.html: {found}"
    for claim in CLAIMS:
        parts = parse_page(folder / f"{claim_page(claim)}.html").claim_images
        assert parts.get(claim, 0) >= 1, f"{claim} has no figure on {claim_page(claim)}.html"


def test_the_measurement_sees_a_page_that_runs_off_the_right_edge(tmp_path):
    (tmp_path / "wide.html").write_text('<html><body><table><tr><td style="white-space: nowrap">'
                                        + "wide " * 400 + '</td></tr></table><img src="missing.png">'
                                        '<div style="overflow-x: auto; width: 200px"><p style="width: 900px">x</p>'
                                        "</div></body></html>")
    (tmp_path / "out").mkdir()
    found = measure(tmp_path / "wide.html", tmp_path / "out", tmp_path / "profile")
    assert found["scrollWidth"] > WIDTH and found["off"]
    assert len(found["broken"]) == 1 and len(found["wide"]) == 1


def test_the_committed_reference_pages_fit_1280_px_with_every_row_opened(tmp_path):
    """The committed CPU reference's pages (orthojac.report.render), the index with every ledger row's
    <details> open: the widest the index gets."""
    folder = REFERENCE / "report"
    assert check_report(folder) == []
    opened = tmp_path / "opened"
    opened.mkdir()
    (opened / "index.html").write_text((folder / "index.html").read_text(encoding="utf-8")
                                       .replace("<details>", "<details open>"), encoding="utf-8")
    (tmp_path / "out").mkdir()
    for page in [opened / "index.html", *(folder / f"{s}.html" for s in REPORT_PAGES)]:
        found = measure(page, tmp_path / "out", tmp_path / "profile")
        assert found["scrollWidth"] <= WIDTH and found["wide"] == [] and found["off"] == [], (page.name, found)
        assert found["broken"] == [] and found["images"] >= 1, (page.name, found)

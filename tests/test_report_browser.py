"""The report seen as a person sees it: Debian's headless Chromium renders every page of the
fixture report to a screenshot, which must exist and not be blank (CI installs `chromium`)."""

from __future__ import annotations

import shutil
import subprocess

import matplotlib.image
import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,3000"]


def screenshot(page, png, profile) -> None:
    """Render the HTML file `page` with headless Chromium to the PNG `png` (fresh profile)."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's `chromium` is not installed (apt-get install chromium)"
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and png.is_file(), proc.stderr[-3000:]


@pytest.mark.parametrize("page", ["index", "paper"])
def test_chromium_renders_a_non_blank_page(tiny_pipeline, tmp_path, page):
    png = tmp_path / f"{page}.png"
    screenshot(tiny_pipeline / f"results/report/{page}.html", png, tmp_path / "profile")
    pixels = matplotlib.image.imread(png)[..., :3]
    assert pixels.shape[:2] == (3000, 1400)
    assert pixels.std() > 0.05  # text, tables and figures, not one flat colour
    ink = (pixels.mean(axis=-1) < 0.9).mean()  # measured: 2.7 % (index), 3.3 % (paper)
    assert ink > 0.01

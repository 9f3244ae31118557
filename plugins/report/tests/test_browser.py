"""The HTML report in a real headless browser (Debian's Chromium).

Chromium loads the report of a real export whose vendor names are hostile, dumps the DOM it
built and takes a screenshot. The DOM must hold every item row, exactly one ``h1`` and no
element a vendor name smuggled in; the browser's console must stay silent (no script ran, so
none failed, and the page's Content-Security-Policy refused nothing). The screenshot is saved
(``$PLEO_EXPORT_ARTIFACTS`` when set, else the test's temporary folder) for people to look at.

Skips when Chromium is not installed, except with ``CI`` set (then it fails):
``.ci/prepare`` installs it.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import anyio.to_thread
import pytest

from plugins.report.tests.conftest import HOSTILE_NAMES, export, make_hostile

pytestmark = pytest.mark.anyio

WIDTH, HEIGHT = 1440, 1800


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    message = "Chromium is not installed (apt-get install chromium; .ci/prepare does)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _chromium(),
            "--headless=new",
            "--no-sandbox",  # tests run as root here; the page is our own file
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


async def test_chromium_renders_every_item_and_runs_nothing(tmp_path: Path) -> None:
    _chromium()
    done = await export(tmp_path / "demo", items=14, mutate=make_hostile)
    (job,) = done.report.jobs
    (page,) = done.html()
    assert job.items_total == 14
    title = f"Pleo export report: job {job.job_id}"
    await anyio.to_thread.run_sync(_check_in_browser, page, tmp_path, job.items_total, title)


def _check_in_browser(page: Path, tmp_path: Path, items: int, title: str) -> None:
    dumped = _browse(page, tmp_path / "profile", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-3000:]
    assert _console(dumped.stderr) == []
    dom = _Dom()
    dom.feed(dumped.stdout)
    names = [tag for tag, _ in dom.tags]
    assert names.count("h1") == 1 and "script" not in names and "img" not in names
    badges = [a for tag, a in dom.tags if tag == "span" and "badge" in (a.get("class") or "")]
    assert len(badges) == items
    text = "".join(dom.text)
    for name in HOSTILE_NAMES[:3]:
        assert name in text  # shown as text, exactly as Pleo had it
    assert title in text
    assert "Reconciliation" in text

    artifacts = Path(os.environ.get("PLEO_EXPORT_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "report-screenshot.png"
    taken = _browse(
        page,
        tmp_path / "profile",
        "--hide-scrollbars",
        "--run-all-compositor-stages-before-draw",  # paint every row before the shot
        "--virtual-time-budget=3000",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={shot}",
    )
    assert taken.returncode == 0, taken.stderr[-3000:]
    assert _console(taken.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(data) > 20_000  # a page with text and tables, not a blank one

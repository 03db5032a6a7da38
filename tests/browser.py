"""Headless Chromium (Debian's `chromium` package) as an auditor's browser: the page's DOM after
rendering, its visible text, and a screenshot."""

from __future__ import annotations

import html.parser
import shutil
import subprocess
import time
from pathlib import Path

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-dev-shm-usage", "--no-first-run"]  # fmt: skip


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise AssertionError("chromium is not installed: `make deps` installs Debian's package")
    return found


def dump_dom(page: Path) -> str:
    done = subprocess.run([chromium(), *FLAGS, "--dump-dom", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return done.stdout


def screenshot(page: Path, out: Path, *, width: int = 1280, height: int = 2400) -> float:
    """Renders the page into `out` (PNG); returns the wall time it took."""
    started = time.monotonic()
    subprocess.run([chromium(), *FLAGS, f"--window-size={width},{height}",
                    f"--screenshot={out}", page.resolve().as_uri()],
                   capture_output=True, timeout=300, check=True)  # fmt: skip
    elapsed = time.monotonic() - started
    if not out.is_file() or out.stat().st_size < 1000:
        raise AssertionError(f"chromium wrote no screenshot of {page}")
    return elapsed


class _MainText(html.parser.HTMLParser):
    """Visible text outside the collapsed technical section (what the main view shows)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip_depth = 0
        self.depth = 0
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "title"):
            self.in_style = True
        if tag == "details":
            self.depth += 1
            if dict(attrs).get("id") == "technical-details" and not self.skip_depth:
                self.skip_depth = self.depth

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self.in_style = False
        if tag == "details":
            if self.skip_depth == self.depth:
                self.skip_depth = 0
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip_depth and not self.in_style:
            self.parts.append(data)


def main_view_text(dom: str) -> str:
    parser = _MainText()
    parser.feed(dom)
    return " ".join(" ".join(parser.parts).split())

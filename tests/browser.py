"""A real browser for the tests: Debian's Chromium driven by Playwright (no browser download).

``tools/install.sh test`` installs ``chromium`` from apt and the ``playwright`` wheel; Playwright
launches the Debian binary through ``executable_path``, so ``playwright install`` is never
needed. A test that cannot start the browser fails (it must not skip): the error says what to
install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Where Debian puts its Chromium; CHROMIUM overrides it.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",  # the tests run as root in containers, where the sandbox cannot start
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
]


@contextlib.contextmanager
def chromium() -> Iterator:
    """A Playwright BrowserContext of a fresh Chromium profile (a new user-data-dir)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed; run: bash tools/install.sh test")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM}: no Chromium; run: bash tools/install.sh test (apt chromium)")
    profile = tempfile.mkdtemp(prefix="indomer-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=ARGS,
                headless=True,
                viewport={"width": 1600, "height": 1000},
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Console:
    """Every console error and uncaught page error of one page, for a no-errors check."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, msg) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} ({msg.location})")

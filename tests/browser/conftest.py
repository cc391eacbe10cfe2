"""A real browser for the Space: headless Chromium from the system's packages, driven by Playwright.

Playwright's own browser download (``playwright install``) is never used: the browser is the distribution's
``chromium`` (Debian: ``apt-get install chromium``), found on ``PATH`` or named by ``DS2_CHROMIUM``. Without it
(or without the ``playwright`` package) the browser tests skip on a workstation and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
TIMEOUT_MS = 120_000  # every wait of a page: generous, as CI's two cores are shared with the rest of the suite


def _missing(what: str) -> None:
    message = f"{what}; the browser tests need it (CI: .ci/run installs both)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def chromium_path() -> str:
    """The system Chromium: ``$DS2_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on ``PATH``."""
    path = os.environ.get("DS2_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not os.access(path, os.X_OK):
        _missing("no Chromium found (install it with `apt-get install -y chromium`, or set DS2_CHROMIUM)")
    return path


@pytest.fixture
def browser_page(tmp_path):
    """A page of a fresh headless Chromium with an empty profile; the browser is closed afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing('the playwright package is not installed (pip install -e ".[dev]")')
    executable = chromium_path()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=executable, headless=True, args=LAUNCH_ARGS,
            accept_downloads=True, viewport=VIEWPORT,
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def space_url():
    """The Space (spaces/ds2-demo) served on a free loopback port for one test module, closed afterwards."""
    pytest.importorskip("gradio")
    from space_app import space_modules

    with space_modules() as space:
        _, url, _ = space.app.demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                                          quiet=True, max_file_size=f"{space.data.MAX_UPLOAD_MB}mb")
        try:
            yield url
        finally:
            space.app.demo.close()

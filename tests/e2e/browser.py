"""Helpers for the browser tests: the live server, Chromium's launch options, screenshots,
logging in and uploading through the pages.

The fixtures that use these live in ``tests/e2e/conftest.py``; tests import the helpers
(``from tests.e2e.browser import screenshot``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"

# Debian's Chromium (scripts/test.sh installs it); Playwright's own browsers are not used.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps trying to reach Google's services on a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
DEFAULT_LOCALE = "en-US"
DEFAULT_TIMEOUT_MS = 15_000  # Playwright's per-action/navigation timeout in the tests

ADMIN_USER = "admin"  # the first admin that `kb serve` creates from KB_ADMIN_PASSWORD
ADMIN_PASSWORD = "e2e-admin-Pa55word"
STARTUP_TIMEOUT_S = 120.0
SHUTDOWN_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A running ``kb serve`` subprocess (with its in-process ingest worker).

    ``base_url`` has no trailing slash; ``url("/path")`` joins onto it. ``data_dir`` is the
    server's KB_DATA_DIR (SQLite database, originals, index snapshots). The admin user is
    ``admin_user`` / ``admin_password``. The server's output goes to ``log_path``; ``log()``
    returns it (handy in assertion messages).
    """

    base_url: str
    data_dir: Path
    admin_password: str
    log_path: Path
    admin_user: str = ADMIN_USER
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def log(self, tail_chars: int = 20_000) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return text[-tail_chars:]


def server_env(data_dir: Path, admin_password: str) -> dict[str, str]:
    """The environment of the live server: this one without any KB_ variable, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(
        KB_DATA_DIR=str(data_dir),
        KB_ADMIN_PASSWORD=admin_password,
        OMP_NUM_THREADS="1",
        KB_WORKER_POLL_SECONDS="0.2",
        PYTHONUNBUFFERED="1",
        # A scan needs OCR in these tests (the test command installs the [ocr] extra,
        # where it would be on); tests/test_ocr.py runs OCR itself.
        KB_OCR_ENABLED="false",
    )
    # The server runs in a scratch folder (so no developer's ./.env is read); keep the
    # project importable from there even without an editable install.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def start_live_server(
    workdir: Path, admin_password: str = ADMIN_PASSWORD, env: dict[str, str] | None = None
) -> LiveServer:
    """Start ``python -m app.cli serve`` on a free port and wait until /healthz answers 200.

    ``env`` adds ``KB_`` settings (a PostgreSQL ``KB_DATABASE_URL``, for example).

    Raises RuntimeError, with the server's output, if it exits or is not up in time.
    """
    data_dir = workdir / "data"
    log_path = workdir / "server.log"
    port = free_port()
    server = LiveServer(
        base_url=f"http://127.0.0.1:{port}",
        data_dir=data_dir,
        admin_password=admin_password,
        log_path=log_path,
    )
    with log_path.open("wb") as log:  # a file, not a pipe: a full pipe would block the server
        server.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env={**server_env(data_dir, admin_password), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        code = server.process.poll()
        if code is not None:
            raise RuntimeError(f"kb serve exited with {code} before it was up:\n{server.log()}")
        try:
            if httpx.get(server.url("/healthz"), timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_live_server(server)
            raise RuntimeError(
                f"kb serve did not answer /healthz within {STARTUP_TIMEOUT_S:.0f} s:\n"
                f"{server.log()}"
            )
        time.sleep(0.2)


def stop_live_server(server: LiveServer) -> int | None:
    """SIGINT (what Ctrl-C sends), wait, kill if it hangs; returns the exit status."""
    proc = server.process
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "screenshot"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of ``page`` as test-artifacts/screenshots/<name>.png; return it.

    ``name`` may be anything (it is made file-name safe); an existing file is replaced.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = _safe_name(name.removesuffix(".png"))
    path = SCREENSHOTS / f"{stem}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Page, user: str, password: str) -> None:
    page.goto("/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    # Signed in: the header's log-out button (the nav folds behind "Menu" on a phone).
    expect(page.locator("header form[action='/logout'] button")).to_be_visible()


def upload_in_browser(page: Page, files: list[Path]) -> None:
    """Upload through the /upload page's file input; waits for one result per file."""
    page.goto("/upload")
    page.set_input_files("#dropzone input[type=file]", [str(f) for f in files])
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-results li")).to_have_count(len(files))

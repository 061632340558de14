"""Fixtures for the browser tests: the real product as a subprocess, and headless Chromium.

Fixtures
--------
``live_server`` (session) -> ``LiveServer``
    ``kb serve`` (uvicorn + the in-process ingest worker) started as a subprocess on a free
    port, with a fresh ``KB_DATA_DIR`` (SQLite), ``KB_ADMIN_PASSWORD`` set (user ``admin``),
    ``OMP_NUM_THREADS=1``, ``KB_WORKER_POLL_SECONDS=0.2`` and no other ``KB_`` variable.
    Attributes: ``base_url`` (``http://127.0.0.1:PORT``), ``data_dir``, ``admin_user``,
    ``admin_password``, ``log_path``; methods ``url(path)`` and ``log()``. Its output is
    copied to ``test-artifacts/live-server.log`` when the session ends. One server serves
    the whole session, so tests share its data: give what you create unique names.

``browser`` (package: every test under tests/e2e) -> ``playwright.sync_api.Browser``
    Debian's ``/usr/bin/chromium``, headless, launched once. Not session-wide on purpose:
    while Playwright's sync API is running, ``asyncio.run()`` cannot be called on the main
    thread, so it is stopped before any test outside tests/e2e runs.

``locale`` (function) -> str, default ``"en-US"``
    The browser locale of ``page`` / ``new_context`` (also its Accept-Language). Override
    per test with ``@pytest.mark.parametrize("locale", ["zh-CN"])``.

``new_context`` (function) -> ``new_context(**options) -> BrowserContext``
    A fresh, isolated context (own cookies: one per user when a test needs two sessions)
    with the defaults: viewport 1280x900, ``locale``, ``base_url=live_server.base_url``
    (so ``page.goto("/search")`` works) and a 15 s timeout; ``options`` are passed to
    ``Browser.new_context`` and override them. All are closed after the test.

``page`` (function) -> ``playwright.sync_api.Page``
    A page in a new context made by ``new_context()``.

When a test fails, every page it opened is saved under ``test-artifacts/screenshots/``
(``<test>-failed-*.png``). ``tests.e2e.browser.screenshot(page, name)`` saves one on
purpose. Every test under tests/e2e is marked ``slow`` (run by the second pytest phase of
scripts/test.sh).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.e2e.browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    DEFAULT_LOCALE,
    DEFAULT_TIMEOUT_MS,
    VIEWPORT,
    LiveServer,
    screenshot,
    start_live_server,
    stop_live_server,
)

E2E_DIR = Path(__file__).resolve().parent
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every browser test ``slow`` (before ``-m`` selects), so none runs in the fast phase."""
    for item in items:
        if E2E_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell that the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("live-server")
    try:
        server = start_live_server(workdir)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server
    finally:
        stop_live_server(server)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if server.log_path.exists():
            shutil.copyfile(server.log_path, ARTIFACTS / "live-server.log")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does it)",
            pytrace=False,
        )
    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        pw.stop()


@pytest.fixture
def locale() -> str:
    return DEFAULT_LOCALE


@pytest.fixture
def new_context(
    browser: Browser, live_server: LiveServer, locale: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., BrowserContext]]:
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        kwargs: dict[str, Any] = {
            "viewport": VIEWPORT,
            "locale": locale,
            "base_url": live_server.base_url,
        }
        kwargs.update(options)
        context = browser.new_context(**kwargs)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make

    if _failed(request):
        for i, context in enumerate(contexts):
            for j, p in enumerate(context.pages):
                try:
                    screenshot(p, f"{request.node.nodeid}-failed-{i}-{j}")
                except Exception as e:  # a crashed page must not hide the real failure
                    print(f"could not save a screenshot of {p.url}: {e}")
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    return new_context().new_page()

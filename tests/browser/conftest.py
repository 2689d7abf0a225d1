"""The whole service as `make run` starts it, on free ports with a data folder of its own, and the
OS's headless Chromium to look at the caseworker console with.

`console_stack` runs `python -m cms.stack` (tests/platform/stack_process.py): the Temporal dev
server, an embedded PostgreSQL, the four gRPC services, the worker and the console, started and
wired exactly as for a developer. The session's signing key is the stack's (tests/helpers/auth.py
sets CMS_DEV_ISSUER_KEY), so the tests set up their cases through the case API with tokens of
their own while the browser signs in through the console like a person."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from cms.config import REPO_ROOT
from cms.infra.processes import free_port
from tests.browser.pages import CHROMIUM_ARGS, PageCheck, chromium_executable
from tests.platform.stack_process import StackProcess, stack_env

# Start-up waits for every health check; a first start trains the risk model, slower on a loaded machine.
STACK_START_SECONDS = 300


@dataclass(frozen=True)
class ConsoleStack:
    console: str      # the console's origin, http://127.0.0.1:<port>
    case_api: str     # host:port of the case API
    payments: str
    stack: StackProcess


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError as refused:
        return refused.code < 500
    except OSError:
        return False


def _wait_until_answers(url: str, timeout: float, stack: StackProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(url):
            return
        time.sleep(0.5)
    raise AssertionError(f"the console never answered at {url}; the stack printed:\n" + "\n".join(stack.lines))


@pytest.fixture(scope="module")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    if chromium_executable() is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    if not (REPO_ROOT / "services" / "console" / "__main__.py").is_file():
        pytest.skip("the console service (services/console) is not in this checkout")
    data = tmp_path_factory.mktemp("console-stack") / "data"
    # A case day of 4 seconds: a new case is active after its 2-day notice period within
    # seconds, and a change's 28-day clock leaves the test about two minutes to review it.
    env = stack_env(data, CONSOLE_PORT=str(free_port()), CMS_SECONDS_PER_DAY="4")
    stack = StackProcess(env)
    try:
        stack.wait_for_line("Ctrl-C stops everything", timeout=STACK_START_SECONDS)
        console = f"http://127.0.0.1:{env['CONSOLE_PORT']}"
        _wait_until_answers(console + "/", 60, stack)
        yield ConsoleStack(console=console, case_api=f"127.0.0.1:{env['CASE_API_PORT']}",
                           payments=f"127.0.0.1:{env['PAYMENTS_PORT']}", stack=stack)
    finally:
        stack.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator:
    if chromium_executable() is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser) -> AsyncIterator:
    """A fresh browser context (no cookies: not signed in) with one tab. axe is injected into each
    page by the tests; a Content-Security-Policy the console sets for its own scripts must not
    stop that, so the context bypasses it (the policy is tested on its own)."""
    context = await browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    try:
        yield await context.new_page()
    finally:
        await context.close()


@pytest.fixture(scope="module")
def page_check() -> PageCheck:
    return PageCheck()

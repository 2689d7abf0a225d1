"""An operator's view: the Temporal Web UI, in headless Chromium, opens a case workflow and shows
its input decoded through the codec server, after signing in there with the token; with the
codec server stopped, the same page shows only ciphertext.

Chromium comes from the OS packages (`chromium`; .ci/run installs it) and Playwright drives that
binary: nothing is downloaded at run time. Without the browser the test skips, saying so."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from cms.config import REPO_ROOT
from cms.infra.processes import free_port
from cms.infra.temporal_server import start_dev_server
from cms.temporal import connect_when_ready
from tests.helpers.codec import codec_data_converter
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = f"browser-test-{uuid.uuid4().hex}"
# The payload's encoding, as the UI shows an undecoded payload's metadata (base64 of binary/encrypted).
ENCRYPTED_MARKERS = ("binary/encrypted", "YmluYXJ5L2VuY3J5cHRlZA==")


async def _answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status < 500
    except aiohttp.ClientError:
        return False


async def _until(check, timeout: float, what: str):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what} within {timeout}s")


@pytest_asyncio.fixture(loop_scope="session")
async def ui(tmp_path: Path) -> AsyncIterator[dict]:
    """A dev server with its Web UI pointed at a codec server of this test's own."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    ui_port, codec_port, temporal_port = free_port(), free_port(), free_port()
    ui_origin, codec_url = f"http://localhost:{ui_port}", f"http://localhost:{codec_port}"
    codec = subprocess.Popen(
        [sys.executable, "-m", "services.codec_server"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "CODEC_SERVER_PORT": str(codec_port),
             "CMS_CODEC_SERVER_TOKEN": f"operator={TOKEN}", "CMS_CODEC_UI_ORIGIN": ui_origin})
    temporal = start_dev_server(temporal_port, ui_port, None, tmp_path / "temporal.log", codec_endpoint=codec_url)
    try:
        client = await connect_when_ready(f"127.0.0.1:{temporal_port}", data_converter=codec_data_converter())
        await _until(lambda: _answers(f"{codec_url}/login"), 60, "the codec server answers")
        await _until(lambda: _answers(ui_origin), 60, "the UI answers")
        yield {"client": client, "ui": ui_origin, "codec_url": codec_url, "codec": codec}
    finally:
        codec.terminate()
        codec.wait(timeout=30)
        temporal.stop()


async def _page_text(page) -> str:
    return await page.inner_text("body")


async def test_the_ui_shows_the_decoded_input_through_the_codec_server_and_ciphertext_without_it(ui) -> None:
    from playwright.async_api import async_playwright

    planted = f"pp-planted-{uuid.uuid4().hex[:10]}"
    case_id = f"ui-{uuid.uuid4().hex[:8]}"
    # No worker: the workflow's input is in its first event, which is all the page needs.
    handle = await ui["client"].start_workflow(
        CaseWorkflow.run, CaseInput(case_id=case_id, paying_parent_id=planted, receiving_parent_id="rp-1",
                                    children=[ChildFacts("c-1", "2016-05-01")], publish_search_attributes=False),
        id=f"case-{case_id}", task_queue=f"nobody-{case_id}")
    workflow_page = f"{ui['ui']}/namespaces/default/workflows/{handle.id}/{handle.result_run_id}/history"
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            context = await browser.new_context()
            # The UI's codec settings, as an operator sets them once: this endpoint, with the
            # sign-in cookie sent along ("Include cross-origin credentials").
            await context.add_init_script(
                f"if (location.origin === {ui['ui']!r}) {{"
                f"localStorage.setItem('endpoint', JSON.stringify({ui['codec_url']!r}));"
                "localStorage.setItem('includeCredentials', 'true');"
                "localStorage.setItem('overrideRemoteCodecConfiguration', 'true'); }")
            page = await context.new_page()
            await page.goto(f"{ui['codec_url']}/login")
            await page.fill("input[name=token]", TOKEN)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{ui['ui']}/**")

            await page.goto(workflow_page)
            decoded = await _until(lambda: _contains(page, planted), 90, "the decoded input shows the planted party")
            assert decoded

            ui["codec"].terminate()
            ui["codec"].wait(timeout=30)
            await page.goto(workflow_page)
            await _until(lambda: _shows_ciphertext(page), 90, "the page shows the payload still encrypted")
            assert planted not in await _page_text(page)
            await browser.close()
    finally:
        await handle.terminate("test finished")


async def _contains(page, text: str) -> bool:
    return text in await _page_text(page)


async def _shows_ciphertext(page) -> bool:
    text = await _page_text(page)
    return any(marker in text for marker in ENCRYPTED_MARKERS)

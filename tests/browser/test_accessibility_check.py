"""The accessibility check the console's browser tests run on every page finds what it should: a
page with an unlabelled field and an image without a text alternative fails it, and the same page
put right passes."""

from __future__ import annotations

import pytest

from services.console.assets import axe_core_script
from tests.browser.pages import blocking_violations

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAGE = """<!DOCTYPE html><html lang="en"><head><title>A form</title></head><body><main>
<h1>Add a note</h1><form method="post">{field}<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" {alt}>
<button type="submit">Add note</button></form></main></body></html>"""


async def test_an_unlabelled_field_and_an_image_without_alt_text_fail_and_pass_once_fixed(page) -> None:
    axe = axe_core_script().read_text()
    await page.set_content(PAGE.format(field='<textarea name="text"></textarea>', alt=""))
    found = {violation["rule"] for violation in await blocking_violations(page, axe)}
    assert {"label", "image-alt"} <= found, found

    await page.set_content(PAGE.format(field='<label for="text">Note</label><textarea id="text" name="text"></textarea>',
                                       alt='alt=""'))
    assert await blocking_violations(page, axe) == []

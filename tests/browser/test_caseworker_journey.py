"""A caseworker's afternoon in the console, in the OS's headless Chromium against the whole
service started as `make run` starts it (tests/browser/conftest.py):

signs in; opens the queue; opens a safeguarded case and sees the protected fields withheld;
records a note (after first sending an empty one, which the error summary refuses); reviews the
change waiting on the case; and sees the liability the change led to on the case page.

Every page is screenshotted to .data/test-output/console/ and checked with axe-core for WCAG 2.2
AA: no serious or critical violation on any of them.

The case and its waiting change are set up through the case API, with a token of the test's own,
as an online application and a parent's report would arrive."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import date
from typing import Any

import pytest

from cms_proto.case.v1 import case_pb2, case_pb2_grpc
from tests.browser.conftest import ConsoleStack
from tests.browser.pages import PageCheck
from tests.helpers.auth import caller_channel

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(900)]

CASEWORKER = "cw-browser-1"
# The protected details the receiving parent gave: never on a page without the audited reason.
SAFE_ADDRESS = "14 Refuge Lane, Hidden Town"
SAFE_PHONE = "07700 900123"
# More than 25% above any income the demo's HMRC gives (£8k-£60k a year), so the change counts
# (a smaller one waits for the annual review), and under the £3,000 a week the calculation takes.
NEW_WEEKLY_INCOME_PENCE = 250_000


def pounds(pence: int) -> str:
    return f"£{pence / 100:,.2f}"


async def _eventually(check, timeout: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what} within {timeout}s")


async def _safeguarded_case_with_a_waiting_change(case_api: str) -> tuple[str, int, int]:
    """A domestic-abuse application, active, with a disputed income report waiting for a
    caseworker: (case id, change number, weekly liability before the change)."""
    key = f"browser-{uuid.uuid4().hex[:8]}"
    async with caller_channel(case_api) as channel:
        stub = case_pb2_grpc.CaseServiceStub(channel)
        created = await stub.CreateApplication(case_pb2.CreateApplicationRequest(
            idempotency_key=key, application_date=date.today().isoformat(), requested_by=f"rp-{key}",
            receiving_parent=case_pb2.Party(party_id=f"rp-{key}", full_name="Robin Receiving",
                                            address=SAFE_ADDRESS, phone=SAFE_PHONE),
            paying_parent=case_pb2.Party(party_id=f"pp-{key}", full_name="Pat Paying",
                                         address="3 Open Road, Elsewhere", employer="Example Works Ltd"),
            children=[case_pb2.Child(child_id="c-1", date_of_birth="2016-05-01")],
            domestic_abuse=True), timeout=30)
        case_id = created.case_id

        async def active() -> case_pb2.Case | None:
            case = await stub.GetCase(case_pb2.GetCaseRequest(case_id=case_id, staff_id="cw-test-setup",
                                                              reason="browser test set-up"), timeout=10)
            return case if case.stage == "Active" and case.liability.weekly_liability_pence else None
        case = await _eventually(active, 180, f"case {case_id} is active with a liability")
        assert case.safeguarded
        report = await stub.ReportChange(case_pb2.ReportChangeRequest(
            case_id=case_id, idempotency_key=f"{key}-income", kind="paying_parent_income",
            effective_date=case.liability.effective_date or date.today().isoformat(), reported_by="paying_parent",
            details_json=json.dumps({"weekly_income_pence": NEW_WEEKLY_INCOME_PENCE}), evidence_disputed=True),
            timeout=30)
        assert report.needs_caseworker, "a disputed report waits for a caseworker"
        return case_id, report.change_no, case.liability.weekly_liability_pence


async def _liability_after_review(case_api: str, case_id: str, before: int) -> int:
    async with caller_channel(case_api) as channel:
        stub = case_pb2_grpc.CaseServiceStub(channel)

        async def changed() -> int:
            case = await stub.GetCase(case_pb2.GetCaseRequest(case_id=case_id, staff_id="cw-test-setup",
                                                              reason="browser test check"), timeout=10)
            return case.liability.weekly_liability_pence if case.liability.weekly_liability_pence != before else 0
        return await _eventually(changed, 120, "the reviewed change recalculates the liability")


async def test_a_caseworker_signs_in_works_the_queue_and_reviews_a_change(
        console_stack: ConsoleStack, page, page_check: PageCheck) -> None:
    console = console_stack.console
    case_id, change_no, liability_before = await _safeguarded_case_with_a_waiting_change(console_stack.case_api)

    # Without a session, any page sends the caseworker to sign in.
    await page.goto(f"{console}/cases/{case_id}")
    assert "/cases/" not in page.url, "a page without a session must go to sign-in"
    await page_check.look(page, "sign in")
    await page.fill("input[name=staff_id]", CASEWORKER)
    role = page.locator("[name=role]")
    if await role.count():
        if await role.first.evaluate("element => element.tagName") == "SELECT":
            await role.first.select_option("caseworker")
        else:
            await page.check("input[name=role][value=caseworker]")
    await _submit(page, "form:has(input[name=staff_id])")

    # The queue: the case is there, because its change waits for a caseworker.
    await page.goto(f"{console}/")
    await _eventually(lambda: _reload_until(page, f'a[href$="/cases/{case_id}"]'), 60,
                      "the queue lists the case whose change waits for review")
    await page_check.look(page, "queue")
    assert SAFE_ADDRESS not in await page.content()

    # The case page: the protected details withheld, nowhere in the page's HTML at all.
    await page.click(f'a[href$="/cases/{case_id}"] >> nth=0')
    await page.wait_for_load_state()
    assert page.url.rstrip("/").endswith(f"/cases/{case_id}")
    html = await page.content()
    assert re.search(r"\bwithheld\b", await page.inner_text("main"), re.IGNORECASE), \
        "the protected fields show as withheld"
    assert SAFE_ADDRESS not in html and SAFE_PHONE not in html, "a protected detail reached the page"
    await page_check.look(page, "case safeguarded")

    # A note: an empty one is refused with the GOV.UK error summary and nothing recorded.
    note_form = "form:has(textarea[name=text])"
    await _open_form(page, f"/cases/{case_id}/note", note_form)
    await page_check.look(page, "add note")
    await _submit(page, note_form)
    summary = page.locator(".govuk-error-summary")
    await summary.wait_for()
    assert await summary.is_visible()
    assert await page.locator(".govuk-error-message").count() >= 1
    await page_check.look(page, "note refused empty")
    note = f"Called the paying parent about the disputed payslips ({uuid.uuid4().hex[:6]})."
    await page.fill("textarea[name=text]", note)
    await _submit(page, note_form)
    await page.goto(f"{console}/cases/{case_id}")
    await _eventually(lambda: _reload_until_text(page, note), 60, "the note shows on the case page")
    await page_check.look(page, "case with note")

    # The waiting change: reviewed and applied, with a reason.
    await _open_review_form(page, console, case_id, change_no)
    await page_check.look(page, "review change")
    await page.check("input[name=outcome][value=apply]")
    await page.fill("[name=reason]", "Payslips checked with the employer")
    await _submit(page, "form:has(input[name=outcome])")
    await page_check.look(page, "review outcome")

    # The case page shows the liability the change led to.
    liability_after = await _liability_after_review(console_stack.case_api, case_id, liability_before)
    await page.goto(f"{console}/cases/{case_id}")
    await _eventually(lambda: _reload_until_text(page, pounds(liability_after)), 60,
                      f"the case page shows the new weekly liability {pounds(liability_after)}")
    html = await page.content()
    assert SAFE_ADDRESS not in html and SAFE_PHONE not in html
    await page_check.look(page, "case after review")

    page_check.assert_accessible()


async def _submit(page, form: str) -> None:
    async with page.expect_navigation():
        await page.locator(f"{form} button[type=submit], {form} input[type=submit]").first.click()


async def _reload_until(page, selector: str) -> bool:
    if await page.locator(selector).count():
        return True
    await page.reload()
    return False


async def _reload_until_text(page, text: str) -> bool:
    if text in await page.inner_text("main"):
        return True
    await page.reload()
    return False


async def _open_form(page, path: str, form: str) -> None:
    """The form on the page, or on the page the case page links to at `path`."""
    if await page.locator(form).count():
        return
    await page.click(f'a[href$="{path}"] >> nth=0')
    await page.wait_for_load_state()
    assert await page.locator(form).count(), f"no form {form} at {page.url}"


async def _open_review_form(page, console: str, case_id: str, change_no: int) -> None:
    """Follows the case page's link to the change's review form (a link whose address names the
    change), or the waiting-changes queue's."""
    link = page.locator(f'a[href*="/cases/{case_id}/changes/{change_no}"]')
    if not await link.count():
        await page.goto(f"{console}/")
        link = page.locator(f'a[href*="/cases/{case_id}/changes/{change_no}"]')
    assert await link.count(), "no link to review the waiting change"
    await link.first.click()
    await page.wait_for_load_state()
    assert re.search(rf"/cases/{case_id}/changes/{change_no}", page.url)

"""The console's HTTP behaviour, in-process (Starlette's TestClient) against a fake of the
services: sign-in and its redirect, sessions and CSRF, the 403 page, the GOV.UK error summary with
nothing applied, idempotent actions, and the safeguarded case page."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from starlette.testclient import TestClient

from cms.auth import new_private_key_pem
from cms.config import load_settings
from cms_proto.case.v1 import case_pb2
from services.console.app import create_app
from services.console.config import ConsoleSettings, load_console_settings
from services.console.sessions import SESSION_COOKIE
from tests.console.fakes import FakeBackend, FakeRpcError


@pytest.fixture
def settings(tmp_path: Path) -> ConsoleSettings:
    key = tmp_path / "signing-key.pem"
    key.write_text(new_private_key_pem())
    return replace(load_console_settings(replace(load_settings(), dev_issuer_key=key)),
                   node_modules=tmp_path / "no-assets", temporal_ui_url="http://temporal-ui")


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(cases=[case_pb2.CaseSummary(case_id="C1", stage="Active", needs_caseworker=True,
                                                   assigned_team="casework", caseworker_reason="Manual review: income")],
                       changes=[case_pb2.ChangeItem(case_id="C1", change_no=2, kind="shared_care_nights",
                                                    status="awaiting_review", needs_caseworker=True,
                                                    review_reason="evidence_disputed", age_days=3)])


@pytest.fixture
def client(settings: ConsoleSettings, backend: FakeBackend) -> TestClient:
    return TestClient(create_app(settings, backend), base_url="http://console.test")


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def key_of(page: str) -> str:
    found = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert found, "the form has no idempotency key"
    return found.group(1)


def sign_in(client: TestClient, role: str = "caseworker", staff_id: str = "cw-17", target: str = "/") -> str:
    page = client.get("/sign-in")
    reply = client.post(f"/sign-in?next={target}", data={"csrf_token": csrf_of(page.text), "staff_id": staff_id,
                                                         "role": role}, follow_redirects=False)
    assert reply.status_code == 303, reply.text
    return csrf_of(client.get("/queues/cases").text)


def error_summary(page: str) -> list[tuple[str, str]]:
    """(link target, text) of each item of the GOV.UK error summary."""
    summary = re.search(r'<div class="govuk-error-summary".*?</ul>', page, re.S)
    assert summary, "no error summary"
    return re.findall(r'<li>(?:<a href="#([^"]*)">)?([^<]*)', summary.group(0))


# --- sign-in and sessions ------------------------------------------------------------------------

def test_a_page_without_a_session_goes_to_sign_in_and_back_after(client: TestClient) -> None:
    reply = client.get("/cases/C1?tab=all", follow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/sign-in?next=%2Fcases%2FC1%3Ftab%3Dall"
    page = client.get(reply.headers["location"])
    signed = client.post("/sign-in?next=%2Fcases%2FC1", data={"csrf_token": csrf_of(page.text), "staff_id": "cw-17",
                                                             "role": "caseworker"}, follow_redirects=False)
    assert signed.headers["location"] == "/cases/C1"
    cookie = signed.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here; see the https test
    assert client.get("/cases/C1").status_code == 200


def test_session_cookie_is_secure_over_https(settings: ConsoleSettings, backend: FakeBackend) -> None:
    client = TestClient(create_app(settings, backend), base_url="https://console.test")
    page = client.get("/sign-in")
    signed = client.post("/sign-in", data={"csrf_token": csrf_of(page.text), "staff_id": "cw-17", "role": "caseworker"},
                         follow_redirects=False)
    assert "Secure" in signed.headers["set-cookie"]


def test_sign_in_goes_back_only_to_this_console(client: TestClient) -> None:
    page = client.get("/sign-in")
    signed = client.post("/sign-in?next=//evil.example/x", data={"csrf_token": csrf_of(page.text), "staff_id": "cw-17",
                                                                "role": "caseworker"}, follow_redirects=False)
    assert signed.headers["location"] == "/"


def test_sign_in_without_its_csrf_cookie_is_refused(client: TestClient) -> None:
    token = csrf_of(client.get("/sign-in").text)
    client.cookies.clear()
    reply = client.post("/sign-in", data={"csrf_token": token, "staff_id": "cw-17", "role": "caseworker"},
                        follow_redirects=False)
    assert reply.status_code == 403 and SESSION_COOKIE not in reply.headers.get("set-cookie", "")


def test_sign_in_errors_use_the_error_summary(client: TestClient) -> None:
    page = client.get("/sign-in")
    reply = client.post("/sign-in", data={"csrf_token": csrf_of(page.text), "staff_id": "no spaces", "role": "parent"})
    assert reply.status_code == 400
    assert error_summary(reply.text) == [
        ("staff_id", "Staff ID must be letters, numbers, hyphens or underscores, up to 64"), ("role", "Select your role")]
    assert reply.text.count("govuk-form-group--error") == 2
    assert "<title>Error: Sign in" in reply.text


def test_sign_out_needs_the_csrf_token_and_ends_the_session(client: TestClient) -> None:
    csrf = sign_in(client)
    assert client.post("/sign-out", data={"csrf_token": "wrong"}).status_code == 403
    assert client.get("/queues/cases", follow_redirects=False).status_code == 200
    reply = client.post("/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert reply.headers["location"] == "/sign-in"
    assert client.get("/queues/cases", follow_redirects=False).status_code == 303


def test_a_token_the_service_no_longer_accepts_signs_the_person_out(client: TestClient, backend: FakeBackend) -> None:
    sign_in(client)

    async def refused(token: str) -> list[case_pb2.CaseSummary]:
        raise FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "expired token")

    backend.cases_needing_caseworker = refused  # type: ignore[method-assign]
    reply = client.get("/queues/cases", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"].startswith("/sign-in")


def test_pages_are_not_cached_framed_or_scripted(client: TestClient) -> None:
    reply = client.get("/sign-in")
    assert reply.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
    assert "script-src 'none'" in reply.headers["content-security-policy"]


# --- queues and the case page ----------------------------------------------------------------------

def test_the_queue_says_why_each_case_waits(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/queues/cases").text
    assert "Casework (1)" in page and "Manual review: income" in page and 'href="/cases/C1"' in page
    assert "Temporal UI" not in page  # for the operations role only
    changes = client.get("/queues/changes").text
    assert "Waiting for a caseworker&#39;s review: the evidence is disputed" in changes
    assert 'href="/cases/C1/changes/2/review"' in changes


def test_a_safeguarded_case_page_withholds_protected_details_without_an_audited_read(
        client: TestClient, backend: FakeBackend) -> None:
    sign_in(client)
    page = client.get("/cases/C1").text
    assert "1 Safe Street" not in page and "07700900001" not in page
    assert "Withheld" in page and "Safeguarded" in page
    assert backend.case_reads == [("cw-17", "case page", True)]
    assert "Not shown, because a service did not give it: risk band" in page  # risk is down in the fake
    assert "£123.45" in page and "31 August 2031" in page


def test_protected_details_are_shown_only_with_a_reason_which_goes_with_the_read(
        client: TestClient, backend: FakeBackend) -> None:
    csrf = sign_in(client)
    missing = client.post("/cases/C1/protected", data={"csrf_token": csrf, "reason": "  "})
    assert missing.status_code == 400
    assert error_summary(missing.text) == [("reason", "Enter why you need to see the protected details")]
    assert "1 Safe Street" not in missing.text
    forged = client.post("/cases/C1/protected", data={"csrf_token": "forged", "reason": "curious"})
    assert forged.status_code == 403 and "1 Safe Street" not in forged.text
    shown = client.post("/cases/C1/protected", data={"csrf_token": csrf, "reason": "Phone call from the receiving parent"})
    assert shown.status_code == 200 and "1 Safe Street" in shown.text
    assert backend.case_reads[-1] == ("cw-17", "Phone call from the receiving parent", False)
    assert all(withheld for _, _, withheld in backend.case_reads[:-1])


def test_an_unknown_case_is_a_404_page(client: TestClient) -> None:
    sign_in(client)
    reply = client.get("/cases/NOPE")
    assert reply.status_code == 404 and "Page not found" in reply.text


# --- actions -----------------------------------------------------------------------------------------

def test_a_note_is_sent_once_however_often_the_form_is_submitted(client: TestClient, backend: FakeBackend) -> None:
    csrf = sign_in(client)
    form = client.get("/cases/C1/note").text
    data = {"csrf_token": csrf, "idempotency_key": key_of(form), "text": "Called the paying parent"}
    first = client.post("/cases/C1/note", data=data)
    second = client.post("/cases/C1/note", data=data)
    assert first.status_code == second.status_code == 200
    assert "Add note done" in first.text and "Add note done" in second.text  # the workflow's outcome
    assert backend.sent == [("add_note", {"text": "Called the paying parent"})]


def test_a_form_with_a_wrong_csrf_token_is_refused_and_nothing_sent(client: TestClient, backend: FakeBackend) -> None:
    sign_in(client)
    form = client.get("/cases/C1/hold").text
    reply = client.post("/cases/C1/hold", data={"csrf_token": "not-the-session's", "idempotency_key": key_of(form),
                                                "reason": "Waiting for evidence"})
    assert reply.status_code == 403 and "This form cannot be sent" in reply.text
    assert backend.sent == []


def test_an_empty_form_re_renders_with_the_error_summary_and_nothing_is_applied(
        client: TestClient, backend: FakeBackend) -> None:
    csrf = sign_in(client)
    form = client.get("/cases/C1/close").text
    reply = client.post("/cases/C1/close", data={"csrf_token": csrf, "idempotency_key": key_of(form),
                                                 "event_date-day": "31", "event_date-month": "2", "event_date-year": "2026",
                                                 "note": "kept"})
    assert reply.status_code == 400
    assert error_summary(reply.text) == [("reason", "Select why the case is closing"),
                                         ("event_date-day", "When did it happen: must be a real date, for example 27 3 2026")]
    assert 'id="event_date-error"' in reply.text and "kept</textarea>" in reply.text  # answers kept
    assert key_of(reply.text) == key_of(form)  # the same request when it is sent again
    assert backend.sent == []


def test_closing_a_case_sends_the_reason_and_event_date(client: TestClient, backend: FakeBackend) -> None:
    csrf = sign_in(client)
    form = client.get("/cases/C1/close").text
    reply = client.post("/cases/C1/close", data={"csrf_token": csrf, "idempotency_key": key_of(form),
                                                 "reason": "paying_parent_died", "event_date-day": "3",
                                                 "event_date-month": "6", "event_date-year": "2026"})
    assert reply.status_code == 200
    assert backend.sent == [("close_case", {"reason": "paying_parent_died", "event_date": "2026-06-03"})]


def test_the_workflows_refusal_is_shown_on_the_form(client: TestClient, backend: FakeBackend) -> None:
    csrf = sign_in(client)
    form = client.get("/cases/C1/release").text
    backend.refuse = FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "the case is not on hold")
    reply = client.post("/cases/C1/release", data={"csrf_token": csrf, "idempotency_key": key_of(form)})
    assert reply.status_code == 400 and error_summary(reply.text) == [("", "The case is not on hold")]
    backend.refuse = FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad", [("payload_json.reason", "too vague")])
    form = client.get("/cases/C1/hold").text
    reply = client.post("/cases/C1/hold", data={"csrf_token": csrf, "idempotency_key": key_of(form), "reason": "x"})
    assert error_summary(reply.text) == [("reason", "Too vague")]
    assert backend.sent == []


def test_an_action_the_role_may_not_take_is_a_403_page(client: TestClient, backend: FakeBackend) -> None:
    csrf = sign_in(client, role="operations", staff_id="ops-1")
    assert client.get("/cases/C1/note").status_code == 403
    reply = client.post("/cases/C1/note", data={"csrf_token": csrf, "idempotency_key": "k", "text": "hello"})
    assert reply.status_code == 403 and "You cannot add a note" in reply.text
    assert backend.sent == []
    case_page = client.get("/cases/C1")
    assert case_page.status_code == 403
    assert 'href="http://temporal-ui/namespaces/default/workflows/case-C1"' in case_page.text
    assert backend.case_reads == []
    queue = client.get("/queues/cases").text
    assert "http://temporal-ui/namespaces/default/workflows/case-C1" in queue and 'href="/cases/C1"' not in queue


def test_a_refusal_by_the_service_is_a_403_page_not_a_stack_trace(client: TestClient, backend: FakeBackend) -> None:
    csrf = sign_in(client)
    form = client.get("/cases/C1/note").text
    backend.refuse = FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "role caseworker may not call SignalCase")
    reply = client.post("/cases/C1/note", data={"csrf_token": csrf, "idempotency_key": key_of(form), "text": "x"})
    assert reply.status_code == 403 and "Traceback" not in reply.text


# --- reviewing a change --------------------------------------------------------------------------------

def test_a_review_corrects_details_through_fields_not_json(client: TestClient, backend: FakeBackend) -> None:
    csrf = sign_in(client)
    form = client.get("/cases/C1/changes/2/review").text
    assert 'name="corrected_nights"' in form and 'name="corrected_child_id"' in form
    base = {"csrf_token": csrf, "idempotency_key": key_of(form)}
    partial = client.post("/cases/C1/changes/2/review", data={**base, "outcome": "apply", "reason": "Verified",
                                                              "corrected_nights": "104"})
    assert partial.status_code == 400
    assert error_summary(partial.text) == [("corrected_child_id", "Is required for shared_care_nights")]
    wrong = client.post("/cases/C1/changes/2/review", data={**base, "outcome": "", "reason": "",
                                                            "corrected_nights": "many"})
    assert [anchor for anchor, _ in error_summary(wrong.text)] == ["outcome", "reason", "corrected_nights"]
    assert backend.sent == []
    done = client.post("/cases/C1/changes/2/review", data={**base, "outcome": "apply", "reason": "Verified with both parents",
                                                           "corrected_nights": "104", "corrected_child_id": "child-1"})
    assert done.status_code == 200 and "Applied: Verified with both parents" in done.text
    assert backend.sent == [("review", (2, "apply", "Verified with both parents", {"nights": 104, "child_id": "child-1"}))]


def test_a_rejected_change_takes_no_corrected_details(client: TestClient, backend: FakeBackend) -> None:
    csrf = sign_in(client)
    form = client.get("/cases/C1/changes/2/review").text
    reply = client.post("/cases/C1/changes/2/review", data={"csrf_token": csrf, "idempotency_key": key_of(form),
                                                            "outcome": "reject", "reason": "No evidence",
                                                            "corrected_nights": "10"})
    assert error_summary(reply.text) == [("corrected_nights", "Leave the corrected details empty when rejecting a change")]
    assert backend.sent == []


def test_assigning_a_suspense_payment_needs_a_case(client: TestClient, backend: FakeBackend) -> None:
    csrf = sign_in(client)
    form = client.get("/suspense/BANK-1/assign").text
    empty = client.post("/suspense/BANK-1/assign", data={"csrf_token": csrf, "idempotency_key": key_of(form), "case_id": ""})
    assert error_summary(empty.text) == [("case_id", "Enter the case the payment belongs to")]
    backend.refuse = FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "case C2 is not on Collect & Pay")
    refused = client.post("/suspense/BANK-1/assign", data={"csrf_token": csrf, "idempotency_key": key_of(form),
                                                           "case_id": "C2"})
    assert error_summary(refused.text) == [("", "Case C2 is not on Collect &amp; Pay")]
    done = client.post("/suspense/BANK-1/assign", data={"csrf_token": csrf, "idempotency_key": key_of(form), "case_id": "C1"})
    assert "£50.00 assigned to case C1" in done.text
    assert backend.sent == [("assign", ("BANK-1", "C1"))]


def test_the_design_systems_stylesheet_and_fonts_are_served_from_the_npm_package(
        settings: ConsoleSettings, backend: FakeBackend, tmp_path: Path) -> None:
    modules = tmp_path / "node_modules"
    dist = modules / "govuk-frontend" / "dist" / "govuk"
    (dist / "assets" / "fonts").mkdir(parents=True)
    (modules / "govuk-frontend" / "package.json").write_text('{"version": "6.3.0"}')
    (dist / "govuk-frontend.min.css").write_text(".govuk-template{}")
    (dist / "assets" / "fonts" / "bold.woff2").write_bytes(b"font")
    client = TestClient(create_app(replace(settings, node_modules=modules), backend))
    page = client.get("/sign-in").text
    assert '<link rel="stylesheet" href="/govuk/govuk-frontend.min.css?v=6.3.0">' in page
    assert client.get("/govuk/govuk-frontend.min.css").text == ".govuk-template{}"
    assert client.get("/assets/fonts/bold.woff2").content == b"font"


def test_without_the_npm_package_pages_are_served_unstyled(client: TestClient) -> None:
    page = client.get("/sign-in")
    assert page.status_code == 200 and "stylesheet" not in page.text


def test_a_letters_pdf_is_shown_only_with_a_reason(client: TestClient, backend: FakeBackend) -> None:
    csrf = sign_in(client)
    case_page = client.get("/cases/C1").text
    assert 'href="/cases/C1/letters/n-1"' in case_page
    form = client.get("/cases/C1/letters/n-1")
    assert form.status_code == 200 and backend.letter_reads == []
    empty = client.post("/cases/C1/letters/n-1", data={"csrf_token": csrf, "reason": ""})
    assert error_summary(empty.text) == [("reason", "Enter why you need to see the letter")]
    assert client.post("/cases/C1/letters/n-1", data={"csrf_token": "x", "reason": "y"}).status_code == 403
    assert backend.letter_reads == []
    pdf = client.post("/cases/C1/letters/n-1", data={"csrf_token": csrf, "reason": "Parent says it never came"})
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert backend.letter_reads == [("n-1", "Parent says it never came")]
    other_case = client.post("/cases/C9/letters/n-1", data={"csrf_token": csrf, "reason": "checking"})
    assert other_case.status_code == 404

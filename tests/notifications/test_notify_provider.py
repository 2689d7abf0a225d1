"""The GOV.UK Notify provider against a local fake of Notify's API: letters as precompiled PDFs,
email and SMS through templates, no second send for a reference Notify already holds, receipts,
and each refusal mapped to the outbox outcome it must have."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from domain.notifications import ContactPreferences
from services.notifications import repository as repo
from services.notifications.compose import compose
from services.notifications.dispatcher import Dispatcher, DispatcherConfig, provider_from_environment
from services.notifications.letters import render_letter_pdf
from services.notifications.notify import NotifyProvider, NotifySettings
from services.notifications.providers import (
    FileSinkProvider,
    OutboundMessage,
    ProviderRejected,
    ProviderUnavailable,
)
from tests.notifications.fake_notify import API_KEY, WRONG_KEY, FakeNotify
from tests.notifications.support import PP_DETAILS, RP_DETAILS, variables_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

EMAIL_TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"
SMS_TEMPLATE = "8c1d7b6e-2a0b-4e5c-9d4e-6a3f2b1c0d9e"


def _provider(notify: FakeNotify, key: str = API_KEY) -> NotifyProvider:
    return NotifyProvider(NotifySettings(api_key=key, email_template_id=EMAIL_TEMPLATE, sms_template_id=SMS_TEMPLATE,
                                         base_url=notify.base_url, timeout_seconds=10))


def _letter() -> OutboundMessage:
    address = ("Alex Receiver", "14 Hidden Lane", "SF1 4HL")
    pdf = render_letter_pdf(address, "Payment received", "We received £364.52.", "C1", datetime.now(UTC).date())
    return OutboundMessage(str(uuid.uuid4()), "letter", "Payment received", "We received £364.52.", address, pdf)


def _email() -> OutboundMessage:
    return OutboundMessage(str(uuid.uuid4()), "email", "Payment received", "We received £364.52.",
                           ("alex.receiver@example.org",))


def _sms() -> OutboundMessage:
    return OutboundMessage(str(uuid.uuid4()), "sms", "Payment received", "CMS: £364.52 received.", ("07700900111",))


async def test_letters_go_as_precompiled_pdfs_and_email_and_sms_through_templates() -> None:
    with FakeNotify() as notify:
        provider = _provider(notify)
        letter, email, sms = _letter(), _email(), _sms()
        for message in (letter, email, sms):
            result = await provider.deliver(message)
            assert (result.status, result.already_delivered) == ("sent", False)
        sends = {send["reference"]: send for send in notify.state.sends}
        assert base64.b64decode(sends[letter.notification_id]["content"]) == letter.letter_pdf
        assert sends[letter.notification_id]["kind"] == "letter"
        assert sends[email.notification_id]["template_id"] == EMAIL_TEMPLATE
        assert sends[email.notification_id]["personalisation"] == {"subject": email.subject, "body": email.body}
        assert sends[email.notification_id]["email_address"] == "alex.receiver@example.org"
        assert sends[sms.notification_id]["template_id"] == SMS_TEMPLATE
        assert sends[sms.notification_id]["phone_number"] == "07700900111"


async def test_a_message_notify_already_holds_is_not_sent_again() -> None:
    """Notify does not de-duplicate: the provider asks for the reference before sending."""
    with FakeNotify() as notify:
        provider = _provider(notify)
        letter = _letter()
        first = await provider.deliver(letter)
        again = await provider.deliver(letter)
        assert (first.already_delivered, again.already_delivered) == (False, True)
        assert [send["reference"] for send in notify.state.sends] == [letter.notification_id]


async def test_a_bad_api_key_is_retried_and_named() -> None:
    with FakeNotify() as notify:
        with pytest.raises(ProviderUnavailable, match="API key"):
            await _provider(notify, WRONG_KEY).deliver(_email())
        assert notify.state.sends == []


async def test_a_validation_error_fails_the_message_for_good() -> None:
    with FakeNotify() as notify:
        notify.state.mode = "validation"
        with pytest.raises(ProviderRejected, match="ValidationError: phone_number Not a UK mobile number"):
            await _provider(notify).deliver(_sms())


async def test_a_rate_limit_is_retried() -> None:
    with FakeNotify() as notify:
        notify.state.mode = "rate-limit"
        with pytest.raises(ProviderUnavailable, match="rate limit"):
            await _provider(notify).deliver(_letter())


async def test_no_answer_is_retried() -> None:
    with FakeNotify() as notify:
        base_url = notify.base_url
    provider = NotifyProvider(NotifySettings(API_KEY, EMAIL_TEMPLATE, SMS_TEMPLATE, base_url=base_url, timeout_seconds=2))
    with pytest.raises(ProviderUnavailable, match="did not answer"):
        await provider.deliver(_email())


async def test_receipts_map_notify_statuses() -> None:
    with FakeNotify() as notify:
        provider = _provider(notify)
        message = _email()
        await provider.deliver(message)
        assert (await provider.receipt(message.notification_id)).delivered is None
        for status, delivered in (("delivered", True), ("permanent-failure", False), ("received", True),
                                  ("returned-letter", False), ("sending", None)):
            for held in notify.state.notifications.values():
                held["status"] = status
            assert (await provider.receipt(message.notification_id)).delivered is delivered, status


async def test_the_api_key_chooses_notify_and_the_file_sink_stays_the_default(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("CMS_NOTIFY_API_KEY", raising=False)
    assert isinstance(provider_from_environment(tmp_path), FileSinkProvider)
    monkeypatch.setenv("CMS_NOTIFY_API_KEY", API_KEY)
    assert isinstance(provider_from_environment(tmp_path), NotifyProvider)
    monkeypatch.setenv("CMS_NOTIFY_API_KEY", "not-a-key")
    with pytest.raises(SystemExit, match="not a Notify API key"):
        provider_from_environment(tmp_path)


# --- through the outbox ------------------------------------------------------------------------


async def _queue(pool: AsyncConnectionPool, channel: str, template: str) -> str:
    case_id = f"N-{uuid.uuid4().hex[:8]}"
    async with pool.connection() as conn, conn.transaction():
        await repo.upsert_party(conn, case_id, "rp", "receiving_parent", RP_DETAILS, ContactPreferences())
        await repo.upsert_party(conn, case_id, "pp", "paying_parent", PP_DETAILS, ContactPreferences())
        view = await repo.load_case_view(conn, case_id)
        composed = compose(f"k-{case_id}", case_id, "rp", template, channel, variables_for(template, case_id),
                           view, datetime.now(UTC))
        row, _ = await repo.enqueue(conn, composed.prepared)
    return row.notification_id


async def _row(pool: AsyncConnectionPool, notification_id: str) -> dict:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT status, attempts, failure_reason FROM notifications.outbox "
                          "WHERE notification_id = %s", (uuid.UUID(notification_id),))
        row = await cur.fetchone()
    assert row is not None
    return row


async def _dispatch_only(pool: AsyncConnectionPool, provider: NotifyProvider, notification_id: str) -> dict:
    """One dispatcher pass; other tests' rows may be queued too, so only ours is looked at."""
    await Dispatcher(pool, provider, DispatcherConfig(base_backoff_seconds=60), seed=1).run_once()
    return await _row(pool, notification_id)


@pytest.mark.parametrize("mode,key,status,reason", [
    ("ok", API_KEY, "sent", ""),
    ("validation", API_KEY, "failed", "rejected: Notify refused the message"),
    ("rate-limit", API_KEY, "queued", "Notify rate limit"),
    ("ok", WRONG_KEY, "queued", "Notify refused our API key"),
])
async def test_each_notify_answer_gives_its_outbox_outcome(notifications_pool, mode, key, status, reason) -> None:
    notification_id = await _queue(notifications_pool, "letter", "payment_received")
    with FakeNotify() as notify:
        notify.state.mode = mode
        row = await _dispatch_only(notifications_pool, _provider(notify, key), notification_id)
    assert row["status"] == status
    assert reason in row["failure_reason"]


async def test_a_receipt_moves_a_sent_message_to_delivered(notifications_pool) -> None:
    notification_id = await _queue(notifications_pool, "email", "payment_received")
    with FakeNotify() as notify:
        provider = _provider(notify)
        dispatcher = Dispatcher(notifications_pool, provider, DispatcherConfig(), seed=1)
        await dispatcher.run_once()
        assert (await _row(notifications_pool, notification_id))["status"] == "sent"
        for held in notify.state.notifications.values():
            held["status"] = "delivered"
        await dispatcher.poll_receipts(limit=10_000)
        assert (await _row(notifications_pool, notification_id))["status"] == "delivered"

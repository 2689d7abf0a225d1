"""Outbox delivery: exactly once per idempotency key under duplicate requests, concurrent and
restarted dispatchers, provider outages (delayed, never lost) and permanent failures."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from cms.config import REPO_ROOT
from cms_proto.notifications.v1 import notifications_pb2 as pb
from domain.notifications import ContactPreferences
from services.notifications import repository as repo
from services.notifications.compose import compose
from services.notifications.dispatcher import Dispatcher, DispatcherConfig
from services.notifications.providers import DownProvider, FileSinkProvider, FlakyProvider
from tests.notifications.support import PP_DETAILS, RP_DETAILS, pdf_text, set_up_case, variables_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEMPLATES_BY_CHANNEL = [("letter", "calculation_decision"), ("email", "payment_schedule"), ("sms", "payment_missed")]


async def _queue(pool: AsyncConnectionPool, count: int, parties: dict | None = None) -> list[str]:
    """Queues `count` notifications across channels on fresh cases; returns their ids."""
    ids = []
    async with pool.connection() as conn, conn.transaction():
        for index in range(count):
            case_id = f"C-{uuid.uuid4().hex[:8]}"
            for party_id, details in (parties or {"rp": RP_DETAILS, "pp": PP_DETAILS}).items():
                await repo.upsert_party(conn, case_id, party_id, "", details, ContactPreferences())
            channel, template = TEMPLATES_BY_CHANNEL[index % 3]
            view = await repo.load_case_view(conn, case_id)
            composed = compose(f"k-{case_id}", case_id, "pp", template, channel, variables_for(template, case_id),
                               view, datetime.now(UTC))
            row, _ = await repo.enqueue(conn, composed.prepared)
            ids.append(row.notification_id)
    return ids


async def _statuses(pool: AsyncConnectionPool) -> dict[str, dict]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT notification_id::text AS id, status, attempts, failure_reason FROM notifications.outbox")
        return {r["id"]: r for r in await cur.fetchall()}


def _deliveries(folder: Path) -> Counter:
    log = folder / "deliveries.log"
    lines = log.read_text().split() if log.exists() else []
    return Counter(zip(lines[::2], lines[1::2]))


async def _drain(dispatcher: Dispatcher, pool: AsyncConnectionPool) -> None:
    for _ in range(1000):
        if all(r["status"] != "queued" for r in (await _statuses(pool)).values()):
            return
        if await dispatcher.run_once() == 0:
            await asyncio.sleep(0.01)
    raise AssertionError("outbox did not drain")


@pytest.fixture
async def pool(isolated_notifications_db: str):
    async with AsyncConnectionPool(isolated_notifications_db, min_size=1, max_size=6, open=False) as opened:
        await opened.wait()
        yield opened


async def test_each_message_is_delivered_once_as_a_file_per_channel(pool, tmp_path: Path) -> None:
    ids = await _queue(pool, 6)
    sink = FileSinkProvider(tmp_path)
    await _drain(Dispatcher(pool, sink), pool)
    assert {r["status"] for r in (await _statuses(pool)).values()} == {"delivered"}
    assert _deliveries(tmp_path) == Counter({(i, "new"): 1 for i in ids})
    letter = (tmp_path / f"{ids[0]}.pdf").read_bytes()
    assert letter.startswith(b"%PDF-")
    text = pdf_text(letter)
    assert "Sam Payer" in text and "PV9 9OR" in text and "a week" in text and "\xa3" in text
    assert "Subject: Your payment schedule" in (tmp_path / f"{ids[1]}.eml").read_text()
    assert (tmp_path / f"{ids[2]}.sms.txt").read_text().startswith(f"To: {PP_DETAILS['phone']}")
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.execute("SELECT actor, fields_read FROM notifications.audit_log ORDER BY audit_id")
        audit = await cur.fetchall()
    assert audit[0] == ("system:notifications-dispatcher", ["address", "postcode"])
    assert len(audit) == 6


async def test_duplicate_sends_queue_one_message(notifications_stub) -> None:
    case_id = f"C-{uuid.uuid4().hex[:8]}"
    await set_up_case(notifications_stub, case_id, safeguarded=False)
    request = pb.SendRequest(idempotency_key=f"wf-{case_id}:closed", case_id=case_id, recipient_party_id="rp",
                             template="case_closed", variables_json=json.dumps(variables_for("case_closed", case_id)))
    replies = await asyncio.gather(*(notifications_stub.Send(request) for _ in range(12)))
    assert len({r.notification_id for r in replies}) == 1
    listed = await notifications_stub.ListForCase(pb.ListForCaseRequest(case_id=case_id))
    assert len(listed.notifications) == 1


async def test_concurrent_dispatchers_never_deliver_twice(pool, tmp_path: Path) -> None:
    ids = await _queue(pool, 30)
    small = DispatcherConfig(batch_size=4)
    first, second = (Dispatcher(pool, FileSinkProvider(tmp_path), small) for _ in range(2))
    await asyncio.gather(_drain(first, pool), _drain(second, pool))
    assert _deliveries(tmp_path) == Counter({(i, "new"): 1 for i in ids})


async def test_an_outage_delays_delivery_and_loses_nothing(pool, tmp_path: Path) -> None:
    ids = await _queue(pool, 3)
    flaky = FlakyProvider(FileSinkProvider(tmp_path), fail_first=5)
    dispatcher = Dispatcher(pool, flaky, DispatcherConfig(base_backoff_seconds=0.001, max_backoff_seconds=0.01), seed=7)
    await _drain(dispatcher, pool)
    statuses = await _statuses(pool)
    assert {r["status"] for r in statuses.values()} == {"delivered"}
    assert max(r["attempts"] for r in statuses.values()) >= 2
    assert _deliveries(tmp_path) == Counter({(i, "new"): 1 for i in ids})


async def test_a_long_outage_ends_in_failed_with_the_reason(pool, tmp_path: Path) -> None:
    await _queue(pool, 2)
    dispatcher = Dispatcher(pool, DownProvider(), DispatcherConfig(max_attempts=3, base_backoff_seconds=0.001,
                                                                   max_backoff_seconds=0.001))
    await _drain(dispatcher, pool)
    for row in (await _statuses(pool)).values():
        assert (row["status"], row["attempts"]) == ("failed", 3)
        assert row["failure_reason"].startswith("gave up after 3 attempts; ProviderUnavailable")


async def test_a_missing_destination_fails_at_once(pool, tmp_path: Path) -> None:
    no_phone = {k: v for k, v in PP_DETAILS.items() if k != "phone"}
    async with pool.connection() as conn, conn.transaction():
        await repo.upsert_party(conn, "C-x", "pp", "", PP_DETAILS, ContactPreferences())
        view = await repo.load_case_view(conn, "C-x")
        composed = compose("k-x", "C-x", "pp", "payment_missed", "sms", variables_for("payment_missed", "C-x"),
                           view, datetime.now(UTC))
        await repo.enqueue(conn, composed.prepared)
        await repo.upsert_party(conn, "C-x", "pp", "", no_phone, ContactPreferences())  # number removed since
    await _drain(Dispatcher(pool, FileSinkProvider(tmp_path)), pool)
    [row] = (await _statuses(pool)).values()
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["failure_reason"] == "rejected: the recipient has no phone number"


def _start_dispatcher(database_url: str, sink: Path, pause: float) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "CMS_NOTIFY_SINK_DIR": str(sink),
           "CMS_SINK_PAUSE_AFTER_WRITE": str(pause), "CMS_DISPATCH_BATCH": "5", "CMS_DISPATCH_POLL": "0.05",
           "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "services.notifications.dispatcher"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


async def test_killing_the_dispatcher_mid_send_neither_loses_nor_duplicates(
        pool, isolated_notifications_db: str, tmp_path: Path) -> None:
    ids = await _queue(pool, 12)
    # The sink pauses (for a long time) after writing each file, before the dispatcher can record
    # it: killing the process then is a crash between "provider accepted" and "row updated".
    doomed = _start_dispatcher(isolated_notifications_db, tmp_path, pause=600)
    try:
        for _ in range(600):
            if _deliveries(tmp_path):
                break
            await asyncio.sleep(0.05)
        os.kill(doomed.pid, signal.SIGKILL)
    finally:
        doomed.wait(timeout=30)
    accepted_before_crash = {i for (i, _) in _deliveries(tmp_path)}
    assert accepted_before_crash
    statuses = await _statuses(pool)
    assert {statuses[i]["status"] for i in accepted_before_crash} == {"queued"}  # the crash window was hit

    survivor = _start_dispatcher(isolated_notifications_db, tmp_path, pause=0)
    try:
        for _ in range(1200):
            if all(r["status"] == "delivered" for r in (await _statuses(pool)).values()):
                break
            await asyncio.sleep(0.05)
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=30)
    assert {r["status"] for r in (await _statuses(pool)).values()} == {"delivered"}
    deliveries = _deliveries(tmp_path)
    assert Counter({k: v for k, v in deliveries.items() if k[1] == "new"}) == Counter({(i, "new"): 1 for i in ids})
    assert {i for (i, outcome) in deliveries if outcome == "duplicate"} == accepted_before_crash
    assert survivor.returncode == 0


class _AcceptingProvider:
    """Like a notify API: accepts now ('sent'), reports delivery later by a receipt."""

    async def deliver(self, message):
        from services.notifications.providers import DeliveryResult
        return DeliveryResult(status="sent")


async def test_receipts_move_sent_to_delivered_or_failed_once(pool) -> None:
    first, second = await _queue(pool, 2)
    await _drain(Dispatcher(pool, _AcceptingProvider()), pool)
    assert {r["status"] for r in (await _statuses(pool)).values()} == {"sent"}
    async with pool.connection() as conn:
        assert await repo.record_receipt(conn, first, delivered=True)
        assert not await repo.record_receipt(conn, first, delivered=False, reason="late duplicate")
        assert await repo.record_receipt(conn, second, delivered=False, reason="letter returned: addressee unknown")
    statuses = await _statuses(pool)
    assert (statuses[first]["status"], statuses[second]["status"]) == ("delivered", "failed")
    assert statuses[second]["failure_reason"] == "letter returned: addressee unknown"

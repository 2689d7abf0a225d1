"""Notifications: messages rendered and dispatched per second through the PostgreSQL outbox (file
sink provider), as a ratio to rendering alone in the same run; PDF letter render time; and the
projected time for the weekly volume (~800,000 messages; target under two hours).

Each message goes the way a Send does: its own transaction (case view read, idempotency check,
render, insert), then a dispatcher claims batches with SKIP LOCKED, renders letters as PDFs,
writes one file per message (fsync'd) and records the outcome and the audit entry.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from cms.db.migrate import apply_migrations
from cms.infra.postgres import postgres_url, start_postgres
from cms.infra.processes import free_port
from domain.notifications import ContactPreferences
from services import SERVICES_BY_NAME
from services.notifications import repository as repo
from services.notifications.compose import compose
from services.notifications.dispatcher import Dispatcher, DispatcherConfig
from services.notifications.letters import render_letter_pdf
from services.notifications.providers import FileSinkProvider

WEEKLY_MESSAGES = 800_000
TARGET_HOURS = 2.0
_MIX = [("letter", "calculation_decision"), ("email", "payment_schedule"), ("sms", "payment_missed"),
        ("email", "payment_received")]
_RP = {"full_name": "Alex Receiver", "address": "14 Hidden Lane\nSafeton", "postcode": "SF1 4HL",
       "email": "alex@example.org", "phone": "07700900111"}
_PP = {"full_name": "Sam Payer", "address": "9 Open Road\nPayville", "postcode": "PV9 9OR",
       "email": "sam@example.org", "phone": "07700900999", "employer": "Payville Motors"}
_VARIABLES = {
    "calculation_decision": {"effective_date": "2026-04-01", "weekly_amount": 8412,
                             "explanation": ["Gross weekly income: £594.52", "Basic rate, 2 children: 16%",
                                             "Weekly amount: £84.12"]},
    "payment_schedule": {"effective_date": "2026-04-01", "next_payment_pence": 36452, "next_due_on": "2026-04-01",
                         "instalment_pence": 36453, "frequency_words": "every month",
                         "how_paid": "to the Child Maintenance Service by direct debit",
                         "payment_note": "If you cannot pay on a date, tell us before it."},
    "payment_missed": {"amount": 36452, "due_on": "2026-05-28", "arrears": 36452},
    "payment_received": {"amount": 36452, "received_on": "2026-04-28"},
}


def _view(case_id: str) -> repo.CaseView:
    return repo.CaseView(case_id, {"rp": _RP, "pp": _PP}, {"rp": "receiving_parent", "pp": "paying_parent"},
                         {"rp": ContactPreferences(), "pp": ContactPreferences()})


def _compose(index: int, case_id: str, view: repo.CaseView):
    channel, template = _MIX[index % len(_MIX)]
    variables = {"case_reference": case_id, **_VARIABLES[template]}
    return compose(f"bench-{case_id}-{index}", case_id, "pp", template, channel, variables, view, datetime.now(UTC))


def _render_alone(count: int) -> float:
    view = _view("C-bench")
    started = time.perf_counter()
    for index in range(count):
        _compose(index, "C-bench", view)
    return count / (time.perf_counter() - started)


def _pdf_ms(count: int) -> float:
    body = _compose(0, "C-bench", _view("C-bench")).rendered.body
    started = time.perf_counter()
    for _ in range(count):
        render_letter_pdf(("Sam Payer", "9 Open Road", "Payville", "PV9 9OR"), "Your child maintenance calculation",
                          body, "C-bench", date(2026, 4, 1))
    return (time.perf_counter() - started) / count * 1000


async def _through_outbox(url: str, count: int, sink: Path) -> tuple[float, float, float]:
    cases = max(1, count // 10)
    async with AsyncConnectionPool(url, min_size=4, max_size=8, open=False) as pool:
        await pool.wait()
        async with pool.connection() as conn, conn.transaction():
            for case in range(cases):
                for party_id, details in (("rp", _RP), ("pp", _PP)):
                    await repo.upsert_party(conn, f"C-{case}", party_id, "", details, ContactPreferences())

        async def send(indices: range) -> None:
            for index in indices:
                case_id = f"C-{index % cases}"
                async with pool.connection() as conn, conn.transaction():
                    if await repo.find_by_key(conn, f"bench-{case_id}-{index}") is None:
                        view = await repo.load_case_view(conn, case_id)
                        await repo.enqueue(conn, _compose(index, case_id, view).prepared)

        started = time.perf_counter()
        senders = 4
        await asyncio.gather(*(send(range(i, count, senders)) for i in range(senders)))
        queued_at = time.perf_counter()
        dispatcher = Dispatcher(pool, FileSinkProvider(sink), DispatcherConfig(batch_size=200))
        handled = 0
        while handled < count:
            done = await dispatcher.run_once()
            if done == 0:
                raise RuntimeError("outbox ran dry before every message was dispatched")
            handled += done
        finished = time.perf_counter()
    return count / (finished - started), count / (queued_at - started), count / (finished - queued_at)


def run(quick: bool = False) -> list[dict]:
    count = 800 if quick else 8000
    render_rate = _render_alone(count)
    pdf_ms = _pdf_ms(50 if quick else 300)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        root.chmod(0o755)
        port = free_port()
        pg = start_postgres(root / "pg", port, root / "pg.log")
        try:
            url = postgres_url(port)
            info = SERVICES_BY_NAME["notifications"]
            apply_migrations(url, info.schema, info.migrations)
            end_to_end, enqueue_rate, dispatch_rate = asyncio.run(
                _through_outbox(url, count, root / f"sink-{uuid.uuid4().hex[:6]}"))
        finally:
            pg.stop()
    weekly_hours = WEEKLY_MESSAGES / end_to_end / 3600
    return [
        {"benchmark": "render alone", "value": render_rate,
         "unit": "msg/s", "baseline": None, "ratio": None, "target": None},
        {"benchmark": f"outbox end to end ({count} msgs)", "value": end_to_end,
         "unit": "msg/s", "baseline": render_rate, "ratio": end_to_end / render_rate,
         "target": f">= {WEEKLY_MESSAGES / (TARGET_HOURS * 3600):.0f} msg/s"},
        {"benchmark": "outbox enqueue (Send txns)", "value": enqueue_rate,
         "unit": "msg/s", "baseline": render_rate, "ratio": enqueue_rate / render_rate, "target": None},
        {"benchmark": "outbox dispatch (1 dispatcher)", "value": dispatch_rate,
         "unit": "msg/s", "baseline": render_rate, "ratio": dispatch_rate / render_rate, "target": None},
        {"benchmark": "PDF letter render", "value": pdf_ms, "unit": "ms/letter", "baseline": None, "ratio": None,
         "target": None},
        {"benchmark": "800k weekly msgs, projected", "value": weekly_hours, "unit": "hours",
         "baseline": TARGET_HOURS, "ratio": weekly_hours / TARGET_HOURS, "target": f"< {TARGET_HOURS} hours"},
    ]

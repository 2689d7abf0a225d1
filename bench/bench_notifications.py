"""Notifications: messages rendered and dispatched per second through the PostgreSQL outbox (file
sink provider), as a ratio to rendering alone in the same run; PDF letter render time in English,
Welsh and both (target under 10 ms each); outbox dispatch through GOV.UK Notify (a local fake of
its API on 127.0.0.1) as a ratio to the file sink (target at least 0.5); and the projected time
for the weekly volume (~800,000 messages; target under two hours).

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
from services.notifications.notify import NotifyProvider, NotifySettings
from services.notifications.providers import FileSinkProvider, NotificationProvider
from tests.notifications.fake_notify import API_KEY, FakeNotify

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


def _view(case_id: str, language: str = "") -> repo.CaseView:
    return repo.CaseView(case_id, {"rp": _RP, "pp": _PP}, {"rp": "receiving_parent", "pp": "paying_parent"},
                         {"rp": ContactPreferences(), "pp": ContactPreferences(language=language)})


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


def _pdf_ms(count: int, language: str = "") -> float:
    rendered = _compose(0, "C-bench", _view("C-bench", language)).rendered
    address = ("Sam Payer", "9 Open Road", "Payville", "PV9 9OR")
    render_letter_pdf(address, rendered.subject, rendered.body, "C-bench", date(2026, 4, 1),
                      language=rendered.language)   # the font is prepared once per machine, not per letter
    started = time.perf_counter()
    for _ in range(count):
        render_letter_pdf(address, rendered.subject, rendered.body, "C-bench", date(2026, 4, 1),
                          language=rendered.language)
    return (time.perf_counter() - started) / count * 1000


async def _through_outbox(url: str, count: int, provider: NotificationProvider,
                          prefix: str = "C") -> tuple[float, float, float]:
    cases = max(1, count // 10)
    async with AsyncConnectionPool(url, min_size=4, max_size=8, open=False) as pool:
        await pool.wait()
        async with pool.connection() as conn, conn.transaction():
            for case in range(cases):
                for party_id, details in (("rp", _RP), ("pp", _PP)):
                    await repo.upsert_party(conn, f"{prefix}-{case}", party_id, "", details, ContactPreferences())

        async def send(indices: range) -> None:
            for index in indices:
                case_id = f"{prefix}-{index % cases}"
                async with pool.connection() as conn, conn.transaction():
                    if await repo.find_by_key(conn, f"bench-{case_id}-{index}") is None:
                        view = await repo.load_case_view(conn, case_id)
                        await repo.enqueue(conn, _compose(index, case_id, view).prepared)

        started = time.perf_counter()
        senders = 4
        await asyncio.gather(*(send(range(i, count, senders)) for i in range(senders)))
        queued_at = time.perf_counter()
        dispatcher = Dispatcher(pool, provider, DispatcherConfig(batch_size=200))
        handled = 0
        while handled < count:
            done = await dispatcher.run_once()
            if done == 0:
                raise RuntimeError("outbox ran dry before every message was dispatched")
            handled += done
        finished = time.perf_counter()
    return count / (finished - started), count / (queued_at - started), count / (finished - queued_at)


def _notify_provider(base_url: str) -> NotifyProvider:
    return NotifyProvider(NotifySettings(api_key=API_KEY, email_template_id=str(uuid.uuid4()),
                                         sms_template_id=str(uuid.uuid4()), base_url=base_url))


def run(quick: bool = False) -> list[dict]:
    count = 800 if quick else 8000
    provider_count = 200 if quick else 1000
    render_rate = _render_alone(count)
    pdf_ms = {language: _pdf_ms(50 if quick else 300, language) for language in ("en", "cy", "both")}
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
                _through_outbox(url, count, FileSinkProvider(root / f"sink-{uuid.uuid4().hex[:6]}")))
            # The same number of messages each way, on fresh cases, so the two dispatch rates compare.
            _, _, sink_rate = asyncio.run(
                _through_outbox(url, provider_count, FileSinkProvider(root / "sink-compare"), prefix="S"))
            with FakeNotify() as notify:
                _, _, notify_rate = asyncio.run(
                    _through_outbox(url, provider_count, _notify_provider(notify.base_url), prefix="N"))
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
        *({"benchmark": f"PDF letter render ({language})", "value": ms, "unit": "ms/letter", "baseline": None,
           "ratio": None, "target": "< 10 ms"} for language, ms in pdf_ms.items()),
        {"benchmark": f"outbox dispatch via Notify fake ({provider_count} msgs)", "value": notify_rate,
         "unit": "msg/s", "baseline": sink_rate, "ratio": notify_rate / sink_rate, "target": ">= 0.5x file sink"},
        {"benchmark": "800k weekly msgs, projected", "value": weekly_hours, "unit": "hours",
         "baseline": TARGET_HOURS, "ratio": weekly_hours / TARGET_HOURS, "target": f"< {TARGET_HOURS} hours"},
    ]

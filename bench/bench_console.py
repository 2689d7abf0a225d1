"""The caseworker console's two busiest pages, the work queue and the case page, with 10,000 cases
in the read model: p50 and p99 server time of each page, against the gRPC calls the page makes
alone, in the same run, the two interleaved so both see the same machine.

The service runs as `make run` starts it (`python -m cms.stack`, free ports, a data folder of its
own, the demo calendar), and its demo cases become active. The 10,000 cases are then made by
copying one active case's rows in every service's tables (case read model, ledger, letters, risk
scores) under new case ids, and by one Temporal execution per case carrying the search
attributes the queue filters on (stage, service type, team, SLA due time; one case in twenty
needs a caseworker), so both the PostgreSQL queries and the visibility query see a full office.

The console runs in this process on the stack's services, signed in as a caseworker; each page
is requested through its ASGI app (no socket: the time is the server's), and the baseline is the
console's own backend making the same calls the page makes, the same way.

Targets: a page takes at most 2x its calls' time (ratio <= 2.0), and its p99 is under 300 ms.
Quick mode (BENCH_QUICK=1): 2,000 cases and 100 rounds. Run alone:
``python -m bench.bench_console [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import psycopg
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from cms.auth import issue_token
from cms.config import REPO_ROOT
from cms.infra.postgres import postgres_url
from cms.infra.processes import free_port
from cms.infra.temporal_server import start_dev_server
from cms.search_attributes import ASSIGNED_TEAM, CASE_STAGE, NEEDS_CASEWORKER, SERVICE_TYPE, SLA_DUE_AT
from services.console.app import create_app
from services.console.backend import GrpcBackend
from services.console.config import load_console_settings

CASES = 10_000
QUICK_CASES = 2_000
NEEDING_A_CASEWORKER = 1 / 20
TEAMS = ("changes", "safeguarding", "disputes", "enforcement")
# Executions the visibility query finds but no worker ever runs: they stand for the office's cases.
IDLE_QUEUE = "bench-console-idle"
START_SECONDS = 300
TARGET_RATIO = 2.0
TARGET_P99_MS = 300.0
# The schemas whose tables hold a case's rows (every service's), copied for each new case.
SCHEMAS = ("case_api", "payments", "notifications", "risk")


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    data: Path

    def port(self, name: str) -> int:
        return int(self.env[name])

    @property
    def database_url(self) -> str:
        return postgres_url(self.port("POSTGRES_PORT"))

    @property
    def temporal(self) -> str:
        return f"127.0.0.1:{self.port('TEMPORAL_PORT')}"

    def token(self, subject: str, role: str) -> str:
        return issue_token((self.data / "auth" / "signing-key.pem").read_text(), subject, role)


def _stack_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS", "CMS_DEV_ISSUER_KEY", "CMS_AUTH_JWKS",
                        "CMS_SERVICE_TOKEN", "CMS_PAYLOAD_KEYS", "CMS_CASE_ID_SECRET")}
    ports = ("TEMPORAL_PORT", "TEMPORAL_UI_PORT", "POSTGRES_PORT", "CASE_API_PORT", "PAYMENTS_PORT",
             "NOTIFICATIONS_PORT", "RISK_PORT", "STACK_METRICS_PORT", "CODEC_SERVER_PORT", "CONSOLE_PORT")
    env.update({name: str(free_port()) for name in ports})
    env.update({"CMS_DATA_DIR": str(data), "PYTHONPATH": str(REPO_ROOT), "LOG_LEVEL": "WARNING"})
    return env


@contextmanager
def running_stack(folder: Path) -> Iterator[Stack]:
    """`python -m cms.stack` until it says it is ready; stopped with Ctrl-C's signal after. Its
    Temporal is a dev server of the run's own with its store in memory (TEMPORAL_ADDRESS), so
    starting the office's 10,000 executions is not a test of this machine's disk."""
    data = folder / "data"
    env = _stack_env(data)
    temporal = start_dev_server(int(env["TEMPORAL_PORT"]), None, None, folder / "temporal.log")
    env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{env['TEMPORAL_PORT']}"
    log = (folder / "stack.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "cms.stack"], cwd=REPO_ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + START_SECONDS
        while "Ctrl-C stops everything" not in (folder / "stack.log").read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the stack did not start:\n" + (folder / "stack.log").read_text()[-4000:])
            time.sleep(0.5)
        yield Stack(env, data)
    finally:
        process.send_signal(2)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
        temporal.stop()


# --- the office: 10,000 cases --------------------------------------------------------------------

def _tables_with_cases(conn: psycopg.Connection) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.columns "
        "WHERE column_name = 'case_id' AND table_schema = ANY(%s) "
        "AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE') "
        "ORDER BY 1, 2", (list(SCHEMAS),)).fetchall()
    return [(schema, table) for schema, table in rows]


def _copy_expressions(conn: psycopg.Connection, schema: str, table: str) -> tuple[list[str], list[str]]:
    """(columns, expressions) copying one row to a new case `n.new_id`: generated columns left to
    their defaults, the case id replaced, and any other unique text made unique with the new id."""
    columns = conn.execute(
        "SELECT column_name, data_type, column_default, is_identity, is_generated FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", (schema, table)).fetchall()
    unique = {row[0] for row in conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s::regclass AND i.indisunique", (f"{schema}.{table}",)).fetchall()}
    names, expressions = [], []
    for name, data_type, default, identity, generated in columns:
        if identity == "YES" or generated == "ALWAYS" or (default or "").startswith("nextval("):
            continue
        names.append(f'"{name}"')
        if name == "case_id":
            expressions.append("n.new_id")
        elif name in unique and data_type == "uuid":
            expressions.append("gen_random_uuid()")
        elif name in unique and data_type == "text":
            expressions.append(f"t.\"{name}\" || '-' || n.new_id")
        else:
            expressions.append(f't."{name}"')
    return names, expressions


def copy_case(database_url: str, template: str, new_ids: list[str]) -> int:
    """Copies every row of case `template` in every service's tables under each of `new_ids`;
    returns the rows written. Triggers and foreign keys are off for the copy (it is the same
    data again, consistent case by case)."""
    written = 0
    with psycopg.connect(database_url, autocommit=False) as conn:
        conn.execute("SET session_replication_role = replica")
        for schema, table in _tables_with_cases(conn):
            names, expressions = _copy_expressions(conn, schema, table)
            cursor = conn.execute(
                f'INSERT INTO "{schema}"."{table}" ({", ".join(names)}) '
                f'SELECT {", ".join(expressions)} FROM "{schema}"."{table}" t, unnest(%s::text[]) AS n(new_id) '
                "WHERE t.case_id = %s", (new_ids, template))
            written += cursor.rowcount
        conn.commit()
        conn.execute("ANALYZE")
    return written


async def start_visible_cases(client: Client, case_ids: list[str], rng: random.Random) -> int:
    """One running CaseWorkflow execution per case on a queue no worker polls, carrying the search
    attributes the queue filters on; returns how many need a caseworker."""
    now = datetime.now(UTC)
    gate = asyncio.Semaphore(64)
    needing = 0

    async def start(case_id: str, needs: bool) -> None:
        attributes = TypedSearchAttributes([
            SearchAttributePair(CASE_STAGE, "Active"),
            SearchAttributePair(SERVICE_TYPE, rng.choice(("direct_pay", "collect_and_pay"))),
            SearchAttributePair(NEEDS_CASEWORKER, needs),
            SearchAttributePair(ASSIGNED_TEAM, rng.choice(TEAMS) if needs else ""),
            SearchAttributePair(SLA_DUE_AT, now + timedelta(hours=rng.uniform(-48, 28 * 24))),
        ])
        async with gate:
            await client.start_workflow("CaseWorkflow", id=f"case-{case_id}", task_queue=IDLE_QUEUE,
                                        search_attributes=attributes)

    plan = [(case_id, rng.random() < NEEDING_A_CASEWORKER) for case_id in case_ids]
    needing = sum(needs for _, needs in plan)
    await asyncio.gather(*(start(case_id, needs) for case_id, needs in plan))
    return needing


# --- measuring ---------------------------------------------------------------------------------

def percentile(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))]


async def interleaved(first: Callable[[], Awaitable[object]], second: Callable[[], Awaitable[object]],
                      rounds: int, warm_up: int) -> tuple[list[float], list[float]]:
    """Each callable's durations (seconds), alternating which goes first each round."""
    samples: tuple[list[float], list[float]] = ([], [])
    pair = (first, second)
    for i in range(rounds + warm_up):
        for which in ((0, 1) if i % 2 else (1, 0)):
            started = time.perf_counter()
            await pair[which]()
            if i >= warm_up:
                samples[which].append(time.perf_counter() - started)
    return samples


def rows_for(page: str, cases: int, page_samples: list[float], call_samples: list[float]) -> list[dict]:
    rows = []
    for label, q in (("p50", 0.5), ("p99", 0.99)):
        value, baseline = percentile(page_samples, q) * 1e3, percentile(call_samples, q) * 1e3
        target = f"<= {TARGET_RATIO:.1f}" + (f", < {TARGET_P99_MS:.0f} ms" if label == "p99" else "")
        rows.append({"benchmark": f"{page} page with {cases:,} cases vs its gRPC calls, {label}", "value": value,
                     "unit": "ms", "baseline": baseline, "ratio": value / baseline, "target": target})
    return rows


def run(quick: bool = False) -> list[dict]:
    rounds, cases = (100, QUICK_CASES) if quick else (400, CASES)
    with tempfile.TemporaryDirectory(prefix="cms-bench-console-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        with running_stack(root) as stack, stack_environment(stack):
            return asyncio.run(_bench(stack, rounds, cases))


@contextmanager
def stack_environment(stack: Stack) -> Iterator[None]:
    """This process's environment pointed at the stack (ports, data folder, so its dev issuer
    key), as the console's own process gets it from `make run`; put back after."""
    names = [name for name in stack.env if name.endswith("_PORT")] + ["CMS_DATA_DIR"]
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: stack.env[name] for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def _active_cases(database_url: str, wanted: int, timeout: float) -> list[str]:
    """The demo cases once `wanted` of them are active with a liability (the demo calendar moves
    them there within a minute)."""
    deadline = time.monotonic() + timeout
    while True:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            rows = await (await conn.execute(
                "SELECT case_id FROM case_api.cases WHERE stage = 'Active' AND weekly_liability_pence IS NOT NULL "
                "ORDER BY case_id")).fetchall()
        if len(rows) >= wanted:
            return [row[0] for row in rows]
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(rows)} demo cases became active")
        await asyncio.sleep(1)


async def _fill_the_office(stack: Stack, template: str, cases: int) -> int:
    """Copies `template` to make `cases` cases in all; returns how many need a caseworker."""
    async with await psycopg.AsyncConnection.connect(stack.database_url) as conn:
        existing = (await (await conn.execute("SELECT count(*) FROM case_api.cases")).fetchone() or (0,))[0]
    new_ids = [f"cbench{n:05d}" for n in range(cases - existing)]
    started = time.monotonic()
    rows = await asyncio.to_thread(copy_case, stack.database_url, template, new_ids)
    print(f"  {len(new_ids):,} cases copied ({rows:,} rows) in {time.monotonic() - started:.0f}s", flush=True)
    started = time.monotonic()
    client = await Client.connect(stack.temporal)
    needing = await start_visible_cases(client, new_ids, random.Random(19))
    print(f"  {len(new_ids):,} executions started in {time.monotonic() - started:.0f}s", flush=True)
    return needing


async def _bench(stack: Stack, rounds: int, cases: int) -> list[dict]:
    shown = await _active_cases(stack.database_url, 3, timeout=180)
    needing = await _fill_the_office(stack, shown[0], cases)
    settings = load_console_settings()
    backend = GrpcBackend(settings.platform)
    app = create_app(settings, backend)
    token = stack.token("cw-bench", "caseworker")
    try:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://console") as browser:
            await _sign_in(browser, "cw-bench")
            listed = await _eventually(lambda: _listed(backend, token, needing), 60)
            queue = await _page(browser, "/queues/cases")
            assert queue.count('href="/cases/') >= listed, "the queue page links every case needing a caseworker"

            async def queue_page() -> None:
                await _page(browser, "/queues/cases")

            async def queue_calls() -> None:
                await backend.cases_needing_caseworker(token)

            # The active demo cases in turn, the same order for the page and for its calls.
            for_pages, for_calls = iter(shown * (rounds * 2)), iter(shown * (rounds * 2))

            async def case_page() -> None:
                await _page(browser, f"/cases/{next(for_pages)}")

            async def case_calls() -> None:
                case_id = next(for_calls)
                await backend.get_case(token, case_id, "cw-bench", "bench", withhold_protected=True)
                await asyncio.gather(
                    backend.list_changes(token, case_id=case_id, include_cleared=True),
                    backend.timeline(token, case_id), backend.balance(token, case_id),
                    backend.statement(token, case_id), backend.letters(token, case_id), backend.risk(token, case_id),
                    return_exceptions=True)

            queue_samples = await interleaved(queue_page, queue_calls, rounds, warm_up=10)
            case_samples = await interleaved(case_page, case_calls, rounds, warm_up=10)
    finally:
        await backend.close()
    return [*rows_for("queue", cases, *queue_samples), *rows_for("case", cases, *case_samples)]


async def _listed(backend: GrpcBackend, token: str, needing: int) -> int:
    """How many cases the queue's call lists, once visibility shows at least the `needing` made."""
    listed = len(await backend.cases_needing_caseworker(token))
    return listed if listed >= needing else 0


async def _eventually(check: Callable[[], Awaitable[int]], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout}s")
        await asyncio.sleep(0.5)
    return value


async def _sign_in(browser: httpx2.AsyncClient, staff_id: str) -> None:
    """Through the dev issuer's sign-in form, as a person would (the form's CSRF token included)."""
    import re

    form = await browser.get("/sign-in")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf, "the sign-in form carries a CSRF token"
    signed = await browser.post("/sign-in", data={"staff_id": staff_id, "role": "caseworker",
                                                  "csrf_token": csrf.group(1)})
    assert signed.status_code == 303, f"sign-in answered {signed.status_code}"


async def _page(browser: httpx2.AsyncClient, path: str) -> str:
    response = await browser.get(path)
    assert response.status_code == 200, f"{path} answered {response.status_code}"
    return response.text


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)

"""`make run`: the whole service on one machine, and a clean stop on Ctrl-C.

Starts (unless TEMPORAL_ADDRESS / DATABASE_URL point at existing infrastructure) the Temporal dev
server with its UI and an embedded PostgreSQL, applies every service's migrations, registers the
search attributes, starts the four gRPC services and the worker, waits for every health check,
seeds demo cases and prints where to look. State lives under .data/, so a second run resumes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import urllib.request
from dataclasses import replace

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cms.config import Settings, load_settings
from cms.db.migrate import apply_migrations
from cms.errors import StartupError
from cms.infra.postgres import check_reachable, postgres_url, start_postgres
from cms.infra.processes import ManagedProcess, require_free_port
from cms.infra.temporal_server import start_dev_server
from cms.temporal import connect, ensure_search_attributes
from services import SERVICES

HEALTH_TIMEOUT_SECONDS = 90
DEMO_SECONDS_PER_DAY = "5"


def say(text: str) -> None:
    print(f"[cms] {text}", flush=True)


class Stack:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.logs = settings.data_dir / "logs"
        self.infra: list[ManagedProcess] = []      # stopped last, in reverse order
        self.apps: list[ManagedProcess] = []       # services and worker, stopped first

    # --- infrastructure -------------------------------------------------------------------
    def start_temporal(self) -> None:
        if os.environ.get("TEMPORAL_ADDRESS"):
            say(f"using Temporal at {self.settings.temporal_address}")
            return
        host, port = self.settings.temporal_address.rsplit(":", 1)
        say("starting the Temporal dev server …")
        self.infra.append(start_dev_server(
            int(port), self.settings.temporal_ui_port, self.settings.data_dir / "temporal.db",
            self.logs / "temporal.log", host="127.0.0.1",
        ))

    def start_database(self) -> None:
        if os.environ.get("DATABASE_URL"):
            say("using the database at DATABASE_URL")
            check_reachable(self.settings.database_url)
            return
        say(f"starting embedded PostgreSQL on 127.0.0.1:{self.settings.postgres_port} …")
        self.infra.append(start_postgres(
            self.settings.data_dir / "postgres", self.settings.postgres_port, self.logs / "postgres.log"
        ))
        self.settings = replace(self.settings, database_url=postgres_url(self.settings.postgres_port))

    def migrate(self) -> None:
        for service in SERVICES:
            applied = apply_migrations(self.settings.database_url, service.schema, service.migrations)
            if applied:
                say(f"migrations applied to {service.schema}: {applied}")

    async def register_search_attributes(self) -> None:
        client = await connect(self.settings, ready_within=60)
        added = await ensure_search_attributes(client, self.settings.temporal_namespace)
        if added:
            say(f"search attributes registered: {', '.join(added)}")

    # --- applications ---------------------------------------------------------------------
    def child_env(self) -> dict[str, str]:
        env = {
            "DATABASE_URL": self.settings.database_url,
            "TEMPORAL_ADDRESS": self.settings.temporal_address,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(self.settings.data_dir.parent), os.environ.get("PYTHONPATH")])),
        }
        env["CMS_METRICS"] = os.environ.get("CMS_METRICS", "on")
        env.setdefault("CMS_SECONDS_PER_DAY", os.environ.get("CMS_SECONDS_PER_DAY", DEMO_SECONDS_PER_DAY))
        for service in SERVICES:
            env[f"{service.name.upper()}_PORT"] = str(self.settings.port_of(service.name))
        # The case workflow hands its schedules to the payments service (at PAYMENTS_PORT above).
        env["CMS_CASE_PAYMENTS_VIA_GRPC"] = "1"
        # Letters go through the notifications outbox; CaseService registers the parties there.
        env["CMS_CASE_NOTICES_VIA_NOTIFICATIONS"] = "1"
        # Money reaching a case goes out within 2 working days (the payments disbursement outbox).
        env["CMS_PAYMENTS_DISBURSE_ON_ARRIVAL"] = "1"
        return env

    def start_apps(self) -> None:
        for service in SERVICES:
            require_free_port(self.settings.grpc_host, self.settings.port_of(service.name),
                              service.name, f"{service.name.upper()}_PORT")
        env = self.child_env()
        for service in SERVICES:
            self.apps.append(ManagedProcess(
                service.name, [sys.executable, "-m", f"services.{service.name}"],
                self.logs / f"{service.name}.log", env=env,
            ).start())
        self.apps.append(ManagedProcess(
            "worker", [sys.executable, "-m", "cms.worker"], self.logs / "worker.log", env=env
        ).start())
        if float(env["CMS_SECONDS_PER_DAY"]) < 86400:
            # Demo only: paying parents' bank payments for the demo's Collect & Pay cases.
            self.apps.append(ManagedProcess(
                "demo-bank-feed", [sys.executable, "-m", "cms.demo_bank_feed"], self.logs / "demo_bank_feed.log",
                env={**env, "CMS_DEMO_BANK_FEED": "1"},
            ).start())

    async def wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
        for service in SERVICES:
            address = self.settings.address_of(service.name)
            while True:
                self.check_children()
                if await health_status(address, service.full_name) == "SERVING":
                    say(f"{service.name:<14} SERVING on {address}")
                    break
                if time.monotonic() > deadline:
                    raise StartupError(f"{service.name} did not report SERVING within "
                                       f"{HEALTH_TIMEOUT_SECONDS}s; see {self.logs / (service.name + '.log')}")
                await asyncio.sleep(0.3)

    def check_children(self) -> None:
        for process in self.infra + self.apps:
            if not process.running:
                raise StartupError(f"{process.name} stopped unexpectedly; see {process.log_path}: "
                                   f"{process.log_tail(1)}")

    async def seed_demo(self) -> None:
        from cms.demo import seed_demo_cases

        client = await connect(self.settings)
        started = await seed_demo_cases(client, self.settings)
        say(f"demo cases: {started}")

    async def ensure_schedules(self) -> None:
        from cms.schedules import ensure_schedules

        created = await ensure_schedules(await connect(self.settings))
        if created:
            say(f"schedules created: {', '.join(created)}")

    def stop(self) -> None:
        for process in reversed(self.apps):
            process.stop()
        for process in reversed(self.infra):
            process.stop()

    def print_urls(self) -> None:
        ui = f"http://localhost:{self.settings.temporal_ui_port}" if not os.environ.get("TEMPORAL_ADDRESS") else "(your Temporal UI)"
        say("ready.")
        say(f"  Temporal UI     {ui}/namespaces/{self.settings.temporal_namespace}/workflows")
        say(f"  Temporal        {self.settings.temporal_address}")
        for service in SERVICES:
            port = self.settings.port_of(service.name)
            say(f"  {service.name:<15} grpc://{self.settings.address_of(service.name)}  ({service.full_name}; "
                f"metrics http://127.0.0.1:{port + 1000}/metrics)")
        say(f"  PostgreSQL      {self.settings.database_url}")
        say(f"  logs            {self.logs}/")
        say("  try: .venv/bin/cmsctl case list    |    Ctrl-C stops everything")


async def health_status(address: str, service: str) -> str:
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2
            )
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.aio.AioRpcError:
        return "UNREACHABLE"


def ui_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


async def run_stack(stop: asyncio.Event) -> None:
    stack = Stack(load_settings())
    stack.settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        stack.start_temporal()
        stack.start_database()
        stack.migrate()
        await stack.register_search_attributes()
        stack.start_apps()
        await stack.wait_healthy()
        await stack.ensure_schedules()
        await stack.seed_demo()
        stack.print_urls()
        while not stop.is_set():
            stack.check_children()
            try:
                await asyncio.wait_for(stop.wait(), timeout=1)
            except TimeoutError:
                pass
        say("stopping …")
    finally:
        stack.stop()
        say("stopped.")


def main() -> None:
    stop = asyncio.Event()

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_stack(stop)

    try:
        asyncio.run(runner())
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

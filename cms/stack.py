"""`make run`: the whole service on one machine, kept running, and a clean stop on Ctrl-C.

Starts (unless TEMPORAL_ADDRESS / DATABASE_URL point at existing infrastructure) the Temporal dev
server with its UI and an embedded PostgreSQL, applies every service's migrations, registers the
search attributes, starts the four gRPC services, the worker and the caseworker console (web pages
on port 8080), waits for every health check, seeds demo cases and prints where to look. State
lives under .data/, so a second run resumes.

On one machine `make run` plays the orchestrator's part: every child it started is supervised
(cms/infra/supervisor.py), restarted when it dies, reported with why it died, and counted in
`cms_stack_restarts_total{process}` on the stack's own metrics endpoint (STACK_METRICS_PORT).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import urllib.request
from dataclasses import replace
from functools import partial
from wsgiref.simple_server import WSGIServer

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import start_http_server

from cms.auth import PROCESS_TOKEN_SECONDS, ensure_dev_keys, issue_token
from cms.config import Settings, load_settings, positive_from_env
from cms.db.migrate import apply_migrations
from cms.errors import StartupError
from cms.infra.postgres import check_reachable, postgres_url, start_postgres
from cms.infra.private_data import make_private, owner_only_umask
from cms.infra.processes import ManagedProcess, require_free_port
from cms.infra.supervisor import ReadinessProbe, Supervisor
from cms.infra.temporal_server import start_dev_server
from cms.temporal import connect, ensure_search_attributes
from services import SERVICES
from services.case_api.case_ids import case_id_secret, write_dev_case_id_secret
from services.codec_server.dev import codec_endpoint, prepare_dev_codec

# How long start-up waits for every service to report SERVING (CMS_STACK_HEALTH_TIMEOUT): the risk
# service trains its model on a first start, which takes longer on a loaded machine.
HEALTH_TIMEOUT_SECONDS = 180
# `make run WORKERS=2 SERVICE_REPLICAS=2`: instance n of a service listens REPLICA_PORT_STEP * (n-1)
# above the service's port (payments: 50052, 50062), and the others reach all of them through
# one balanced address (cms/grpc_client.py), as a Kubernetes headless Service would give.
REPLICA_PORT_STEP = 10
DEMO_SECONDS_PER_DAY = "5"
# The stack's own Prometheus endpoint, beside the services' (their gRPC port + 1000: 51051-51054).
DEFAULT_STACK_METRICS_PORT = 51050
# The caseworker console's web pages (CONSOLE_PORT), beside the Temporal UI's 8233.
DEFAULT_CONSOLE_PORT = 8080
# The Temporal frontend's name in the standard gRPC health service.
TEMPORAL_FRONTEND = "temporal.api.workflowservice.v1.WorkflowService"


def say(text: str) -> None:
    print(f"[cms] {text}", flush=True)


class Stack:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.logs = settings.data_dir / "logs"
        self.infra: list[ManagedProcess] = []      # Temporal and PostgreSQL, stopped last
        self.apps: list[ManagedProcess] = []       # services, worker, bank feed: stopped first
        self.supervisor = Supervisor(say)
        self.metrics_port = stack_metrics_port()
        self.console_port = console_port()
        self._metrics_server: WSGIServer | None = None
        self.codec_env = prepare_dev_codec(settings)  # payload key and codec server token
        self.codec_env.update(prepare_dev_case_id_secret(settings))
        self.workers = replica_count("WORKERS")
        self.service_replicas = replica_count("SERVICE_REPLICAS")
        # The local identity: a signing key kept under .data/auth/ (owner-only) and its public
        # JWKS, which every service verifies tokens with; the key is also the dev-only issuer
        # cmsctl uses, which production configuration does not have.
        self.signing_key, self.jwks = ensure_dev_keys(settings.data_dir / "auth", settings.dev_issuer_key)

    # --- instances: one of each by default, more with WORKERS / SERVICE_REPLICAS ----------------
    def instance_ports(self, service: str) -> list[int]:
        base = self.settings.port_of(service)
        return [base + REPLICA_PORT_STEP * n for n in range(self.service_replicas)]

    def balanced_address(self, service: str) -> str:
        """Every instance of `service` in one gRPC target; the plain address when there is one."""
        if self.service_replicas == 1:
            return self.settings.address_of(service)
        host = self.settings.grpc_host
        return "ipv4:" + ",".join(f"{host}:{port}" for port in self.instance_ports(service))

    def token_for(self, subject: str, role: str = "service") -> str:
        """The token of a process this stack starts (each service, the worker, the bank feed)."""
        return issue_token(self.signing_key.read_text(), subject, role, lifetime_seconds=PROCESS_TOKEN_SECONDS)

    # --- the stack's own metrics ----------------------------------------------------------
    def serve_metrics(self) -> None:
        require_free_port("127.0.0.1", self.metrics_port, "the stack's metrics", "STACK_METRICS_PORT")
        self._metrics_server, _ = start_http_server(self.metrics_port, addr="127.0.0.1",
                                                    registry=self.supervisor.metrics.registry)

    def supervise(self, process: ManagedProcess, ready: ReadinessProbe | None, infra: bool = False) -> None:
        (self.infra if infra else self.apps).append(process)
        self.supervisor.watch(process, ready)

    # --- infrastructure -------------------------------------------------------------------
    def start_temporal(self) -> None:
        if os.environ.get("TEMPORAL_ADDRESS"):
            say(f"using Temporal at {self.settings.temporal_address}")
            return
        host, port = self.settings.temporal_address.rsplit(":", 1)
        say("starting the Temporal dev server …")
        process = start_dev_server(
            int(port), self.settings.temporal_ui_port, self.settings.data_dir / "temporal.db",
            self.logs / "temporal.log", host="127.0.0.1",
            codec_endpoint=codec_endpoint(self.settings),
        )
        self.supervise(process, lambda: grpc_serving(f"127.0.0.1:{port}", TEMPORAL_FRONTEND), infra=True)

    def start_database(self) -> None:
        if os.environ.get("DATABASE_URL"):
            say("using the database at DATABASE_URL")
            check_reachable(self.settings.database_url)
            return
        say(f"starting embedded PostgreSQL on 127.0.0.1:{self.settings.postgres_port} …")
        process = start_postgres(
            self.settings.data_dir / "postgres", self.settings.postgres_port, self.logs / "postgres.log"
        )
        self.settings = replace(self.settings, database_url=postgres_url(self.settings.postgres_port))
        url = self.settings.database_url
        self.supervise(process, lambda: database_answers(url), infra=True)

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
            if self.service_replicas > 1:
                env[f"{service.name.upper()}_ADDRESS"] = self.balanced_address(service.name)
        # The case workflow hands its schedules to the payments service (at PAYMENTS_PORT above).
        env["CMS_CASE_PAYMENTS_VIA_GRPC"] = "1"
        # Letters go through the notifications outbox; CaseService registers the parties there.
        env["CMS_CASE_NOTICES_VIA_NOTIFICATIONS"] = "1"
        # Money reaching a case goes out within 2 working days (the payments disbursement outbox).
        env["CMS_PAYMENTS_DISBURSE_ON_ARRIVAL"] = "1"
        env["CMS_AUTH_JWKS"] = str(self.jwks)
        env.update(self.codec_env)
        return env

    def start_apps(self) -> None:
        for service in SERVICES:
            for port in self.instance_ports(service.name):
                require_free_port(self.settings.grpc_host, port, service.name, f"{service.name.upper()}_PORT")
        env = self.child_env()
        for service in SERVICES:
            for n, port in enumerate(self.instance_ports(service.name), start=1):
                name = instance_name(service.name, n)
                self.supervise(ManagedProcess(
                    name, [sys.executable, "-m", f"services.{service.name}"], self.logs / f"{name}.log",
                    env={**env, f"{service.name.upper()}_PORT": str(port),
                         "CMS_SERVICE_TOKEN": self.token_for(service.name)},
                ).start(), partial(grpc_serving, f"{self.settings.grpc_host}:{port}", service.full_name))
        for n in range(1, self.workers + 1):
            name = instance_name("worker", n)
            self.supervise(ManagedProcess(
                name, [sys.executable, "-m", "cms.worker"], self.logs / f"{name}.log",
                env={**env, "CMS_SERVICE_TOKEN": self.token_for("worker")},
            ).start(), ready=None)
        self.start_console(env)
        require_free_port(self.settings.grpc_host, self.settings.codec_server_port, "codec server", "CODEC_SERVER_PORT")
        self.supervise(ManagedProcess(
            "codec_server", [sys.executable, "-m", "services.codec_server"], self.logs / "codec_server.log", env=env
        ).start(), ready=None)
        if float(env["CMS_SECONDS_PER_DAY"]) < 86400:
            # Demo only: paying parents' bank payments for the demo's Collect & Pay cases.
            self.supervise(ManagedProcess(
                "demo-bank-feed", [sys.executable, "-m", "cms.demo_bank_feed"], self.logs / "demo_bank_feed.log",
                env={**env, "CMS_DEMO_BANK_FEED": "1",
                     "CMS_SERVICE_TOKEN": self.token_for("demo-bank", "bank_feed")},
            ).start(), ready=None)
        self.supervisor.start()

    def start_console(self, env: dict[str, str]) -> None:
        """The caseworker console, with the dev issuer's sign-in page (the local signing key)."""
        require_free_port("127.0.0.1", self.console_port, "the caseworker console", "CONSOLE_PORT")
        self.supervise(ManagedProcess(
            "console", [sys.executable, "-m", "services.console"], self.logs / "console.log",
            env={**env, "CONSOLE_PORT": str(self.console_port), "CMS_DEV_ISSUER_KEY": str(self.signing_key),
                 "CMS_TEMPORAL_UI_URL": f"http://localhost:{self.settings.temporal_ui_port}"},
        ).start(), partial(console_answers, self.console_port))

    async def wait_healthy(self) -> None:
        """Waits for every service's health check. A child that dies meanwhile is restarted; one
        given up (it failed at every start) ends the start-up with the supervisor's line."""
        timeout = health_timeout()
        deadline = time.monotonic() + timeout
        for service, port in ((s, p) for s in SERVICES for p in self.instance_ports(s.name)):
            address = f"{self.settings.grpc_host}:{port}"
            while True:
                self.check_none_given_up()
                if await health_status(address, service.full_name) == "SERVING":
                    say(f"{service.name:<14} SERVING on {address}")
                    break
                if time.monotonic() > deadline:
                    raise StartupError(f"{service.name} did not report SERVING within "
                                       f"{timeout:g}s; see {self.logs / (service.name + '.log')}")
                await asyncio.sleep(0.3)
        while not await console_answers(self.console_port):
            self.check_none_given_up()
            if time.monotonic() > deadline:
                raise StartupError(f"the caseworker console did not answer within {timeout:g}s; "
                                   f"see {self.logs / 'console.log'}")
            await asyncio.sleep(0.3)
        say(f"{'console':<14} answering on http://127.0.0.1:{self.console_port}/")

    def check_none_given_up(self) -> None:
        for process in self.infra + self.apps:
            if self.supervisor.given_up(process.name):
                raise StartupError(f"{process.name} failed at every start; the last time: "
                                   f"{self.supervisor.last_failure(process.name)}")

    async def seed_demo(self) -> None:
        from cms.demo import seed_demo_cases

        client = await connect(self.settings)
        started = await seed_demo_cases(client, self.settings, self.token_for("demo-seeder"))
        say(f"demo cases: {started}")

    async def ensure_schedules(self) -> None:
        from cms.schedules import ensure_schedules

        created = await ensure_schedules(await connect(self.settings))
        if created:
            say(f"schedules created: {', '.join(created)}")

    async def stop(self) -> None:
        await self.supervisor.stop()
        # The services and the worker together (each finishes what it is doing), then Temporal
        # and PostgreSQL, which they needed for that.
        for group in (self.apps, self.infra):
            for process in group:
                process.request_stop()
            for process in group:
                process.stop()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()

    def print_urls(self) -> None:
        ui = f"http://localhost:{self.settings.temporal_ui_port}" if not os.environ.get("TEMPORAL_ADDRESS") else "(your Temporal UI)"
        say("ready.")
        say(f"  Temporal UI     {ui}/namespaces/{self.settings.temporal_namespace}/workflows")
        say(f"  console         http://localhost:{self.console_port}/  (caseworkers: sign in with any staff ID)")
        say(f"  Temporal        {self.settings.temporal_address}")
        for service in SERVICES:
            ports = self.instance_ports(service.name)
            metrics = ", ".join(f"http://127.0.0.1:{port + 1000}/metrics" for port in ports)
            say(f"  {service.name:<15} grpc://{self.balanced_address(service.name)}  ({service.full_name}; "
                f"metrics {metrics})")
        if self.workers > 1 or self.service_replicas > 1:
            say(f"  instances       {self.workers} worker(s), {self.service_replicas} of each service")
        say(f"  codec server    {codec_endpoint(self.settings)}  (sign in once at /login with the token in "
            f"{self.settings.data_dir}/codec-server-token to see decoded payloads in the UI)")
        say(f"  PostgreSQL      {self.settings.database_url}")
        say(f"  stack metrics   http://127.0.0.1:{self.metrics_port}/metrics  "
            "(cms_stack_restarts_total, cms_stack_process_up)")
        say(f"  logs            {self.logs}/")
        say("  try: .venv/bin/cmsctl case list")
        say("  a process that dies is restarted and reported here    |    Ctrl-C stops everything")


def instance_name(name: str, n: int) -> str:
    """The first instance keeps the plain name (its log is `payments.log`); others are `payments-2`…"""
    return name if n == 1 else f"{name}-{n}"


def replica_count(variable: str) -> int:
    """WORKERS / SERVICE_REPLICAS: how many of each to start (default 1, at most 9 so ports stay apart)."""
    try:
        count = int(positive_from_env(variable, 1))
    except ValueError as error:
        raise StartupError(str(error)) from None
    if count > 9:
        raise StartupError(f"{variable}={count}: at most 9 on one machine")
    return count


def console_port() -> int:
    try:
        return int(positive_from_env("CONSOLE_PORT", DEFAULT_CONSOLE_PORT))
    except ValueError as error:
        raise StartupError(str(error)) from None


def health_timeout() -> float:
    try:
        return float(positive_from_env("CMS_STACK_HEALTH_TIMEOUT", HEALTH_TIMEOUT_SECONDS, float))
    except ValueError as error:
        raise StartupError(str(error)) from None


def prepare_dev_case_id_secret(settings: Settings) -> dict[str, str]:
    """The case API's case id secret: an operator's CMS_CASE_ID_SECRET(_FILE) as given, else one
    created once under the data folder (owner-only) and kept, since it names existing cases.
    Returns what the children need to find it; StartupError when the configured one is unusable."""
    if not (os.environ.get("CMS_CASE_ID_SECRET") or os.environ.get("CMS_CASE_ID_SECRET_FILE")) \
            and settings.case_id_secret_file is not None:
        write_dev_case_id_secret(settings.case_id_secret_file)
    case_id_secret(settings)
    if settings.case_id_secret or settings.case_id_secret_file is None:
        return {}
    return {"CMS_CASE_ID_SECRET_FILE": str(settings.case_id_secret_file)}


def stack_metrics_port() -> int:
    try:
        return int(positive_from_env("STACK_METRICS_PORT", DEFAULT_STACK_METRICS_PORT))
    except ValueError as error:
        raise StartupError(str(error)) from None


async def grpc_serving(address: str, service: str) -> bool:
    return await health_status(address, service) == "SERVING"


async def database_answers(url: str) -> bool:
    try:
        async with await psycopg.AsyncConnection.connect(url, connect_timeout=2) as conn:
            await conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


async def health_status(address: str, service: str) -> str:
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2
            )
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.aio.AioRpcError:
        return "UNREACHABLE"


async def console_answers(port: int) -> bool:
    """The console's health page answers (checked off the event loop: urllib blocks)."""
    return await asyncio.to_thread(page_answers, f"http://127.0.0.1:{port}/healthz")


def page_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def ui_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


async def run_stack(stop: asyncio.Event) -> None:
    settings = load_settings()
    # Keys, every case's history and PostgreSQL's files live under the data folder: owner-only
    # before the first of them is written, and so is everything the children create there.
    owner_only_umask()
    make_private(settings.data_dir)
    stack = Stack(settings)
    try:
        stack.serve_metrics()
        stack.start_temporal()
        stack.start_database()
        stack.migrate()
        await stack.register_search_attributes()
        stack.start_apps()
        await stack.wait_healthy()
        stack.supervisor.stack_ready = True
        await stack.ensure_schedules()
        await stack.seed_demo()
        stack.print_urls()
        await stop.wait()
        say("stopping …")
    finally:
        await stack.stop()
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

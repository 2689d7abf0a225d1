"""`make run WORKERS=2 SERVICE_REPLICAS=2`: two workers and two of each gRPC service on one
Temporal server and one PostgreSQL. One worker and the first instance of the case API and of
payments are killed, and those services' ports are held so they cannot come back: cases still
go from application to Active through the survivors, which the callers reach through one
balanced address (cms/grpc_client.py, cms/stack.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date

import psutil
import pytest

from cms.grpc_client import BALANCED
from cms.infra.processes import free_port
from cms.stack import REPLICA_PORT_STEP
from cms_proto.case.v1 import case_pb2, case_pb2_grpc
from tests.helpers.auth import caller_channel
from tests.platform.stack_process import StackProcess, stack_env

START_TIMEOUT = 300     # twice the processes of the usual stack, on a machine shared with other work
ACTIVE_TIMEOUT = 180
# The suite's per-test limit is 5 minutes; this module's first test also starts twice the stack.
pytestmark = pytest.mark.timeout(START_TIMEOUT + ACTIVE_TIMEOUT + 60)
SERVICES = ("CASE_API", "PAYMENTS", "NOTIFICATIONS", "RISK")


def _port_pair() -> int:
    """A free port whose second instance's port (REPLICA_PORT_STEP above) is free too."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + REPLICA_PORT_STEP))
            except OSError:
                continue
        return port
    raise AssertionError("no pair of free ports")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    ports = {f"{name}_PORT": str(_port_pair()) for name in SERVICES}
    env = stack_env(tmp_path_factory.mktemp("replicas") / "data", CMS_SECONDS_PER_DAY="2",
                    WORKERS="2", SERVICE_REPLICAS="2", CMS_STACK_HEALTH_TIMEOUT="240", **ports)
    running = StackProcess(env)
    try:
        running.wait_for_line("[cms] ready.", timeout=START_TIMEOUT)
        yield running
    finally:
        running.stop()


def _children(stack: StackProcess, module: str, port_variable: str | None = None,
              port: int | None = None) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(stack.popen.pid).children():
        try:
            if module not in child.cmdline() or child.status() == psutil.STATUS_ZOMBIE:
                continue
            if port_variable is None or child.environ().get(port_variable) == str(port):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _balanced(stack: StackProcess, variable: str) -> str:
    base = stack.port(variable)
    return f"ipv4:127.0.0.1:{base},127.0.0.1:{base + REPLICA_PORT_STEP}"


async def _case_reaches_active(address: str) -> str:
    key = uuid.uuid4().hex[:10]
    request = case_pb2.CreateApplicationRequest(
        idempotency_key=f"replicas-{key}",
        receiving_parent=case_pb2.Party(party_id=f"rp-{key}", full_name="Receiving Parent", address="1 Test Street, Testtown"),
        paying_parent=case_pb2.Party(party_id=f"pp-{key}", full_name="Paying Parent", address="2 Test Road, Othertown"),
        children=[case_pb2.Child(child_id="c-1", date_of_birth="2017-03-01")],
        application_date=date.today().isoformat(), requested_by=f"rp-{key}",
    )
    async with caller_channel(address, options=BALANCED) as channel:
        stub = case_pb2_grpc.CaseServiceStub(channel)
        case_id = (await stub.CreateApplication(request, timeout=30)).case_id
        deadline = time.monotonic() + ACTIVE_TIMEOUT
        stage = ""
        while time.monotonic() < deadline:
            stage = (await stub.GetCase(case_pb2.GetCaseRequest(case_id=case_id, viewer_party_id=f"rp-{key}"),
                                        timeout=10)).stage
            if stage == "Active":
                return case_id
            await asyncio.sleep(1)
    raise AssertionError(f"case {case_id} stuck at {stage!r} with one of each killed")


def test_every_process_runs_twice(stack: StackProcess) -> None:
    assert len(_children(stack, "cms.worker")) == 2
    for name in SERVICES:
        module = f"services.{name.lower()}"
        base = stack.port(f"{name}_PORT")
        for port in (base, base + REPLICA_PORT_STEP):
            assert len(_children(stack, module, f"{name}_PORT", port)) == 1, f"{module} on {port}"


def test_with_one_of_each_killed_the_others_carry_cases_to_active(stack: StackProcess) -> None:
    with ExitStack() as held:
        for name in ("CASE_API", "PAYMENTS"):
            port = stack.port(f"{name}_PORT")
            (victim,) = _children(stack, f"services.{name.lower()}", f"{name}_PORT", port)
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
            # Hold its port so no restart can serve there: a caller's connection is accepted by the
            # kernel and never answered, as with a hung process.
            squatter = held.enter_context(socket.socket())
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
        os.kill(_children(stack, "cms.worker")[0].pid, signal.SIGKILL)
        case_id = asyncio.run(_case_reaches_active(_balanced(stack, "CASE_API_PORT")))
    assert case_id

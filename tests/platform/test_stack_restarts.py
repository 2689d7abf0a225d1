"""`make run` keeps the stack up when one of its processes dies, and says why it died.

One real stack on free ports serves the whole module. Each kind of child is killed with SIGKILL
in turn: the stack must name the signal, bring the child back serving, and carry a case created
just before the kill through to Active. Meanwhile a service fails at every start (its port taken
while it was down): it must be given up after the limit, in one line, with the rest still
serving. Last, Ctrl-C must still stop everything, restarted children included. The tests run in
this order, and each also passes alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import grpc
import psutil
import psycopg
import pytest

from cms.infra.postgres import postgres_url
from cms.stack import TEMPORAL_FRONTEND, health_status
from cms_proto.case.v1 import case_pb2, case_pb2_grpc
from services import SERVICES_BY_NAME
from tests.helpers.auth import caller_channel
from tests.platform.stack_process import StackProcess, descendants, metric, stack_env

# One case-calendar day in seconds: a new case waits 2 days for its initial effective date, so it
# is still on its way to Active when its child is killed a moment after it was created.
SECONDS_PER_DAY = "2"
START_TIMEOUT = 240     # the whole stack, on a machine shared with other work
BACK_TIMEOUT = 60       # a killed child reported, restarted and serving again
ACTIVE_TIMEOUT = 120    # a case through the outage to Active


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    data_dir = tmp_path_factory.mktemp("restarts") / "data"
    running = StackProcess(stack_env(data_dir, CMS_SECONDS_PER_DAY=SECONDS_PER_DAY))
    try:
        running.wait_for_line("[cms] ready.", timeout=START_TIMEOUT)
        yield running
    finally:
        running.stop()


@dataclass
class FailingChild:
    name: str
    port: int
    mark: int     # index of the stack's first line after the kill


@pytest.fixture(scope="module")
def risk_failing_at_every_start(stack: StackProcess) -> Iterator[FailingChild]:
    """The risk service killed and its port taken, so that every restart fails at once.

    Set up before the kill tests, which take it: the rest of the stack must recover from their
    kills while one child fails over and over, and its 15 s of backoff pass meanwhile. No case
    needs the risk service to reach Active."""
    port = stack.port("RISK_PORT")
    victim = stack.child_pid("risk")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        mark = len(stack.lines)
        os.kill(victim, signal.SIGKILL)
        psutil.Process(victim).wait(10)  # the kernel has closed its listening socket
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        yield FailingChild("risk", port, mark)


def _application(key: str) -> case_pb2.CreateApplicationRequest:
    return case_pb2.CreateApplicationRequest(
        idempotency_key=f"restart-{key}",
        receiving_parent=case_pb2.Party(party_id=f"rp-{key}", full_name="Receiving Parent", address="1 Test Street, Testtown"),
        paying_parent=case_pb2.Party(party_id=f"pp-{key}", full_name="Paying Parent", address="2 Test Road, Othertown",
                                     employer="Example Ltd"),
        children=[case_pb2.Child(child_id="c-1", date_of_birth="2017-03-01")],
        application_date=date.today().isoformat(), requested_by=f"rp-{key}",
    )


async def _create_case(address: str) -> tuple[str, str]:
    """A new application through the case API; returns (case id, receiving parent's party id)."""
    key = uuid.uuid4().hex[:10]
    async with caller_channel(address) as channel:
        reply = await case_pb2_grpc.CaseServiceStub(channel).CreateApplication(_application(key), timeout=30)
    return reply.case_id, f"rp-{key}"


async def _stage(address: str, case_id: str, viewer: str) -> str:
    async with caller_channel(address) as channel:
        try:
            case = await case_pb2_grpc.CaseServiceStub(channel).GetCase(
                case_pb2.GetCaseRequest(case_id=case_id, viewer_party_id=viewer), timeout=5)
        except grpc.aio.AioRpcError as error:
            return f"unreadable ({error.code().name})"
    return case.stage


async def _wait_for_stage(address: str, case_id: str, viewer: str, stage: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = await _stage(address, case_id, viewer)
        if seen == stage:
            return
        await asyncio.sleep(1)
    raise AssertionError(f"case {case_id} never reached {stage}; last seen {seen!r}")


def _metrics(stack: StackProcess) -> str:
    port = stack.port("STACK_METRICS_PORT")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def _serves(stack: StackProcess, process: str) -> bool:
    """Whether the child answers as it should: its health check, its database, or it runs."""
    if process == "temporal":
        return asyncio.run(health_status(f"127.0.0.1:{stack.port('TEMPORAL_PORT')}", TEMPORAL_FRONTEND)) == "SERVING"
    if process == "postgres":
        with psycopg.connect(postgres_url(stack.port("POSTGRES_PORT")), connect_timeout=5) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    if process in SERVICES_BY_NAME:
        address = f"127.0.0.1:{stack.port(process.upper() + '_PORT')}"
        return asyncio.run(health_status(address, SERVICES_BY_NAME[process].full_name)) == "SERVING"
    return psutil.Process(stack.child_pid(process)).is_running()


@pytest.mark.parametrize("process", ["temporal", "postgres", "case_api", "payments", "worker", "demo-bank-feed"])
def test_a_child_killed_with_sigkill_comes_back_and_a_case_still_reaches_active(
        stack: StackProcess, risk_failing_at_every_start: FailingChild, process: str) -> None:
    case_api = f"127.0.0.1:{stack.port('CASE_API_PORT')}"
    case_id, viewer = asyncio.run(_create_case(case_api))
    stage_at_kill = asyncio.run(_stage(case_api, case_id, viewer))
    assert stage_at_kill in ("Application", "Assessment"), f"the case was {stage_at_kill!r} before the kill"
    restarts_before = metric(_metrics(stack), "cms_stack_restarts_total", process)
    victim = stack.child_pid(process)
    mark = len(stack.lines)

    os.kill(victim, signal.SIGKILL)

    down = stack.wait_for_line(f"DOWN: {process} killed by SIGKILL", timeout=BACK_TIMEOUT, after=mark)
    assert f"/logs/{process.replace('-', '_')}.log)" in down and "restarting in 1 s" in down
    stack.wait_for_line(f"UP: {process} is", timeout=BACK_TIMEOUT, after=mark)
    assert stack.child_pid(process) != victim
    assert _serves(stack, process)
    asyncio.run(_wait_for_stage(case_api, case_id, viewer, "Active", timeout=ACTIVE_TIMEOUT))
    said = "\n".join(line for line in stack.lines[mark:] if f" {process} " in line)
    assert metric(_metrics(stack), "cms_stack_restarts_total", process) == (restarts_before or 0) + 1, said
    assert metric(_metrics(stack), "cms_stack_process_up", process) == 1


def test_a_service_failing_at_every_start_is_given_up_in_one_line_and_the_rest_stay_up(
        stack: StackProcess, risk_failing_at_every_start: FailingChild) -> None:
    risk = risk_failing_at_every_start
    given_up = stack.wait_for_line("GIVEN UP: risk", timeout=BACK_TIMEOUT + 60, after=risk.mark)
    # While it is down, its port answers no health check of the risk service.
    assert asyncio.run(health_status(f"127.0.0.1:{risk.port}", SERVICES_BY_NAME["risk"].full_name)) != "SERVING"

    after = stack.lines[risk.mark:]
    assert [line for line in after if "GIVEN UP" in line] == [given_up]
    assert "GIVEN UP: risk stays down after 5 failures within 2 minutes" in given_up
    assert given_up.endswith("/logs/risk.log)")
    downs = [line for line in after if line.startswith("[cms] DOWN: risk")]
    assert downs[0].startswith("[cms] DOWN: risk killed by SIGKILL")
    assert [line.split("; restarting in ")[1] for line in downs] == ["1 s", "2 s", "4 s", "8 s"]
    # Each start failed at once on the taken port, and said so.
    port_taken = f'risk exited with 1; last error: "error: risk: port {risk.port} (risk) is already in use'
    failed_starts = [*downs[1:], given_up]
    assert all(port_taken in line for line in failed_starts), failed_starts

    assert stack.popen.poll() is None
    for name in ("temporal", "postgres", "case_api", "payments", "notifications"):
        assert _serves(stack, name), f"{name} stopped serving"
    exposition = _metrics(stack)
    assert metric(exposition, "cms_stack_process_up", "risk") == 0
    assert metric(exposition, "cms_stack_restarts_total", "risk") == 4
    for name in ("temporal", "postgres", "case_api", "payments", "notifications", "worker", "demo-bank-feed"):
        assert metric(exposition, "cms_stack_process_up", name) == 1, name


def test_ctrl_c_after_restarts_stops_every_child_leaving_no_orphans(stack: StackProcess) -> None:
    children = descendants(stack.popen.pid)
    assert children, "the stack has no children to stop"
    assert stack.stop() == 0
    assert stack.lines[-1] == "[cms] stopped."
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [], f"orphans left behind: {[(p.pid, p.name()) for p in alive]}"
    data_dir = Path(stack.env["CMS_DATA_DIR"])
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if p.info["cmdline"] and str(data_dir) in " ".join(p.info["cmdline"])]
    assert leftovers == []

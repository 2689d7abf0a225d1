"""Children of `make run` as cms/infra/processes.py starts them: they can be started from a
process busy with gRPC calls, and they die with their parent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cms.config import REPO_ROOT
from cms.infra.processes import ManagedProcess, free_port

LAUNCHES = 150


async def _health_checks_forever(address: str) -> None:
    while True:
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.01)


async def test_children_started_while_grpc_calls_are_in_flight_start_every_time(tmp_path: Path) -> None:
    # The stack restarts children while it probes the others with gRPC health checks. Forking a
    # copy of such a process (subprocess with preexec_fn) let gRPC's fork handlers abort the
    # copy now and then, before the child even began: about one start in twenty.
    address = f"127.0.0.1:{free_port()}"  # nothing listens: each check fails fast, over and over
    probes = [asyncio.create_task(_health_checks_forever(address)) for _ in range(4)]
    failed = []
    try:
        child = ManagedProcess("true", ["true"], tmp_path / "true.log")
        for _ in range(LAUNCHES):
            child.start()
            while child.running:
                await asyncio.sleep(0.005)
            if child.returncode != 0:
                failed.append(child.returncode)
    finally:
        for probe in probes:
            probe.cancel()
        await asyncio.gather(*probes, return_exceptions=True)
    assert failed == [], f"{len(failed)} of {LAUNCHES} starts died: {failed}; log:\n{child.log_tail(5)}"


def test_a_child_dies_with_its_parent_even_when_the_parent_is_killed(tmp_path: Path) -> None:
    parent_program = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from cms.infra.processes import ManagedProcess\n"
        f"child = ManagedProcess('sleeper', ['sleep', '300'], Path({str(tmp_path / 'sleeper.log')!r})).start()\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_program], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        for _ in range(100):  # the launcher becomes the program, keeping its pid
            if child.cmdline() == ["sleep", "300"]:
                break
            time.sleep(0.1)
        assert child.ppid() == parent.pid and child.cmdline() == ["sleep", "300"]
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.1)
        else:
            child.kill()
            raise AssertionError("the child outlived its killed parent")
    finally:
        if parent.poll() is None:
            parent.kill()

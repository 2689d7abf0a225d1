"""`make run`'s stack script: starts everything, every health check SERVING, stops cleanly.

Runs the real script as a subprocess on free ports with its own data folder, so it does not
clash with a developer's running stack.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from cms.config import REPO_ROOT
from cms.infra.postgres import SERVER_USER
from cms.infra.processes import free_port
from tests.platform.stack_process import descendants as _descendants
from tests.platform.stack_process import stack_env as _stack_env


def _wait_for_line(process: subprocess.Popen, needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            lines.append(line.rstrip())
            if needle in line:
                return lines
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.2)
    raise AssertionError(f"never saw {needle!r}; output was:\n" + "\n".join(lines))


def _assert_only_the_owner_reads_the_data(data: Path) -> None:
    """Keys, the Temporal database (every case's history) and PostgreSQL's files: no other user
    of the machine reads them. As root, PostgreSQL runs as its own user, whose group alone may
    pass through the data folder to reach its files (0710), never list or read it."""
    folder = data.stat()
    assert stat.S_IMODE(folder.st_mode) in (0o700, 0o710), oct(folder.st_mode)
    if stat.S_IMODE(folder.st_mode) == 0o710:
        assert folder.st_gid == pwd.getpwnam(SERVER_USER).pw_gid
    # The keys come from the test session's environment here; the token and the database are made.
    assert (data / "codec-server-token").is_file() and (data / "temporal.db").is_file()
    for path in [*data.iterdir(), *(data / "logs").iterdir()]:
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert stat.S_IMODE((data / "postgres").stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "logs").stat().st_mode) == 0o700


def test_stack_starts_serves_and_stops_cleanly(tmp_path: Path) -> None:
    env = _stack_env(tmp_path / "data")
    stack = subprocess.Popen([sys.executable, "-m", "cms.stack"], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = _wait_for_line(stack, "Ctrl-C stops everything", timeout=180)  # the last line of the URLs
        assert sum("SERVING" in line for line in lines) == 4
        with urllib.request.urlopen(f"http://127.0.0.1:{env['TEMPORAL_UI_PORT']}/", timeout=10) as ui:
            assert ui.status == 200
        # The caseworker console, with the dev issuer's sign-in page.
        with urllib.request.urlopen(f"http://127.0.0.1:{env['CONSOLE_PORT']}/sign-in", timeout=10) as console:
            assert console.status == 200 and "Staff ID" in console.read().decode()
        assert any(f"http://127.0.0.1:{env['STACK_METRICS_PORT']}/metrics" in line for line in lines)
        processes = ("temporal", "postgres", "case_api", "payments", "notifications", "risk", "worker", "console")
        for _ in range(20):  # a child is shown up once its readiness probe answered
            with urllib.request.urlopen(f"http://127.0.0.1:{env['STACK_METRICS_PORT']}/metrics", timeout=10) as metrics:
                exposition = metrics.read().decode()
            if all(f'cms_stack_process_up{{process="{p}"}} 1.0' in exposition for p in processes):
                break
            time.sleep(0.5)
        for process in processes:
            assert f'cms_stack_restarts_total{{process="{process}"}} 0.0' in exposition
            assert f'cms_stack_process_up{{process="{process}"}} 1.0' in exposition
        _assert_only_the_owner_reads_the_data(tmp_path / "data")
        children = _descendants(stack.pid)
        assert len(children) >= 6  # temporal, postgres, four services, worker (postgres forks more)
        stack.send_signal(signal.SIGINT)
        assert stack.wait(60) == 0
        _wait_for_line(stack, "stopped.", timeout=5) if stack.stdout and not stack.stdout.closed else None
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"orphans left behind: {[p.info if hasattr(p, 'info') else p.pid for p in alive]}"
    finally:
        if stack.poll() is None:
            stack.kill()


def test_busy_port_gives_one_clear_line_and_no_orphans(tmp_path: Path) -> None:
    env = _stack_env(tmp_path / "data")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(env["CASE_API_PORT"])))
        holder.listen()
        result = subprocess.run([sys.executable, "-m", "cms.stack"], cwd=REPO_ROOT, env=env,
                                capture_output=True, text=True, timeout=180)
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert error_lines[-1].startswith(f"error: port {env['CASE_API_PORT']} (case_api) is already in use")
    assert "Traceback" not in result.stderr
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if p.info["cmdline"] and str(tmp_path) in " ".join(p.info["cmdline"])]
    assert leftovers == []


def test_busy_stack_metrics_port_gives_one_clear_line_before_anything_starts(tmp_path: Path) -> None:
    env = _stack_env(tmp_path / "data")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(env["STACK_METRICS_PORT"])))
        holder.listen()
        result = subprocess.run([sys.executable, "-m", "cms.stack"], cwd=REPO_ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: port {env['STACK_METRICS_PORT']} (the stack's metrics) is already in use")
    assert "starting the Temporal dev server" not in result.stdout


def test_unreachable_database_url_gives_one_clear_line(tmp_path: Path) -> None:
    env = _stack_env(tmp_path / "data")
    env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{free_port()}"
    result = subprocess.run([sys.executable, "-m", "cms.stack"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot reach")

"""`make run`'s stack script as a test drives it: a subprocess on free ports with its own data
folder (so it never clashes with a developer's running stack), and its output read as it comes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from cms.config import REPO_ROOT
from cms.infra.processes import free_port


def stack_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    env.update({
        "CMS_DATA_DIR": str(data_dir), "TEMPORAL_PORT": str(free_port()), "TEMPORAL_UI_PORT": str(free_port()),
        "POSTGRES_PORT": str(free_port()), "CASE_API_PORT": str(free_port()), "PAYMENTS_PORT": str(free_port()),
        "NOTIFICATIONS_PORT": str(free_port()), "RISK_PORT": str(free_port()),
        "STACK_METRICS_PORT": str(free_port()), "CODEC_SERVER_PORT": str(free_port()), "CONSOLE_PORT": str(free_port()),
        "PYTHONPATH": str(REPO_ROOT),
    })
    env.update(extra)
    return env


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


class StackProcess:
    """`python -m cms.stack` running, with every line it prints kept in `lines`."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.popen = subprocess.Popen([sys.executable, "-m", "cms.stack"], cwd=REPO_ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, wanted: str | Callable[[str], bool], timeout: float, after: int = 0) -> str:
        """The first line from index `after` on that contains `wanted` (or satisfies it)."""
        matches = wanted if callable(wanted) else (lambda line: wanted in line)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if matches(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.popen.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"never saw {wanted!r}; the stack printed:\n" + "\n".join(self.lines))
                self._changed.wait(min(remaining, 1.0))

    def port(self, name: str) -> int:
        return int(self.env[name])

    def child_pid(self, process: str) -> int:
        """The pid of the stack's child called `process` (as the stack names it)."""
        wanted = {
            "temporal": lambda cmd: "start-dev" in cmd,
            "postgres": lambda cmd: Path(cmd[0]).name == "postgres" if cmd else False,
            "worker": lambda cmd: "cms.worker" in cmd,
            "demo-bank-feed": lambda cmd: "cms.demo_bank_feed" in cmd,
        }.get(process, lambda cmd: f"services.{process}" in cmd)
        for child in psutil.Process(self.popen.pid).children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE and wanted(child.cmdline()):
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        raise AssertionError(f"the stack has no running child {process!r}")

    def stop(self, timeout: float = 90) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(2)  # SIGINT: what Ctrl-C sends
        try:
            return self.popen.wait(timeout)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
                self.popen.wait(10)
            self._reader.join(5)


def metric(text: str, name: str, process: str) -> float | None:
    """One sample of the stack's /metrics text."""
    match = re.search(rf'^{re.escape(name)}{{process="{re.escape(process)}"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else None

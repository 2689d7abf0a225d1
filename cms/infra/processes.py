"""Child processes that die with their parent and stop in order.

Each child runs in its own session (so one Ctrl-C reaches only the supervisor, which then stops
children in a chosen order) and asks the kernel to send it SIGTERM if the supervisor dies,
so that a killed `make run` leaves no orphan servers behind. A child's session is also its
process group: whatever it forked (PostgreSQL's backends) is found there and ended with it.

Children are started through cms/infra/launch.py, which sets the parent-death signal and the
user, so that subprocess can vfork and exec rather than fork a copy of a parent running gRPC
(see there). The parent-death signal follows the *thread* that started the child, so children
are started from the main thread only (cms/infra/supervisor.py restarts them from the event loop).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cms.errors import StartupError

_LAUNCHER = Path(__file__).with_name("launch.py")


def launch_argv(argv: list[str], user: str | None = None) -> list[str]:
    """`argv` started through the launcher: it dies with this process, as `user` if given."""
    as_user = ["--user", user] if user else []
    return [sys.executable, "-I", "-S", str(_LAUNCHER), str(os.getpid()), *as_user, "--", *argv]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(host: str, port: int, what: str, env_var: str) -> None:
    if not port_is_free(host, port):
        raise StartupError(
            f"port {port} ({what}) is already in use on {host}: stop whatever holds it "
            f"(`ss -ltnp 'sport = :{port}'` shows it) or set {env_var} to another port"
        )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def as_user(user: str | None) -> dict:
    """subprocess arguments to run as `user` with its own group only (not root's groups)."""
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


# How much of a child's latest log to read when looking for why it stopped.
_LOG_READ_LIMIT = 256 * 1024


def live_group_members(group: int) -> list[int]:
    """The processes of process group `group` that still run (zombies, already dead, excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after it.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[2] == str(group) and fields[0] != "Z":
            members.append(int(entry.name))
    return members


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    popen: subprocess.Popen | None = None
    # Runs before every start, with this object (its `popen` still the previous run, if any):
    # PostgreSQL uses it to release the lock file its killed predecessor left behind.
    prepare: Callable[[ManagedProcess], None] | None = None
    # Size of the log when the current run started: its own lines come after this offset.
    log_offset: int = 0
    _stop_requested: bool = False

    def start(self) -> ManagedProcess:
        """Starts the process; called again after it stopped, starts a new run of it."""
        if shutil.which(self.argv[0]) is None:
            raise StartupError(
                f"{self.name}: cannot find {self.argv[0]}; run `make venv` (it installs it from requirements.lock)"
            )
        if self.prepare is not None:
            self.prepare(self)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.log_offset = log.tell()
            self._stop_requested = False
            self.popen = subprocess.Popen(
                launch_argv(self.argv, self.user),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status of the latest run once it ended: negative for a signal, as in Popen."""
        return self.popen.poll() if self.popen is not None else None

    def log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_of_latest_run(self) -> str:
        """What the latest run wrote to its log (its last 256 KiB at most)."""
        try:
            with open(self.log_path, "rb") as log:
                end = log.seek(0, os.SEEK_END)
                log.seek(max(self.log_offset, end - _LOG_READ_LIMIT))
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def group_alive(self) -> bool:
        return self.popen is not None and bool(live_group_members(self.popen.pid))

    def end_group(self, timeout: float = 5.0) -> bool:
        """After the process itself stopped, ends what it left running in its process group
        (PostgreSQL's backends outlive a killed postmaster for a moment and hold its shared
        memory); returns whether the group is gone."""
        if self.popen is None:
            return True
        group = self.popen.pid
        deadline = time.monotonic() + timeout
        while members := live_group_members(group):
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def request_stop(self) -> None:
        """Asks the process to stop (its stop signal, once) without waiting for it."""
        if self.popen is None or self.popen.poll() is not None or self._stop_requested:
            return
        self._stop_requested = True
        try:
            self.popen.send_signal(self.stop_signal)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stops the process (killed if it takes longer than `timeout`) and whatever it left in
        its process group; returns its exit status."""
        if self.popen is None:
            return None
        self.request_stop()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
        self.end_group()
        return self.popen.returncode

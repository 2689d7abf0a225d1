"""Keeps `make run`'s children running, the way an orchestrator keeps pods running.

A child that stops without being asked to (the Temporal dev server, PostgreSQL, a service, the
worker, the demo bank feed) is started again after a pause that doubles with each failure in a
row (1 s, 2 s, 4 s, … at most 30 s). A child that fails 5 times within 2 minutes is given up:
the operator is told once, and the rest of the stack keeps running.

Every stop is reported with its cause (`killed by SIGKILL`, `exited with 1`) and the child's
last *error* (the last record at level error, or a traceback), not its last log line: the last
line is often an ordinary business event logged moments before an outside kill.

The pure pieces (RestartPolicy, exit_reason, last_error, shown_path) carry the rules and are
tested without processes; Supervisor applies them to ManagedProcess children in the event loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from cms.config import REPO_ROOT
from cms.errors import StartupError

ReadinessProbe = Callable[[], Awaitable[bool]]
# starting: running, its readiness probe not yet answered; up: running (and serving);
# down: waiting out its pause before a restart; given up: left down until the next `make run`.
State = Literal["starting", "up", "down", "given up"]


class Supervised(Protocol):
    """What the supervisor needs of a child: cms.infra.processes.ManagedProcess provides it."""

    name: str
    log_path: Path

    @property
    def running(self) -> bool: ...

    @property
    def returncode(self) -> int | None: ...

    def start(self) -> object: ...

    def end_group(self, timeout: float = 5.0) -> bool: ...

    def log_of_latest_run(self) -> str: ...


# Longest quotation of a child's error in a message: enough for an exception and its text.
QUOTE_LIMIT = 240


# --- the rules ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 1.0        # seconds before the first restart
    max_delay: float = 30.0         # the doubling stops here
    max_failures: int = 5           # this many failures within `window` and the child is given up
    window: float = 120.0           # seconds

    def delay(self, failures_in_a_row: int) -> float:
        """Seconds to wait before restarting a child that has now failed `failures_in_a_row`
        times in a row: 1, 2, 4, 8, … capped at max_delay."""
        if failures_in_a_row < 1:
            raise ValueError("a restart follows at least one failure")
        return min(self.first_delay * 2 ** (failures_in_a_row - 1), self.max_delay)

    def gives_up(self, failure_times: Sequence[float], now: float) -> bool:
        """Whether a child whose failures happened at `failure_times` (monotonic seconds) is
        given up at `now`: max_failures of them fell within the last `window` seconds."""
        return sum(1 for moment in failure_times if now - moment <= self.window) >= self.max_failures

    def ran_long_enough_to_reset(self, uptime: float) -> bool:
        """A child that ran a whole window before failing starts its backoff afresh."""
        return uptime >= self.window

    def describe_window(self) -> str:
        minutes, seconds = divmod(int(self.window), 60)
        if seconds == 0 and minutes:
            return f"{minutes} minute{'s' if minutes != 1 else ''}"
        return f"{int(self.window)} s"


def exit_reason(returncode: int) -> str:
    """How a child ended, in words: `killed by SIGKILL`, `exited with 1` (a negative code is the
    signal that ended it, as subprocess reports it)."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with {returncode}"


_ERROR_LEVELS = {"error", "err", "critical", "fatal", "panic", "exception", "dpanic"}
_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
_POSTGRES_ERROR = re.compile(r"\b(ERROR|FATAL|PANIC):\s+(.*)")
# What PostgreSQL's backends log after their postmaster was killed: an effect of the death,
# never its cause, so it is not quoted as the error.
_AFTERMATH = ("terminating connection due to unexpected postmaster exit",)
_LOGFMT_ERROR = re.compile(r"\blevel=\"?(error|fatal|panic|critical)\b", re.IGNORECASE)
_LOGFMT_MESSAGE = re.compile(r"\bmsg=(\"(?:[^\"\\]|\\.)*\"|\S+)")
# A C program's own complaint before its logging starts: "postgres: could not access directory …".
_PROGRAM_ERROR = re.compile(r"^(postgres|initdb|pg_ctl|temporal): \S")
_GLOG_ERROR = re.compile(r"^[EF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+\S+\]\s*(.*)")


def last_error(log_text: str) -> str | None:
    """The last error a child logged, in one line, or None when it logged none.

    Counts as an error: a JSON record at level error or above (our structlog lines; Temporal's
    zap lines), a Python traceback printed outside any record (an exception nobody caught), the
    one-line `error: …` a process exits with, a logfmt or glog (gRPC core) record at level error,
    PostgreSQL's ERROR/FATAL/PANIC lines and a server binary's own `postgres: …` complaint. A warning that carries a traceback (an activity
    failing as a business outcome) is not an error.
    """
    lines = log_text.splitlines()
    found: str | None = None
    index = 0
    while index < len(lines):
        if lines[index].startswith(_TRACEBACK):
            index, raised = _end_of_traceback(lines, index)
            found = raised or found
            continue
        found = _error_in_record(lines[index]) or found
        index += 1
    return _one_line(found) if found else None


def _end_of_traceback(lines: list[str], start: int) -> tuple[int, str | None]:
    """Reads a traceback (with any chained ones) from lines[start]; returns the index after it
    and its last exception line, the one that was finally raised."""
    raised = None
    expecting_exception = True  # the next unindented line after frames names the exception
    index = start + 1
    while index < len(lines):
        line = lines[index]
        if line.startswith(_TRACEBACK):
            expecting_exception = True
        elif not line.strip() or line[0].isspace() or line.startswith(_CHAINED):
            pass
        elif expecting_exception:
            raised, expecting_exception = line.strip(), False
        else:
            break
        index += 1
    return index, raised


def _error_in_record(line: str) -> str | None:
    stripped = line.strip()
    if stripped.startswith("{"):
        return _error_in_json(stripped)
    if stripped.startswith(("error: ", "panic: ")) or _PROGRAM_ERROR.match(stripped):
        return stripped
    if match := _GLOG_ERROR.match(stripped):
        return match.group(1)
    if _LOGFMT_ERROR.search(stripped):
        message = _LOGFMT_MESSAGE.search(stripped)
        return message.group(1).strip('"') if message else stripped
    if (match := _POSTGRES_ERROR.search(stripped)) and not match.group(2).startswith(_AFTERMATH):
        return f"{match.group(1)}: {match.group(2)}"
    return None


def _error_in_json(line: str) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    level = str(record.get("level") or record.get("severity") or record.get("levelname") or "").lower()
    if level not in _ERROR_LEVELS:
        return None
    message = str(record.get("event") or record.get("msg") or record.get("message") or "error")
    exception, error = record.get("exception"), record.get("error")
    if isinstance(exception, str) and exception.strip():
        # A formatted traceback: its last line is the exception raised.
        return f"{message}: {exception.strip().splitlines()[-1].strip()}"
    if error:
        return f"{message}: {error}"
    return message


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTE_LIMIT else flat[:QUOTE_LIMIT - 1] + "…"


def shown_path(path: Path, project: Path = REPO_ROOT) -> str:
    """A log path as the operator should see it: relative to the project when inside it."""
    try:
        return str(path.resolve().relative_to(project.resolve()))
    except ValueError:
        return str(path)


def stop_message(name: str, reason: str, error: str | None, log: str) -> str:
    """Why `name` stopped: the exit reason, the last error quoted, where to read more."""
    quoted = f'last error: "{error}"' if error else "no error in its log"
    return f"{name} {reason}; {quoted} ({log})"


def give_up_message(name: str, failures: int, policy: RestartPolicy, why: str, rest_running: bool = True) -> str:
    """The one line that says a child is given up. Before the stack is ready, the stack stops
    after it (it cannot serve without the child), so it does not promise the rest runs on."""
    then = ("the rest of the stack keeps running; a new `make run` tries it again" if rest_running
            else "while the stack was starting")
    return f"GIVEN UP: {name} stays down after {failures} failures within {policy.describe_window()} ({then}). Last: {why}"


# --- the supervisor -------------------------------------------------------------------------

class StackMetrics:
    """The stack's own Prometheus metrics, served by `make run` (see cms/stack.py).

    `cms_stack_restarts_total{process}` counts restarts. It is a counter (exposed with its
    `_total` name): it only ever goes up, and Prometheus' rate() and increase() handle its reset
    when `make run` starts again. `cms_stack_process_up{process}` is 1 while a child serves.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.restarts = Counter("cms_stack_restarts", "Restarts of a process that stopped unexpectedly",
                                ["process"], registry=self.registry)
        self.up = Gauge("cms_stack_process_up", "1 while the process runs (and serves, where it has a "
                        "health check); 0 while it is down or given up", ["process"], registry=self.registry)

    def track(self, name: str) -> None:
        self.restarts.labels(process=name)
        self.up.labels(process=name).set(0)


@dataclass
class Child:
    """One supervised process and what the supervisor knows of it."""

    process: Supervised
    ready: ReadinessProbe | None = None
    state: State = "starting"
    started_at: float = 0.0
    failure_times: list[float] = field(default_factory=list)
    failures_in_a_row: int = 0
    restart_at: float = 0.0
    restarts: int = 0
    run: int = 0                      # increases with every start; a stale probe sees it changed
    last_failure: str = ""            # why it last stopped, in words (stop_message)

    @property
    def name(self) -> str:
        return self.process.name


class Supervisor:
    """Watches children and restarts those that stop, by `policy`; reports through `say`.

    Children are started by their owner (the stack) and handed over with `watch`; from then on
    the supervisor starts them again, always from the event loop's (main) thread.
    """

    def __init__(self, say: Callable[[str], None], policy: RestartPolicy | None = None,
                 metrics: StackMetrics | None = None, poll_interval: float = 0.2):
        self.say = say
        self.policy = policy or RestartPolicy()
        # Set by the stack once every service served: a child given up before then ends the start.
        self.stack_ready = False
        self.metrics = metrics or StackMetrics()
        self.poll_interval = poll_interval
        self.children: dict[str, Child] = {}
        self._task: asyncio.Task | None = None
        self._probes: set[asyncio.Task] = set()
        self._stopping = False

    def watch(self, process: Supervised, ready: ReadinessProbe | None = None) -> None:
        child = Child(process, ready, started_at=time.monotonic(), run=1)
        self.children[process.name] = child
        self.metrics.track(child.name)
        self._after_start(child, announce=False)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch_forever(), name="stack-supervisor")

    async def stop(self) -> None:
        """Stops supervising (no more restarts); the owner then stops the children."""
        self._stopping = True
        for task in [self._task, *self._probes]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [self._task, *self._probes] if t is not None), return_exceptions=True)

    def given_up(self, name: str) -> bool:
        return self.children[name].state == "given up"

    def is_up(self, name: str) -> bool:
        return self.children[name].state == "up"

    def last_failure(self, name: str) -> str:
        return self.children[name].last_failure

    async def _watch_forever(self) -> None:
        while not self._stopping:
            self.check(time.monotonic())
            await asyncio.sleep(self.poll_interval)

    def check(self, now: float) -> None:
        """One round: notices children that stopped, restarts those whose pause is over."""
        for child in self.children.values():
            if child.state in ("starting", "up") and not child.process.running:
                self._stopped(child, now)
            elif child.state == "down" and now >= child.restart_at:
                self._restart(child, now)

    def _stopped(self, child: Child, now: float) -> None:
        returncode = child.process.returncode
        child.process.end_group()
        reason = exit_reason(returncode) if returncode is not None else "stopped"
        self._failed(child, now, reason, last_error(child.process.log_of_latest_run()))

    def _failed(self, child: Child, now: float, reason: str, error: str | None) -> None:
        self.metrics.up.labels(process=child.name).set(0)
        if self.policy.ran_long_enough_to_reset(now - child.started_at):
            child.failures_in_a_row = 0
        child.failures_in_a_row += 1
        child.failure_times = [t for t in child.failure_times if now - t <= self.policy.window] + [now]
        why = child.last_failure = stop_message(child.name, reason, error, shown_path(child.process.log_path))
        if self.policy.gives_up(child.failure_times, now):
            child.state = "given up"
            self.say(give_up_message(child.name, len(child.failure_times), self.policy, why, self.stack_ready))
            return
        delay = self.policy.delay(child.failures_in_a_row)
        child.state = "down"
        child.restart_at = now + delay
        self.say(f"DOWN: {why}; restarting in {delay:g} s")

    def _restart(self, child: Child, now: float) -> None:
        child.run += 1
        child.started_at = now
        child.restarts += 1
        self.metrics.restarts.labels(process=child.name).inc()
        try:
            child.process.start()
        except StartupError as error:
            self._failed(child, now, "could not start", str(error))
            return
        self._after_start(child, announce=True)

    def _after_start(self, child: Child, announce: bool) -> None:
        if child.ready is None:
            self._now_up(child, announce)
            return
        child.state = "starting"
        probe = asyncio.get_running_loop().create_task(self._wait_ready(child, child.run, announce))
        self._probes.add(probe)
        probe.add_done_callback(self._probes.discard)

    async def _wait_ready(self, child: Child, run: int, announce: bool) -> None:
        assert child.ready is not None
        while child.run == run and child.state == "starting" and child.process.running:
            try:
                ready = await child.ready()
            except Exception:  # a probe that fails in an unforeseen way means "not yet", never a dead supervisor
                ready = False
            if ready:
                if child.run == run and child.state == "starting":
                    self._now_up(child, announce)
                return
            await asyncio.sleep(0.5)

    def _now_up(self, child: Child, announce: bool) -> None:
        child.state = "up"
        self.metrics.up.labels(process=child.name).set(1)
        if announce:
            serving = "serving again" if child.ready is not None else "running again"
            self.say(f"UP: {child.name} is {serving} (restart {child.restarts})")

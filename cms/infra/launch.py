"""Starts one child of `make run` so that it dies with its parent, then becomes that child.

    python -I -S cms/infra/launch.py <parent pid> [--user NAME] -- <program> <arguments…>

Asks the kernel for SIGTERM when the parent dies (Linux), drops to an unprivileged user when
asked (PostgreSQL refuses to run as root), and replaces itself with the program: same pid, same
session, same environment. Standard library only, run by path with `-S`: it starts in a few
milliseconds and needs nothing from the project.

Why a launcher rather than subprocess's preexec_fn: preexec_fn (and user=/group=) make
subprocess fork a full copy of the parent and run Python code in it before exec. `make run`'s
process runs gRPC (health checks of its children, the demo's calls), and gRPC's fork handlers
abort such a copy now and then (`Check failed: next_worker->initialized_cv`), so a restarted
child would die before it began. Without them, subprocess uses vfork and exec, which is safe.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import sys

_PR_SET_PDEATHSIG = 1
CANNOT_RUN = 127  # the shell's code for a program that could not be run


def _die_with_parent(parent: int) -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        return  # not Linux: the parent stops its children itself
    if os.getppid() != parent:  # the parent died before the request took effect
        raise SystemExit(0)


def _become(user: str) -> None:
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


def main(args: list[str]) -> None:
    parent, rest = int(args[0]), args[1:]
    user = None
    if rest[:1] == ["--user"]:
        user, rest = rest[1], rest[2:]
    if rest[:1] != ["--"] or len(rest) < 2:
        raise SystemExit("usage: launch.py <parent pid> [--user NAME] -- <program> <arguments…>")
    program = rest[1:]
    _die_with_parent(parent)
    if user is not None:
        _become(user)
    try:
        os.execvp(program[0], program)
    except OSError as error:
        print(f"error: cannot run {program[0]}: {error.strerror}", file=sys.stderr)
        raise SystemExit(CANNOT_RUN) from None


if __name__ == "__main__":
    main(sys.argv[1:])

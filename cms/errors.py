"""Start-up faults that end in one clear line for the operator, not a traceback."""


class StartupError(Exception):
    """Something the operator must fix (a busy port, a missing binary, an unreachable database).

    The message says what is wrong and how to fix it, in one line.
    """

"""Process exit codes, defined once."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    BELOW_THRESHOLD = 3
    """`grader eval --fail-under` was not met."""
    INTERRUPTED = 130
    TERMINATED = 143
    """SIGTERM, handled as Ctrl-C is (128 + 15, as a shell reports it)."""

"""Process exit codes, defined once."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    BELOW_THRESHOLD = 3
    """`grader eval --fail-under` was not met."""
    INTERRUPTED = 130

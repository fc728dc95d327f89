"""Exit codes of every `okrflow` command, and the error an operator can cause.

Each failure an operator can cause ends in one line on stderr, no traceback, and one of these
codes (docs/cli.md, "Exit codes", lists them). A command raises `OperatorError(code, line)`;
`okrflow.cli.main` prints the line and exits with the code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # anything not listed below (a bug: run with --log-level DEBUG and report it)
    USAGE = 2  # a bad flag value, setting, argument or input file (also argparse's code)
    STOPPED_TO_PROTECT_DATA = 3  # the worker stopped on purpose (offsets, invalid share)
    CHANGES_PENDING = 4  # `apply --dry-run --detailed-exitcode`: the plan would change things
    DATABASE_UNREACHABLE = 5  # a wrong database URL, or the database did not answer in time
    KAFKA_UNREACHABLE = 6  # Kafka did not answer before the start-up deadline
    PORT_IN_USE = 7  # an HTTP port could not be bound
    SCHEMA_MISMATCH = 8  # the database schema is older (run `okrflow db upgrade`) or newer
    KAFKA_LAYOUT = 9  # the topics exist in a shape okrflow cannot use
    NOT_FOUND = 10  # a shop, objective or key result that does not exist
    STOP_TIMED_OUT = 11  # a worker still stopping OKRFLOW_WORKER_STOP_SECONDS after SIGTERM
    NOT_RUNNING = 12  # `kafka status`: no okrflow broker is running
    INTERRUPTED = 130  # Ctrl-C
    CLOSED_PIPE = 141  # the reader of stdout went away (128 + SIGPIPE), e.g. `| head -1`


class OperatorError(RuntimeError):
    """A failure the operator can fix: `str(exc)` is the one line to print."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code

"""A reader that closes the pipe early (`okrflow progress --format json | head -1`) ends the
command quietly: no traceback, no "Exception ignored" at exit.

`quiet_broken_pipe(run)` runs a command and flushes its output; on BrokenPipeError it points
stdout at /dev/null, as the Python docs recommend (library/signal.html, "Note on SIGPIPE"), so
the interpreter's final flush cannot fail again, and returns 141: the shell's code for a
process ended by SIGPIPE (128 + 13), what `cat`, `yes` and other Unix tools give in the same
pipe. So `set -o pipefail` scripts see the output was cut, as they would with those tools.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from okrflow.exitcodes import ExitCode

CLOSED_PIPE = ExitCode.CLOSED_PIPE  # 128 + SIGPIPE


def quiet_broken_pipe(run: Callable[[], int]) -> int:
    """`run()`'s exit code; CLOSED_PIPE, silently, if stdout's reader went away."""
    try:
        code = run()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return CLOSED_PIPE

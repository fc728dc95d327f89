"""A closed pipe ends a command quietly, with the SIGPIPE convention's exit code."""

from __future__ import annotations

import subprocess
import sys

from okrflow.clipipe import CLOSED_PIPE, quiet_broken_pipe

WRITER = """
import sys
from okrflow.clipipe import quiet_broken_pipe

def run():
    for i in range(200_000):
        print(f"line {i} " + "x" * 60)
    return 0

sys.exit(quiet_broken_pipe(run))
"""


def test_a_reader_that_stops_early_ends_the_writer_quietly() -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert writer.stdout is not None and writer.stderr is not None
    first = writer.stdout.readline()
    writer.stdout.close()  # like `| head -1`
    stderr = writer.stderr.read().decode()
    assert writer.wait(timeout=60) == CLOSED_PIPE == 141
    assert first == b"line 0 " + b"x" * 60 + b"\n"
    assert stderr == ""  # no traceback, no "Exception ignored ... BrokenPipeError"


def test_the_command_s_own_code_is_kept_when_the_pipe_stays_open() -> None:
    assert quiet_broken_pipe(lambda: 7) == 7

"""A child dies with its parent: even when the parent died before the child asked the kernel
(the pid passed in no longer matches), and when the parent is killed with SIGKILL later."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import signal, sys, time
from okrflow.ops.lifeline import die_with_parent
die_with_parent(int(sys.argv[1]), signal.SIGTERM)
print("watching", flush=True)
time.sleep(60)
"""

# A parent that starts CHILD with its own pid, prints the child's pid, and waits.
PARENT = f"""
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {CHILD!r}, str(os.getpid())])
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_parent_already_gone_is_noticed_at_once() -> None:
    # The pid passed in is not this child's parent: as if the parent had died (and the child
    # been re-parented) before die_with_parent ran.
    not_the_parent = os.getpid() + 1_000_000
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(not_the_parent)], capture_output=True, timeout=30
    )
    assert child.returncode == -signal.SIGTERM
    assert b"watching" not in child.stdout


def test_a_child_stops_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        time.sleep(0.5)  # the child is watching (or still starting: either way it must go)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:  # bounded
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        parent.kill()

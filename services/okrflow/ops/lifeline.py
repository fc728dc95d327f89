"""Child processes that die with their parent, at every moment of their life.

Three layers, because each alone has a gap:
1. `PR_SET_PDEATHSIG` (Linux `prctl`): the kernel signals the child the instant its parent
   dies, even on SIGKILL. It is asked for by the child, so a parent that died before the
   child got that far is missed; and it is tied to the parent *thread* that started the
   child (okrflow starts its children from the main thread, or from its event loop's, which
   is the main thread, and both live as long as the process).
2. The parent's pid, passed in by the parent (never `os.getppid()` read by the child, which
   is already init's or a subreaper's once the parent is gone): checked right after the
   prctl, which closes layer 1's gap.
3. A watcher thread comparing `os.getppid()` with that pid every `poll_seconds`: for systems
   without prctl.

Written here, not taken from a library: the whole mechanism is one syscall and a comparison
(python-prctl wraps the syscall but needs a C build; ctypes reaches libc as it is).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from okrflow.exitcodes import ExitCode

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 0.5


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send `signum` to this process when its parent dies; False where
    there is no prctl (not Linux, no libc found)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    return int(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0


def die_with_parent(
    parent: int,
    signum: int = signal.SIGTERM,
    *,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Make this process end when process `parent` (its parent's pid, as the parent saw it)
    is gone: `signum` is delivered to it (SIGTERM: a graceful stop, which okrflow's worker
    bounds; SIGKILL: at once). Returns at once; a daemon thread watches."""

    def orphaned() -> None:
        os.kill(os.getpid(), signum)

    set_parent_death_signal(signum)
    if os.getppid() != parent:  # the parent died before the prctl: nobody will signal us
        orphaned()
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        logger.warning("parent process %d is gone: stopping", parent)
        orphaned()

    threading.Thread(target=watch, name="okrflow-parent-watch", daemon=True).start()


def preexec_die_with(parent: int) -> Callable[[], None]:
    """A `subprocess.Popen(preexec_fn=...)` that makes the child (after exec too) receive
    SIGTERM when `parent` dies, and exit at once if it already has. Safe in a single-threaded
    parent only (Python's rule for preexec_fn)."""

    def preexec() -> None:
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(ExitCode.FAILED)

    return preexec

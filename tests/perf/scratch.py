"""The benchmarks' scratch folders: removed when the run ends, unless asked to keep them.

A benchmark's folder holds a Kafka log and a database: 1-5 GB for a 1,000,000 or
10,000,000-event run. Left behind, a few runs fill a disk (and then every test on the
machine fails with "No space left on device").
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tempfile
from pathlib import Path


def add_keep_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep", action="store_true",
        help="keep the scratch folder (Kafka's log, the database, the workers' logs) after the run",
    )  # fmt: skip


def scratch_dir(prefix: str, keep: bool) -> Path:
    """A new folder under the system's temporary one, removed at interpreter exit unless `keep`.

    Removal runs after `main` has returned or raised, so after its `finally` blocks have
    stopped the broker and the database servers that write into the folder.
    """
    work = Path(tempfile.mkdtemp(prefix=prefix))
    if keep:
        atexit.register(print, f"kept {work}", file=sys.stderr)
    else:
        atexit.register(shutil.rmtree, work, True)
    return work

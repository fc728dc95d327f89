"""Conditions that stop the worker on purpose, with one line that says why and what to do."""

from __future__ import annotations

from okrflow.exitcodes import ExitCode


class WorkerFatal(RuntimeError):
    """Stop the worker without applying what it holds; `str(exc)` is the operator's line."""

    exit_code = ExitCode.STOPPED_TO_PROTECT_DATA

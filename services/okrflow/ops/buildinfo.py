"""`okrflow_build_info` and the standard process metrics, on every okrflow `/metrics`."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Info,
)

import okrflow


def okrflow_version() -> str:
    """The installed distribution's version (the package's own when run from a checkout)."""
    try:
        return version("okrflow")
    except PackageNotFoundError:
        return okrflow.__version__


def process_registry(component: str) -> CollectorRegistry:
    """A registry holding `okrflow_build_info{version,python,component}` and the standard
    process (`process_*`), platform (`python_info`) and garbage-collector metrics."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    Info("okrflow_build", "okrflow's version and the Python running it", registry=registry).info(
        {
            "version": okrflow_version(),
            "python": platform.python_version(),
            "component": component,
        }
    )
    return registry

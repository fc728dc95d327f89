"""The supervisor's pure parts: restart backoff, per-process settings, the process count."""

from __future__ import annotations

import os
from pathlib import Path

from okrflow.exitcodes import ExitCode
from okrflow.ingest.supervisor import OPERATOR_CODES, process_count, process_settings, restart_delay
from okrflow.settings import Settings


def test_restart_delay_doubles_from_one_second_to_thirty() -> None:
    assert [restart_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert restart_delay(10_000) == 30


def test_each_process_has_its_own_data_folder_and_port() -> None:
    settings = Settings(worker_data_dir=Path("/data/w"), worker_metrics_port=9465)
    children = [process_settings(settings, i) for i in range(3)]
    assert [c.worker_data_dir for c in children] == [Path(f"/data/w/process-{i}") for i in range(3)]
    assert [c.worker_metrics_port for c in children] == [9465, 9466, 9467]
    assert {c.worker_processes for c in children} == {1}
    assert children[1].database_url == settings.database_url


def test_no_metrics_port_stays_none_for_every_process() -> None:
    settings = Settings(worker_metrics_port=0)
    assert {process_settings(settings, i).worker_metrics_port for i in range(4)} == {0}


def test_zero_processes_means_one_per_core() -> None:
    assert process_count(Settings(worker_processes=0)) == (os.cpu_count() or 1)
    assert process_count(Settings(worker_processes=3)) == 3


def test_operator_codes_are_not_restarted_but_a_crash_is() -> None:
    assert {int(c) for c in OPERATOR_CODES} == {2, 3, 5, 6, 7, 8, 9}
    assert ExitCode.FAILED not in OPERATOR_CODES

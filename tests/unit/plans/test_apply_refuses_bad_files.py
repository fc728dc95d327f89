"""`okrflow apply` as a real process on bad plan files: exit 2, one located line, no
traceback, and no database created (the files are checked before the database is opened)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.plans.bad_plans import BAD, Bad


@pytest.mark.parametrize("bad", BAD, ids=lambda b: b.name)
def test_apply_refuses_a_bad_file_without_creating_the_database(tmp_path: Path, bad: Bad) -> None:
    plan = tmp_path / f"{bad.name}.yaml"
    plan.write_bytes(bad.content)
    database = tmp_path / "okrflow.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKRFLOW_")}
    env["OKRFLOW_DATABASE_URL"] = f"sqlite:///{database}"
    result = subprocess.run(
        [sys.executable, "-m", "okrflow", "apply", str(plan)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        bad.problem(str(plan)),
        "okrflow apply: 1 problem(s); nothing was applied",
    ]
    assert result.stdout == ""
    assert not database.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [plan.name]  # no -wal, no -journal

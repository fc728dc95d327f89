"""`okrflow revisions list|show` through the real CLI, on SQLite and PostgreSQL: the history
of `apply` newest first, a revision's changes and its file byte for byte, unknown ids and
missing databases as one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa

from okrflow.store.engine import make_engine
from tests.integration.processes import okrflow, okrflow_env

# Not ASCII, CRLF line ends and no final line end: --source-only must give back these bytes.
PLAN = (
    "shop: {shop}\r\n"
    "timezone: Europe/Rome\r\n"
    "objectives:\r\n"
    "  - key: more-clients\r\n"
    "    title: Più clienti\r\n"
    "    owner: marketing\r\n"
    "    period: {{start: 2026-01-01, end: 2026-12-31}}\r\n"
    "    key_results:\r\n"
    "      - key: new-clients\r\n"
    "        metric: {{event: customer.created, aggregate: count}}\r\n"
    "        target: {target}"
)


def _apply(env: dict[str, str], path: Path, text: str) -> int:
    path.write_bytes(text.encode())
    result = okrflow(env, "apply", str(path))
    assert result.returncode == 0, result.stderr
    found = re.search(r"applied as revision (\d+)", result.stdout)
    assert found, result.stdout
    return int(found.group(1))


def _one_line(result: subprocess.CompletedProcess[str], code: int, expected: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert expected in result.stderr, result.stderr


def test_revisions_list_and_show_the_history_of_apply(database_url: str, tmp_path: Path) -> None:
    env = okrflow_env(database_url=database_url)
    plan = tmp_path / "okrs.yaml"
    first = _apply(env, plan, PLAN.format(shop="salone-bella", target=10))
    other = _apply(env, tmp_path / "other.yaml", PLAN.format(shop="tiktok-studio", target=5))
    second_text = PLAN.format(shop="salone-bella", target=12)
    second = _apply(env, plan, second_text)
    assert first < other < second

    listed = okrflow(env, "revisions", "list", "--shop", "salone-bella", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [second, first]
    assert {r["shop"] for r in rows} == {"salone-bella"}
    assert [r["change_count"] for r in rows] == [1, 2]
    assert rows[0]["first_change"].startswith("changed  key result more-clients/new-clients")
    assert "target: 10 -> 12" in rows[0]["first_change"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[0]["applied_at"])

    table = okrflow(env, "revisions", "list")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["ID", "SHOP"]
    assert [line.split()[0] for line in lines[1:]] == [str(second), str(other), str(first)]

    shown = okrflow(env, "revisions", "show", str(second))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:2] == [
        f"revision {second}, shop salone-bella, applied {rows[0]['applied_at']}, 1 change(s):",
        "  changed  key result more-clients/new-clients (target: 10 -> 12)",
    ]
    assert "title: Più clienti" in shown.stdout and "target: 12" in shown.stdout

    as_json = json.loads(okrflow(env, "revisions", "show", str(first), "--format", "json").stdout)
    assert as_json["source"] == PLAN.format(shop="salone-bella", target=10)
    assert [c["what"] for c in as_json["changes"]] == [
        "objective more-clients",
        "key result more-clients/new-clients",
    ]

    restored = tmp_path / "restored.yaml"
    with restored.open("wb") as out:  # `okrflow revisions show ID --source-only > restored.yaml`
        done = subprocess.run(
            [sys.executable, "-m", "okrflow", "revisions", "show", str(second), "--source-only"],
            env=env, stdout=out, stderr=subprocess.PIPE, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert restored.read_bytes() == second_text.encode()
    assert okrflow(env, "apply", "--dry-run", "--detailed-exitcode", str(restored)).returncode == 0

    _one_line(okrflow(env, "revisions", "show", "999999"), 10, f"the newest is {second}")
    _one_line(okrflow(env, "revisions", "show", "abc"), 2, "not a number")
    _one_line(okrflow(env, "revisions", "list", "--shop", "nobody"), 10, "salone-bella")


def test_revisions_never_create_a_database(database_url: str, tmp_path: Path) -> None:
    name = f"t_missing_{uuid.uuid4().hex[:8]}"
    if database_url.startswith("sqlite"):
        missing = tmp_path / "missing.db"
        url = f"sqlite:///{missing}"
    else:
        url = sa.make_url(database_url).set(database=name).render_as_string(hide_password=False)
    env = okrflow_env(database_url=url)
    _one_line(okrflow(env, "revisions", "list"), 5, "okrflow revisions list: ")
    _one_line(okrflow(env, "revisions", "show", "1"), 5, "okrflow revisions show: ")
    if database_url.startswith("sqlite"):
        assert not missing.exists()
    else:
        with make_engine(database_url).connect() as conn:
            names = conn.execute(sa.text("SELECT datname FROM pg_database")).scalars().all()
        assert name not in names

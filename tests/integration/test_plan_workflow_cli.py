"""The plan workflow through the real CLI, on SQLite and PostgreSQL: dry runs that create
nothing, --detailed-exitcode, retirements only with --yes when there is no terminal,
read-only commands that never create a database, and closed pipes that end quietly."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from okrflow.store.engine import make_engine
from okrflow.store.tables import objectives, plan_revisions
from tests.integration.processes import okrflow, okrflow_env
from tests.services import free_port

PLAN = """\
shop: {shop}
timezone: Europe/Rome
objectives:
  - key: more-clients
    title: More clients
    owner: marketing
    period: {{start: 2026-01-01, end: 2026-06-30}}
    key_results:
      - key: new-clients
        metric: {{event: customer.created, aggregate: count}}
        target: 10
  - key: extra
    title: Extra
    owner: marketing
    period: {{start: 2026-01-01, end: 2026-06-30}}
    key_results:
      - key: posts
        metric: {{event: social.post.published, where: {{data.platform: tiktok}}, aggregate: count}}
        target: 10
"""


def _plan(tmp_path: Path, text: str, name: str = "okrs.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def _one_line(result: subprocess.CompletedProcess[str], code: int, *expected: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    _no_traceback(result)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def _revisions(database_url: str) -> int:
    with make_engine(database_url).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(plan_revisions)).scalar_one())


@pytest.mark.parametrize("where", ["missing sqlite file", "unreachable postgresql"])
def test_dry_run_without_a_database_compares_with_an_empty_plan(tmp_path: Path, where: str) -> None:
    if where == "missing sqlite file":
        url = f"sqlite:///{tmp_path / 'okrflow.db'}"
    else:
        url = f"postgresql://okrflow@127.0.0.1:{free_port()}/okrflow"
    plan = _plan(tmp_path, PLAN.format(shop="salone-bella"))
    env = okrflow_env(database_url=url)
    result = okrflow(env, "apply", "--dry-run", "--detailed-exitcode", plan)
    _one_line(result, 4, "comparing with an empty plan (everything is added)")
    assert result.stdout.splitlines() == [
        f"{plan}: shop salone-bella: 4 change(s), would change",
        "  added    objective more-clients",
        "  added    key result more-clients/new-clients",
        "  added    objective extra",
        "  added    key result extra/posts",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["okrs.yaml"]  # nothing created


def test_detailed_exitcode_0_4_2(database_url: str, tmp_path: Path) -> None:
    env = okrflow_env(database_url=database_url)
    plan = _plan(tmp_path, PLAN.format(shop="salone-bella"))
    # An empty database: everything would be added, and the dry run leaves it empty.
    pending = okrflow(env, "apply", "--dry-run", "--detailed-exitcode", plan)
    assert pending.returncode == 4, pending.stderr
    _no_traceback(pending)
    assert "4 change(s), would change" in pending.stdout

    applied = okrflow(env, "apply", plan)
    assert applied.returncode == 0, applied.stderr
    assert _revisions(database_url) == 1
    same = okrflow(env, "apply", "--dry-run", "--detailed-exitcode", plan)
    assert (same.returncode, same.stdout) == (0, f"{plan}: shop salone-bella: no changes\n")

    _plan(tmp_path, PLAN.format(shop="salone-bella").replace("target: 10\n", "target: 12\n", 1))
    changed = okrflow(env, "apply", "--dry-run", "--detailed-exitcode", plan)
    assert changed.returncode == 4, changed.stderr
    assert "  changed  key result more-clients/new-clients (target: 10 -> 12)" in changed.stdout
    without_flag = okrflow(env, "apply", "--dry-run", plan)
    assert without_flag.returncode == 0, without_flag.stderr

    _plan(tmp_path, PLAN.format(shop="salone-bella").replace("owner: marketing\n", "", 1))
    refused = okrflow(env, "apply", "--dry-run", "--detailed-exitcode", plan)
    assert refused.returncode == 2, refused.stderr
    _no_traceback(refused)
    assert refused.stderr.splitlines()[-1] == "okrflow apply: 1 problem(s); nothing was compared"
    assert _revisions(database_url) == 1


def test_retirement_needs_yes_without_a_terminal(database_url: str, tmp_path: Path) -> None:
    env = okrflow_env(database_url=database_url)
    full = PLAN.format(shop="salone-bella")
    plan = _plan(tmp_path, full)
    assert okrflow(env, "apply", plan).returncode == 0
    _plan(tmp_path, full[: full.index("  - key: extra")].replace("target: 10", "target: 12"))

    # okrflow() gives the process no terminal: stdin is inherited from pytest, not a TTY;
    # make that explicit.
    refused = subprocess.run(
        [sys.executable, "-m", "okrflow", "apply", plan],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    _one_line(refused, 2, "would retire objective extra, key result extra/posts",
              "pass --yes", "nothing was applied")  # fmt: skip
    assert _revisions(database_url) == 1
    with make_engine(database_url).connect() as conn:
        in_force = conn.execute(select(objectives.c.key).where(objectives.c.retired_at.is_(None)))
        assert sorted(in_force.scalars()) == ["extra", "more-clients"]

    applied = subprocess.run(
        [sys.executable, "-m", "okrflow", "apply", "--yes", plan],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    _no_traceback(applied)
    assert applied.stdout.splitlines() == [
        f"{plan}: shop salone-bella: 3 change(s), applied as revision 2",
        "  changed  key result more-clients/new-clients (target: 10 -> 12)",
        "  retired  objective extra",
        "  retired  key result extra/posts",
    ]
    with make_engine(database_url).connect() as conn:
        in_force = conn.execute(select(objectives.c.key).where(objectives.c.retired_at.is_(None)))
        assert list(in_force.scalars()) == ["more-clients"]


def test_progress_for_an_unknown_shop_names_the_shops(database_url: str, tmp_path: Path) -> None:
    env = okrflow_env(database_url=database_url)
    for shop in ("salone-bella", "barber-bob"):
        plan = _plan(tmp_path, PLAN.format(shop=shop), f"{shop}.yaml")
        assert okrflow(env, "apply", plan).returncode == 0
    result = okrflow(env, "progress", "--shop", "salone-bela")
    _one_line(result, 10, "no shop 'salone-bela'", "barber-bob, salone-bella")
    assert result.stdout == ""
    known = okrflow(env, "progress", "--shop", "barber-bob", "--format", "json")
    assert known.returncode == 0, known.stderr
    assert [s["shop"] for s in json.loads(known.stdout)["shops"]] == ["barber-bob"]


def test_progress_json_into_head_ends_quietly(database_url: str, tmp_path: Path) -> None:
    # Enough objectives that the JSON (about 300 KB) is far more than a pipe holds: the
    # writer is still writing when `head` exits.
    objectives_text = "".join(
        f"""\
  - key: o{i}
    title: Objective {i}
    owner: marketing
    period: {{start: 2026-01-01, end: 2026-06-30}}
    key_results:
"""
        + "".join(
            f"""\
      - key: k{j}
        metric: {{event: customer.created, aggregate: count}}
        target: 10
"""
            for j in range(5)
        )
        for i in range(150)
    )
    plan = _plan(tmp_path, f"shop: big\ntimezone: UTC\nobjectives:\n{objectives_text}")
    env = okrflow_env(database_url=database_url)
    assert okrflow(env, "apply", plan).returncode == 0
    full = okrflow(env, "progress", "--format", "json")
    assert len(full.stdout) > 200_000
    for command in ("progress --format json", "progress", "tokens list"):
        piped = subprocess.run(
            ["bash", "-c", f"{shlex.quote(sys.executable)} -m okrflow {command} | head -1"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert piped.returncode == 0, piped.stderr
        assert piped.stderr == "" or command == "tokens list", piped.stderr
        _no_traceback(piped)
        assert "BrokenPipe" not in piped.stderr
        if command == "progress --format json":
            assert piped.stdout == "{\n"


@pytest.mark.parametrize("command", [
    ("progress",), ("progress", "--format", "json"), ("tokens", "list"),
])  # fmt: skip
def test_read_only_commands_create_no_database(tmp_path: Path, command: tuple[str, ...]) -> None:
    database = tmp_path / "okrflow.db"
    env = okrflow_env(database_url=f"sqlite:///{database}")
    result = okrflow(env, *command)
    _one_line(result, 5, f"no SQLite database at {database}")
    assert list(tmp_path.iterdir()) == []


def test_read_only_commands_do_not_upgrade_an_empty_database(database_url: str) -> None:
    env = okrflow_env(database_url=database_url)
    with make_engine(database_url).connect():
        pass  # an empty database: for SQLite, an existing file without tables
    for command in (("progress",), ("tokens", "list")):
        result = okrflow(env, *command)
        _one_line(result, 8, "no okrflow schema", "okrflow db upgrade")
    with make_engine(database_url).connect() as conn:
        assert conn.dialect.get_table_names(conn) == []

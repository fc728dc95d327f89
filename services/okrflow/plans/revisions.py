"""`okrflow revisions list|show`: the history of `apply`, read only (never creates or
migrates a database).

Every apply that changed a shop's plan stored a revision: when, the change lines it printed,
and the plan file's text. `show --source-only` prints that text byte for byte, so
`okrflow revisions show 3 --source-only > okrs.yaml` restores the file as it was applied.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from okrflow.exitcodes import ExitCode, OperatorError
from okrflow.plans.diff import Action, Change

if TYPE_CHECKING:
    from okrflow.store.revisions import RevisionRow

MAX_ID = 2**31 - 1  # the id column is a 32-bit integer: larger ids exist nowhere


def utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z; a naive time (SQLite gives them back so) is UTC already."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%SZ")


def change_lines(revision: RevisionRow) -> list[str]:
    """The revision's changes as `apply` printed them (`added    objective reach`)."""
    return [
        str(Change(cast(Action, c["action"]), c["what"], c.get("detail", "")))
        for c in revision.changes
    ]


def parse_revision_id(text: str) -> int:
    """A revision id as typed; OperatorError (USAGE) if it is not a number."""
    if not (text.isascii() and text.isdigit()):
        raise OperatorError(
            ExitCode.USAGE, f"revision id {text!r}: not a number (see `okrflow revisions list`)"
        )
    return int(text)


def _summary(revision: RevisionRow) -> dict[str, object]:
    lines = change_lines(revision)
    return {
        "id": revision.id,
        "shop": revision.shop,
        "applied_at": utc_text(revision.applied_at),
        "change_count": len(lines),
        "first_change": lines[0] if lines else None,
    }


def _table(rows: list[dict[str, object]]) -> list[str]:
    """Plain aligned columns (a pipe or a narrow terminal never wraps or cuts a line)."""
    header = ["ID", "SHOP", "APPLIED (UTC)", "CHANGES", "FIRST CHANGE"]
    cells = [
        [str(r["id"]), str(r["shop"]), str(r["applied_at"]), str(r["change_count"]),
         str(r["first_change"] or "-")]
        for r in rows
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in [header, *cells]
    ]


def run_list(database_url: str, shop: str | None, fmt: str) -> int:
    # lazy: SQLAlchemy and Alembic (0.2 s) only when revisions are read: okrflow.cli imports this module for every command, `okrflow --help` included
    from okrflow.readonly import open_for_reading
    from okrflow.store.revisions import list_revisions, revision_shops

    engine = open_for_reading(database_url)
    with engine.connect() as conn:
        revisions = list_revisions(conn, shop)
        if shop is not None and not revisions:
            shops = revision_shops(conn)
            known = f"shops with revisions: {', '.join(shops)}" if shops else "none yet"
            raise OperatorError(ExitCode.NOT_FOUND, f"no revisions of shop {shop!r} ({known})")
    rows = [_summary(r) for r in revisions]
    if fmt == "json":
        print(json.dumps(rows, indent=2))
    elif rows:
        print("\n".join(_table(rows)))
    else:
        print("okrflow revisions list: no plan has been applied yet", file=sys.stderr)
    sys.stdout.flush()  # a closed pipe shows here, inside the command
    return ExitCode.OK


def _write_exact(text: str) -> None:
    """`text` as UTF-8 bytes, untranslated: the file as it was read, whatever the locale."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.buffer.flush()


def run_show(database_url: str, id_text: str, fmt: str, source_only: bool) -> int:
    # lazy: as above: no SQLAlchemy at `okrflow --help`
    from okrflow.readonly import open_for_reading
    from okrflow.store.plan_clock import plans_revision
    from okrflow.store.revisions import read_revision

    revision_id = parse_revision_id(id_text)
    engine = open_for_reading(database_url)
    with engine.connect() as conn:
        found = read_revision(conn, revision_id) if revision_id <= MAX_ID else None
        if found is None:
            newest = plans_revision(conn)
            known = f"the newest is {newest}" if newest else "no plan was applied yet"
            raise OperatorError(
                ExitCode.NOT_FOUND,
                f"no revision {revision_id} ({known}; see `okrflow revisions list`)",
            )
    revision, source = found.revision, found.source
    if source_only:
        _write_exact(source)
        return ExitCode.OK
    lines = change_lines(revision)
    if fmt == "json":
        shown = {
            "id": revision.id,
            "shop": revision.shop,
            "applied_at": utc_text(revision.applied_at),
            "changes": [
                {"action": c["action"], "what": c["what"], "detail": c.get("detail", "")}
                for c in revision.changes
            ],
            "source": source,
        }
        print(json.dumps(shown, indent=2))
        sys.stdout.flush()
        return ExitCode.OK
    print(f"revision {revision.id}, shop {revision.shop}, applied "
          f"{utc_text(revision.applied_at)}, {len(lines)} change(s):")  # fmt: skip
    for line in lines:
        print(f"  {line}")
    print(f"the plan file as applied (`okrflow revisions show {revision.id} --source-only`):")
    _write_exact(source if source.endswith("\n") or not source else source + "\n")
    return ExitCode.OK

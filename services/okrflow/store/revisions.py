"""Applied plan revisions, SQL only: what `okrflow revisions` lists and shows (each apply's
changes and the plan file's text as it was applied). Written by `store.plans.write_plan`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from okrflow.store.tables import plan_revisions


@dataclass(frozen=True)
class RevisionRow:
    """One applied revision of a shop's plan, without its file text."""

    id: int
    shop: str
    applied_at: datetime  # UTC; SQLite hands it back naive
    changes: list[dict[str, str]]  # {"action", "what", "detail"}, as the apply printed them


@dataclass(frozen=True)
class RevisionSource:
    """One applied revision and the plan file's text as it was applied."""

    revision: RevisionRow
    source: str


_REVISION_COLUMNS = (
    plan_revisions.c.id,
    plan_revisions.c.shop,
    plan_revisions.c.applied_at,
    plan_revisions.c.changes,
)


def _revision_row(revision_id: int, shop: str, applied_at: datetime, changes: str) -> RevisionRow:
    return RevisionRow(int(revision_id), shop, applied_at, json.loads(changes))


def list_revisions(conn: Connection, shop: str | None = None) -> list[RevisionRow]:
    """Every applied revision (or one shop's), newest first; the file texts are not read."""
    query = select(*_REVISION_COLUMNS).order_by(plan_revisions.c.id.desc())
    if shop is not None:
        query = query.where(plan_revisions.c.shop == shop)
    return [_revision_row(*row) for row in conn.execute(query)]


def read_revision(conn: Connection, revision_id: int) -> RevisionSource | None:
    """One revision with its file text; None if there is no such revision."""
    row = conn.execute(
        select(*_REVISION_COLUMNS, plan_revisions.c.source).where(
            plan_revisions.c.id == revision_id
        )
    ).first()
    return None if row is None else RevisionSource(_revision_row(*row[:4]), row.source)


def revision_shops(conn: Connection) -> list[str]:
    """The shops that have at least one applied revision, by name."""
    query = select(plan_revisions.c.shop).distinct().order_by(plan_revisions.c.shop)
    return list(conn.execute(query).scalars())

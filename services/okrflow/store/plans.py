"""Plans in the database, SQL only: a shop's plan in force (what an apply diffs against),
writing an applied plan, every shop's plans in force as rows. The plan clock is in
`store.plan_clock`, the applied revisions in `store.revisions`.

What an apply writes is decided, and domain objects are built from these rows, in
okrflow.plans (diff, stored, apply). Definitions are stored as JSON text; rows carry them
decoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import Connection, select, update

from okrflow.store.dialect import upsert
from okrflow.store.plan_clock import plans_revision as plans_revision  # re-exported: ingest/
from okrflow.store.tables import key_results, kr_series, objectives, plan_revisions, shops

KPI = "kpi"  # key_results.kind of a KPI ('kr': a key result)
# Any: a definition from the plan file (stored as JSON text), valid against its schema
# (schemas/okr-definitions.schema.json) when it was applied; okrflow.plans reads it by the
# schema's shape, as it reads the file's (`jsontypes.SchemaObject`, which store/ cannot import)
Definition: TypeAlias = "dict[str, Any]"


@dataclass(frozen=True)
class StoredKeyResult:
    id: int
    definition: Definition
    counting: str


@dataclass
class StoredPlan:
    """The plan in force for one shop, as the database holds it."""

    timezone: str | None = None
    objectives: dict[str, Definition] = field(default_factory=dict)  # key -> definition
    key_results: dict[tuple[str, str], StoredKeyResult] = field(default_factory=dict)
    kpis: dict[str, StoredKeyResult] = field(default_factory=dict)  # key -> row (kind 'kpi')


@dataclass(frozen=True)
class KeyResultWrite:
    """A key result of the applied plan: its row in force updated in place (`update_id`),
    or a new row inserted, after retiring `retire_id` if given, with zeroed series rows."""

    key: str
    position: int
    definition: Definition
    counting: str
    series_parts: tuple[str, ...]  # of a new row: value | numerator, denominator
    update_id: int | None = None
    retire_id: int | None = None


@dataclass(frozen=True)
class ObjectiveWrite:
    """An objective of the applied plan: its row in force updated (`exists`) or inserted."""

    key: str
    position: int
    definition: Definition  # without its key results
    exists: bool
    key_results: tuple[KeyResultWrite, ...]


@dataclass(frozen=True)
class PlanWrite:
    """Everything one apply writes for one shop, in the order it is written."""

    shop: str
    timezone: str
    source_text: str
    changes: list[dict[str, str]]  # {"action", "what", "detail"}
    retired_objectives: tuple[str, ...]
    retired_key_result_ids: tuple[int, ...]
    objectives: tuple[ObjectiveWrite, ...]
    # KPIs: rows of `key_results` with kind 'kpi' and no objective, written like key results.
    kpis: tuple[KeyResultWrite, ...] = ()
    retired_kpi_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ObjectiveRow:
    key: str
    definition: Definition


@dataclass(frozen=True)
class KeyResultRow:
    id: int
    objective_key: str
    position: int
    definition: Definition


@dataclass(frozen=True)
class ShopPlanRows:
    """One shop's plan in force: objectives in position order, key results in any order."""

    shop: str
    timezone: str
    objectives: list[ObjectiveRow]
    key_results: list[KeyResultRow]
    kpis: list[KeyResultRow] = field(default_factory=list)  # kind 'kpi', objective_key ''


def lock_shop(conn: Connection, shop: str) -> None:
    """Serialise applies of one shop (PostgreSQL row lock; SQLite writers are serial anyway)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            upsert(conn, shops)
            .values(shop=shop, timezone="UTC", revision_id=0)
            .on_conflict_do_nothing(index_elements=[shops.c.shop])
        )
        conn.execute(select(shops.c.shop).where(shops.c.shop == shop).with_for_update())


def load_stored_plan(conn: Connection, shop: str) -> StoredPlan:
    stored = StoredPlan()
    row = conn.execute(
        select(shops.c.timezone, shops.c.revision_id).where(shops.c.shop == shop)
    ).first()
    if row is not None and row.revision_id > 0:  # revision 0: only locked, never applied
        stored.timezone = row.timezone
    for key, definition in conn.execute(
        select(objectives.c.key, objectives.c.definition).where(
            objectives.c.shop == shop, objectives.c.retired_at.is_(None)
        )
    ):
        stored.objectives[key] = json.loads(definition)
    for kr_id, obj_key, key, definition, counting, kind in conn.execute(
        select(
            key_results.c.id, key_results.c.objective_key, key_results.c.key,
            key_results.c.definition, key_results.c.counting, key_results.c.kind,
        ).where(key_results.c.shop == shop, key_results.c.retired_at.is_(None))
    ):  # fmt: skip
        measure = StoredKeyResult(kr_id, json.loads(definition), counting)
        if kind == KPI:
            stored.kpis[key] = measure
        else:
            stored.key_results[obj_key, key] = measure
    return stored


def write_plan(conn: Connection, plan: PlanWrite, now: datetime) -> int:
    """Write `plan` (a new revision); returns the new revision id. Call inside a transaction."""
    shop, tz = plan.shop, plan.timezone
    revision_id = conn.execute(
        plan_revisions.insert().values(
            shop=shop, applied_at=now, source=plan.source_text, changes=json.dumps(plan.changes),
        ).returning(plan_revisions.c.id)
    ).scalar_one()  # fmt: skip
    stmt = upsert(conn, shops).values(shop=shop, timezone=tz, revision_id=revision_id)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[shops.c.shop], set_={"timezone": tz, "revision_id": revision_id}
        )
    )
    for key in plan.retired_objectives:
        conn.execute(
            update(objectives)
            .where(
                objectives.c.shop == shop,
                objectives.c.key == key,
                objectives.c.retired_at.is_(None),
            )
            .values(retired_at=now)
        )
    for kr_id in (*plan.retired_key_result_ids, *plan.retired_kpi_ids):
        _retire_key_result(conn, kr_id, now)

    for objective in plan.objectives:
        definition = json.dumps(objective.definition, sort_keys=True)
        if objective.exists:
            conn.execute(
                update(objectives)
                .where(
                    objectives.c.shop == shop,
                    objectives.c.key == objective.key,
                    objectives.c.retired_at.is_(None),
                )
                .values(definition=definition, position=objective.position)
            )
        else:
            conn.execute(
                objectives.insert().values(
                    shop=shop, key=objective.key, position=objective.position, definition=definition
                )
            )
        for kr in objective.key_results:
            _write_measure(conn, shop, objective.key, kr, "kr", now)
    for kpi in plan.kpis:
        _write_measure(conn, shop, "", kpi, KPI, now)
    return int(revision_id)


def _write_measure(
    conn: Connection, shop: str, objective_key: str, kr: KeyResultWrite, kind: str,
    now: datetime,
) -> None:  # fmt: skip
    """Update a key result's (or KPI's) row in force, or insert a new one with zeroed series."""
    values = {"definition": json.dumps(kr.definition, sort_keys=True), "position": kr.position}
    if kr.update_id is not None:
        conn.execute(update(key_results).where(key_results.c.id == kr.update_id).values(**values))
        return
    if kr.retire_id is not None:
        _retire_key_result(conn, kr.retire_id, now)
    kr_id = conn.execute(
        key_results.insert()
        .values(
            shop=shop, objective_key=objective_key, key=kr.key, counting=kr.counting, kind=kind,
            **values,
        )
        .returning(key_results.c.id)
    ).scalar_one()  # fmt: skip
    # Series rows exist from the start, so ingest can lock them before updating.
    conn.execute(
        kr_series.insert(),
        [{"key_result_id": kr_id, "part": part, "events": 0} for part in kr.series_parts],
    )


def _retire_key_result(conn: Connection, kr_id: int, now: datetime) -> None:
    conn.execute(update(key_results).where(key_results.c.id == kr_id).values(retired_at=now))


def read_active_plans(conn: Connection, shop: str | None = None) -> list[ShopPlanRows]:
    """Every shop's plan in force (or one shop's), shops by name."""
    shop_query = (
        select(shops.c.shop, shops.c.timezone).where(shops.c.revision_id > 0).order_by(shops.c.shop)
    )
    if shop is not None:
        shop_query = shop_query.where(shops.c.shop == shop)
    plans: list[ShopPlanRows] = []
    for shop_name, tz in conn.execute(shop_query).all():
        krs: list[KeyResultRow] = []
        kpis: list[KeyResultRow] = []
        for kr_id, obj_key, position, definition, kind in conn.execute(
            select(
                key_results.c.id,
                key_results.c.objective_key,
                key_results.c.position,
                key_results.c.definition,
                key_results.c.kind,
            ).where(key_results.c.shop == shop_name, key_results.c.retired_at.is_(None))
        ):
            row = KeyResultRow(kr_id, obj_key, position, json.loads(definition))
            (kpis if kind == KPI else krs).append(row)
        objs = [
            ObjectiveRow(key, json.loads(definition))
            for key, definition in conn.execute(
                select(objectives.c.key, objectives.c.definition)
                .where(objectives.c.shop == shop_name, objectives.c.retired_at.is_(None))
                .order_by(objectives.c.position)
            )
        ]
        plans.append(ShopPlanRows(shop_name, tz, objs, krs, kpis))
    return plans

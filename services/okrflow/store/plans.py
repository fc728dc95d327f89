"""Plans in the database: reading the plan in force, writing an applied plan."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from okrflow.domain.model import Plan, metric_parts
from okrflow.domain.plans import ActivePlan
from okrflow.plans.build import build_objective
from okrflow.plans.diff import (
    Change,
    StoredKeyResult,
    StoredPlan,
    counting_fingerprint,
    objective_definition,
)
from okrflow.store.dialect import upsert
from okrflow.store.tables import key_results, kr_series, objectives, plan_revisions, shops


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
    if row is not None and row.revision_id > 0:
        stored.timezone = row.timezone
    for key, definition in conn.execute(
        select(objectives.c.key, objectives.c.definition).where(
            objectives.c.shop == shop, objectives.c.retired_at.is_(None)
        )
    ):
        stored.objectives[key] = json.loads(definition)
    for kr_id, obj_key, key, definition, counting in conn.execute(
        select(
            key_results.c.id, key_results.c.objective_key, key_results.c.key,
            key_results.c.definition, key_results.c.counting,
        ).where(key_results.c.shop == shop, key_results.c.retired_at.is_(None))
    ):  # fmt: skip
        stored.key_results[obj_key, key] = StoredKeyResult(kr_id, json.loads(definition), counting)
    return stored


def write_plan(
    conn: Connection, source: dict[str, Any], stored: StoredPlan, changes: list[Change],
    source_text: str, now: datetime,
) -> int:  # fmt: skip
    """Make the database match `source`; returns the new revision id. Call inside a transaction."""
    shop, tz = source["shop"], source["timezone"]
    revision_id = conn.execute(
        plan_revisions.insert().values(
            shop=shop, applied_at=now, source=source_text,
            changes=json.dumps([{"action": c.action, "what": c.what, "detail": c.detail} for c in changes]),
        ).returning(plan_revisions.c.id)
    ).scalar_one()  # fmt: skip
    stmt = upsert(conn, shops).values(shop=shop, timezone=tz, revision_id=revision_id)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[shops.c.shop], set_={"timezone": tz, "revision_id": revision_id}
        )
    )
    wanted_objectives = {o["key"] for o in source["objectives"]}
    wanted_krs = {
        (o["key"], kr["key"]) for o in source["objectives"] for kr in o.get("key_results", [])
    }
    for key in stored.objectives.keys() - wanted_objectives:
        conn.execute(
            update(objectives)
            .where(
                objectives.c.shop == shop,
                objectives.c.key == key,
                objectives.c.retired_at.is_(None),
            )
            .values(retired_at=now)
        )
    for pair in stored.key_results.keys() - wanted_krs:
        _retire_key_result(conn, stored.key_results[pair].id, now)

    for position, objective in enumerate(source["objectives"]):
        definition = json.dumps(objective_definition(objective), sort_keys=True)
        if objective["key"] in stored.objectives:
            conn.execute(
                update(objectives)
                .where(
                    objectives.c.shop == shop,
                    objectives.c.key == objective["key"],
                    objectives.c.retired_at.is_(None),
                )
                .values(definition=definition, position=position)
            )
        else:
            conn.execute(
                objectives.insert().values(
                    shop=shop, key=objective["key"], position=position, definition=definition
                )
            )
        for kr_position, kr in enumerate(objective.get("key_results", [])):
            current = stored.key_results.get((objective["key"], kr["key"]))
            counting = counting_fingerprint(kr, tz)
            values = {"definition": json.dumps(kr, sort_keys=True), "position": kr_position}
            if current is not None and current.counting == counting:
                conn.execute(
                    update(key_results).where(key_results.c.id == current.id).values(**values)
                )
                continue
            if current is not None:
                _retire_key_result(conn, current.id, now)
            kr_id = conn.execute(
                key_results.insert()
                .values(
                    shop=shop,
                    objective_key=objective["key"],
                    key=kr["key"],
                    counting=counting,
                    **values,
                )
                .returning(key_results.c.id)
            ).scalar_one()
            # Series rows exist from the start, so ingest can lock them before updating.
            metric = build_objective({**objective, "key_results": [kr]}).key_results[0].metric
            conn.execute(
                kr_series.insert(),
                [
                    {"key_result_id": kr_id, "part": part, "events": 0}
                    for part, _ in metric_parts(metric)
                ],
            )
    return int(revision_id)


def _retire_key_result(conn: Connection, kr_id: int, now: datetime) -> None:
    conn.execute(update(key_results).where(key_results.c.id == kr_id).values(retired_at=now))


_NEWEST_REVISION = select(func.coalesce(func.max(plan_revisions.c.id), 0))


def plans_revision(conn: Connection) -> int:
    """Changes whenever any shop's plan changes (the newest revision id; 0 when none)."""
    return int(conn.execute(_NEWEST_REVISION).scalar_one())


def load_active_plans(conn: Connection, shop: str | None = None) -> list[ActivePlan]:
    """Every shop's plan in force (or one shop's), objectives and key results in file order."""
    shop_query = (
        select(shops.c.shop, shops.c.timezone).where(shops.c.revision_id > 0).order_by(shops.c.shop)
    )
    if shop is not None:
        shop_query = shop_query.where(shops.c.shop == shop)
    plans: list[ActivePlan] = []
    for shop_name, tz in conn.execute(shop_query).all():
        krs: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
        for kr_id, obj_key, position, definition in conn.execute(
            select(
                key_results.c.id,
                key_results.c.objective_key,
                key_results.c.position,
                key_results.c.definition,
            ).where(key_results.c.shop == shop_name, key_results.c.retired_at.is_(None))
        ):
            krs.setdefault(obj_key, []).append((position, kr_id, json.loads(definition)))
        built = []
        ids: dict[tuple[str, str], int] = {}
        for key, definition in conn.execute(
            select(objectives.c.key, objectives.c.definition)
            .where(objectives.c.shop == shop_name, objectives.c.retired_at.is_(None))
            .order_by(objectives.c.position)
        ):
            ordered = sorted(krs.get(key, []), key=lambda t: t[0])
            built.append(
                build_objective(
                    {**json.loads(definition), "key_results": [d for _, _, d in ordered]}
                )
            )
            ids.update({(key, d["key"]): kr_id for _, kr_id, d in ordered})
        plans.append(ActivePlan(Plan(shop_name, tz, tuple(built)), ids))
    return plans

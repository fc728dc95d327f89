"""Plans and the database: the plans in force built from their rows, and the rows an apply
writes decided from the file's plan data and the plan in force. The SQL is okrflow.store's."""

from __future__ import annotations

from sqlalchemy import Connection

from okrflow.domain.baselines import stored_parts
from okrflow.domain.model import Plan, metric_parts
from okrflow.domain.plans import ActivePlan
from okrflow.jsontypes import SchemaObject
from okrflow.plans.build import build_objective
from okrflow.plans.diff import (
    Change,
    counting_fingerprint,
    kpi_counting_fingerprint,
    objective_definition,
)
from okrflow.plans.kpis import build_kpi
from okrflow.store.baselines import read_measured_baselines
from okrflow.store.plans import (
    KeyResultRow,
    KeyResultWrite,
    ObjectiveWrite,
    PlanWrite,
    StoredPlan,
    read_active_plans,
)


def load_active_plans(conn: Connection, shop: str | None = None) -> list[ActivePlan]:
    """Every shop's plan in force (or one shop's), objectives and key results in file order."""
    plans: list[ActivePlan] = []
    measured = read_measured_baselines(conn, shop)  # baselines from data, once frozen
    for rows in read_active_plans(conn, shop):
        krs: dict[str, list[KeyResultRow]] = {}
        for kr in rows.key_results:
            krs.setdefault(kr.objective_key, []).append(kr)
        built = []
        ids: dict[tuple[str, str], int] = {}
        for objective in rows.objectives:
            ordered = sorted(krs.get(objective.key, []), key=lambda kr: kr.position)
            frozen = {kr.definition["key"]: measured[kr.id] for kr in ordered if kr.id in measured}
            data = {**objective.definition, "key_results": [kr.definition for kr in ordered]}
            built.append(build_objective(data, frozen))
            ids.update({(objective.key, kr.definition["key"]): kr.id for kr in ordered})
        kpi_rows = sorted(rows.kpis, key=lambda k: k.position)
        kpis = tuple(build_kpi(k.definition) for k in kpi_rows)
        kpi_ids = {k.definition["key"]: k.id for k in kpi_rows}
        plans.append(ActivePlan(Plan(rows.shop, rows.timezone, tuple(built), kpis), ids, kpi_ids))
    return plans


def plan_write(
    source: SchemaObject, stored: StoredPlan, changes: list[Change], source_text: str
) -> PlanWrite:
    """What makes the database match the schema-valid plan data `source`: objectives and key
    results no longer planned are retired; a key result whose counting changed is retired and
    inserted anew (counters restart at zero); any other is updated in place."""
    shop, tz = source["shop"], source["timezone"]
    wanted_objectives = {o["key"] for o in source["objectives"]}
    wanted_krs = {
        (o["key"], kr["key"]) for o in source["objectives"] for kr in o.get("key_results", [])
    }
    objectives = []
    for position, objective in enumerate(source["objectives"]):
        key_results = []
        for kr_position, kr in enumerate(objective.get("key_results", [])):
            current = stored.key_results.get((objective["key"], kr["key"]))
            counting = counting_fingerprint(kr, tz)
            if current is not None and current.counting == counting:
                key_results.append(
                    KeyResultWrite(kr["key"], kr_position, kr, counting, (), update_id=current.id)
                )
                continue
            built = build_objective({**objective, "key_results": [kr]}).key_results[0]
            key_results.append(
                KeyResultWrite(
                    kr["key"],
                    kr_position,
                    kr,
                    counting,
                    stored_parts(built),  # with a baseline's series (`b.value`...)
                    retire_id=None if current is None else current.id,
                )
            )
        objectives.append(
            ObjectiveWrite(
                objective["key"],
                position,
                objective_definition(objective),
                objective["key"] in stored.objectives,
                tuple(key_results),
            )
        )
    kpis = []
    for position, kpi in enumerate(source.get("kpis", [])):
        current = stored.kpis.get(kpi["key"])
        counting = kpi_counting_fingerprint(kpi, tz)
        if current is not None and current.counting == counting:
            kpis.append(
                KeyResultWrite(kpi["key"], position, kpi, counting, (), update_id=current.id)
            )
            continue
        parts = tuple(part for part, _ in metric_parts(build_kpi(kpi).metric))
        retire = None if current is None else current.id
        kpis.append(KeyResultWrite(kpi["key"], position, kpi, counting, parts, retire_id=retire))
    wanted_kpis = {kpi["key"] for kpi in source.get("kpis", [])}
    return PlanWrite(
        shop=shop,
        timezone=tz,
        source_text=source_text,
        changes=[{"action": c.action, "what": c.what, "detail": c.detail} for c in changes],
        retired_objectives=tuple(stored.objectives.keys() - wanted_objectives),
        retired_key_result_ids=tuple(
            stored.key_results[pair].id for pair in stored.key_results.keys() - wanted_krs
        ),
        objectives=tuple(objectives),
        kpis=tuple(kpis),
        retired_kpi_ids=tuple(row.id for key, row in stored.kpis.items() if key not in wanted_kpis),
    )

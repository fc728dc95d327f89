"""Small read-only lookups for commands' messages, SQL only: which shops have a plan, which
event types a shop has sent."""

from __future__ import annotations

from sqlalchemy import Connection, select

from okrflow.store.tables import shop_event_totals, shops


def planned_shops(conn: Connection) -> list[str]:
    """Shops with a plan applied, by name."""
    query = select(shops.c.shop).where(shops.c.revision_id > 0).order_by(shops.c.shop)
    return list(conn.execute(query).scalars())


def seen_event_types(conn: Connection, shop: str) -> set[str]:
    """Event types counted for `shop` so far (the totals behind `okr_shop_events_total`)."""
    query = select(shop_event_totals.c.event_type).where(shop_event_totals.c.shop == shop)
    return set(conn.execute(query).scalars())

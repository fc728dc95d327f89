"""Data of the built-in event types (docs/events.md), mirrored from
`schemas/events/*.v1.schema.json`.

Registered explicitly in `BUILT_IN`; a contract test proves these agree with the JSON Schemas
on every example. Unknown fields are allowed (shops may add their own).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from okrflow.jsontypes import JsonObject

Text = Annotated[str, msgspec.Meta(min_length=1)]
Amount = Annotated[float, msgspec.Meta(ge=0)]
Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]


class OrderPlaced(msgspec.Struct):
    order_id: Text
    customer_id: Text
    total: Amount
    currency: Currency
    items: list[Any] | msgspec.UnsetType = msgspec.UNSET  # Any: free-form, as in the schema
    channel: Text | msgspec.UnsetType = msgspec.UNSET
    service: Text | msgspec.UnsetType = msgspec.UNSET


class OrderRefunded(msgspec.Struct):
    order_id: Text
    amount: Amount
    currency: Currency


class CustomerCreated(msgspec.Struct):
    customer_id: Text
    channel: Text | msgspec.UnsetType = msgspec.UNSET
    referred_by: Text | msgspec.UnsetType = msgspec.UNSET


class CampaignLaunched(msgspec.Struct):
    campaign_id: Text
    channel: Text
    kind: Literal["ad", "promo", "email", "partnership", "other"]
    service: Text | msgspec.UnsetType = msgspec.UNSET
    budget: Amount | msgspec.UnsetType = msgspec.UNSET


class SocialPostPublished(msgspec.Struct):
    platform: Text
    post_id: Text
    account: Text | msgspec.UnsetType = msgspec.UNSET


class SocialFollowersChanged(msgspec.Struct):
    platform: Text
    # JSON Schema's "integer" accepts 150.0 too; so does this, checked in `check_data`.
    followers: Annotated[float, msgspec.Meta(ge=0)]
    account: Text | msgspec.UnsetType = msgspec.UNSET


class PartnershipSigned(msgspec.Struct):
    partner_id: Text
    partner_name: Text | msgspec.UnsetType = msgspec.UNSET


class InfluencerContacted(msgspec.Struct):
    influencer: Text
    platform: Text | msgspec.UnsetType = msgspec.UNSET


class ServiceLaunched(msgspec.Struct):
    service: Text


BUILT_IN: dict[str, type[msgspec.Struct]] = {
    "order.placed": OrderPlaced,
    "order.refunded": OrderRefunded,
    "customer.created": CustomerCreated,
    "campaign.launched": CampaignLaunched,
    "social.post.published": SocialPostPublished,
    "social.followers.changed": SocialFollowersChanged,
    "partnership.signed": PartnershipSigned,
    "influencer.contacted": InfluencerContacted,
    "service.launched": ServiceLaunched,
}


def check_data(event_type: str, data: JsonObject) -> str | None:
    """None if `data` is valid for a built-in type (or the type is not built in); else why."""
    struct = BUILT_IN.get(event_type)
    if struct is None:
        return None
    try:
        decoded = msgspec.convert(data, struct)
    except msgspec.ValidationError as exc:
        message = str(exc).replace("`$.", "`$.data.").replace("`$`", "`$.data`")
        return message if " - at `" in message else f"{message} - at `$.data`"
    if isinstance(decoded, SocialFollowersChanged) and not decoded.followers.is_integer():
        return "Expected `int` - at `$.data.followers`"
    return None

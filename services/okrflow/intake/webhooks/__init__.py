"""Platform webhooks: signature verification and mapping to okrflow CloudEvents.

Pure code (no HTTP, no database), for the HTTP intake. `PLATFORMS` maps the platform name in
the webhook URL to its implementation; registered explicitly, one line per platform.
docs/intake.md, "Platform webhooks", has the mapping tables and the signature rules.
"""

from okrflow.intake.webhooks.base import (
    PayloadError,
    SignatureError,
    WebhookEvents,
    WebhookPlatform,
)
from okrflow.intake.webhooks.shopify import Shopify
from okrflow.intake.webhooks.stripe import Stripe

PLATFORMS: dict[str, WebhookPlatform] = {
    "shopify": Shopify(),
    "stripe": Stripe(),
}

__all__ = ["PLATFORMS", "PayloadError", "SignatureError", "WebhookEvents", "WebhookPlatform"]

"""HTTP intake: CloudEvents over HTTP, per-shop tokens, platform webhooks."""

"""Read-only pages for people: a shop's OKR tree, burn-up charts, live (docs/pages.md)."""

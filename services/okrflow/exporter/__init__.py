"""Prometheus exporter: OKR metrics from a database snapshot refreshed off the scrape path."""

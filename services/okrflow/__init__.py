"""okrflow: business events from Kafka become live OKR progress."""

__version__ = "0.1.0"

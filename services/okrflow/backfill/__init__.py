"""`okrflow backfill`: count what a new key result missed, from the events topic, exactly once.

`command.py` (the command and its progress views) -> `runner.py` (take a job, scan up to its
cut) -> `chunk.py` (one chunk, one transaction). The SQL is okrflow.store.backfill's.
"""

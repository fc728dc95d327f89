"""The pure counting core: decode a batch, match its events to key results, count them.

`decode.py` (decode_batch) -> `totals.py` (replay filter, first of each (shop, id), totals per
shop and type) -> `matching.py` (MatchIndex: which key results an event moves) -> `series.py`
(series_deltas, with `localdays.py`). No I/O: it imports only okrflow.events and
okrflow.domain, so the live worker, its counting helper process and the backfill all count the
same way.
"""

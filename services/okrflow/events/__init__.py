"""CloudEvents 1.0 envelope decoding and validation: the hot path's first step."""

from okrflow.events.envelope import CloudEvent, InvalidEvent, decode_event

__all__ = ["CloudEvent", "InvalidEvent", "decode_event"]

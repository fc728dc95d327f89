"""`okrflow emit` against a real broker: every bad line is reported by number and skipped,
the rest of the file is sent."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.factories import cloud_event
from tests.integration.processes import okrflow, okrflow_env
from tests.integration.streams import read_topic


def test_bad_lines_are_reported_and_skipped_and_the_rest_is_sent(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = os.urandom(4).hex()
    env = okrflow_env(
        kafka_bootstrap=kafka_bootstrap, events_topic=f"emit-{run}", dlq_topic=f"emit-{run}.dlq"
    )
    deep = 2_000
    lines = [
        json.dumps(cloud_event("first")),
        '{"specversion": "1.0", "id": ',  # not JSON
        json.dumps(cloud_event("deep"))[:-1] + ', "x": ' + "[" * deep + "]" * deep + "}",
        json.dumps(cloud_event("huge", data={"blob": "x" * 2_000_000})),  # > broker's 1 MB
        json.dumps(cloud_event("last")),
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")

    emitted = okrflow(env, "emit", str(events))

    assert emitted.returncode == 2, emitted.stderr
    assert "Traceback" not in emitted.stderr, emitted.stderr
    problems = [line for line in emitted.stderr.splitlines() if line.startswith(f"{events}:")]
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4"], emitted.stderr
    assert problems[0].startswith(f"{events}:2: not JSON")
    assert problems[1].startswith(f"{events}:3: JSON nested deeper than")
    assert problems[2].startswith(f"{events}:4: refused by Kafka")
    assert "MessageSizeTooLarge" in problems[2]
    assert "sent 2 events" in emitted.stdout

    records = read_topic(kafka_bootstrap, f"emit-{run}")
    assert sorted(json.loads(r.value)["id"] for r in records) == ["first", "last"]
    assert {r.key for r in records} == {b"salone-bella"}

"""The exporter's HTTP: HTTP/1.1 keep-alive, gzip when asked (the same exposition), health and
readiness, build info and process metrics, parsed with prometheus_client's parser."""

from __future__ import annotations

import gzip
import http.client
import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.processes import okrflow, okrflow_env, running
from tests.services import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]


def _get(
    conn: http.client.HTTPConnection, path: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def test_exporter_http(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "okrflow.db"
    env = okrflow_env(
        database_url=f"sqlite:///{database}", exporter_port=port, exporter_refresh_seconds=0.2,
        startup_deadline_seconds=60,
    )  # fmt: skip
    log = tmp_path / "exporter.log"
    with running(env, "exporter", log=log) as exporter:
        # No database yet: the exporter waits for one instead of creating it.
        wait_for(log.read_text, lambda t: "waiting for the database" in t, 30, "the wait line")
        assert not database.exists()
        applied = okrflow(env, "apply", str(REPO / "schemas/examples/okrs/salon.yaml"), "--yes")
        assert applied.returncode == 0, applied.stderr

        def ready() -> int:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                return _get(conn, "/readyz")[0]
            except OSError:
                return 0

        wait_for(ready, lambda status: status == 200, 60, "/readyz 200")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        status, headers, plain = _get(conn, "/metrics")
        assert status == 200 and "content-encoding" not in headers
        sock = conn.sock
        # The same connection serves the next request (HTTP/1.1 keep-alive).
        status, headers, zipped = _get(conn, "/metrics", **{"Accept-Encoding": "gzip"})
        assert conn.sock is sock
        assert status == 200 and headers["content-encoding"] == "gzip"
        assert int(headers["content-length"]) == len(zipped) < len(plain)
        families = {
            f.name: f for f in text_string_to_metric_families(gzip.decompress(zipped).decode())
        }
        assert families.keys() == {f.name for f in text_string_to_metric_families(plain.decode())}
        build = families["okrflow_build_info"].samples[0].labels
        assert build["component"] == "exporter" and build["version"]
        assert "process_resident_memory_bytes" in families
        assert "okr_objective_progress_ratio" in families
        assert "okr_key_result_forecast_probability" in families  # OKRFLOW_EXPORTER_FORECASTS
        assert _get(conn, "/healthz")[0] == 200
        assert json.loads(_get(conn, "/readyz")[2])["status"] == "ready"
        assert _get(conn, "/nope")[0] == 404
        conn.close()
        assert exporter.poll() is None
    assert "Traceback" not in log.read_text()

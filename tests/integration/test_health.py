"""Readiness and Prometheus metrics."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.database import fresh_database
from vidqueue.migrate import migrate
from vidqueue.services import free_port

pytestmark = pytest.mark.integration


def metrics(api, headers=None) -> dict[tuple[str, tuple], float]:
    """The scraped samples, by name and labels."""
    answer = api.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_ready_when_redis_and_storage_answer(api):
    answer = api.get("/readyz")

    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "checks": {"redis": "ok", "storage": "ok", "database": "not configured"},
    }


def test_not_ready_when_storage_is_down(make_api):
    api = make_api(s3_endpoint=f"http://127.0.0.1:{free_port()}")

    answer = api.get("/readyz")

    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] == "ok"
    assert body["checks"]["storage"].startswith("failed")


def test_not_ready_when_the_database_is_down(make_api):
    api = make_api(database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/x")

    checks = api.get("/readyz").json()["checks"]

    assert checks["database"] != "ok"
    assert checks["database"] != "not configured"


def test_ready_with_a_migrated_database(make_api, postgres_server):
    with fresh_database(postgres_server) as database_url:
        unmigrated = make_api(database_url=database_url).get("/readyz")
        migrate(database_url)
        answer = make_api(database_url=database_url).get("/readyz")

    assert unmigrated.status_code == 503

    assert answer.json()["checks"]["database"] == "ok", answer.text


def test_metrics_count_jobs_uploads_and_speed(api, ctx):
    before = metrics(api)
    api.post("/uploads", json={"filename": "a.mp4", "contentType": "video/mp4",
                               "size": 3_000_000})  # fmt: skip
    ctx.records.record_throughput(30.0, 10.0)

    after = metrics(api)

    assert after[("vidqueue_jobs", (("state", "uploading"),))] == 1
    assert after[("vidqueue_jobs", (("state", "completed"),))] == 0
    uploads = ("vidqueue_upload_bytes_count", ())
    assert after[uploads] == before[uploads] + 1
    small = ("vidqueue_upload_bytes_bucket", (("le", "1.048576e+06"),))
    assert after[small] == before[small]
    assert after[("vidqueue_processing_seconds_total", ())] == 10.0
    assert after[("vidqueue_video_seconds_total", ())] == 30.0
    assert after[("vidqueue_realtime_factor", ())] == 3.0


def test_metrics_token_guards_the_metrics(make_api):
    api = make_api(metrics_token="scrape-token-0123456789")

    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code
    assert metrics(api, {"Authorization": "Bearer scrape-token-0123456789"})

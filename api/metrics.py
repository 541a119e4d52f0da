"""Prometheus metrics: jobs by state, processing time, upload sizes, speed.

Job counts and processing totals are read from Redis at scrape time, so
every API process reports the same, system-wide figures. Upload sizes are a
histogram of the uploads this process accepted; Prometheus adds the
processes together.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from rq import Worker

from vidqueue.context import Context

MIB = 1024 * 1024

UPLOAD_BYTES = Histogram(
    "vidqueue_upload_bytes",
    "Size of the uploads accepted by this API process, in bytes.",
    buckets=[MIB, 10 * MIB, 100 * MIB, 500 * MIB, 1024 * MIB, 5 * 1024 * MIB],
    registry=None,
)


class SystemMetrics:
    """The metrics of one vidqueue system, as a Prometheus collector."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        """Every metric, with current values."""
        jobs = GaugeMetricFamily(
            "vidqueue_jobs",
            "Jobs in each state; the final states count every job ended so far.",
            labels=["state"],
        )
        for state, count in self.ctx.records.counts().items():
            jobs.add_metric([state], count)
        yield jobs

        totals = self.ctx.records.throughput()
        yield CounterMetricFamily(
            "vidqueue_processing_seconds",
            "Seconds that workers spent on jobs that completed.",
            value=totals["elapsed_seconds"],
        )
        yield CounterMetricFamily(
            "vidqueue_video_seconds",
            "Seconds of video in jobs that completed.",
            value=totals["video_seconds"],
        )
        yield CounterMetricFamily(
            "vidqueue_jobs_processed",
            "Jobs that completed and were measured.",
            value=totals["jobs"],
        )
        factor = 0.0
        if totals["elapsed_seconds"] > 0:
            factor = totals["video_seconds"] / totals["elapsed_seconds"]
        yield GaugeMetricFamily(
            "vidqueue_realtime_factor",
            "Seconds of video one worker processes per second, on average.",
            value=factor,
        )
        yield GaugeMetricFamily(
            "vidqueue_workers",
            "Workers registered on the video queue.",
            value=Worker.count(queue=self.ctx.queue),
        )
        yield from UPLOAD_BYTES.collect()


def render(ctx: Context) -> bytes:
    """The metrics in Prometheus' text format."""
    return generate_latest(SystemMetrics(ctx))

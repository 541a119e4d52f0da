"""The RQ queue that video jobs wait in, and its figures."""

from __future__ import annotations

import logging

from redis import Redis
from rq import Callback, Queue, Retry, Worker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from vidqueue import defaults
from vidqueue.positions import mark_enqueued
from vidqueue.settings import Settings

logger = logging.getLogger("vidqueue.queue")

FAILURE_CALLBACK = "processor.job.on_failure"


def video_queue(redis: Redis) -> Queue:
    """The `video-processing` queue on this Redis."""
    return Queue(defaults.QUEUE_NAME, connection=redis)


def enqueue_video(queue: Queue, job_id: str, settings: Settings) -> bool:
    """Put the job on the queue, under its own id, at most once.

    Returns False when an RQ job with that id already exists (a duplicate
    announcement of the same upload), which is not an error.
    """
    try:
        queue.enqueue(
            defaults.JOB_FUNCTION,
            job_id,
            job_id=job_id,
            unique=True,
            retry=Retry(
                max=len(settings.retry_intervals),
                interval=list(settings.retry_intervals),
            ),
            job_timeout=settings.job_timeout_seconds,
            result_ttl=defaults.RECORD_TTL_SECONDS,
            failure_ttl=defaults.RECORD_TTL_SECONDS,
            on_failure=Callback(FAILURE_CALLBACK),
        )
    except DuplicateJobError:
        logger.info("job %s: already on the queue", job_id)
        return False
    mark_enqueued(queue.connection, job_id)
    logger.info("job %s: enqueued on %s", job_id, queue.name)
    return True


def requeue_video(queue: Queue, job_id: str, settings: Settings) -> bool:
    """Enqueue a job again after it ended, replacing its finished RQ job."""
    try:
        old = Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        old = None
    if old is not None:
        if old.get_status() in (JobStatus.QUEUED, JobStatus.STARTED):
            return False
        old.delete()
    return enqueue_video(queue, job_id, settings)


def queue_position(queue: Queue, job_id: str) -> int | None:
    """How many jobs wait before this one (0: next), or None if it is not waiting."""
    position = queue.connection.lpos(queue.key, job_id)
    return None if position is None else int(position)


class VideoWorker(Worker):
    """RQ's worker with leases sized for video jobs.

    RQ keeps a running job's lease for its monitoring interval plus a fixed
    minute; a worker killed mid-job (SIGKILL, out of memory) then leaves its
    job unclaimed for that long, plus up to ten minutes until another worker's
    maintenance finds it. These settings shorten both, so another worker
    finds an abandoned job within about
    `JOB_MONITORING_INTERVAL + LEASE_GRACE + MAINTENANCE_INTERVAL` seconds
    (30 s) and puts it back for its next attempt. That attempt waits for RQ's
    scheduler, and when the dead worker was the one holding the scheduler's
    lock, for that lock to lapse (61 s in RQ): about 90 s from death to the
    next attempt at worst.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("worker_ttl", defaults.WORKER_TTL_SECONDS)
        kwargs.setdefault(
            "job_monitoring_interval", defaults.JOB_MONITORING_INTERVAL_SECONDS
        )
        kwargs.setdefault("maintenance_interval", defaults.MAINTENANCE_INTERVAL_SECONDS)
        super().__init__(*args, **kwargs)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """The job's lease: the next heartbeat is due well within it."""
        return self.job_monitoring_interval + defaults.LEASE_GRACE_SECONDS

"""A render worker process: ``python -m render_farm.worker --url redis://...``.

An rq :class:`~rq.SimpleWorker` — jobs run in the worker process itself,
with no fork per job — so the decoded instances in its
:class:`~render_farm.cache.ByteLRUCache` stay warm from one frame to the
next; forking would throw the cache away with every child. The worker listens
on its private queue first (series routed to it by affinity) and on the
shared queue second, and announces itself with a heartbeat thread (see
:mod:`render_farm.routing`). SIGTERM or Ctrl-C finishes the current job and
leaves cleanly; a crash is noticed by clients when the heartbeat expires.
"""
from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import socket
import time
import traceback
import uuid
from datetime import UTC, datetime

from redis import Redis
from redis.client import Pipeline
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.timeouts import JobTimeoutException
from rq.worker import WorkerStatus

from render_farm import jobs, routing
from render_farm.cache import DEFAULT_MAX_BYTES

log = logging.getLogger("render_farm.worker")

#: The rq entry point whose jobs take the lean path of :class:`RenderWorker`.
RENDER_FUNCTION = f"{jobs.run.__module__}.{jobs.run.__name__}"


class RenderWorker(SimpleWorker):
    """An rq SimpleWorker with a lean path for render jobs.

    A stock rq worker makes about twenty Redis round trips around every job
    (execution records, started/finished registries, three-command
    heartbeats, state writes), which costs several milliseconds — more than
    the render itself. Render jobs (:func:`render_farm.jobs.run` with
    ``result_ttl=0``) need none of it: their answer goes to a reply list and
    a dead worker is detected by the client through the farm heartbeat. So a
    render job costs the dequeue (``BLPOP``, ``HGETALL``) and the reply,
    which also deletes the job's hash; a job taken from the shared queue records
    status ``started`` and the worker name first, which is how a waiting
    client learns who holds it. Any other job gets rq's full treatment, and a
    failing render job is recorded in rq's failed registry as usual.
    """

    #: rq's own worker heartbeat (for dashboards) and its check for `rq suspend`
    #: run at most this often instead of on every job.
    housekeeping_every_s = 2.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._private_queue = routing.worker_queue(self.name)
        self._suspension_checked = float("-inf")

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        if pipeline is None and self.last_heartbeat is not None:
            age = (datetime.now(UTC) - self.last_heartbeat).total_seconds()
            if age < self.housekeeping_every_s:
                return
        super().heartbeat(timeout, pipeline)

    def check_for_suspension(self, burst: bool) -> None:
        now = time.monotonic()
        if now - self._suspension_checked >= self.housekeeping_every_s:
            self._suspension_checked = now
            super().check_for_suspension(burst)

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        if pipeline is None and state == self._state:
            return  # unchanged: skip the write the work loop makes on every turn
        super().set_state(state, pipeline)

    def execute_job(self, job: Job, queue: Queue) -> None:
        if job.func_name != RENDER_FUNCTION or job.result_ttl != 0:
            super().execute_job(job, queue)
            return
        if queue.name == self._private_queue:
            job.worker_name = self.name  # known to the client already: no write
        else:
            with self.connection.pipeline(transaction=False) as pipe:
                job.prepare_for_execution(self.name, pipeline=pipe)
                pipe.execute()
        # BUSY makes SIGTERM wait for the job to end, as in rq's own path; it is
        # kept in this process only (rq writes it to Redis for dashboards).
        self._state = WorkerStatus.BUSY
        try:
            with self.death_penalty_class(job.timeout or queue.DEFAULT_TIMEOUT,
                                          JobTimeoutException, job_id=job.id):
                job.perform()
        except Exception:
            job.ended_at = datetime.now(UTC)
            self.log.exception("render job %s failed", job.id)
            self.handle_job_failure(job, queue, exc_string=traceback.format_exc())
        finally:
            self._state = WorkerStatus.IDLE


def default_name() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


def serve(redis_url: str, name: str | None = None, cache_bytes: int = DEFAULT_MAX_BYTES,
          shared_queue: str = routing.SHARED_QUEUE, log_level: str = "WARNING") -> None:
    """Work until asked to stop (SIGTERM/SIGINT).

    Parameters
    ----------
    redis_url : str
        The farm's Redis.
    name : str, optional
        Worker name (and private queue suffix); unique per process by default.
    cache_bytes : int
        Size of this worker's render cache.
    shared_queue : str
        The queue served after the private one.
    log_level : str
        rq logs every job at INFO; WARNING keeps the hot path quiet.
    """
    name = name or default_name()
    connection = Redis.from_url(redis_url)
    jobs.configure(cache_bytes)
    queues = [Queue(routing.worker_queue(name), connection=connection),
              Queue(shared_queue, connection=connection)]
    worker = RenderWorker(queues, connection=connection, name=name)
    heartbeat = routing.Heartbeat(connection, name).start()
    log.warning("render worker %s: listening on %s (cache %d MiB)", name,
                ", ".join(q.name for q in queues), cache_bytes >> 20)
    try:
        worker.work(logging_level=log_level, with_scheduler=False)
    finally:
        heartbeat.stop()
        log.warning("render worker %s: stopped", name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cloud PACS render worker (rq SimpleWorker).")
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", ""),
                        help="Redis URL (default: $REDIS_URL)")
    parser.add_argument("--name", default=None, help="worker name (default: host.pid.random)")
    parser.add_argument("--cache-bytes", type=int,
                        default=int(os.environ.get("PACS_RENDER_CACHE_BYTES", DEFAULT_MAX_BYTES)),
                        help="render cache size (default: $PACS_RENDER_CACHE_BYTES or 2 GiB)")
    parser.add_argument("--queue", default=routing.SHARED_QUEUE, help="shared queue name")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("no Redis URL: pass --url or set REDIS_URL")
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1` dumps stacks
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.url, args.name, args.cache_bytes, args.queue, args.log_level)


if __name__ == "__main__":
    main()

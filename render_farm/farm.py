"""The farm client: run a render in this process, or on rq workers through Redis.

:class:`LocalFarm` renders in the calling thread with a process-wide cache.
:class:`RqFarm` enqueues the render on the home worker of its series (see
:mod:`render_farm.routing`) and blocks until the worker pushes the image
back: a frame request is answered synchronously.

Failover: the client waits on the reply in short slices. After each slice it
checks that the job still has a live worker — the home worker's heartbeat,
or, for a job taken from the shared queue, the heartbeat of whoever started
it. When that worker is gone (crashed, killed, scaled down) the same job is
enqueued on the next worker in the series' rendezvous order, or on the
shared queue, with the same reply key; whichever copy answers first wins. A
caller therefore never sees a failed frame because a worker died, only a
slower one: detection takes at most the heartbeat TTL plus one slice.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from redis import Redis
from rq import Queue
from rq.job import Job

from render_farm import jobs, routing
from render_farm.cache import DEFAULT_MAX_BYTES, ByteLRUCache
from render_farm.jobs import Rendered, RenderError

log = logging.getLogger(__name__)

REPLY_PREFIX = "pacs:render:reply:"


class Farm(Protocol):
    """What :mod:`app.services.rendering` needs of a farm."""

    def run(self, operation: str, params: dict, affinity: str) -> Rendered:
        """Render; `affinity` (e.g. tenant + series UID) keeps related work together."""


# --------------------------------------------------------------------------- in-process

_process_cache: ByteLRUCache | None = None
_process_lock = threading.Lock()


def process_cache(max_bytes: int = DEFAULT_MAX_BYTES) -> ByteLRUCache:
    """The one render cache of this process, created with `max_bytes` on first use."""
    global _process_cache
    with _process_lock:
        if _process_cache is None:
            _process_cache = ByteLRUCache(max_bytes)
        return _process_cache


class LocalFarm:
    """Render in the calling thread (no Redis configured), sharing `cache`."""

    def __init__(self, cache: ByteLRUCache) -> None:
        self.cache = cache

    def run(self, operation: str, params: dict, affinity: str = "") -> Rendered:
        body, media_type = jobs.execute(self.cache, operation, params)
        return Rendered(body, media_type)


# --------------------------------------------------------------------------- rq


@dataclass
class _Attempt:
    job_id: str
    queue: str
    worker: str | None  # the private queue's worker; None for the shared queue
    tried: set[str] = field(default_factory=set)


class RqFarm:
    """Render on rq workers, waiting synchronously for the image.

    Parameters
    ----------
    connection : redis.Redis
        Connection to the farm's Redis (its pool is shared by all threads).
    timeout_s : float
        Give up (``RenderError("unavailable")``) after this long in total.
    slice_s : float
        How often a waiting request checks that its worker is still alive.
    job_timeout_s : int
        rq's limit on one job's run time.
    fallback : LocalFarm, optional
        Used when no worker is alive at all, instead of queueing work nobody
        will take; without it such work waits on the shared queue.
    """

    def __init__(self, connection: Redis, *, timeout_s: float = 30.0, slice_s: float = 0.25,
                 job_timeout_s: int = 60, fallback: LocalFarm | None = None) -> None:
        self.connection = connection
        self.timeout_s, self.slice_s, self.job_timeout_s = timeout_s, slice_s, job_timeout_s
        self.fallback = fallback
        self.workers = routing.LiveWorkers(connection)
        self._queues: dict[str, Queue] = {}

    def run(self, operation: str, params: dict, affinity: str) -> Rendered:
        """Render `operation` on the home worker of `affinity`; see the module docstring."""
        live = self.workers.names()
        if not live and self.fallback is not None:
            return self.fallback.run(operation, params, affinity)
        reply_key = REPLY_PREFIX + uuid.uuid4().hex
        deadline = time.monotonic() + self.timeout_s
        attempt = first = self._submit(operation, params, affinity, reply_key, live, set())
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RenderError("unavailable", "no render worker answered in time")
                popped = self.connection.blpop([reply_key], timeout=min(self.slice_s, left))
                if popped is not None:
                    return jobs.unpack(popped[1])
                if self._lost(attempt):
                    attempt = self._resubmit(operation, params, affinity, reply_key, attempt)
        finally:
            if attempt is not first:
                self.connection.delete(reply_key)  # drop a late duplicate answer now

    # ------------------------------------------------------------------ internals

    def _queue(self, name: str) -> Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = Queue(name, connection=self.connection)
        return queue

    def _submit(self, operation: str, params: dict, affinity: str, reply_key: str,
                live: tuple[str, ...] | list[str], tried: set[str]) -> _Attempt:
        candidates = [w for w in routing.rank(affinity, live) if w not in tried]
        worker = candidates[0] if candidates else None
        name = routing.worker_queue(worker) if worker else routing.SHARED_QUEUE
        with self.connection.pipeline() as pipe:  # one round trip for the whole enqueue
            job = self._queue(name).enqueue(
                jobs.run, reply_key, operation, params, pipeline=pipe,
                # Answers travel on the reply list; rq keeps nothing after success,
                # and a job nobody starts within the client's patience expires.
                result_ttl=0, ttl=int(self.timeout_s) + 1, failure_ttl=300,
                job_timeout=self.job_timeout_s, description=f"render {operation}")
            pipe.execute()
        return _Attempt(job.id, name, worker, tried | ({worker} if worker else set()))

    def _lost(self, attempt: _Attempt) -> bool:
        """True when no live worker holds `attempt` any more."""
        if attempt.worker is not None:
            return not self.workers.is_alive(attempt.worker)
        status, started_by = self.connection.hmget(Job.key_for(attempt.job_id),
                                                   ["status", "worker_name"])
        if status is None:
            return True  # expired or removed without answering
        if status == b"started" and started_by:
            return not self.workers.is_alive(started_by.decode())
        return status in (b"failed", b"stopped", b"canceled")

    def _resubmit(self, operation: str, params: dict, affinity: str, reply_key: str,
                  attempt: _Attempt) -> _Attempt:
        if attempt.worker is not None:
            self.workers.suspect(attempt.worker)
            # Take our job out of the dead worker's queue so nobody runs it twice.
            self.connection.lrem(self._queue(attempt.queue).key, 0, attempt.job_id)
        log.warning("render job %s lost with worker %s; re-submitting",
                    attempt.job_id, attempt.worker or "(shared queue)")
        return self._submit(operation, params, affinity, reply_key, self.workers.names(),
                            attempt.tried)


def connect(redis_url: str, **options) -> RqFarm:
    """An :class:`RqFarm` on the Redis at `redis_url` (options as for :class:`RqFarm`)."""
    return RqFarm(Redis.from_url(redis_url), **options)

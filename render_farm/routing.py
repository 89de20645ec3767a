"""Which render worker gets a job: queue names, worker liveness and series affinity.

Every render worker listens on its own queue first and on the shared queue
second. A series is sent to the same worker for as long as that worker lives,
so its decoded frames stay warm in one cache instead of being decoded once per
worker. The worker is chosen by rendezvous (highest random weight) hashing of
the series key over the live workers: when a worker joins or leaves, only the
series it wins or held move, and every web process picks the same worker
without talking to the others.

Liveness is our own heartbeat, not rq's worker registry: rq refreshes its
worker key only between jobs and keeps it for minutes after a crash, while a
frame request needs to notice a dead worker within seconds. Each worker runs a
:class:`Heartbeat` thread that sets ``pacs:render:alive:<name>`` with a TTL of a
couple of seconds, so the key vanishes on its own when the process dies (even
by SIGKILL) and Redis's clock alone decides expiry.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Sequence

from redis import Redis

log = logging.getLogger(__name__)

#: The queue every render worker serves after its own.
SHARED_QUEUE = "render"
#: Prefix of each worker's private queue (affinity): ``render.w.<worker name>``.
WORKER_QUEUE_PREFIX = "render.w."
#: Set of the names of workers that announced themselves.
WORKERS_KEY = "pacs:render:workers"
#: Prefix of the per-worker heartbeat key (exists while the worker is alive).
ALIVE_PREFIX = "pacs:render:alive:"

HEARTBEAT_TTL_MS = 2000
HEARTBEAT_INTERVAL_S = 0.4

_RQ_QUEUES_KEY = "rq:queues"
_RQ_QUEUE_PREFIX = "rq:queue:"


def worker_queue(name: str) -> str:
    """Name of the private queue of worker `name`."""
    return WORKER_QUEUE_PREFIX + name


def alive_key(name: str) -> str:
    """Heartbeat key of worker `name`."""
    return ALIVE_PREFIX + name


def _weight(series_key: str, worker: str) -> int:
    digest = hashlib.blake2b(f"{series_key}\0{worker}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rank(series_key: str, workers: Iterable[str]) -> list[str]:
    """Order `workers` by rendezvous weight for `series_key`, best first.

    The first is the series' home; the next ones are where it goes if the
    home dies, so failover also keeps a series together.
    """
    return sorted(workers, key=lambda worker: (_weight(series_key, worker), worker), reverse=True)


def choose(series_key: str, workers: Iterable[str]) -> str | None:
    """The home worker of `series_key` among `workers`, or None when there are none."""
    ranked = rank(series_key, workers)
    return ranked[0] if ranked else None


# --------------------------------------------------------------------------- worker side


class Heartbeat:
    """Announce a live worker and keep its heartbeat key fresh from a daemon thread.

    Parameters
    ----------
    connection : redis.Redis
    name : str
        The worker's name (also names its private queue).
    ttl_ms, interval_s : int, float
        Key lifetime and refresh period; the key outlives a few missed beats.
    """

    def __init__(self, connection: Redis, name: str, ttl_ms: int = HEARTBEAT_TTL_MS,
                 interval_s: float = HEARTBEAT_INTERVAL_S) -> None:
        self.connection, self.name = connection, name
        self.ttl_ms, self.interval_s = ttl_ms, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)

    def beat(self) -> None:
        """Refresh the heartbeat key and membership once."""
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.set(alive_key(self.name), b"1", px=self.ttl_ms)
            pipe.sadd(WORKERS_KEY, self.name)
            pipe.execute()

    def start(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and leave: clients stop routing here at once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2 * self.interval_s + 1)
        forget(self.connection, self.name)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except Exception:  # a Redis hiccup must not kill the thread; the TTL covers it
                log.warning("render worker %s: heartbeat failed", self.name, exc_info=True)


def forget(connection: Redis, name: str) -> None:
    """Remove worker `name`: heartbeat, membership and its private queue.

    Jobs still waiting in that queue are dropped; their clients notice the
    worker is gone and re-submit them elsewhere.
    """
    queue = worker_queue(name)
    with connection.pipeline(transaction=False) as pipe:
        pipe.delete(alive_key(name), _RQ_QUEUE_PREFIX + queue)
        pipe.srem(WORKERS_KEY, name)
        pipe.srem(_RQ_QUEUES_KEY, _RQ_QUEUE_PREFIX + queue)
        pipe.execute()


# --------------------------------------------------------------------------- client side


class LiveWorkers:
    """A client's view of the live workers, refreshed from Redis at most every `refresh_s`.

    Workers found dead (no heartbeat key) are forgotten in Redis, so a crashed
    worker's queue does not linger. :meth:`suspect` drops a worker locally at
    once when a request has seen it die, before the next refresh.
    """

    def __init__(self, connection: Redis, refresh_s: float = 0.5) -> None:
        self.connection, self.refresh_s = connection, refresh_s
        self._lock = threading.Lock()
        self._names: tuple[str, ...] = ()
        self._suspects: dict[str, float] = {}  # name -> monotonic time the suspicion ends
        self._checked = float("-inf")

    def names(self) -> tuple[str, ...]:
        """Names of the live workers (sorted)."""
        now = time.monotonic()
        if now - self._checked >= self.refresh_s:
            self._refresh(now)
        with self._lock:
            return tuple(n for n in self._names if self._suspects.get(n, 0.0) <= now)

    def is_alive(self, name: str) -> bool:
        """Ask Redis now whether worker `name` is alive (one round trip)."""
        return bool(self.connection.exists(alive_key(name)))

    def suspect(self, name: str) -> None:
        """Stop routing to `name` for a heartbeat TTL (its key is gone or about to go)."""
        with self._lock:
            self._suspects[name] = time.monotonic() + 2 * HEARTBEAT_TTL_MS / 1000

    def _refresh(self, now: float) -> None:
        members = sorted(m.decode() for m in self.connection.smembers(WORKERS_KEY))
        flags = self.connection.mget([alive_key(m) for m in members]) if members else []
        live = [m for m, flag in zip(members, flags) if flag is not None]
        for dead in set(members) - set(live):
            log.info("render worker %s has no heartbeat; forgetting it", dead)
            forget(self.connection, dead)
        with self._lock:
            self._names = tuple(live)
            self._suspects = {n: t for n, t in self._suspects.items() if t > now}
            self._checked = now


def live_names(connection: Redis) -> Sequence[str]:
    """Names of the workers alive right now (uncached; for tools and tests)."""
    return LiveWorkers(connection, refresh_s=0.0).names()

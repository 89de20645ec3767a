"""A thread-safe LRU cache bounded by the bytes its values hold.

The render farm keeps decoded sources, decoded frames and (later) volumes
warm between requests. Counting entries would be meaningless when one value
is a 2 KiB thumbnail and the next a 600-slice volume, so the bound is in
bytes, set by the deployment (``RENDER_CACHE_BYTES``, 2 GiB by default).
"""
from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_MAX_BYTES = 2 * 1024**3


def default_size(value: object) -> int:
    """Return the bytes held by `value`: ``nbytes`` when it has one (numpy
    arrays, :class:`~render_farm.decode.FrameSource`), else ``sys.getsizeof``."""
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    return sys.getsizeof(value)


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a cache's counters."""

    hits: int
    misses: int
    evictions: int
    bytes: int
    items: int
    max_bytes: int


class ByteLRUCache:
    """Least-recently-used cache whose capacity is a number of bytes.

    Parameters
    ----------
    max_bytes : int
        Total size the cached values may hold; least recently used values are
        evicted to stay under it. A single value larger than this is returned
        to its caller but not kept.

    Notes
    -----
    Loaders run outside the cache lock so a slow decode never blocks hits on
    other keys; concurrent misses on the *same* key wait for the first loader
    instead of decoding the same frame twice.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._loading: dict[Hashable, threading.Event] = {}
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    def get(self, key: Hashable, default: Any = None) -> Any:
        """Return the value cached under `key` (marking it recently used), or `default`."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self._misses += 1
                return default
            self._items.move_to_end(key)
            self._hits += 1
            return entry[0]

    def put(self, key: Hashable, value: Any, size: int | None = None) -> None:
        """Cache `value` under `key`, counting `size` bytes (``default_size`` if None)."""
        nbytes = default_size(value) if size is None else int(size)
        with self._lock:
            self._store(key, value, nbytes)

    def get_or_load(
        self,
        key: Hashable,
        loader: Callable[[], T],
        size_fn: Callable[[T], int] = default_size,
    ) -> T:
        """Return the value under `key`, calling `loader` once to create it on a miss.

        Parameters
        ----------
        key : Hashable
            Opaque key; callers namespace it (e.g. ``(source_key, "frame", 3)``).
        loader : callable
            Produces the value; exceptions propagate and nothing is cached.
        size_fn : callable
            Bytes held by the loaded value.
        """
        while True:
            with self._lock:
                entry = self._items.get(key)
                if entry is not None:
                    self._items.move_to_end(key)
                    self._hits += 1
                    return entry[0]
                pending = self._loading.get(key)
                if pending is None:
                    self._misses += 1
                    done = self._loading[key] = threading.Event()
                    break
            # Another thread is loading this key: wait, then look again (it may
            # have failed or been too large to keep, in which case we load).
            pending.wait()
        try:
            value = loader()
            with self._lock:
                self._store(key, value, size_fn(value))
            return value
        finally:
            with self._lock:
                del self._loading[key]
            done.set()

    def discard(self, key: Hashable) -> None:
        """Forget `key` if cached."""
        with self._lock:
            entry = self._items.pop(key, None)
            if entry is not None:
                self._bytes -= entry[1]

    def clear(self) -> None:
        """Forget every value (counters are kept)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def stats(self) -> CacheStats:
        """Return hits, misses, evictions, bytes held, item count and capacity."""
        with self._lock:
            return CacheStats(self._hits, self._misses, self._evictions,
                              self._bytes, len(self._items), self.max_bytes)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _store(self, key: Hashable, value: Any, nbytes: int) -> None:
        # Caller holds the lock.
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        if nbytes > self.max_bytes:
            return
        self._items[key] = (value, nbytes)
        self._bytes += nbytes
        while self._bytes > self.max_bytes:
            _, (_, evicted) = self._items.popitem(last=False)
            self._bytes -= evicted
            self._evictions += 1

"""The byte-bounded LRU cache."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from render_farm import ByteLRUCache


def test_evicts_least_recently_used_by_bytes():
    cache = ByteLRUCache(max_bytes=1000)
    cache.put("a", b"", size=400)
    cache.put("b", b"", size=400)
    assert cache.get("a") == b""          # a is now the most recently used
    cache.put("c", b"", size=400)         # 1200 > 1000: evict b, not a
    assert "a" in cache and "c" in cache and "b" not in cache
    stats = cache.stats()
    assert (stats.bytes, stats.items, stats.evictions, stats.max_bytes) == (800, 2, 1, 1000)


def test_one_big_value_evicts_several_small_ones():
    cache = ByteLRUCache(max_bytes=1000)
    for key in range(5):
        cache.put(key, key, size=200)
    cache.put("big", "big", size=700)
    assert sorted(k for k in range(5) if k in cache) == [4]
    assert cache.stats().bytes == 900


def test_value_larger_than_the_cache_is_returned_but_not_kept():
    cache = ByteLRUCache(max_bytes=100)
    cache.put("small", 1, size=10)
    assert cache.get_or_load("huge", lambda: np.zeros(1000, np.uint8)).nbytes == 1000
    assert "huge" not in cache and "small" in cache


def test_size_defaults_to_nbytes():
    cache = ByteLRUCache(max_bytes=10_000)
    cache.get_or_load("frame", lambda: np.zeros((10, 10), np.int16))
    assert cache.stats().bytes == 200


def test_replacing_a_key_recounts_its_bytes():
    cache = ByteLRUCache(max_bytes=1000)
    cache.put("a", 1, size=600)
    cache.put("a", 2, size=100)
    assert cache.stats().bytes == 100 and cache.get("a") == 2
    cache.discard("a")
    assert cache.stats().bytes == 0 and len(cache) == 0


def test_hits_and_misses_are_counted():
    cache = ByteLRUCache(max_bytes=1000)
    calls = []
    for _ in range(3):
        cache.get_or_load("k", lambda: calls.append(1) or "v", size_fn=lambda v: 1)
    stats = cache.stats()
    assert (stats.hits, stats.misses, len(calls)) == (2, 1, 1)


def test_loader_errors_are_not_cached():
    cache = ByteLRUCache(max_bytes=1000)
    with pytest.raises(RuntimeError):
        cache.get_or_load("k", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert cache.get_or_load("k", lambda: "ok", size_fn=lambda v: 1) == "ok"


def test_concurrent_misses_on_one_key_load_once():
    cache = ByteLRUCache(max_bytes=1000)
    calls = []

    def slow_loader() -> str:
        calls.append(1)
        time.sleep(0.05)
        return "decoded"

    results = []
    threads = [threading.Thread(target=lambda: results.append(
        cache.get_or_load("frame", slow_loader, size_fn=lambda v: 8))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["decoded"] * 8 and len(calls) == 1


def test_many_threads_keep_the_byte_bound():
    cache = ByteLRUCache(max_bytes=5000)

    def worker(offset: int) -> None:
        for i in range(200):
            cache.get_or_load((offset, i % 37), lambda: i, size_fn=lambda v: 100)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert stats.bytes <= 5000 and stats.bytes == stats.items * 100


def test_rejects_a_non_positive_bound():
    with pytest.raises(ValueError):
        ByteLRUCache(0)

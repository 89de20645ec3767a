"""Render farm benchmark: what rq workers add to a warm 512² CT frame, and throughput.

Part of ``python -m tests.bench farm``. Uses the machine's Redis (DB 14,
flushed before and after) and real ``python -m render_farm.worker``
subprocesses. The frame is a mid-chest slice of the synthetic 300-slice CT,
windowed C40/W400, JPEG q90, native size; every measurement runs on warm
caches (the worker's and the in-process one).

Figures:

- ``latency``: p50/p90 ms of one synchronous request in-process and through
  the farm with one worker, and their difference (the farm's overhead:
  enqueue, the worker's dequeue, the reply list, two processes sharing two cores).
- ``throughput``: frames/s with 4 client threads (each scrolling its own
  series through 20 slices), in-process and with 1 and 2 workers. The series
  are chosen so that affinity puts two on each of two workers.
"""
from __future__ import annotations

import ctypes
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from redis import Redis

from render_farm import ByteLRUCache, ViewState, routing
from render_farm.farm import Farm, LocalFarm, RqFarm

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("PACS_BENCH_REDIS", "redis://localhost:6379/14")
STATE = ViewState(window_center=40, window_width=400, quality=90)
THREADS = 4
SLICES = 20


def _params(path: Path) -> dict:
    return {"path": str(path), "source_key": f"bench/{path.name}",
            "query": STATE.to_query(), "frame": 0}


_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child


def _die_with_parent() -> None:
    _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux): workers die with the benchmark


def _start(redis: Redis, name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "render_farm.worker", "--url", REDIS_URL,
                             "--name", name, "--cache-bytes", str(1 << 30)], cwd=ROOT,
                            preexec_fn=_die_with_parent)  # noqa: PLW1509
    deadline = time.monotonic() + 30
    while name not in routing.live_names(redis):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"render worker {name} did not start")
        time.sleep(0.05)
    return proc


def _latency(farm: Farm, path: Path, repeats: int) -> dict[str, float]:
    for _ in range(20):
        farm.run("frame", _params(path), "latency")  # warm: decode, LUT, worker cache
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        farm.run("frame", _params(path), "latency")
        samples.append((time.perf_counter() - started) * 1e3)
    samples.sort()
    return {"p50_ms": statistics.median(samples), "p90_ms": samples[int(len(samples) * 0.9)]}


def _series_keys(workers: list[str]) -> list[str]:
    """THREADS affinity keys, spread evenly over `workers` by rendezvous hashing."""
    keys: list[str] = []
    for index in range(THREADS):
        wanted = workers[index % len(workers)]
        keys.append(next(k for k in (f"bench-{index}-{n}" for n in range(1000))
                         if routing.choose(k, workers) == wanted))
    return keys


def _throughput(farm: Farm, paths: list[Path], keys: list[str], seconds: float) -> float:
    for key in keys:  # warm each series' slices on its worker
        for path in paths:
            farm.run("frame", _params(path), key)
    stop, counts = threading.Event(), [0] * len(keys)

    def scroll(index: int) -> None:
        while not stop.is_set():
            for path in paths:
                farm.run("frame", _params(path), keys[index])
                counts[index] += 1

    threads = [threading.Thread(target=scroll, args=(i,)) for i in range(len(keys))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def run(repeats: int = 300, seconds: float = 5.0) -> dict:
    """Measure and return the figures described in the module docstring."""
    from tests.bench.data import ct_folder

    files = sorted(p for p in ct_folder().iterdir() if p.suffix == ".dcm")
    mid = len(files) // 2
    paths = files[mid - SLICES // 2: mid + SLICES // 2]
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    local = LocalFarm(ByteLRUCache(1 << 30))
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_start(redis, "bench-1"))
        farm = RqFarm(redis, timeout_s=30)
        in_process = _latency(local, paths[SLICES // 2], repeats)
        one = _latency(farm, paths[SLICES // 2], repeats)
        results: dict = {"latency": {
            "in_process": in_process, "farm_1_worker": one,
            "farm_overhead_p50_ms": one["p50_ms"] - in_process["p50_ms"],
            "farm_overhead_p90_ms": one["p90_ms"] - in_process["p90_ms"]}}
        throughput = {"in_process_4_threads_fps": _throughput(
            local, paths, [f"local-{i}" for i in range(THREADS)], seconds)}
        throughput["farm_1_worker_4_threads_fps"] = _throughput(
            farm, paths, _series_keys(["bench-1"]), seconds)
        procs.append(_start(redis, "bench-2"))
        time.sleep(1.0)  # let the client's view of live workers refresh
        throughput["farm_2_workers_4_threads_fps"] = _throughput(
            farm, paths, _series_keys(["bench-1", "bench-2"]), seconds)
        results["throughput"] = throughput
        return results
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.flushdb()


if __name__ == "__main__":
    for section, figures in run().items():
        print(section)
        for name, value in figures.items():
            print(f"  {name:<32} {value}")

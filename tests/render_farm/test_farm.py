"""The render farm on real rq worker processes and the machine's Redis (DB 15).

Workers are ``python -m render_farm.worker`` subprocesses, stopped (or
killed) by the fixtures even when a test fails.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from redis import Redis

from app.demo.synthetic import StudySpec, chest_ct, to_bytes, xa_cine
from app.services import rendering
from render_farm import ByteLRUCache, ImageFormat, ViewState, jobs, routing
from render_farm.farm import LocalFarm, RqFarm
from render_farm.jobs import RenderError
from tests.conftest import REDIS_TEST_URL

ROOT = Path(__file__).resolve().parents[2]
# Worker names unique to this test run: another run on the same Redis DB must
# not serve (or kill) our queues.
_RUN = os.getpid()
WA, WB, K1, K2, V1 = (f"{name}-{_RUN}" for name in ("w-a", "w-b", "k-1", "k-2", "v-1"))
STATES = [ViewState(), ViewState(window_center=-600, window_width=1500, width=96, height=96),
          ViewState(format=ImageFormat.PNG, zoom=1.5, rotation=30, width=64, height=64)]


@pytest.fixture
def redis():
    connection = Redis.from_url(REDIS_TEST_URL)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the test process dies, however it dies (Linux)."""
    _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Workers:
    """Render worker subprocesses, started by name and always stopped."""

    def __init__(self, redis: Redis, logs: Path) -> None:
        self.redis, self.logs = redis, logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, *names: str, timeout: float = 30.0) -> None:
        for name in names:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "render_farm.worker", "--url", REDIS_TEST_URL,
                 "--name", name, "--cache-bytes", str(256 << 20)],
                cwd=ROOT, stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent,  # noqa: PLW1509
                stderr=open(self.logs / f"{name}.log", "wb"))  # noqa: SIM115 (child owns it)
        deadline = time.monotonic() + timeout
        while not set(names) <= set(routing.live_names(self.redis)):
            assert time.monotonic() < deadline, "render workers did not start"
            assert all(self.procs[n].poll() is None for n in names), "a worker exited"
            time.sleep(0.05)

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck worker
                proc.send_signal(signal.SIGUSR1)  # its stacks go to its log first
                time.sleep(0.5)
                proc.kill()
                proc.wait(5)


@pytest.fixture
def workers(redis, tmp_path):
    pool = Workers(redis, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, list[Path]]:
    """Two CT series (6 slices of 96²) and one 12-frame XA cine of 128², on disk."""
    folder = tmp_path_factory.mktemp("farm")
    found: dict[str, list[Path]] = {}
    for seed in (1, 2):
        for i, ds in enumerate(chest_ct(StudySpec(seed=seed), n_slices=6, rows=96, cols=96)):
            path = folder / f"ct{seed}-{i}.dcm"
            path.write_bytes(to_bytes(ds))
            found.setdefault(f"ct{seed}", []).append(path)
    cine = folder / "xa.dcm"
    cine.write_bytes(to_bytes(xa_cine(StudySpec(seed=3), frames=12, rows=128, cols=128)))
    found["xa"] = [cine]
    return found


def _params(path: Path, state: ViewState) -> dict:
    return {"path": str(path), "source_key": f"test/{path.name}",
            "query": state.replace(frame=0).to_query(), "frame": state.frame}


def test_frames_from_workers_equal_in_process_renders(redis, workers, files):
    workers.start(WA, WB)
    farm, local = RqFarm(redis, timeout_s=20), LocalFarm(ByteLRUCache(64 << 20))
    for series in ("ct1", "ct2"):
        for path in files[series]:
            for state in STATES:
                remote = farm.run("frame", _params(path, state), series)
                here = local.run("frame", _params(path, state))
                assert remote.worker in (WA, WB) and here.worker == ""
                assert (remote.body, remote.media_type) == (here.body, here.media_type)
    cine = {"path": str(files["xa"][0]), "source_key": "test/xa", "query": "w=64&h=64"}
    animated = farm.run("animation", cine, "xa")
    assert animated.media_type == "image/gif"
    assert animated.body == local.run("animation", cine).body
    with pytest.raises(RenderError) as caught:  # errors travel back as errors
        farm.run("frame", _params(files["ct1"][0], ViewState(frame=5)), "ct1")
    assert caught.value.kind == "frame"
    with pytest.raises(RenderError) as caught:
        farm.run("frame", {**_params(files["ct1"][0], ViewState()), "path": "/nonexistent",
                           "source_key": "test/gone"}, "x")
    assert caught.value.kind == "missing"
    # Nothing is left behind: no results, no finished jobs, no reply lists (the
    # worker deletes a job's hash just after the reply, so allow it a moment).
    deadline = time.monotonic() + 2
    while True:
        leftovers = [key for pattern in ("rq:job:*", "rq:results:*", "pacs:render:reply:*",
                                         "rq:finished:*") for key in redis.scan_iter(pattern)]
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert leftovers == []


def test_a_series_stays_on_one_worker(redis, workers, files):
    workers.start(WA, WB)
    farm = RqFarm(redis, timeout_s=20)
    homes = {}
    for n in range(16):
        series = f"tenant1/series-{n}"
        seen = {farm.run("frame", _params(files["ct1"][i % 6], ViewState()), series).worker
                for i in range(4)}
        assert len(seen) == 1, (series, seen)
        homes[series] = seen.pop()
        assert homes[series] == routing.choose(series, [WA, WB])
    assert set(homes.values()) == {WA, WB}  # rendezvous spreads series over workers


def _running(redis: Redis, description: str, queue: str) -> bool:
    """True while a job so described has left `queue` and has not answered yet."""
    for key in redis.scan_iter("rq:job:*"):
        if redis.hget(key, "description") == description.encode():
            job_id = key.decode().rpartition(":")[2]
            return redis.lpos(f"rq:queue:{queue}", job_id) is None and bool(redis.exists(key))
    return False


def test_killed_worker_loses_no_frame(redis, workers, files):
    victim, survivor = K1, K2
    workers.start(victim, survivor)
    farm = RqFarm(redis, timeout_s=20)
    local = LocalFarm(ByteLRUCache(64 << 20))
    victim_series = next(s for s in (f"victim-{n}" for n in range(100))
                         if routing.choose(s, [victim, survivor]) == victim)
    other_series = next(s for s in (f"other-{n}" for n in range(100))
                        if routing.choose(s, [victim, survivor]) == survivor)
    expected = {(p, i): jobs.execute(local.cache, "frame", _params(p, s))[0]
                for p in files["ct1"] for i, s in enumerate(STATES)}
    cine = {"path": str(files["xa"][0]), "source_key": "test/xa-big", "query": "w=1024&h=1024"}
    stop, failures, served, latencies = threading.Event(), [], [], []

    def load(series: str) -> None:
        while not stop.is_set():
            for (path, i), body in expected.items():
                started = time.monotonic()
                try:
                    got = farm.run("frame", _params(path, STATES[i]), series)
                    assert got.body == body
                    served.append((time.monotonic(), series, got.worker))
                except Exception as exc:  # noqa: BLE001 - recorded, asserted below
                    failures.append(repr(exc))
                latencies.append(time.monotonic() - started)

    with ThreadPoolExecutor(4) as pool:
        try:
            loaders = [pool.submit(load, s) for s in (victim_series, victim_series, other_series)]
            # A slow job (12 frames at 1024², animated) is running on the victim when it dies.
            slow = pool.submit(farm.run, "animation", cine, victim_series)
            deadline = time.monotonic() + 10
            while not _running(redis, "render animation", routing.worker_queue(victim)):
                assert time.monotonic() < deadline, "the victim never started the slow job"
                time.sleep(0.002)
            killed_at = time.monotonic()
            workers.kill(victim)
            animated = slow.result(timeout=20)
            time.sleep(3.0)
        finally:
            stop.set()  # never leave the loaders running (the pool would wait forever)
        for loader in loaders:
            loader.result(timeout=30)
    assert failures == []
    assert animated.worker == survivor
    assert animated.body == local.run("animation", cine).body
    after = [w for t, s, w in served if s == victim_series and t > killed_at + 0.1]
    assert after and set(after[-10:]) == {survivor}  # the survivor took the series over
    assert max(latencies) < 8.0  # heartbeat TTL (2 s) + slices, not the 20 s timeout
    assert victim not in routing.live_names(redis)


def test_no_live_worker(redis, files):
    params = _params(files["ct1"][0], ViewState())
    fallback = RqFarm(redis, timeout_s=1, fallback=LocalFarm(ByteLRUCache(16 << 20)))
    assert fallback.run("frame", params, "s").worker == ""  # rendered here instead
    strict = RqFarm(redis, timeout_s=0.6, slice_s=0.2)
    started = time.monotonic()
    with pytest.raises(RenderError) as caught:
        strict.run("frame", params, "s")
    assert caught.value.kind == "unavailable" and time.monotonic() - started < 2


def test_app_uses_the_farm_only_with_redis_url(sqlite_app):
    assert not sqlite_app.config["REDIS_URL"]
    assert isinstance(rendering.farm(), LocalFarm)  # no REDIS_URL: in process
    sqlite_app.extensions.pop("pacs_render_farm")
    sqlite_app.config["REDIS_URL"] = REDIS_TEST_URL
    try:
        assert isinstance(rendering.farm(), RqFarm)
    finally:
        sqlite_app.extensions.pop("pacs_render_farm")
        sqlite_app.config["REDIS_URL"] = ""


def test_viewer_frames_through_workers(redis, workers, sqlite_app, monkeypatch):
    """The frame endpoint with REDIS_URL set renders on a worker, byte-identical."""
    from tests.render_farm.test_frames import Setup

    workers.start(V1)
    setup = Setup()
    state = ViewState(window_center=40, window_width=400, width=50, height=50)
    target = rendering.instance_target(setup.a, setup.study, "", setup.sops[0])
    expected = LocalFarm(ByteLRUCache(16 << 20)).run("frame", {
        "path": target.path, "source_key": "x", "query": state.to_query(), "frame": 0}).body
    sqlite_app.config["REDIS_URL"] = REDIS_TEST_URL
    sqlite_app.extensions.pop("pacs_render_farm", None)
    try:
        monkeypatch.setattr(LocalFarm, "run", lambda *a: pytest.fail("rendered in process"))
        url = rendering.frame_url(setup.token(), setup.sops[0], state)
        response = sqlite_app.test_client().get(url)
        assert response.status_code == 200
        assert response.get_data() == expected
    finally:
        sqlite_app.extensions.pop("pacs_render_farm", None)
        sqlite_app.config["REDIS_URL"] = ""

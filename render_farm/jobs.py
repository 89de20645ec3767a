"""Render operations and the rq entry point that runs them on a worker.

An operation is a pure function of primitives — a file path, a cache key, a
viewport query string, a frame index — plus the process's cache. The
in-process farm calls :data:`OPERATIONS` directly; a worker runs :func:`run`,
which calls the same function and pushes the answer onto a reply list the
waiting web request is blocked on (``BLPOP``). Replying from inside the job,
instead of letting the client wait on rq's result stream, hands the image back
before rq's own bookkeeping for the job runs, and keeps image bytes out of
rq's registries altogether (jobs are enqueued with ``result_ttl=0``).

Reply wire format: one status byte (``0`` ok, ``1`` error), a 2-byte
big-endian header length, a UTF-8 JSON header, then the body (the image).
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis
from rq import get_current_job

from render_farm.attributes import UnsupportedImage
from render_farm.cache import DEFAULT_MAX_BYTES, ByteLRUCache
from render_farm.decode import FrameSource, load_source
from render_farm.encode import encode_gif
from render_farm.render import render, render_array
from render_farm.viewport import ViewState

log = logging.getLogger(__name__)

#: A reply not collected within this time (its client gave up) expires.
REPLY_TTL_MS = 30_000
#: Frame duration of an animated GIF when the instance gives no Frame Time (0018,1063).
DEFAULT_FRAME_MS = 100
_FRAME_MS_RANGE = (20, 2000)
_OK, _ERROR = 0, 1


class RenderError(Exception):
    """A render that cannot succeed; `kind` says why, `message` is safe to show.

    Kinds: ``frame`` (no such frame), ``unsupported`` (not a renderable image),
    ``missing`` (the stored file is gone), ``invalid`` (bad parameters),
    ``unavailable`` (no worker answered in time), ``internal`` (a bug).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind, self.message = kind, message


@dataclass(frozen=True)
class Rendered:
    """An encoded image and where it was made (``""`` for in-process)."""

    body: bytes
    media_type: str
    worker: str = ""


# --------------------------------------------------------------------------- operations


def _source(cache: ByteLRUCache, path: str, source_key: str) -> FrameSource:
    try:
        return load_source(cache, source_key, path)
    except FileNotFoundError as exc:
        raise RenderError("missing", "the stored instance file is missing") from exc


def frame(cache: ByteLRUCache, path: str, source_key: str, query: str,
          frame: int) -> tuple[bytes, str]:
    """Render frame `frame` (0-based) of the instance at `path` in the viewport `query`.

    Parameters
    ----------
    cache : ByteLRUCache
        Where the decoded source and frames are kept.
    path : str
        The stored Part 10 file.
    source_key : str
        Cache identity of the instance (tenant, SOP Instance UID, content).
    query : str
        :meth:`ViewState.to_query` of the viewport; its frame is replaced by `frame`.
    frame : int
        0-based frame index.
    """
    state = ViewState.from_query(query).replace(frame=frame)
    return render(_source(cache, path, source_key), state)


def animation(cache: ByteLRUCache, path: str, source_key: str, query: str) -> tuple[bytes, str]:
    """Every frame of a multi-frame instance in the viewport `query`, as an animated GIF.

    The frame duration is the instance's Frame Time (0018,1063), clamped to
    20..2000 ms and rounded to the GIF's centiseconds, or 100 ms when absent.
    """
    source = _source(cache, path, source_key)
    state = ViewState.from_query(query)
    frames = [render_array(source, state.replace(frame=i)) for i in range(source.number_of_frames)]
    try:
        frame_ms = float(source.dataset.get("FrameTime", DEFAULT_FRAME_MS))
    except (TypeError, ValueError):
        frame_ms = DEFAULT_FRAME_MS
    low, high = _FRAME_MS_RANGE
    # GIF delays are whole centiseconds: round, rather than let the encoder truncate.
    return encode_gif(frames, duration_ms=10 * round(min(max(frame_ms, low), high) / 10))


def _deferred(module: str, name: str) -> Callable[..., tuple[bytes, str]]:
    """An operation imported on first use: 3-D modules pull in VTK, which 2-D work never needs."""
    def operation(cache: ByteLRUCache, **params) -> tuple[bytes, str]:
        return getattr(importlib.import_module(module), name)(cache, **params)
    operation.__name__ = name
    return operation


def _deferred_json(module: str, name: str) -> Callable[..., tuple[bytes, str]]:
    """:func:`_deferred` for an operation that returns a JSON-able value (geometry)."""
    function = _deferred(module, name)

    def operation(cache: ByteLRUCache, **params) -> tuple[bytes, str]:
        return json.dumps(function(cache, **params), separators=(",", ":")).encode(), \
            "application/json"
    operation.__name__ = name
    return operation


OPERATIONS: dict[str, Callable[..., tuple[bytes, str]]] = {
    "frame": frame, "animation": animation,
    "mpr": _deferred("render_farm.mpr", "mpr_frame"),
    "mpr_geometry": _deferred_json("render_farm.mpr", "mpr_geometry"),
    "mpr_roi": _deferred_json("render_farm.mpr_roi", "mpr_roi"),
    "cpr": _deferred("render_farm.cpr", "cpr_frame"),
    "vr": _deferred("render_farm.vr", "vr_frame"),
    "fusion": _deferred("render_farm.fusion", "fusion_frame"),
    "fusion_probe": _deferred_json("render_farm.fusion_probe", "fusion_probe"),
    "dsa": _deferred("render_farm.dsa", "dsa_frame"),
}


def execute(cache: ByteLRUCache, operation: str, params: dict) -> tuple[bytes, str]:
    """Run `operation` with `params`, turning expected failures into :class:`RenderError`."""
    function = OPERATIONS.get(operation)
    if function is None:
        raise RenderError("invalid", f"unknown render operation {operation!r}")
    try:
        return function(cache, **params)
    except RenderError:
        raise
    except IndexError as exc:
        raise RenderError("frame", str(exc)) from exc
    except UnsupportedImage as exc:
        raise RenderError("unsupported", str(exc)) from exc
    except FileNotFoundError as exc:
        raise RenderError("missing", "a stored instance file is missing") from exc
    except (ValueError, TypeError) as exc:
        raise RenderError("invalid", str(exc)) from exc


# --------------------------------------------------------------------------- the worker side

_cache: ByteLRUCache | None = None


def configure(max_bytes: int) -> ByteLRUCache:
    """Give this worker process its render cache (call once, before work starts)."""
    global _cache
    _cache = ByteLRUCache(max_bytes)
    return _cache


def worker_cache() -> ByteLRUCache:
    """This process's render cache (``PACS_RENDER_CACHE_BYTES``, 2 GiB by default)."""
    global _cache
    if _cache is None:
        _cache = ByteLRUCache(int(os.environ.get("PACS_RENDER_CACHE_BYTES", DEFAULT_MAX_BYTES)))
    return _cache


def pack(ok: bool, header: dict, body: bytes = b"") -> bytes:
    """Encode a reply (see the module docstring)."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">BH", _OK if ok else _ERROR, len(head)) + head + body


def unpack(data: bytes) -> Rendered:
    """Decode a reply; an error reply raises its :class:`RenderError`."""
    status, length = struct.unpack_from(">BH", data)
    header = json.loads(data[3:3 + length])
    if status != _OK:
        raise RenderError(header.get("kind", "internal"), header.get("message", ""))
    return Rendered(data[3 + length:], header["media_type"], header.get("worker", ""))


def push_reply(connection: Redis, reply_key: str, reply: bytes, job_key: str = "") -> None:
    """Hand `reply` to the client blocked on `reply_key`; uncollected replies expire.

    `job_key`, the rq hash of the job answering, is deleted in the same round
    trip: an answered render job leaves nothing behind in Redis.
    """
    with connection.pipeline(transaction=False) as pipe:
        pipe.rpush(reply_key, reply)
        pipe.pexpire(reply_key, REPLY_TTL_MS)
        if job_key:
            pipe.delete(job_key)
        pipe.execute()


def run(reply_key: str, operation: str, params: dict) -> None:
    """rq entry point: render, then push the image (or the error) to `reply_key`.

    Parameters
    ----------
    reply_key : str
        Redis list the requesting client waits on.
    operation : str
        A key of :data:`OPERATIONS`.
    params : dict
        The operation's keyword arguments, all primitives.
    """
    job = get_current_job()
    worker = (job.worker_name or "") if job is not None else ""
    started = time.perf_counter()
    failure: BaseException | None = None
    try:
        body, media_type = execute(worker_cache(), operation, params)
        reply = pack(True, {"media_type": media_type, "worker": worker}, body)
    except RenderError as exc:
        reply = pack(False, {"kind": exc.kind, "message": exc.message, "worker": worker})
    except Exception as exc:  # noqa: BLE001 - a bug: answer now, let rq record it
        failure = exc
        reply = pack(False, {"kind": "internal", "message": "render failed", "worker": worker})
    if job is not None:
        push_reply(job.connection, reply_key, reply, job.key if failure is None else "")
    log.debug("job %s %s %s on %s: %.1f ms", job.id if job else "-", operation,
              params.get("source_key", ""), worker, (time.perf_counter() - started) * 1e3)
    if failure is not None:
        raise failure

"""Rendering service: the only caller of the render farm from the web app.

It turns a tenant's instance into farm job parameters (a storage path, a
cache key, a viewport query, a frame index), runs them on the configured farm
(:class:`render_farm.farm.LocalFarm` with no ``REDIS_URL``, rq workers with
one), and mints and checks the signed grants carried by viewer frame URLs.

The viewer (``app/web/viewer.py``) calls, when it builds a page::

    token = rendering.grant(tenant, actor, study_uid)            # audits study.view once
    url = rendering.frame_url(token, sop_uid, ViewState(...))    # /frames/<token>/<sop>/<f>?...

A frame request is then authorised without touching the database: the grant
names the tenant, user and study, and its HMAC and expiry are checked in
memory; the instance's storage path comes from a small in-process cache
keyed by (tenant id, study UID, SOP UID), filled by a tenant-scoped query on
first use. A grant of tenant B therefore cannot reach tenant A's instance even
with A's UIDs: the lookup runs as tenant B and finds nothing (404).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pydicom
from flask import current_app
from pydicom.errors import InvalidDicomError

from app.extensions import db
from app.models import Study, Tenant
from app.services import audit, retrieve, tenancy
from app.services.audit import Actor
from app.services.errors import DomainError, Forbidden, Invalid, NotFound
from app.services.query import Match
from app.services.ttl_cache import TTLCache
from render_farm.cache import DEFAULT_MAX_BYTES
from render_farm.farm import Farm, LocalFarm, connect, process_cache
from render_farm.jobs import Rendered, RenderError
from render_farm.viewport import ViewState

log = logging.getLogger(__name__)

#: URL prefix of the frame blueprint (``app/web/frames.py``).
FRAMES_PATH = "/frames"
GRANT_SECONDS = 2 * 3600
FRAME_MAX_AGE = 3600
_TARGET_CACHE_SIZE = 20_000
_TARGET_TTL_S = 600.0
_SALT = b"pacs.frame-grant.v1"


class RenderUnavailable(DomainError):
    """No render worker answered in time, or the archive has no local files."""

    http_status = 503


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """One renderable instance, resolved for a tenant: what a farm job needs."""

    tenant_id: int
    study_uid: str
    series_uid: str
    sop_uid: str
    path: str
    source_key: str
    frames: int
    rows: int
    columns: int
    aspect: float = 1.0  # row spacing / column spacing (PS3.3 C.7.6.2.1.1)

    @property
    def affinity(self) -> str:
        """Farm routing key: one series stays on one worker."""
        return f"{self.tenant_id}/{self.series_uid}"


def _ratio(values) -> float | None:
    try:
        row, column = (float(v) for v in list(values)[:2])
    except (TypeError, ValueError):
        return None
    return row / column if row > 0 and column > 0 else None


def _aspect(pixel_spacing: str, path: Path) -> float:
    """Row / column spacing: Pixel Spacing, else Imager Pixel Spacing (PS3.3 10.7.1.3).

    Projection radiographs (CR, DX, MG) often carry only Imager Pixel Spacing;
    the index keeps Pixel Spacing alone, so that one is read from the file.
    """
    ratio = _ratio(pixel_spacing.split("\\")) if pixel_spacing else None
    if ratio is None and not pixel_spacing:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True,
                                     specific_tags=["ImagerPixelSpacing"])
            ratio = _ratio(header.get("ImagerPixelSpacing") or [])
        except (OSError, ValueError, TypeError, InvalidDicomError):
            ratio = None
    return ratio or 1.0


def _target(tenant_id: int, match: Match) -> Target:
    instance, series, study = match.instance, match.series, match.study
    assert instance is not None and series is not None and study is not None
    if not instance.rows or not instance.columns:
        raise NotFound("the instance has no image to render")
    path = retrieve.local_path(instance)
    if path is None:
        raise RenderUnavailable("the archive backend has no local files to render from")
    return Target(tenant_id, study.study_uid, series.series_uid, instance.sop_uid, str(path),
                  f"{tenant_id}/{instance.sop_uid}/{instance.sha256[:16]}",
                  instance.number_of_frames or 1, instance.rows, instance.columns,
                  _aspect(instance.pixel_spacing or "", path))


def instance_target(tenant: Tenant, study_uid: str, series_uid: str, sop_uid: str) -> Target:
    """The tenant's instance under these UIDs (`series_uid` may be ``""``), or NotFound."""
    matches = retrieve.select(tenant, study_uid, series_uid, sop_uid) if sop_uid else []
    if not matches:
        raise NotFound("no such study, series or instance")
    return _target(tenant.id, matches[0])


def series_targets(tenant: Tenant, study_uid: str, series_uid: str) -> list[Target]:
    """Every image of a series, in instance order (NotFound when there is none)."""
    matches = [m for m in retrieve.select(tenant, study_uid, series_uid)
               if m.instance is not None and m.instance.rows] if study_uid and series_uid else []
    if not matches:
        raise NotFound("no such study or series, or it has no images")
    return [_target(tenant.id, m) for m in matches]


def representative_target(tenant: Tenant, study_uid: str, series_uid: str = "",
                          middle: bool = False) -> Target:
    """An image standing for a study or series.

    The first image series (lowest Series Number) of the study, or the given
    series; in it the first image by Instance Number, or the middle one when
    `middle` (thumbnails: the middle slice says more than the first).
    """
    matches = [m for m in retrieve.select(tenant, study_uid, series_uid)
               if m.instance is not None and m.instance.rows]
    if not matches:
        raise NotFound("no such study or series, or it has no images")
    first = min(matches, key=lambda m: (m.series.series_number is None,  # type: ignore[union-attr]
                                        m.series.series_number or 0, m.series.id))  # type: ignore
    images = [m for m in matches if m.series is first.series]  # already in instance order
    return _target(tenant.id, images[len(images) // 2] if middle else images[0])


# --------------------------------------------------------------------------- the farm


def farm() -> Farm:
    """The farm of this app: rq workers when ``REDIS_URL`` is set, else this process."""
    ext = current_app.extensions
    if "pacs_render_farm" not in ext:
        config = current_app.config
        size = int(config.get("PACS_RENDER_CACHE_BYTES",
                              os.environ.get("PACS_RENDER_CACHE_BYTES", DEFAULT_MAX_BYTES)))
        local = LocalFarm(process_cache(size))
        url = config.get("REDIS_URL", "")
        ext["pacs_render_farm"] = local if not url else connect(
            url, timeout_s=float(config.get("PACS_RENDER_TIMEOUT", 30)),
            fallback=local if config.get("PACS_RENDER_LOCAL_FALLBACK", True) else None)
    return ext["pacs_render_farm"]


def _run(target: Target, operation: str, params: dict) -> Rendered:
    try:
        return farm().run(operation, {"path": target.path, "source_key": target.source_key,
                                      **params}, target.affinity)
    except RenderError as exc:
        # The farm's own wording names internals; users get the catalog's sentences.
        if exc.kind == "frame":
            raise NotFound("no such frame") from exc
        if exc.kind == "unsupported":
            raise NotFound("this image cannot be shown") from exc
        if exc.kind == "invalid":
            raise Invalid(f"bad viewport parameters: {exc.message}") from exc
        log.error("render of tenant %s instance %s failed: %s", target.tenant_id,
                  target.sop_uid, exc)
        if exc.kind == "missing":
            _forget(target)
            raise NotFound("the stored image is missing") from exc
        raise RenderUnavailable("the image could not be rendered; try again") from exc


def render(target: Target, state: ViewState) -> Rendered:
    """Render frame ``state.frame`` (0-based) of `target` in the viewport `state`.

    Raises
    ------
    NotFound
        No such frame, or nothing renderable in the instance.
    RenderUnavailable
        The farm did not answer in time.
    """
    return _run(target, "frame", {"query": state.replace(frame=0).to_query(),
                                  "frame": state.frame})


def animate(target: Target, state: ViewState) -> Rendered:
    """Every frame of a multi-frame `target` in the viewport `state`, as an animated GIF."""
    return _run(target, "animation", {"query": state.replace(frame=0).to_query()})


def record_render(tenant: Tenant, actor: Actor, level: str, uid: str, detail: str) -> None:
    """Audit one rendered-resource request (``instance.render``)."""
    audit.record(tenant, actor, "instance.render", level, uid, detail=detail[:200], commit=True)


# --------------------------------------------------------------------------- grants


@dataclass(frozen=True)
class Grant:
    """A verified frame grant: who may see which study, until when (epoch seconds)."""

    tenant_id: int
    user_id: int
    study_uid: str
    expires: int


def _key() -> bytes:
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, _SALT, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: bytes) -> str:
    return _b64(hmac.new(_key(), payload, hashlib.sha256).digest()[:16])


def grant(tenant: Tenant, actor: Actor, study_uid: str, *, max_age: int | None = None,
          now: float | None = None) -> str:
    """Mint a frame grant for `actor` to view `study_uid` of `tenant`; audit ``study.view``.

    Parameters
    ----------
    tenant : Tenant
    actor : Actor
        The viewing user (``current_actor()``); needs a ``user_id``.
    study_uid : str
        Must be a study of `tenant` (else NotFound).
    max_age : int, optional
        Lifetime in seconds (``PACS_FRAME_GRANT_SECONDS``, default 2 hours);
        the viewer mints a new grant when it reloads.
    now : float, optional
        Issue time (epoch seconds), for tests.

    Returns
    -------
    str
        URL-safe token: ``base64url(tenant.user.expires.study) "." base64url(HMAC)``.
    """
    if actor.user_id is None:
        raise Forbidden("only a signed-in user can open the viewer")
    # One indexed row, not every instance of the study (2,000-slice CTs open this way).
    if tenancy.find(tenant, Study, study_uid=study_uid) is None:
        raise NotFound("no such study")
    lifetime = max_age if max_age is not None else int(
        current_app.config.get("PACS_FRAME_GRANT_SECONDS", GRANT_SECONDS))
    expires = int((time.time() if now is None else now) + lifetime)
    payload = f"{tenant.id}.{actor.user_id}.{expires}.{study_uid}".encode()
    audit.record(tenant, actor, "study.view", "study", study_uid, commit=True)
    return f"{_b64(payload)}.{_sign(payload)}"


def _parse_grant(token: str) -> Grant | None:
    """The grant in `token` if its signature is ours, else None."""
    try:
        encoded, signature = token.split(".")
        payload = _unb64(encoded)
        if not hmac.compare_digest(signature.encode("ascii"), _sign(payload).encode()):
            return None
        tenant_id, user_id, expires, study_uid = payload.decode().split(".", 3)
        return Grant(int(tenant_id), int(user_id), study_uid, int(expires))
    except (ValueError, UnicodeError):  # malformed base64, text or numbers
        return None


def verify(token: str, *, now: float | None = None) -> Grant:
    """Check a grant's signature and expiry (no database); Forbidden when either fails."""
    found = _parse_grant(token)
    if found is None:
        raise Forbidden("this image link is not valid; reload the viewer")
    if found.expires <= (time.time() if now is None else now):
        raise Forbidden("this image link has expired; reload the viewer")
    return found


def frame_url(token: str, sop_uid: str, state: ViewState) -> str:
    """The URL of frame ``state.frame`` (0-based) of `sop_uid` in viewport `state`."""
    query = state.replace(frame=0).to_query()
    path = f"{FRAMES_PATH}/{token}/{quote(sop_uid, safe='.')}/{state.frame}"
    return f"{path}?{query}" if query else path


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class FrameRequest:
    """A verified, resolved viewer frame request, ready to answer."""

    target: Target
    state: ViewState
    etag: str


def _targets() -> TTLCache[Target]:
    ext = current_app.extensions
    if "pacs_render_targets" not in ext:
        ext["pacs_render_targets"] = TTLCache(_TARGET_CACHE_SIZE, _TARGET_TTL_S)
    return ext["pacs_render_targets"]


def _forget(target: Target) -> None:
    _targets().discard((target.tenant_id, target.study_uid, target.sop_uid))


def _grant_target(found: Grant, sop_uid: str) -> Target:
    key = (found.tenant_id, found.study_uid, sop_uid)
    cached = _targets().get(key)
    if cached is not None:
        return cached
    tenant = db.session.get(Tenant, found.tenant_id)
    if tenant is None or not tenant.approved:
        raise NotFound("no such instance")
    target = instance_target(tenant, found.study_uid, "", sop_uid)  # scoped to the grant's tenant
    _targets().put(key, target)
    return target


def parse_state(query: str, frame: int) -> ViewState:
    """The viewport of a frame URL; Invalid (400) with the parser's message when malformed."""
    try:
        state = ViewState.from_query(query)
        if state.frame not in (0, frame):
            raise ValueError(f"f={state.frame} disagrees with frame {frame} of the path")
        return state.replace(frame=frame)
    except ValueError as exc:
        raise Invalid(f"bad viewport parameters: {exc}") from exc


def frame_etag(target: Target, state: ViewState) -> str:
    """ETag of a frame: a digest of tenant, instance content, frame and canonical state."""
    text = "\0".join([target.source_key, str(state.frame), state.replace(frame=0).to_query()])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def prepare_frame(token: str, sop_uid: str, frame: int, query: str) -> FrameRequest:
    """Verify the grant (403), parse the state (400) and resolve the instance (404).

    No database access once the instance is in the lookup cache; nothing is
    rendered yet, so a matching ``If-None-Match`` can be answered with 304.
    """
    found = verify(token)
    state = parse_state(query, frame)
    target = _grant_target(found, sop_uid)
    return FrameRequest(target, state, frame_etag(target, state))


def frame_max_age() -> int:
    """Seconds a browser may keep a frame (``PACS_FRAME_MAX_AGE``)."""
    return int(current_app.config.get("PACS_FRAME_MAX_AGE", FRAME_MAX_AGE))

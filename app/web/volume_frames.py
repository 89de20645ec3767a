"""3-D view images: ``GET /vframes/<grant>/<series_uid>/<operation>?<view state>``.

The same contract as 2-D frames (:mod:`app.web.frames`): the URL carries a
signed grant and the complete view state, responses are private, cacheable
and validated by ETag, and no session cookie is touched. Fusion names its
overlay series in the path: ``/vframes/<grant>/<series_uid>/fusion/<overlay_uid>``.
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, request

from app.services import rendering, volumes
from app.services.errors import Invalid, NotFound
from app.web.frames import _sessionless

bp = Blueprint("volume_frames", __name__, url_prefix="/vframes")
bp.after_request(_sessionless)


def _answer(volume: volumes.SeriesVolume, operation: str,
            overlay: volumes.SeriesVolume | None = None) -> Response:
    query = request.query_string.decode("latin-1")
    etag = volumes.etag(volume, operation, query, overlay)
    headers = {"ETag": f'"{etag}"', "Cache-Control": f"private, max-age={rendering.frame_max_age()}"}
    if request.if_none_match.contains(etag):
        return Response(status=304, headers=headers)
    image = volumes.render(volume, operation, query, overlay)
    if image.worker:
        headers["X-Render-Worker"] = image.worker
    return Response(image.body, mimetype=image.media_type, headers=headers)


@bp.get("/<token>/<series_uid>/<operation>")
def view(token: str, series_uid: str, operation: str):
    """An MPR plane, its geometry, a curved reformat, a volume rendering or a DSA frame."""
    found = rendering.verify(token)
    if operation not in (*volumes.VOLUME_OPERATIONS, "dsa"):
        raise NotFound("no such view")
    return _answer(volumes.for_grant(found, series_uid), operation)


@bp.get("/<token>/<series_uid>/fusion/<overlay_uid>")
def fusion(token: str, series_uid: str, overlay_uid: str):
    """`overlay_uid` (PET, SPECT, MR) fused over `series_uid`, both of the grant's study."""
    found = rendering.verify(token)
    return _answer(volumes.for_grant(found, series_uid), "fusion",
                   volumes.for_grant(found, overlay_uid))


@bp.get("/<token>/<series_uid>/fusion/<overlay_uid>/probe")
def fusion_probe(token: str, series_uid: str, overlay_uid: str):
    """Values under ``at=x,y`` (output pixels) of the fused view in the rest of the query."""
    found = rendering.verify(token)
    args = request.args.to_dict()
    try:
        x, y = (float(v) for v in args.pop("at", "").split(","))
    except ValueError as exc:
        raise Invalid("at: expected the display point as x,y") from exc
    body = volumes.probe(volumes.for_grant(found, series_uid), volumes.for_grant(found, overlay_uid),
                         urlencode(args), x, y)
    return Response(body, mimetype="application/json", headers={"Cache-Control": "no-store"})

"""Viewer frames: ``GET /frames/<grant>/<sop_uid>/<frame>?<viewport state>``.

The URL carries everything: a signed grant (tenant, user, study, expiry)
minted by :func:`app.services.rendering.grant`, the instance, the 0-based
frame and the complete viewport state (:meth:`ViewState.to_query`). No session
is needed and no database is read per frame; responses are private and
cacheable, validated by ETag, and never set a cookie.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from flask.globals import request_ctx

from app.services import rendering

bp = Blueprint("frames", __name__, url_prefix=rendering.FRAMES_PATH)


@bp.after_request
def _sessionless(response: Response) -> Response:
    """Frames are authorised by their grant, not the session: leave the cookie alone.

    The app marks every session permanent (the idle timeout), which would make
    each of the hundreds of frame responses of a scroll re-send the session
    cookie; a null session is not saved at all.
    """
    request_ctx._session = current_app.session_interface.make_null_session(current_app)
    return response


@bp.get("/<token>/<sop_uid>/<int:frame>")
def frame(token: str, sop_uid: str, frame: int):
    """One rendered frame; 304 when the browser already holds it."""
    wanted = rendering.prepare_frame(token, sop_uid, frame, request.query_string.decode("latin-1"))
    headers = {"ETag": f'"{wanted.etag}"',
               "Cache-Control": f"private, max-age={rendering.frame_max_age()}"}
    if request.if_none_match.contains(wanted.etag):
        return Response(status=304, headers=headers)
    image = rendering.render(wanted.target, wanted.state)
    if image.worker:  # which render worker made it (an rq worker's name; absent in-process)
        headers["X-Render-Worker"] = image.worker
    return Response(image.body, mimetype=image.media_type, headers=headers)

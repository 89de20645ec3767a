"""The 2-D image viewer (阅片): ``/viewer/<StudyInstanceUID>`` and its small JSON API.

The page works without script: the viewport is an ``<img>`` whose ``src`` is
a frame URL, and next/previous image, W/L presets, rotate, flip, invert and
the series are plain links that re-render the page with another state in the
query string. ``static/js/viewer*.js`` then takes over: it builds frame URLs
itself from the stack (``/viewer/<study>/series/<series>``) and calls the
measurement endpoints below with image pixel coordinates.
"""
from __future__ import annotations

import gzip
from urllib.parse import parse_qsl

from flask import (
    Blueprint,
    Response,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from app.services import (
    measurements, permissions, rendering, viewer, viewer_export, viewer_planes, volumes,
)
from app.services.errors import Invalid
from app.web.filters import patient_name
from app.web.messages import N_
from app.web.security import current_actor, permission_required
from render_farm.viewport import ViewState

bp = Blueprint("viewer", __name__, url_prefix="/viewer")

# Service messages of the viewer, for the catalog (shown through messages.localise).
SERVICE_MESSAGES = [
    N_("this study has no images to show"), N_("unknown measurement kind"),
    N_("bad measurement points"), N_("no such measurement"), N_("no such frame"),
    N_("this image cannot be measured"), N_("this measurement cannot be computed"),
    N_("the region contains no pixel"), N_("the stored image is missing"),
    N_("only a signed-in user can save measurements"), N_("no such image in this series"),
    N_("the request must be JSON"), N_("this export format is not offered"),
]
# Viewport keys a page URL may set; size, frame and encoding are the page's own.
_STATE_KEYS = ViewState.QUERY_KEYS - {"f", "w", "h", "fmt", "q", "mm", "fit", "ov"}


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers.add("Vary", "HX-Request")
    return response


def _page_state(args) -> ViewState:
    """The viewport state carried by the page URL (400 when malformed)."""
    try:
        return ViewState.from_query({k: v for k, v in args.items() if k in _STATE_KEYS})
    except ValueError as exc:
        raise Invalid(f"bad viewport parameters: {exc}") from exc


def _index(args, count: int) -> int:
    text = args.get("i", "0")
    if not text.lstrip("-").isdigit():
        raise Invalid("no such image in this series")
    return max(0, min(int(text), count - 1))


def _links(model: viewer.ViewerModel, state: ViewState, index: int) -> dict:
    """The page's plain links: same page, another image or another state."""
    study_uid, series_uid = model.study.study_uid, model.stack.series.uid
    kept = {k: v for k, v in request.args.items() if k in _STATE_KEYS or k in ("layout", "panel", "monitor")}

    def page(**changes) -> str:
        args = dict(kept, series=series_uid, i=index)
        args.update(changes)
        return url_for("viewer.study", study_uid=study_uid,
                       **{k: v for k, v in args.items() if v is not None})

    count = len(model.stack.images)
    presets = {p.key: page(wc=p.center, ww=p.width) for p in model.presets}

    def flip(key: str) -> str | None:
        return None if getattr(state, key) else "1"

    return {
        "prev": page(i=index - 1) if index > 0 else None,
        "next": page(i=index + 1) if index < count - 1 else None,
        "first": page(i=0), "last": page(i=count - 1), "presets": presets,
        "rotate": page(rot=int((state.rotation + 90) % 360) or None),
        "hflip": page(hf=flip("hflip")), "vflip": page(vf=flip("vflip")),
        "invert": page(inv=None if state.invert else "1"),
        "reset": url_for("viewer.study", study_uid=study_uid, series=series_uid, i=index),
        "panel": {side: page(panel=side) for side in viewer.PANEL_SIDES},
    }


@bp.get("/<study_uid>")
@permission_required(permissions.STUDY_READ)
def study(study_uid: str):
    """The viewer page of one study: the first (or the chosen) series at once.

    ``&view=mpr|vr|fusion|dsa`` (with ``series``, and ``overlay`` for fusion)
    opens that 3-D view instead: the deep link a HIS or a bookmark uses.
    """
    view = request.args.get("view", "")
    if view and view != "2d":
        return redirect(volumes.deep_link(g.tenant, study_uid, request.args))
    state = _page_state(request.args)
    model = viewer.open_study(g.tenant, current_actor(), study_uid, request.args.get("series", ""))
    index = _index(request.args, len(model.stack.images))
    sop, frame = model.stack.image(index)
    shown = state.replace(frame=frame, width=viewer.PAGE_SIZE, height=viewer.PAGE_SIZE)
    panel = request.args.get("panel", "left")
    layout = request.args.get("layout", model.layout)
    response = make_response(render_template(
        "viewer/viewer.html", m=model, stack=model.stack, state=shown, index=index,
        image_url=rendering.frame_url(model.token, sop, shown), links=_links(model, shown, index),
        panel=panel if panel in viewer.PANEL_SIDES else "left",
        layout=layout if viewer.valid_layout(layout) else "1x1", display_name=patient_name,
        letters=viewer.orientation_letters(model.stack, index, shown),
        colormaps=viewer.COLORMAPS, layouts=viewer.LAYOUTS,
        overlay=viewer.overlay_for(model.stack.series.modality),
        initial=viewer.overlay_values(model.stack, index, shown),
        page_state=dict(parse_qsl(state.to_query())),
        monitor=request.args.get("monitor") == "2"))
    return _no_store(_compressed(response))


def _corners(model_study, stack: viewer.Stack) -> str:
    return render_template("viewer/_corners.html", study=model_study, patient=model_study.patient,
                           stack=stack, overlay=viewer.overlay_for(stack.series.modality),
                           state=None, index=0, display_name=patient_name)


@bp.get("/<study_uid>/series/<series_uid>")
@permission_required(permissions.STUDY_READ)
def series(study_uid: str, series_uid: str):
    """One series' stack as JSON (frame URL base, geometry, presets, corner text)."""
    stack = viewer.series_stack(g.tenant, current_actor(), study_uid, series_uid,
                                request.args.get("grant", ""))
    study_row = viewer.study_of(g.tenant, study_uid)
    body = dict(stack.as_json(), study=study_uid, corners=_corners(study_row, stack),
                studyDate=study_row.study_date)
    return _no_store(_compressed(jsonify(body)))


def _compressed(response: Response) -> Response:
    """Gzip a large body for browsers that take it (every byte counts on a 2 Mbit/s link).

    A 2,000-image stack is 220 KB of JSON, 60 KB gzipped; the viewer page 34 KB, 7 KB.
    """
    response.headers.add("Vary", "Accept-Encoding")
    if response.content_length and response.content_length > 1024 \
            and "gzip" in request.accept_encodings:
        response.set_data(gzip.compress(response.get_data(), compresslevel=5))
        response.headers["Content-Encoding"] = "gzip"
    return response


@bp.get("/<study_uid>/panel")
@permission_required(permissions.STUDY_READ)
def panel(study_uid: str):
    """A study's series thumbnails (a prior study opened in the series panel)."""
    found, items = viewer.series_panel(g.tenant, current_actor(), study_uid,
                                       request.args.get("grant", ""))
    return _no_store(make_response(render_template(
        "viewer/_series_list.html", study=found, series=items, current="")))


@bp.get("/<study_uid>/reference-lines")
@permission_required(permissions.STUDY_READ)
def reference_lines(study_uid: str):
    """Where other images of the study cut the ``target`` image (定位线), in its pixel coordinates."""
    lines = viewer_planes.reference_lines(g.tenant, study_uid, request.args.get("target", ""),
                                          request.args.getlist("source"))
    response = jsonify(lines=lines)
    response.headers["Cache-Control"] = "private, max-age=600"  # geometry never changes
    return response


def _download(response: Response, name: str) -> Response:
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<study_uid>/export/<sop_uid>")
@permission_required(permissions.STUDY_READ)
def export_image(study_uid: str, sop_uid: str):
    """Frame ``f`` in the viewport's state (the query) as a PNG, JPEG, TIFF or BMP file; audited."""
    frame = request.args.get("f", "0")
    if not frame.isdigit():
        raise Invalid("no such frame")
    state = rendering.parse_state(request.query_string.decode("latin-1"), int(frame))
    name, image = viewer_export.export_image(g.tenant, current_actor(), study_uid, sop_uid, state)
    return _download(Response(image.body, mimetype=image.media_type), name)


@bp.get("/<study_uid>/series/<series_uid>/export")
@permission_required(permissions.STUDY_READ)
def export_series(study_uid: str, series_uid: str):
    """Every image of a series in the viewport's state, as a ZIP of image files; audited."""
    state = rendering.parse_state(request.query_string.decode("latin-1"), 0)
    stem, chunks = viewer_export.export_series(g.tenant, current_actor(), study_uid, series_uid,
                                               state)
    return _download(Response(stream_with_context(chunks), mimetype="application/zip"),
                     f"{stem}.zip")


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("the request must be JSON")
    return body


def _frame_of(body: dict) -> tuple[str, int]:
    sop, frame = body.get("sop"), body.get("frame", 0)
    if not isinstance(sop, str) or not isinstance(frame, int) or isinstance(frame, bool):
        raise Invalid("bad measurement points")
    return sop, frame


@bp.get("/<study_uid>/annotations")
@permission_required(permissions.STUDY_READ)
def annotations(study_uid: str):
    """The user's measurements and key images of this study."""
    actor = current_actor()
    rows = measurements.annotations(g.tenant, actor, study_uid)
    keys = measurements.key_images(g.tenant, actor, study_uid)
    return _no_store(jsonify(
        annotations=[measurements.as_json(r) for r in rows],
        keyImages=[{"sop": k.sop_uid, "frame": k.frame, "series": k.series_uid} for k in keys]))


@bp.post("/<study_uid>/annotations")
@permission_required(permissions.STUDY_READ)
def measure(study_uid: str):
    """Compute a measurement from the original pixels and save it for this user."""
    body = _json_body()
    sop, frame = _frame_of(body)
    text = body.get("text", "")
    row = measurements.save(g.tenant, current_actor(), study_uid, sop, frame,
                            str(body.get("kind", "")), body.get("points"),
                            text if isinstance(text, str) else "")
    return _no_store(make_response(jsonify(measurements.as_json(row)), 201))


@bp.post("/<study_uid>/annotations/<annotation_id>/delete")
@permission_required(permissions.STUDY_READ)
def delete(study_uid: str, annotation_id: str):
    """Delete one of the user's measurements."""
    measurements.delete(g.tenant, current_actor(), study_uid, annotation_id)
    return _no_store(jsonify(deleted=True))


@bp.post("/<study_uid>/region-window")
@permission_required(permissions.STUDY_READ)
def region_window(study_uid: str):
    """A W/L window spanning the values inside a drawn region (not saved)."""
    body = _json_body()
    sop, frame = _frame_of(body)
    center, width = measurements.region_window(g.tenant, study_uid, sop, frame,
                                               str(body.get("kind", "")), body.get("points"))
    return _no_store(jsonify(center=center, width=width))


@bp.post("/<study_uid>/key-images")
@permission_required(permissions.STUDY_READ)
def key_image(study_uid: str):
    """Mark or unmark the shown frame as a key image."""
    sop, frame = _frame_of(_json_body())
    marked = measurements.toggle_key_image(g.tenant, current_actor(), study_uid, sop, frame)
    return _no_store(jsonify(marked=marked))

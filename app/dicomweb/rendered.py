"""DICOMweb rendered and thumbnail resources (PS3.18 §8.3.5, §10.4.1.1.4, §10.4.1.1.6).

Images are made by the render farm through :mod:`app.services.rendering`,
with the same authentication, tenant scoping and CORS as the rest of
``/dicom-web`` (routes are registered on its blueprint).

Query parameters (PS3.18 Table 8.3.5-1):

``window=center,width[,function]``
    VOI window in modality units; function ``linear`` (default),
    ``linear-exact`` or ``sigmoid`` (PS3.3 C.11.2.1.3). Without it the
    instance's own first window applies.
``viewport=vw,vh[,sx,sy,sw,sh]``
    The source region (default: the whole image; a negative ``sw``/``sh``
    flips it) scaled to fit within ``vw`` × ``vh`` pixels, aspect ratio kept,
    so the returned image may be smaller than the viewport in one dimension.
``quality``
    1..100 for JPEG and WebP (default 90; thumbnails 80); ignored by PNG/GIF.
``annotation=patient,technique``
    Accepted and ignored: the server never burns text into pixels (CJK
    names would need fonts in the farm, and text over an image is the
    browser's job in this system), so the image is returned unannotated.
``accept``
    Overrides the Accept header (PS3.18 §8.3.3.1).

Media types: ``image/jpeg`` (the default for ``*/*``), ``image/png``,
``image/webp`` and ``image/gif``; the instance resource of a multi-frame
instance asked for as GIF is an animated GIF of all frames, any other
single-frame type gives its first frame. A study or series resource renders
one representative image: the first image of the first image series (by
Series Number), or of the given series — as Orthanc does. Thumbnails use the
middle image and the middle frame, 128 pixels unless a viewport is given.
Unknown parameters are ignored (PS3.18 §8.3.5); malformed ones are 400, an
Accept the server cannot satisfy is 406.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Response, g, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import NotAcceptable
from werkzeug.http import parse_accept_header

from app.dicomweb.routes import api_permission, bp
from app.services import permissions, rendering
from app.services.errors import Invalid, NotFound
from app.services.rendering import Target
from app.web.security import current_actor
from render_farm.encode import ImageFormat
from render_farm.pipeline import WindowFunction
from render_farm.viewport import MAX_OUTPUT, FitMode, ViewState

_STUDY = "/studies/<study>"
_SERIES = _STUDY + "/series/<series>"
_INSTANCE = _SERIES + "/instances/<sop>"

MEDIA_TYPES = {"image/jpeg": ImageFormat.JPEG, "image/png": ImageFormat.PNG,
               "image/webp": ImageFormat.WEBP, "image/gif": ImageFormat.GIF}
FUNCTIONS = {"linear": WindowFunction.LINEAR, "linear-exact": WindowFunction.LINEAR_EXACT,
             "sigmoid": WindowFunction.SIGMOID}
ANNOTATIONS = {"patient", "technique"}
THUMBNAIL_SIZE = 128
THUMBNAIL_QUALITY = 80


@dataclass(frozen=True)
class Params:
    """The rendering parameters of one request, validated."""

    media_type: str = "image/jpeg"
    window: tuple[float, float, WindowFunction] | None = None
    viewport: tuple[float, ...] | None = None  # vw, vh[, sx, sy, sw, sh]
    quality: int | None = None


# --------------------------------------------------------------------------- parsing


def negotiate(accept: str) -> str:
    """The rendered media type to send for an Accept value (PS3.18 §8.7.4); 406 if none."""
    if not accept.strip():
        return "image/jpeg"
    best = parse_accept_header(accept, MIMEAccept).best_match(list(MEDIA_TYPES))
    if best is None:
        raise NotAcceptable("rendered images are available as image/jpeg, image/png, "
                            "image/webp or image/gif")
    return best


def _numbers(name: str, text: str, counts: tuple[int, ...]) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in counts or len(parts) not in counts or \
            not all(math.isfinite(v) for v in values):
        shapes = {"window": "center,width[,function]", "viewport": "vw,vh[,sx,sy,sw,sh]"}
        raise Invalid(f"{name} must be {shapes[name]}, got {text!r}")
    return values


def _window(text: str) -> tuple[float, float, WindowFunction]:
    parts = [p.strip() for p in text.split(",")]
    function = FUNCTIONS["linear"]
    if len(parts) == 3:
        if parts[2].lower() not in FUNCTIONS:
            raise Invalid(f"window function must be one of {', '.join(FUNCTIONS)}, "
                          f"got {parts[2]!r}")
        function = FUNCTIONS[parts[2].lower()]
        parts = parts[:2]
    center, width = _numbers("window", ",".join(parts), (2,))
    if width <= 0:
        raise Invalid(f"window width must be positive, got {width:g}")
    return center, width, function


def _viewport(text: str) -> tuple[float, ...]:
    values = _numbers("viewport", text, (2, 6))
    vw, vh = values[:2]
    if not (vw.is_integer() and vh.is_integer() and 1 <= vw <= MAX_OUTPUT
            and 1 <= vh <= MAX_OUTPUT):
        raise Invalid(f"viewport vw,vh must be whole numbers 1..{MAX_OUTPUT}, got {text!r}")
    return tuple(values)


def parse(args: Mapping[str, str], accept: str) -> Params:
    """Validate the rendering query parameters (Invalid, 400) and the Accept value (406)."""
    quality = None
    if "quality" in args:
        text = args["quality"].strip()
        if not text.isdigit() or not 1 <= int(text) <= 100:
            raise Invalid(f"quality must be a whole number 1..100, got {args['quality']!r}")
        quality = int(text)
    if "annotation" in args:
        words = {w.strip().lower() for w in args["annotation"].split(",")}
        if not words or not words <= ANNOTATIONS:
            raise Invalid("annotation must be patient and/or technique")
    return Params(negotiate(accept),
                  _window(args["window"]) if "window" in args else None,
                  _viewport(args["viewport"]) if "viewport" in args else None,
                  quality)


# --------------------------------------------------------------------------- view state


def fit_region(viewport: tuple[float, ...], target: Target) -> dict:
    """ViewState fields showing the viewport's source region scaled into (vw, vh).

    The region (sx, sy, |sw|, |sh|) in image pixels defaults to the whole
    image; its physical aspect (row/column spacing) is kept, so the output is
    at most vw × vh. Negative sw/sh flip the region in place.
    """
    vw, vh = viewport[:2]
    sx, sy, sw, sh = viewport[2:] if len(viewport) == 6 else (0.0, 0.0, None, None)
    if not (0 <= sx < target.columns and 0 <= sy < target.rows):
        raise Invalid(f"viewport region origin ({sx:g}, {sy:g}) is outside the "
                      f"{target.columns}×{target.rows} image")
    sw = target.columns - sx if sw is None else sw
    sh = target.rows - sy if sh is None else sh
    if sw == 0 or sh == 0:
        raise Invalid("viewport region width and height must not be zero")
    region_w, region_h = abs(sw), abs(sh) * target.aspect
    scale = min(vw / region_w, vh / region_h)
    return {"width": max(1, round(region_w * scale)), "height": max(1, round(region_h * scale)),
            "fit": FitMode.PIXEL, "zoom": scale, "hflip": sw < 0, "vflip": sh < 0,
            "pan_x": sx + abs(sw) / 2 - target.columns / 2,
            "pan_y": sy + abs(sh) / 2 - target.rows / 2}


def view_state(params: Params, target: Target, frame: int = 0,
               default_viewport: tuple[float, ...] | None = None,
               default_quality: int = 90) -> ViewState:
    """The :class:`ViewState` rendering `params` for frame `frame` (0-based) of `target`."""
    fields: dict = {"frame": frame, "format": MEDIA_TYPES[params.media_type],
                    "quality": params.quality or default_quality}
    if params.window is not None:
        fields.update(window_center=params.window[0], window_width=params.window[1],
                      window_function=params.window[2])
    viewport = params.viewport or default_viewport
    if viewport is not None:
        fields.update(fit_region(viewport, target))
    try:
        return ViewState(**fields)
    except ValueError as exc:
        raise Invalid(f"cannot render with these parameters: {exc}") from exc


# --------------------------------------------------------------------------- views


def _params() -> Params:
    return parse(request.args, request.args.get("accept") or request.headers.get("Accept", ""))


def _send(image: rendering.Rendered, level: str, uid: str, detail: str) -> Response:
    rendering.record_render(g.tenant, current_actor(), level, uid, detail)
    response = Response(image.body, mimetype=image.media_type)
    response.headers["Cache-Control"] = f"private, max-age={rendering.frame_max_age()}"
    response.vary.add("Accept")
    return response


@bp.get(_INSTANCE + "/rendered")
@api_permission(permissions.STUDY_READ)
def instance_rendered(study: str, series: str, sop: str):
    """Retrieve Rendered: an instance (multi-frame as an animated GIF if accepted)."""
    params = _params()
    target = rendering.instance_target(g.tenant, study, series, sop)
    state = view_state(params, target)
    if params.media_type == "image/gif" and target.frames > 1:
        image = rendering.animate(target, state)
        return _send(image, "instance", sop, f"{target.frames} frames {image.media_type}")
    return _send(rendering.render(target, state), "instance", sop, f"frame 1 {params.media_type}")


@bp.get(_INSTANCE + "/frames/<frame_list>/rendered")
@api_permission(permissions.STUDY_READ)
def frame_rendered(study: str, series: str, sop: str, frame_list: str):
    """Retrieve Rendered: one frame (1-based) of an instance."""
    params = _params()
    if not frame_list.strip().isdigit() or int(frame_list) < 1:
        raise Invalid("rendered frames are addressed one at a time by a number from 1")
    target = rendering.instance_target(g.tenant, study, series, sop)
    number = int(frame_list)
    if number > target.frames:
        raise NotFound(f"the instance has {target.frames} frame(s)")
    image = rendering.render(target, view_state(params, target, number - 1))
    return _send(image, "instance", sop, f"frame {number} {params.media_type}")


@bp.get(_STUDY + "/rendered")
@bp.get(_SERIES + "/rendered")
@api_permission(permissions.STUDY_READ)
def representative_rendered(study: str, series: str = ""):
    """Retrieve Rendered: a study or series, as its first image."""
    params = _params()
    target = rendering.representative_target(g.tenant, study, series)
    image = rendering.render(target, view_state(params, target))
    return _send(image, "series" if series else "study", series or study,
                 f"instance {target.sop_uid} {params.media_type}")


@bp.get(_STUDY + "/thumbnail")
@bp.get(_SERIES + "/thumbnail")
@bp.get(_INSTANCE + "/thumbnail")
@api_permission(permissions.STUDY_READ)
def thumbnail(study: str, series: str = "", sop: str = ""):
    """Retrieve Thumbnail: a small image of a study, series or instance (middle image/frame)."""
    params = _params()
    if sop:
        target = rendering.instance_target(g.tenant, study, series, sop)
    else:
        target = rendering.representative_target(g.tenant, study, series, middle=True)
    state = view_state(params, target, target.frames // 2, (THUMBNAIL_SIZE, THUMBNAIL_SIZE),
                       THUMBNAIL_QUALITY)
    level, uid = ("instance", sop) if sop else ("series", series) if series else ("study", study)
    return _send(rendering.render(target, state), level, uid, f"thumbnail {params.media_type}")

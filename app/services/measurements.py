"""Measurements, annotations and key images of the viewer, per study and user.

The browser sends image pixel coordinates (it inverts the view affine of
:func:`render_farm.viewport.display_to_image`); values are computed here from
the original pixel data in patient mm and modality units (HU for CT) by
:mod:`render_farm.measure`, never from the rendered JPEG. Each measurement is
saved as an :class:`~app.models.Annotation` of the acting user, audited as
``measurement.save``; a user sees and deletes only their own, within their
tenant.

Pixels are decoded in this process through the farm's process-wide frame
cache: a measurement reads one frame, which the viewer has usually just had
rendered, so no render job is queued for it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.extensions import db
from app.models import Annotation, KeyImage, Study, Tenant
from app.services import audit, rendering, tenancy
from app.services.audit import Actor
from app.services.errors import Invalid, NotFound
from app.services.viewer import value_unit
from render_farm import measure
from render_farm.attributes import UnsupportedImage
from render_farm.decode import FrameSource, load_source
from render_farm.farm import process_cache
from render_farm.measure import Spacing

#: Kind → (fewest, most) points. Arrow: tip, tail. Text: anchor. CTR: heart line, thorax line.
KINDS: dict[str, tuple[int, int]] = {
    "length": (2, 2), "polyline": (2, measure.MAX_POINTS), "angle": (3, 3), "cobb": (4, 4),
    "ctr": (4, 4), "ellipse": (2, 2), "rectangle": (2, 2), "freehand": (3, measure.MAX_POINTS),
    "probe": (1, 1), "arrow": (2, 2), "text": (1, 1),
}
REGIONS = ("ellipse", "rectangle", "freehand")
MAX_TEXT = 200


@dataclass(frozen=True)
class Frame:
    """One frame's modality values and calibration."""

    values: np.ndarray
    spacing: Spacing
    unit: str  # of the values: "HU", "BQML" or "" (grey value)


def _source(tenant: Tenant, study_uid: str, sop_uid: str) -> FrameSource:
    target = rendering.instance_target(tenant, study_uid, "", sop_uid)  # tenant-scoped, or 404
    try:
        return load_source(process_cache(), target.source_key, target.path)
    except FileNotFoundError as exc:
        raise NotFound("the stored image is missing") from exc
    except UnsupportedImage as exc:
        raise Invalid("this image cannot be measured") from exc


def load_frame(tenant: Tenant, study_uid: str, sop_uid: str, frame: int) -> Frame:
    """Modality values (PS3.3 C.11.1) and pixel spacing of one frame of the tenant's instance."""
    source = _source(tenant, study_uid, sop_uid)
    if not 0 <= frame < source.number_of_frames:
        raise Invalid("no such frame")
    attrs = source.frame_attributes(frame)
    try:
        stored = source.frame(frame)
    except UnsupportedImage as exc:
        raise Invalid("this image cannot be measured") from exc
    values = measure.modality_values(stored, attrs.rescale_slope, attrs.rescale_intercept,
                                     attrs.modality_lut)
    unit = value_unit(str(source.dataset.get("Modality", "")), source.dataset)
    return Frame(values, Spacing.of(attrs.spacing), unit)


def _check_points(kind: str, points: Any) -> list[tuple[float, float]]:
    if kind not in KINDS:
        raise Invalid("unknown measurement kind")
    low, high = KINDS[kind]
    try:
        pts = [(float(x), float(y)) for x, y in points]
    except (TypeError, ValueError):
        raise Invalid("bad measurement points") from None
    if not low <= len(pts) <= high or not all(math.isfinite(v) for p in pts for v in p):
        raise Invalid("bad measurement points")
    if any(abs(v) > 1e6 for p in pts for v in p):
        raise Invalid("bad measurement points")
    return pts


def _region(frame: Frame, kind: str, pts: list) -> measure.RegionStats:
    if kind == "ellipse":
        return measure.ellipse_stats(frame.values, pts[0], pts[1], frame.spacing)
    if kind == "rectangle":
        return measure.rectangle_stats(frame.values, pts[0], pts[1], frame.spacing)
    return measure.polygon_stats(frame.values, pts, frame.spacing)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compute(frame: Frame | None, kind: str, pts: list) -> dict[str, Any]:
    """The values of a measurement of `kind` through `pts` (image pixels) on `frame`."""
    s = frame.spacing if frame is not None else Spacing()
    result: dict[str, Any] = {"unit": "mm" if s.calibrated else "px",
                              "valueUnit": frame.unit if frame is not None else ""}
    try:
        if kind == "length":
            result["length"] = measure.length(pts[0], pts[1], s)
        elif kind == "polyline":
            result["length"] = measure.polyline_length(pts, s)
        elif kind == "angle":
            result["angle"] = measure.angle(pts[0], pts[1], pts[2], s)
        elif kind == "cobb":
            result["angle"] = measure.cobb_angle(pts[:2], pts[2:], s)
        elif kind == "ctr":
            heart, thorax = measure.length(pts[0], pts[1], s), measure.length(pts[2], pts[3], s)
            result.update(heart=heart, thorax=thorax, ratio=measure.ratio(heart, thorax))
        elif kind in REGIONS:
            stats = _region(frame, kind, pts)
            result.update(area=stats.area, pixels=stats.pixels, mean=_finite(stats.mean),
                          sd=_finite(stats.sd), min=_finite(stats.min), max=_finite(stats.max))
        elif kind == "probe":
            found = measure.probe(frame.values, pts[0])
            result.update(value=found.value, mean=found.mean, min=found.min, max=found.max,
                          size=found.size, column=found.column, row=found.row)
    except ValueError as exc:
        raise Invalid("this measurement cannot be computed") from exc
    return result


def _needs_pixels(kind: str) -> bool:
    return kind not in ("text", "arrow")


def _study(tenant: Tenant, study_uid: str) -> Study:
    return tenancy.get(tenant, Study, study_uid=study_uid)


def save(tenant: Tenant, actor: Actor, study_uid: str, sop_uid: str, frame: int, kind: str,
         points: Any, text: str = "") -> Annotation:
    """Compute and save one measurement of `actor`; audited as ``measurement.save``."""
    if actor.user_id is None:
        raise Invalid("only a signed-in user can save measurements")
    _study(tenant, study_uid)
    pts = _check_points(kind, points)
    target = rendering.instance_target(tenant, study_uid, "", sop_uid)  # 404 unless in the study
    if not 0 <= frame < target.frames:
        raise Invalid("no such frame")
    values = load_frame(tenant, study_uid, sop_uid, frame) if _needs_pixels(kind) else None
    result = compute(values, kind, pts)
    row = Annotation(tenant_id=tenant.id, user_id=actor.user_id, study_uid=study_uid,
                     series_uid=target.series_uid, sop_uid=sop_uid, frame=frame, kind=kind,
                     geometry=json.dumps({"points": pts}), text=(text or "")[:MAX_TEXT],
                     result=json.dumps(result))
    db.session.add(row)
    audit.record(tenant, actor, "measurement.save", "instance", sop_uid,
                 detail=f"kind={kind} frame={frame}")
    db.session.commit()
    return row


def region_window(tenant: Tenant, study_uid: str, sop_uid: str, frame: int, kind: str,
                  points: Any) -> tuple[float, float]:
    """A window (centre, width) from the minimum to the maximum inside a drawn region."""
    if kind not in REGIONS:
        raise Invalid("unknown measurement kind")
    _study(tenant, study_uid)
    stats = _region(load_frame(tenant, study_uid, sop_uid, frame), kind, _check_points(kind, points))
    try:
        return measure.window_for(stats)
    except ValueError as exc:
        raise Invalid("the region contains no pixel") from exc


def annotations(tenant: Tenant, actor: Actor, study_uid: str) -> list[Annotation]:
    """The acting user's annotations on the tenant's study, oldest first."""
    _study(tenant, study_uid)
    stmt = tenancy.select(tenant, Annotation).where(
        Annotation.user_id == actor.user_id, Annotation.study_uid == study_uid,
        Annotation.sop_uid != "",  # MPR measurements: app.services.plane_measurements
    ).order_by(Annotation.id)
    return list(db.session.execute(stmt).scalars())


def delete(tenant: Tenant, actor: Actor, study_uid: str, annotation_id: str) -> None:
    """Delete one of the acting user's annotations (NotFound for anyone else's)."""
    if not annotation_id.isdigit():
        raise NotFound("no such measurement")
    row = tenancy.find(tenant, Annotation, id=int(annotation_id), user_id=actor.user_id,
                       study_uid=study_uid)
    if row is None:
        raise NotFound("no such measurement")
    db.session.delete(row)
    audit.record(tenant, actor, "measurement.delete", "instance", row.sop_uid,
                 detail=f"kind={row.kind}")
    db.session.commit()


def as_json(row: Annotation) -> dict[str, Any]:
    """An annotation as the viewer script draws it."""
    return {"id": row.id, "kind": row.kind, "study": row.study_uid, "sop": row.sop_uid, "frame": row.frame,
            "series": row.series_uid, "points": json.loads(row.geometry)["points"],
            "text": row.text, "result": json.loads(row.result or "{}")}


# --------------------------------------------------------------------------- key images


def key_images(tenant: Tenant, actor: Actor, study_uid: str) -> list[KeyImage]:
    """The acting user's key images of the study, in the order they were marked."""
    _study(tenant, study_uid)
    stmt = tenancy.select(tenant, KeyImage).where(
        KeyImage.user_id == actor.user_id, KeyImage.study_uid == study_uid).order_by(KeyImage.id)
    return list(db.session.execute(stmt).scalars())


def toggle_key_image(tenant: Tenant, actor: Actor, study_uid: str, sop_uid: str,
                     frame: int) -> bool:
    """Mark a frame as a key image, or unmark it; returns whether it is marked now."""
    _study(tenant, study_uid)
    target = rendering.instance_target(tenant, study_uid, "", sop_uid)
    if not 0 <= frame < target.frames:
        raise Invalid("no such frame")
    row = tenancy.find(tenant, KeyImage, user_id=actor.user_id, sop_uid=sop_uid, frame=frame)
    if row is not None:
        db.session.delete(row)
        audit.record(tenant, actor, "keyimage.unmark", "instance", sop_uid, detail=f"frame={frame}")
    else:
        db.session.add(KeyImage(tenant_id=tenant.id, user_id=actor.user_id, study_uid=study_uid,
                                series_uid=target.series_uid, sop_uid=sop_uid, frame=frame))
        audit.record(tenant, actor, "keyimage.mark", "instance", sop_uid, detail=f"frame={frame}")
    db.session.commit()
    return row is None


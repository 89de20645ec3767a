"""Measurements drawn on 3-D views (MPR planes), saved per study, series and user.

A 2-D measurement lives in the pixels of one stored frame
(:mod:`app.services.measurements`); an MPR plane is computed, so its
measurements are kept as patient coordinates (mm, LPS) instead, with the
value the user was shown. The MPR page draws a saved measurement on any
plane that passes through its points. They share the ``annotation`` table
with the 2-D ones (``sop_uid`` empty) and its audit events.
"""
from __future__ import annotations

import json
import math
from typing import Any

from app.extensions import db
from app.models import Annotation, Tenant
from app.services import audit, tenancy, volumes
from app.services.audit import Actor
from app.services.errors import Invalid

#: Kind → (fewest, most) points.
KINDS: dict[str, tuple[int, int]] = {
    "length": (2, 2), "angle": (3, 3), "cobb": (4, 4), "polyline": (2, 500),
    "ellipse": (2, 2), "rectangle": (2, 2), "freehand": (3, 1000), "ctr": (4, 4),
    "arrow": (2, 2), "text": (1, 1),
}
MAX_LABEL = 200
MAX_COORDINATE = 1e5


def _points(kind: str, points: Any) -> list[list[float]]:
    if kind not in KINDS:
        raise Invalid("unknown measurement kind")
    low, high = KINDS[kind]
    if not isinstance(points, list) or not low <= len(points) <= high:
        raise Invalid("bad measurement points")
    out = []
    for point in points:
        if not isinstance(point, list) or len(point) != 3:
            raise Invalid("bad measurement points")
        try:
            xyz = [float(v) for v in point]
        except (TypeError, ValueError) as exc:
            raise Invalid("bad measurement points") from exc
        if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in xyz):
            raise Invalid("bad measurement points")
        out.append([round(v, 3) for v in xyz])
    return out


def save(tenant: Tenant, actor: Actor, study_uid: str, series_uid: str, kind: str, points: Any,
         label: str) -> Annotation:
    """Save one MPR measurement of `actor` (NotFound unless the series is the tenant's)."""
    if actor.user_id is None:
        raise Invalid("only a signed-in user can save measurements")
    pts = _points(kind, points)
    volumes.resolve(tenant, study_uid, series_uid)  # tenant-scoped: another's UIDs are NotFound
    row = Annotation(tenant_id=tenant.id, user_id=actor.user_id, study_uid=study_uid,
                     series_uid=series_uid, sop_uid="", frame=0, kind=kind,
                     geometry=json.dumps({"patient": pts}),
                     result=json.dumps({"label": str(label or "")[:MAX_LABEL]}))
    db.session.add(row)
    audit.record(tenant, actor, "measurement.save", "series", series_uid, detail=f"kind={kind} mpr")
    db.session.commit()
    return row


def listing(tenant: Tenant, actor: Actor, study_uid: str, series_uid: str) -> list[dict[str, Any]]:
    """The acting user's MPR measurements on a series, oldest first, as the page draws them."""
    volumes.resolve(tenant, study_uid, series_uid)
    rows = db.session.execute(tenancy.select(tenant, Annotation).where(
        Annotation.user_id == actor.user_id, Annotation.study_uid == study_uid,
        Annotation.series_uid == series_uid, Annotation.sop_uid == "").order_by(Annotation.id)
    ).scalars()
    return [{"id": r.id, "kind": r.kind, "points": json.loads(r.geometry)["patient"],
             "label": json.loads(r.result or "{}").get("label", "")} for r in rows]

"""3-D views of a series (MPR, volume rendering, fusion, DSA): ``/viewer3d/<study>/<series>/<view>``.

Deep links from a HIS use the 2-D viewer's address,
``/viewer/<study>?series=<series>&view=mpr|vr|fusion[&overlay=<series>]|dsa``,
which redirects here. Every image is rendered by the farm and fetched from
``/vframes/...`` (:mod:`app.web.volume_frames`); the page's script only
builds view-state queries. Without script the page still shows the images,
and a small form changes the view.
"""
from __future__ import annotations

from flask import (
    Blueprint, flash, g, jsonify, make_response, redirect, render_template, request, url_for,
)
from flask_babel import gettext as _

from app.services import permissions, plane_measurements, volumes
from app.services.errors import Invalid
from app.web.filters import patient_name
from app.web.messages import N_
from app.web.security import current_actor, permission_required

bp = Blueprint("views3d", __name__, url_prefix="/viewer3d")

SERVICE_MESSAGES = [
    N_("no such view"), N_("no such study or series"), N_("this series has no images"),
    N_("fusion needs an overlay series"), N_("the overlay series is not in the same frame of reference"),
    N_("no other series of this study shares the frame of reference to fuse"),
    N_("no such overlay series in this frame of reference"),
    N_("a stored image of this series is missing"), N_("the view could not be rendered; try again"),
    # Volume rendering presets (render_farm.vr_presets titles).
    N_("CT bone"), N_("CT soft tissue"), N_("CTA vessels"), N_("CT lung"), N_("CT chest, contrast"),
    N_("MIP"), N_("MR angio"), N_("MR default"),
    N_("choose a step between planes from the list"), N_("at: expected the display point as x,y"),
]


@bp.get("/<study_uid>/<series_uid>/<view>")
@permission_required(permissions.STUDY_READ)
def view(study_uid: str, series_uid: str, view: str):
    """The page of one 3-D view; its images come from the farm."""
    page = volumes.open_view(g.tenant, current_actor(), study_uid, series_uid, view,
                             request.args.get("overlay", ""))
    response = make_response(render_template(
        "viewer3d/view.html", p=page, args=request.args,
        initial=volumes.initial_queries(page, request.args.to_dict()),
        presets=volumes.VR_PRESETS, standard_views=volumes.STANDARD_VIEWS,
        derived_steps=volumes.DERIVED_STEPS,
        default_preset=volumes.default_preset(page.volume.modality),
        display_name=patient_name))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<study_uid>/<series_uid>/derive")
@permission_required(permissions.STUDY_WRITE)
def derive(study_uid: str, series_uid: str):
    """Save parallel reformatted planes (e.g. 3 mm coronal) as a new series; open it in 2-D."""
    try:
        step = float(request.form.get("step", ""))
    except ValueError as exc:
        raise Invalid("choose a step between planes from the list") from exc
    new_series = volumes.save_derived(g.tenant, current_actor(), study_uid, series_uid,
                                      request.form.get("o", "coronal"), step,
                                      request.form.get("query", ""))
    flash(_("The reformatted series was saved to the archive."))
    return redirect(url_for("viewer.study", study_uid=study_uid, series=new_series))


@bp.get("/<study_uid>/<series_uid>/measurements")
@permission_required(permissions.STUDY_READ)
def measurements(study_uid: str, series_uid: str):
    """The user's saved MPR measurements of this series (patient mm)."""
    rows = plane_measurements.listing(g.tenant, current_actor(), study_uid, series_uid)
    response = jsonify(measurements=rows)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<study_uid>/<series_uid>/measurements")
@permission_required(permissions.STUDY_READ)
def save_measurement(study_uid: str, series_uid: str):
    """Save one MPR measurement (JSON: kind, points in patient mm, label as shown)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("the request must be JSON")
    row = plane_measurements.save(g.tenant, current_actor(), study_uid, series_uid,
                                  str(body.get("kind", "")), body.get("points"),
                                  str(body.get("label", "")))
    response = make_response(jsonify(id=row.id), 201)
    response.headers["Cache-Control"] = "no-store"
    return response

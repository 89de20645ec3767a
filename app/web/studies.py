"""The study list (检查列表) and browser upload."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Blueprint, current_app, g, make_response, render_template, request
from flask_babel import gettext as _

from app.services import importer, permissions, studies
from app.services.errors import Invalid
from app.web.filters import patient_name
from app.web.messages import N_
from app.web.security import current_actor, permission_required

bp = Blueprint("studies", __name__)

MODALITIES = ["CT", "MR", "DX", "CR", "DR", "MG", "US", "XA", "RF", "PT", "NM", "OT", "SC"]
DATE_SHORTCUTS = [(1, N_("Today")), (3, N_("Last 3 days")), (7, N_("Last 7 days")),
                  (30, N_("Last 30 days"))]
PAGE_SIZES = [25, 50, 100]
# A folder upload sends one multipart part per file; Flask's default allows 1,000.
MAX_UPLOAD_PARTS = 50_000


@bp.url_value_preprocessor
def _allow_folder_uploads(endpoint: str | None, values: dict | None) -> None:
    # Runs before CSRF protection parses the form, so the limit applies to that parse.
    if endpoint == "studies.upload":
        request.max_form_parts = max(MAX_UPLOAD_PARTS, current_app.config.get("MAX_FORM_PARTS") or 0)


def _dates(args) -> tuple[str, str]:
    """``date_from``/``date_to`` as YYYYMMDD; a ``days`` shortcut (今天/近7天) wins."""
    days = args.get("days", "")
    if days.isdigit() and 0 < int(days) <= 3660:
        today = date.today()
        return (today - timedelta(days=int(days) - 1)).strftime("%Y%m%d"), today.strftime("%Y%m%d")
    values = tuple(args.get(key, "").strip().replace("-", "") for key in ("date_from", "date_to"))
    for value in values:
        try:
            if value:
                datetime.strptime(value, "%Y%m%d")
        except ValueError as exc:
            raise Invalid(_("dates must be YYYY-MM-DD")) from exc
    return values[0], values[1]


def _query_from_args() -> studies.StudyQuery:
    args = request.args
    try:
        page = max(1, int(args.get("page", "1") or 1))
        per_page = min(200, max(5, int(args.get("per_page", "25") or 25)))
    except ValueError as exc:
        raise Invalid(_("page must be a number")) from exc
    date_from, date_to = _dates(args)
    sort = args.get("sort", "date") or "date"
    return studies.StudyQuery(
        name=args.get("name", "")[:64].strip(), patient_id=args.get("patient_id", "")[:64].strip(),
        accession=args.get("accession", "")[:16].strip(), modality=args.get("modality", "")[:16],
        date_from=date_from, date_to=date_to,
        sort=sort if sort in studies.SORTABLE else "date", descending=args.get("dir", "desc") != "asc",
        page=page, per_page=per_page,
    )


def _hx_target(target_id: str) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == target_id


@bp.route("/")
@permission_required(permissions.STUDY_READ)
def index():
    """The study list; the table alone when htmx asks for it."""
    result = studies.search(g.tenant, _query_from_args(), current_actor())
    template = "studies/_table.html" if _hx_target("study-table") else "studies/index.html"
    response = make_response(render_template(
        template, page=result, q=result.query, display_name=patient_name,
        modalities=MODALITIES, shortcuts=DATE_SHORTCUTS, page_sizes=PAGE_SIZES))
    response.headers["Vary"] = "HX-Request"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/studies/<study_uid>")
@permission_required(permissions.STUDY_READ)
def detail(study_uid: str):
    """One study's series and instances count."""
    study = studies.get_study(g.tenant, study_uid, current_actor())
    response = make_response(render_template(
        "studies/detail.html", study=study, series=studies.series_of(g.tenant, study),
        display_name=patient_name))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/upload", methods=["GET", "POST"])
@permission_required(permissions.STUDY_WRITE)
def upload():
    """Upload DICOM files, a folder or zip archives; a result line per file."""
    partial = _hx_target("upload-result")
    template = "studies/_upload_result.html" if partial else "studies/upload.html"
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.method == "GET":
        return render_template("studies/upload.html", max_bytes=limit)
    files = [f for f in request.files.getlist("files") if f.filename]
    if not files:
        response = make_response(render_template(
            template, max_bytes=limit, error=_("Choose at least one file, folder or zip archive.")), 400)
    else:
        report = importer.ImportReport()
        for storage in files:
            importer.import_stream(g.tenant, storage.filename or "upload", storage.stream,
                                   current_actor(), report)
        status = 200 if not report.failed or report.stored or report.duplicates else 400
        response = make_response(render_template(template, report=report, max_bytes=limit), status)
    response.headers["Vary"] = "HX-Request"
    response.headers["Cache-Control"] = "no-store"
    return response

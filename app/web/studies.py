"""The study list (工作列表) and browser upload."""
from __future__ import annotations

from flask import Blueprint, g, make_response, render_template, request
from flask_babel import gettext as _

from app.services import importer, permissions, studies
from app.services.errors import Invalid
from app.web.security import current_actor, permission_required

bp = Blueprint("studies", __name__)


def _query_from_args() -> studies.StudyQuery:
    args = request.args
    try:
        page = max(1, int(args.get("page", "1") or 1))
        per_page = min(200, max(5, int(args.get("per_page", "25") or 25)))
    except ValueError as exc:
        raise Invalid(_("page must be a number")) from exc
    return studies.StudyQuery(
        name=args.get("name", "")[:64], patient_id=args.get("patient_id", "")[:64],
        accession=args.get("accession", "")[:16], modality=args.get("modality", "")[:16],
        date_from=args.get("date_from", "").replace("-", "")[:8],
        date_to=args.get("date_to", "").replace("-", "")[:8],
        sort=args.get("sort", "date"), descending=args.get("dir", "desc") != "asc",
        page=page, per_page=per_page,
    )


@bp.route("/")
@permission_required(permissions.STUDY_READ)
def index():
    """The study list; the table alone when htmx asks for it."""
    result = studies.search(g.tenant, _query_from_args(), current_actor())
    template = "studies/_table.html" if request.headers.get("HX-Request") and \
        request.headers.get("HX-Target") == "study-table" else "studies/index.html"
    response = make_response(render_template(template, page=result, q=result.query,
                                             display_name=studies.display_name))
    response.headers["Vary"] = "HX-Request"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/studies/<study_uid>")
@permission_required(permissions.STUDY_READ)
def detail(study_uid: str):
    """One study's series and instances count."""
    study = studies.get_study(g.tenant, study_uid, current_actor())
    return render_template("studies/detail.html", study=study,
                           series=studies.series_of(g.tenant, study),
                           display_name=studies.display_name)


@bp.route("/upload", methods=["GET", "POST"])
@permission_required(permissions.STUDY_WRITE)
def upload():
    """Upload DICOM files, a folder or zip archives; a result line per file."""
    if request.method == "GET":
        return render_template("studies/upload.html")
    files = request.files.getlist("files")
    if not files:
        raise Invalid(_("choose at least one file"))
    report = importer.ImportReport()
    for storage in files:
        importer.import_stream(g.tenant, storage.filename or "upload", storage.stream,
                               current_actor(), report)
    template = "studies/_upload_result.html" if request.headers.get("HX-Request") \
        else "studies/upload.html"
    status = 200 if not report.failed or report.stored or report.duplicates else 400
    return render_template(template, report=report), status

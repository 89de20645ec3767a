"""The viewer model: what the 2-D viewer shows of a study, and how.

The one place the viewer's logic lives. :func:`open_study` resolves a
tenant's study, mints the frame grant (which audits ``study.view``), and
builds the series panel (thumbnails as frame URLs), the stack of the shown
series (every frame with its geometry, for scrolling, overlays, orientation
letters and synchronised scrolling), the modality's W/L presets, the
overlay layout and the default (hanging) layout. Nothing here renders or
reads pixels: frames are rendered by :mod:`app.services.rendering` when the
browser asks for their URLs.

Geometry follows PS3.3 C.7.6.2: Image Position (Patient) is the centre of
the first transmitted pixel, Image Orientation (Patient) the direction
cosines of the first row and the first column, in the patient's LPS axes.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pydicom
import sqlalchemy as sa
from pydicom.errors import InvalidDicomError

from app.extensions import db
from app.models import Instance, Patient, Series, Study, Tenant
from app.services import rendering, retrieve, tenancy
from app.services.audit import Actor
from app.services.errors import Forbidden, NotFound
from render_farm.viewport import ViewState, display_to_image, viewport_geometry

log = logging.getLogger(__name__)


def N_(message: str) -> str:
    """Mark a label for the catalog (gettext's "mark only"); it is translated when shown."""
    return message


THUMB_SIZE = 128
#: The viewport size of the page before its script measures the screen (and without script).
PAGE_SIZE = 768
LAYOUTS = ("1x1", "1x2", "2x1", "2x2", "3x3")
MAX_GRID = 4
PANEL_SIDES = ("left", "right", "top", "bottom", "hidden")
_HEADER_TAGS = ["SliceThickness", "SpacingBetweenSlices", "WindowCenter", "WindowWidth",
                "ImagerPixelSpacing", "PatientAge", "RescaleType", "Units"]


@dataclass(frozen=True)
class Preset:
    """A W/L preset: its key (keyboard shortcut), label, centre and width (None: the file's)."""

    key: str
    label: str
    center: float | None
    width: float | None


AUTO = Preset("0", N_("Default"), None, None)
# CT windows in HU (centre/width), as commonly used in Chinese radiology departments.
CT_PRESETS = (
    Preset("1", N_("Soft tissue"), 40, 400), Preset("2", N_("Lung"), -600, 1500),
    Preset("3", N_("Bone"), 400, 1800), Preset("4", N_("Brain"), 40, 80),
    Preset("5", N_("Abdomen / liver"), 60, 160), Preset("6", N_("Mediastinum"), 50, 350),
)
_PRESETS = {"CT": CT_PRESETS}

#: Four-corner text per modality: field names, filled by templates/viewer/_corners.html
#: (static fields) and by viewer.js (image, slice, wl, zoom: they change with the view).
OVERLAY_FIELDS = {
    "default": {"tl": ("patient_name", "patient_id", "sex_age", "study_date"),
                "tr": ("institution", "study_description", "series", "modality"),
                "bl": ("image", "slice", "thickness"),
                "br": ("wl", "zoom")},
    "XA": {"tl": ("patient_name", "patient_id", "sex_age", "study_date"),
           "tr": ("institution", "study_description", "series"),
           "bl": ("image",), "br": ("wl", "zoom")},
}
for _modality in ("CR", "DX", "DR", "MG", "US", "RF"):
    OVERLAY_FIELDS[_modality] = OVERLAY_FIELDS["XA"]


def valid_layout(text: str) -> bool:
    """Whether `text` is a layout the viewer can show: ``RxC`` with 1 ≤ R, C ≤ 4."""
    rows, _, columns = (text or "").partition("x")
    return rows.isdigit() and columns.isdigit() and 1 <= int(rows) <= MAX_GRID \
        and 1 <= int(columns) <= MAX_GRID


def presets_for(modality: str) -> tuple[Preset, ...]:
    """The W/L presets of a modality: its default window first, then the modality's own."""
    return (AUTO, *_PRESETS.get(modality.upper(), ()))


def overlay_for(modality: str) -> dict[str, tuple[str, ...]]:
    """The four-corner overlay fields of a modality."""
    return OVERLAY_FIELDS.get(modality.upper(), OVERLAY_FIELDS["default"])


# --------------------------------------------------------------------------- model


@dataclass
class SeriesItem:
    """One image series in the series panel."""

    uid: str
    number: int | None
    modality: str
    description: str
    frames: int  # images to scroll through (instances × frames)
    thumb_url: str
    frame_of_reference: str = ""


@dataclass
class Stack:
    """Every frame of one series, in display order, with its geometry."""

    series: SeriesItem
    frame_base: str
    geoms: list[list]  # [rows, columns, row spacing, column spacing, *orientation(6)]
    images: list[list]  # [sop, frame, instance number, geom index, position or None, location]
    thickness: float | None = None
    spacing_between: float | None = None
    window: tuple[float, float] | None = None
    value_unit: str = ""

    def image(self, index: int) -> tuple[str, int]:
        """(SOP Instance UID, 0-based frame) of image `index` (clamped to the stack)."""
        sop, frame = self.images[max(0, min(index, len(self.images) - 1))][:2]
        return sop, frame

    def as_json(self) -> dict:
        """The stack as the viewer script reads it."""
        s = self.series
        return {"series": s.uid, "number": s.number, "modality": s.modality,
                "description": s.description, "forUid": s.frame_of_reference,
                "frameBase": self.frame_base, "geoms": self.geoms, "images": self.images,
                "thickness": self.thickness, "spacingBetween": self.spacing_between,
                "window": self.window, "valueUnit": self.value_unit,
                "presets": [[p.key, p.center, p.width] for p in presets_for(s.modality)]}


@dataclass
class ViewerModel:
    """Everything the viewer page shows of one study."""

    study: Study
    patient: Patient
    token: str
    series: list[SeriesItem]
    stack: Stack
    priors: list[Study] = field(default_factory=list)
    layout: str = "1x1"

    @property
    def presets(self) -> tuple[Preset, ...]:
        return presets_for(self.stack.series.modality)


def _floats(text: str, count: int) -> list[float] | None:
    try:
        values = [float(v) for v in (text or "").split("\\")]
    except ValueError:
        return None
    return values[:count] if len(values) >= count else None


def image_series(tenant: Tenant, study: Study) -> list[Series]:
    """The study's series that hold images (Rows present), by Series Number."""
    has_images = sa.exists().where(Instance.series_pk == Series.id, Instance.rows.is_not(None),
                                   Instance.tenant_id == tenant.id)
    stmt = tenancy.select(tenant, Series).where(Series.study_pk == study.id, has_images) \
        .order_by(Series.series_number, Series.id)
    return list(db.session.execute(stmt).scalars())


#: The columns a stack needs. Plain rows, not ORM objects: building 2,000 Instance objects
#: costs ~40 ms of a 2,000-slice CT's page, the rows a tenth of that.
_STACK_COLUMNS = (Instance.sop_uid, Instance.instance_number, Instance.rows, Instance.columns,
                  Instance.number_of_frames, Instance.image_position, Instance.image_orientation,
                  Instance.pixel_spacing, Instance.slice_location, Instance.storage_key)


def _instances(tenant: Tenant, series: Series) -> list[sa.Row]:
    stmt = tenancy.select(tenant, Instance, *_STACK_COLUMNS).where(
        Instance.series_pk == series.id, Instance.rows.is_not(None)
    ).order_by(Instance.instance_number, Instance.id)
    return list(db.session.execute(stmt))


def _series_item(tenant: Tenant, token: str, series: Series) -> SeriesItem:
    n, frames = db.session.execute(tenancy.select(
        tenant, Instance, sa.func.count(), sa.func.coalesce(sa.func.sum(Instance.number_of_frames), 0)
    ).where(Instance.series_pk == series.id, Instance.rows.is_not(None))).one()
    middle = db.session.execute(tenancy.select(tenant, Instance).where(
        Instance.series_pk == series.id, Instance.rows.is_not(None)
    ).order_by(Instance.instance_number, Instance.id).offset(n // 2).limit(1)).scalar_one()
    thumb = ViewState(frame=(middle.number_of_frames or 1) // 2, width=THUMB_SIZE,
                      height=THUMB_SIZE, quality=80)
    return SeriesItem(series.series_uid, series.series_number, series.modality,
                      series.description, int(frames), rendering.frame_url(token, middle.sop_uid, thumb),
                      series.frame_of_reference_uid or "")


def _header(instance: Instance | sa.Row) -> pydicom.Dataset:
    """Attributes the index does not keep (slice thickness, default window), from one file."""
    try:
        path = retrieve.local_path(instance)
        if path is not None:
            return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    except (OSError, ValueError, TypeError, InvalidDicomError) as exc:  # a nicety: works without
        log.warning("header of instance %s unreadable: %s", instance.sop_uid, type(exc).__name__)
    return pydicom.Dataset()


def _number(ds: pydicom.Dataset, keyword: str) -> float | None:
    value = ds.get(keyword)
    try:
        return float(value[0] if isinstance(value, pydicom.multival.MultiValue) else value)
    except (TypeError, ValueError, IndexError):
        return None


def value_unit(modality: str, ds: pydicom.Dataset) -> str:
    """The unit of a series' modality values: HU for CT, the PET Units, else the Rescale Type."""
    modality = modality.upper()
    rescale_type = str(ds.get("RescaleType", "") or "").strip()
    if modality == "CT":
        return rescale_type if rescale_type and rescale_type != "US" else "HU"
    if modality == "PT":
        return str(ds.get("Units", "") or rescale_type).strip()
    return "" if rescale_type in ("", "US") else rescale_type


def build_stack(tenant: Tenant, token: str, series: Series, item: SeriesItem | None = None) -> Stack:
    """The stack of `series`: one entry per frame, in instance order."""
    instances = _instances(tenant, series)
    if not instances:
        raise NotFound("Series not found")
    header = _header(instances[0])
    imager = [float(v) for v in header.get("ImagerPixelSpacing", [])] or None
    geoms: list[list] = []
    images: list[list] = []
    for inst in instances:
        spacing = _floats(inst.pixel_spacing, 2) or (imager[:2] if imager else None)
        geom = [inst.rows, inst.columns, *(spacing or (None, None)),
                *(_floats(inst.image_orientation, 6) or [None] * 6)]
        if geom not in geoms:
            geoms.append(geom)
        position = _floats(inst.image_position, 3)
        for frame in range(inst.number_of_frames or 1):
            images.append([inst.sop_uid, frame, inst.instance_number, geoms.index(geom),
                           position, inst.slice_location])
    sample = rendering.frame_url(token, instances[0].sop_uid, ViewState())
    center, width = _number(header, "WindowCenter"), _number(header, "WindowWidth")
    return Stack(item or _series_item(tenant, token, series),
                 sample.split("?")[0].rsplit("/", 2)[0] + "/", geoms, images,
                 _number(header, "SliceThickness"), _number(header, "SpacingBetweenSlices"),
                 (center, width) if center is not None and width else None,
                 value_unit(series.modality, header))


def hanging_layout(series: list[SeriesItem]) -> str:
    """The default layout: projection images side by side, else one viewport."""
    projection = {"CR", "DX", "DR", "MG"}
    if len(series) >= 4 and all(s.modality in projection for s in series):
        return "2x2"
    if len(series) >= 2 and all(s.modality in projection for s in series):
        return "1x2"
    return "1x1"


def priors(tenant: Tenant, study: Study) -> list[Study]:
    """Other studies of the same patient in this tenant (same Patient ID), newest first."""
    patient = study.patient
    same = Patient.patient_id == patient.patient_id if patient.patient_id else \
        Patient.id == patient.id
    stmt = tenancy.select(tenant, Study).join(Patient, Study.patient_pk == Patient.id) \
        .where(same, Patient.tenant_id == tenant.id, Study.id != study.id) \
        .order_by(Study.study_date.desc(), Study.study_time.desc(), Study.id.desc()).limit(50)
    return list(db.session.execute(stmt).scalars())


def _grant(tenant: Tenant, actor: Actor, study_uid: str, token: str = "") -> str:
    """Reuse the page's still valid grant for this user and study, else mint (and audit) one."""
    if token:
        try:
            found = rendering.verify(token)
            if (found.tenant_id, found.user_id, found.study_uid) == \
                    (tenant.id, actor.user_id, study_uid):
                return token
        except Forbidden:
            pass
    return rendering.grant(tenant, actor, study_uid)


def open_study(tenant: Tenant, actor: Actor, study_uid: str, series_uid: str = "") -> ViewerModel:
    """The viewer model of a study, showing `series_uid` (else the first image series).

    Audited as ``study.view`` (by the grant). Another tenant's study, or a
    series not in this study, is NotFound.
    """
    study = tenancy.get(tenant, Study, study_uid=study_uid)
    series = image_series(tenant, study)
    if not series:
        raise NotFound("this study has no images to show")
    shown = next((s for s in series if s.series_uid == series_uid), None) if series_uid else series[0]
    if shown is None:
        raise NotFound("Series not found")
    token = rendering.grant(tenant, actor, study_uid)
    items = [_series_item(tenant, token, s) for s in series]
    stack = build_stack(tenant, token, shown, items[series.index(shown)])
    return ViewerModel(study, study.patient, token, items, stack, priors(tenant, study),
                       hanging_layout(items) if not series_uid else "1x1")


def series_stack(tenant: Tenant, actor: Actor, study_uid: str, series_uid: str,
                 token: str = "") -> Stack:
    """The stack of one series of a study (reusing the caller's grant when it is valid)."""
    study = tenancy.get(tenant, Study, study_uid=study_uid)
    series = tenancy.get(tenant, Series, series_uid=series_uid)
    if series.study_pk != study.id:
        raise NotFound("Series not found")
    return build_stack(tenant, _grant(tenant, actor, study_uid, token), series)


def series_panel(tenant: Tenant, actor: Actor, study_uid: str,
                 token: str = "") -> tuple[Study, list[SeriesItem]]:
    """A study's series thumbnails (for a prior study opened beside the current one)."""
    study = tenancy.get(tenant, Study, study_uid=study_uid)
    series = image_series(tenant, study)
    grant = _grant(tenant, actor, study_uid, token) if series else ""
    return study, [_series_item(tenant, grant, s) for s in series]


def study_of(tenant: Tenant, study_uid: str) -> Study:
    """The tenant's study (NotFound otherwise); not audited — the grant was."""
    return tenancy.get(tenant, Study, study_uid=study_uid)


# --------------------------------------------------------------------------- orientation

#: Pseudo-colour maps offered by the viewer (query value, label).
COLORMAPS = (("gray", N_("Grey scale")), ("hot", N_("Hot iron")), ("rainbow", N_("Rainbow")),
             ("pet", N_("PET colours")), ("bone", N_("Bone tint")), ("coolwarm", N_("Cool–warm")))
_AXIS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))  # LPS: −x right, +x left, −y anterior …


def direction_letters(vector: Sequence[float]) -> str:
    """Patient direction letters of an LPS vector, strongest axis first (PS3.3 C.7.6.1.1.1).

    Axes contributing less than a third of the strongest are left out, so a
    slightly oblique axial image still reads "L", while a 45° one reads "LA".
    """
    length = math.sqrt(sum(v * v for v in vector))
    if length == 0:
        return ""
    parts = sorted(((abs(v) / length, axis, v) for axis, v in enumerate(vector)), reverse=True)
    strongest = parts[0][0]
    return "".join(_AXIS_LETTERS[axis][int(v > 0)] for size, axis, v in parts
                   if size >= strongest / 3 and size > 1e-4)


def orientation_letters(stack: Stack, index: int, state: ViewState) -> dict[str, str]:
    """Letters at the top, bottom, left and right edges of the displayed image.

    The display axes are mapped back into the image by the view's inverse
    affine (rotation and flips included) and then into the patient through
    Image Orientation (Patient) and Pixel Spacing; {} without orientation.
    """
    geom = stack.geoms[stack.images[max(0, min(index, len(stack.images) - 1))][3]]
    rows, columns, row_spacing, column_spacing, *iop = geom
    if None in iop:
        return {}
    spacing = (row_spacing, column_spacing) if row_spacing and column_spacing else None
    to_image, _ = display_to_image(state, (rows, columns), spacing)
    row_mm, column_mm = spacing or (1.0, 1.0)

    def patient(dx: float, dy: float) -> list[float]:
        d_col = to_image[0, 0] * dx + to_image[0, 1] * dy
        d_row = to_image[1, 0] * dx + to_image[1, 1] * dy
        return [float(d_col * column_mm * iop[k] + d_row * row_mm * iop[3 + k]) for k in range(3)]

    return {"right": direction_letters(patient(1, 0)), "left": direction_letters(patient(-1, 0)),
            "bottom": direction_letters(patient(0, 1)), "top": direction_letters(patient(0, -1))}


def overlay_values(stack: Stack, index: int, state: ViewState) -> dict[str, str]:
    """The changing corner values of the page's first render (viewer.js keeps them current)."""
    image = stack.images[max(0, min(index, len(stack.images) - 1))]
    rows, columns, row_spacing, column_spacing = stack.geoms[image[3]][:4]
    spacing = (row_spacing, column_spacing) if row_spacing and column_spacing else None
    scale = viewport_geometry(state, (rows, columns), spacing).scale_x
    window = (state.window_center, state.window_width) if state.window_width else stack.window
    location = image[5] if image[5] is not None else (image[4][2] if image[4] else None)
    return {"image": f"{index + 1}/{len(stack.images)}",
            "slice": f"{location:.2f}" if location is not None else "",
            "wc": f"{window[0]:g}" if window else "", "ww": f"{window[1]:g}" if window else "",
            "zoom": f"{scale * 100:.0f}%"}

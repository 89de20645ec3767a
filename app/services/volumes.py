"""3-D views of a series (MPR, curved MPR, volume rendering, fusion, DSA) for the web app.

The render farm builds the volume from the series' stored files and keeps it
warm on the worker that owns the series (the same affinity as 2-D frames),
so a view request carries only primitives: the series' file paths, a cache
key naming the tenant, the series and its exact content, and the view's
canonical query. Authorisation is the 2-D viewer's signed grant
(:func:`app.services.rendering.grant`): a grant names a tenant and a study,
and every lookup here is scoped to that tenant, so another tenant's UIDs
resolve to nothing (404).

Operations and their farm functions::

    mpr       render_farm.mpr.mpr_frame          three planes, oblique, slab MIP/MinIP/avg
    mpr_geometry  render_farm.mpr.mpr_geometry   plane geometry (JSON) for crosshairs and measuring
    cpr       render_farm.cpr.cpr_frame          curved reformat along a path
    vr        render_farm.vr.vr_frame            volume rendering
    fusion    render_farm.fusion.fusion_frame    PET/SPECT/MR over CT
    dsa       render_farm.dsa.dsa_frame          subtraction of an XA cine (one instance)
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode

import pydicom
import sqlalchemy as sa

from app.extensions import db
from app.models import Instance, Patient, Series, Study, Tenant
from app.services import audit, ingest, rendering, retrieve, tenancy
from app.services.audit import Actor
from app.services.errors import Invalid, NotFound
from app.services.rendering import Grant, RenderUnavailable
from app.services.ttl_cache import TTLCache
from render_farm.dsa import split_query
from render_farm.farm import process_cache as rendering_cache
from render_farm.fusion import split_query as split_fusion_query
from render_farm.jobs import Rendered, RenderError
from render_farm.mpr_state import canonical_query as mpr_canonical_query
from render_farm.mpr_state import split_query as split_mpr_query
from render_farm.vr_camera import StandardView
from render_farm.volume import load_volume
from render_farm.vr_presets import PRESETS
from render_farm.vr_state import VRState

#: Views a deep link may ask for (``/viewer/<study>?series=…&view=…``).
VIEWS = ("mpr", "vr", "fusion", "dsa")
#: Series operations of the farm; ``dsa`` works on one multi-frame instance.
VOLUME_OPERATIONS = ("mpr", "mpr_geometry", "mpr_roi", "cpr", "vr")
_CACHE_SIZE = 512
_CACHE_TTL_S = 300.0


@dataclass(frozen=True)
class SeriesVolume:
    """A tenant's series resolved for the farm: what a volume job needs."""

    tenant_id: int
    study_uid: str
    series_uid: str
    modality: str
    frame_of_reference_uid: str
    description: str
    key: str
    paths: tuple[str, ...]
    first_sop_uid: str
    frames: int  # frames of the first instance (DSA: a multi-frame XA cine)

    @property
    def affinity(self) -> str:
        """Farm routing key: the same as the series' 2-D frames."""
        return f"{self.tenant_id}/{self.series_uid}"

    @property
    def slices(self) -> int:
        return len(self.paths)


CACHE: TTLCache[SeriesVolume] = TTLCache(_CACHE_SIZE, _CACHE_TTL_S)


def resolve(tenant: Tenant, study_uid: str, series_uid: str) -> SeriesVolume:
    """The tenant's image series `series_uid` of `study_uid`, or NotFound.

    Instances are listed in Instance Number order (the farm sorts by
    position itself); the key changes whenever an instance is added, so a
    volume cached before the series was complete is never reused.
    """
    key = (tenant.id, study_uid, series_uid)
    cached = CACHE.get(key)
    if cached is not None:
        return cached
    row = db.session.execute(
        sa.select(Series, Study.study_uid).join(Study, Series.study_pk == Study.id)
        .where(Series.tenant_id == tenant.id, Study.tenant_id == tenant.id,
               Study.study_uid == study_uid, Series.series_uid == series_uid)).first()
    if row is None:
        raise NotFound("no such study or series")
    series = row[0]
    instances = db.session.execute(
        sa.select(Instance).where(Instance.tenant_id == tenant.id,
                                  Instance.series_pk == series.id, Instance.rows > 0)
        .order_by(Instance.instance_number, Instance.id)).scalars().all()
    if not instances:
        raise NotFound("this series has no images")
    paths = []
    for instance in instances:
        path = retrieve.local_path(instance)
        if path is None:
            raise RenderUnavailable("the archive backend has no local files to render from")
        paths.append(str(path))
    digest = hashlib.blake2b("\n".join(i.sha256 for i in instances).encode(),
                             digest_size=12).hexdigest()
    volume = SeriesVolume(tenant.id, study_uid, series_uid, series.modality or "",
                          series.frame_of_reference_uid or "", series.description or "",
                          f"{tenant.id}/{series_uid}/{digest}", tuple(paths),
                          instances[0].sop_uid, instances[0].number_of_frames or 1)
    CACHE.put(key, volume)
    return volume


@dataclass(frozen=True)
class ViewPage:
    """What a 3-D view page shows: the study, the series, its grant and image URL base."""

    study: Study
    patient: Patient
    view: str
    volume: SeriesVolume
    token: str
    base_url: str  # + "<operation>?<query>"
    series: list[Series]  # the study's image series, for switching
    overlay: SeriesVolume | None = None
    overlays: tuple[Series, ...] = ()  # fusion candidates: same frame of reference


def deep_link(tenant: Tenant, study_uid: str, args) -> str:
    """The 3-D page a viewer link ``?series=…&view=…[&overlay=…]`` names (NotFound for an
    unknown view; without ``series``, the study's first image series)."""
    view = args.get("view", "")
    if view not in VIEWS:
        raise NotFound("no such view")
    series_uid = args.get("series", "")
    if not series_uid:
        study = tenancy.get(tenant, Study, study_uid=study_uid)
        first = db.session.execute(
            tenancy.select(tenant, Series, Series.series_uid)
            .where(Series.study_pk == study.id, Series.num_instances > 0)
            .order_by(Series.series_number, Series.id).limit(1)).scalar_one_or_none()
        if first is None:
            raise NotFound("this series has no images")
        series_uid = first
    keep = {k: v for k, v in args.items() if k not in ("view", "series")}
    query = urlencode(sorted(keep.items()))
    path = f"/viewer3d/{quote(study_uid, safe='.')}/{quote(series_uid, safe='.')}/{view}"
    return path + (f"?{query}" if query else "")


def open_view(tenant: Tenant, actor: Actor, study_uid: str, series_uid: str, view: str,
              overlay_uid: str = "") -> ViewPage:
    """The page model of `view` of a series; audited as ``study.view`` by the grant.

    Fusion without an `overlay_uid` picks the first other series of the same
    frame of reference (PET over CT when both exist).
    """
    if view not in VIEWS:
        raise NotFound("no such view")
    study = tenancy.get(tenant, Study, study_uid=study_uid)
    series = list(db.session.execute(
        tenancy.select(tenant, Series).where(Series.study_pk == study.id, Series.num_instances > 0)
        .order_by(Series.series_number, Series.id)).scalars())
    volume = resolve(tenant, study_uid, series_uid)
    overlay = None
    candidates = tuple(s for s in series if s.series_uid != series_uid
                       and s.frame_of_reference_uid
                       and s.frame_of_reference_uid == volume.frame_of_reference_uid)
    if view == "fusion":
        chosen = overlay_uid or next((s.series_uid for s in candidates
                                      if s.modality in ("PT", "NM")), "") or (
            candidates[0].series_uid if candidates else "")
        if not chosen:
            raise Invalid("no other series of this study shares the frame of reference to fuse")
        if chosen not in {s.series_uid for s in candidates}:
            raise NotFound("no such overlay series in this frame of reference")
        overlay = resolve(tenant, study_uid, chosen)
    token = rendering.grant(tenant, actor, study_uid)
    return ViewPage(study, study.patient, view, volume, token,
                    f"/vframes/{token}/{series_uid}/", series, overlay, candidates)


#: Volume rendering presets (query value, English label) and the six standard views.
VR_PRESETS = tuple((preset.name, preset.title) for preset in PRESETS.values())
STANDARD_VIEWS = tuple(view.value for view in StandardView)
#: Page keys of a fusion view (render_farm.fusion) and of its base window.
FUSION_KEYS = ("k", "omin", "omax", "ocm", "op", "ot", "suv", "wc", "ww")
#: Page keys of an MPR view: crosshair, rotation, slab and window (render_farm.mpr_state).
MPR_PAGE_KEYS = ("cx", "cy", "cz", "rx", "ry", "rz", "st", "sp", "wc", "ww")
#: Image size of a view before the page's script measures the screen (and without script).
PAGE_SIZE = 640


def default_preset(modality: str) -> str:
    """The volume rendering preset a series opens with: MR default, MIP for PET/SPECT, CT bone."""
    return {"MR": "mr_default", "PT": "mip", "NM": "mip"}.get(modality.upper(), "ct_bone")


def initial_queries(page: ViewPage, args: dict[str, str]) -> dict[str, str]:
    """Operation + canonical query of each image the page shows first, from its URL's keys.

    Raises Invalid (400) with the parser's message when a key is malformed.
    """
    try:
        if page.view == "vr":
            keys = {"preset": default_preset(page.volume.modality),
                    **{k: v for k, v in args.items() if k in VRState.QUERY_KEYS}}
            state = VRState.from_query(keys).replace(width=PAGE_SIZE, height=PAGE_SIZE)
            return {"vr": "vr?" + state.to_query()}
        if page.view == "dsa":
            keys = {k: v for k, v in args.items() if k in ("mask", "log", "sx", "sy", "f")}
            frame = min(max(int(keys.pop("f", "0") or 0), 0), max(page.volume.frames - 1, 0))
            dsa, view = split_query(urlencode(keys))
            view = view.replace(width=PAGE_SIZE, height=PAGE_SIZE)
            query = "&".join(q for q in (dsa.to_query(), view.to_query(), f"f={frame}") if q)
            return {"dsa": "dsa?" + query}
        if page.view == "mpr":
            keys = {k: v for k, v in args.items() if k in MPR_PAGE_KEYS}
            queries = {}
            for orientation in ("axial", "coronal", "sagittal"):
                state, view = split_mpr_query(urlencode({**keys, "o": orientation}))
                view = view.replace(width=PAGE_SIZE // 2, height=PAGE_SIZE // 2)
                queries[orientation] = "mpr?" + mpr_canonical_query(state, view)
            queries["vr"] = "vr?" + VRState(preset=default_preset(page.volume.modality),
                                            width=PAGE_SIZE // 2, height=PAGE_SIZE // 2).to_query()
            return queries
        if page.view == "fusion":
            keys = {k: v for k, v in args.items() if k in FUSION_KEYS}
            keys.setdefault("k", str(page.volume.slices // 2))
            fusion, view = split_fusion_query(urlencode(keys))
            view = view.replace(width=PAGE_SIZE, height=PAGE_SIZE)
            query = "&".join(q for q in (fusion.to_query(), view.to_query()) if q)
            return {"fusion": "fusion/" + page.overlay.series_uid + "?" + query}  # type: ignore[union-attr]
    except ValueError as exc:
        raise Invalid(f"bad view parameters: {exc}") from exc
    return {}


#: Steps (mm) offered for a derived series, and its largest number of images.
DERIVED_STEPS = (1.0, 2.0, 3.0, 5.0, 10.0)


def save_derived(tenant: Tenant, actor: Actor, study_uid: str, series_uid: str,
                 orientation: str, step: float, query: str = "") -> str:
    """Reformat a series into a new derived series of parallel planes and archive it.

    Parameters
    ----------
    orientation : str
        ``axial``, ``coronal`` or ``sagittal``, with the rotation, crosshair
        and slab projection of the MPR `query` (an oblique stack keeps them).
    step : float
        Millimetres between planes; each plane is a slab of that thickness
        projected by the query's ``sp`` (average by default), so the stack
        covers the volume without gaps.

    Returns
    -------
    str
        The new Series Instance UID; every image went through the archive's
        ingest (durable before this returns) and is audited as ``series.derive``.

    Raises
    ------
    Invalid
        A step that is not offered, a bad query, or a series that is not a volume.
    """
    from render_farm.derived import derived_series, stack_planes  # VTK: only when saving
    from render_farm.volume import NotAVolume

    if step not in DERIVED_STEPS:
        raise Invalid("choose a step between planes from the list")
    volume = resolve(tenant, study_uid, series_uid)
    try:
        state, _ = split_mpr_query(urlencode({**dict(parse_qsl(query)), "o": orientation}))
        loaded = load_volume(rendering_cache(), volume.key, list(volume.paths))
        planes = stack_planes(loaded, state, step, mode=state.mode if state.thickness else "avg")
        source = pydicom.dcmread(volume.paths[len(volume.paths) // 2], stop_before_pixels=True)
        name = {"axial": "轴位", "coronal": "冠状位", "sagittal": "矢状位"}[state.orientation.value]
        datasets = derived_series(loaded, planes, source,
                                  description=f"{name} {step:g}mm MPR"[:64],
                                  series_number=_next_series_number(tenant, study_uid))
    except (NotAVolume, ValueError) as exc:
        raise Invalid(str(exc)) from exc
    new_uid = ""
    for ds in datasets:
        result = ingest.ingest(tenant, to_part10(ds), actor)
        new_uid = result.series_uid
    audit.record(tenant, actor, "series.derive", "series", new_uid,
                 detail=f"from {series_uid} {orientation} {step:g} mm, {len(datasets)} images",
                 commit=True)
    return new_uid


def _next_series_number(tenant: Tenant, study_uid: str) -> int:
    study = tenancy.get(tenant, Study, study_uid=study_uid)
    highest = db.session.execute(
        sa.select(sa.func.max(Series.series_number))
        .where(Series.tenant_id == tenant.id, Series.study_pk == study.id)).scalar()
    return max(900, (highest or 0) + 1)


def to_part10(ds: pydicom.Dataset) -> bytes:
    """Encode a dataset with its file meta as Part 10 bytes, as a modality would send it."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def for_grant(found: Grant, series_uid: str) -> SeriesVolume:
    """:func:`resolve` for the tenant and study named by a verified frame grant."""
    tenant = db.session.get(Tenant, found.tenant_id)
    if tenant is None or not tenant.approved:
        raise NotFound("no such study or series")
    return resolve(tenant, found.study_uid, series_uid)


def etag(volume: SeriesVolume, operation: str, query: str, overlay: SeriesVolume | None) -> str:
    """ETag of a 3-D view: series content, operation and canonical query."""
    text = "\0".join([volume.key, operation, query, overlay.key if overlay else ""])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def render(volume: SeriesVolume, operation: str, query: str,
           overlay: SeriesVolume | None = None) -> Rendered:
    """Run a 3-D operation of the farm for `volume` (and the fusion `overlay`).

    Raises
    ------
    Invalid
        Bad view parameters, or a series that is not a volume (the farm's
        message says why, e.g. a single image or mixed orientations).
    NotFound
        Nothing renderable, or a stored file is gone.
    RenderUnavailable
        The farm did not answer in time.
    """
    if operation == "dsa":
        params = {"path": volume.paths[0], "source_key": f"{volume.key}/dsa",
                  "query": query, "frame": _frame_of(query)}
    elif operation == "fusion":
        _same_frame(volume, overlay)
        params = {"base_key": volume.key, "base_paths": list(volume.paths),
                  "overlay_key": overlay.key,  # type: ignore[union-attr]
                  "overlay_paths": list(overlay.paths), "query": query}  # type: ignore[union-attr]
    elif operation in VOLUME_OPERATIONS:
        params = {"volume_key": volume.key, "paths": list(volume.paths), "query": query}
    else:
        raise NotFound("no such view")
    return _run(volume, operation, params)


def _run(volume: SeriesVolume, operation: str, params: dict) -> Rendered:
    try:
        return rendering.farm().run(operation, params, volume.affinity)
    except RenderError as exc:
        if exc.kind == "invalid":
            raise Invalid(exc.message) from exc
        if exc.kind in ("frame", "unsupported"):
            raise NotFound(exc.message) from exc
        if exc.kind == "missing":
            CACHE.clear()
            raise NotFound("a stored image of this series is missing") from exc
        raise RenderUnavailable("the view could not be rendered; try again") from exc


def probe(volume: SeriesVolume, overlay: SeriesVolume, query: str, x: float, y: float) -> bytes:
    """JSON of the values under display point (x, y) of a fused view: base HU, overlay, SUVbw."""
    _same_frame(volume, overlay)
    params = {"base_key": volume.key, "base_paths": list(volume.paths), "overlay_key": overlay.key,
              "overlay_paths": list(overlay.paths), "query": query, "x": x, "y": y}
    return _run(volume, "fusion_probe", params).body


def _same_frame(volume: SeriesVolume, overlay: SeriesVolume | None) -> None:
    if overlay is None:
        raise Invalid("fusion needs an overlay series")
    if overlay.frame_of_reference_uid != volume.frame_of_reference_uid \
            or not volume.frame_of_reference_uid:
        raise Invalid("the overlay series is not in the same frame of reference")


def _frame_of(query: str) -> int:
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "f":
            if not value.isdigit():
                raise Invalid("bad frame number")
            return int(value)
    return 0

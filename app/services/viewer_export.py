"""Exports of the viewer (导出): the shown image, or a whole series, as image files.

Frames are rendered by :mod:`app.services.rendering` in the viewport's state
and encoded as PNG, JPEG, TIFF or BMP; every export is audited like any other
release of patient images (``instance.export``, ``series.export``) with the
format and the number of images, never names.
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from app.models import Instance, Series, Tenant
from app.services import audit, rendering, tenancy
from app.services.audit import Actor
from app.services.errors import Invalid
from render_farm.encode import ImageFormat
from render_farm.jobs import Rendered
from render_farm.viewport import ViewState

#: What the viewer's export menu offers: lossless PNG, TIFF and BMP, and JPEG.
EXPORT_FORMATS = (ImageFormat.PNG, ImageFormat.JPEG, ImageFormat.TIFF, ImageFormat.BMP)


def _export_state(state: ViewState) -> ViewState:
    if state.format not in EXPORT_FORMATS:
        raise Invalid("this export format is not offered")
    return state


def _stem(series: Series) -> str:
    """File names say modality and series number, never who the patient is."""
    return f"{series.modality or 'images'}-{series.series_number or 0}"


def export_image(tenant: Tenant, actor: Actor, study_uid: str, sop_uid: str,
                 state: ViewState) -> tuple[str, Rendered]:
    """One frame of `sop_uid` rendered in `state`: (file name, image); audited ``instance.export``."""
    target = rendering.instance_target(tenant, study_uid, "", sop_uid)
    image = rendering.render(target, _export_state(state))
    instance = tenancy.get(tenant, Instance, sop_uid=sop_uid, series_pk=tenancy.get(
        tenant, Series, series_uid=target.series_uid).id)
    audit.record(tenant, actor, "instance.export", "instance", sop_uid,
                 detail=f"format={state.format.value} frame={state.frame}", commit=True)
    frame = f"-{state.frame + 1}" if target.frames > 1 else ""
    name = f"{_stem(instance.series)}-{instance.instance_number or 0}{frame}"
    return f"{name}.{state.format.extension}", image


def export_series(tenant: Tenant, actor: Actor, study_uid: str, series_uid: str,
                  state: ViewState) -> tuple[str, Iterator[bytes]]:
    """Every frame of a series rendered in `state`, as a ZIP streamed in chunks.

    Returns the file name stem and the chunks. Audited (``series.export``)
    before the first byte goes out; frames are rendered one by one as the
    archive is written, so memory stays flat on a 2,000-slice series.
    """
    _export_state(state)
    targets = rendering.series_targets(tenant, study_uid, series_uid)
    series = tenancy.get(tenant, Series, series_uid=series_uid)
    count = sum(t.frames for t in targets)
    audit.record(tenant, actor, "series.export", "series", series_uid,
                 detail=f"format={state.format.value} images={count}", commit=True)
    stem = _stem(series)

    def chunks() -> Iterator[bytes]:
        out = _Chunks()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            number = 0
            for target in targets:
                for frame in range(target.frames):
                    number += 1
                    body = rendering.render(target, state.replace(frame=frame)).body
                    archive.writestr(f"{stem}/{number:04d}.{state.format.extension}", body)
                    yield out.take()
        yield out.take()

    return stem, chunks()


class _Chunks(io.RawIOBase):
    """A write-only stream whose bytes are taken out as they come (for streaming a ZIP)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data

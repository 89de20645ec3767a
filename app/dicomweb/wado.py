"""WADO-RS: retrieve instances, metadata, frames and bulk data (PS3.18 §10.4).

Instances are answered as ``multipart/related; type="application/dicom"``
with the archived Part 10 bytes streamed unchanged whenever the negotiated
transfer syntax is the stored one; the instance rows come from one index
query and the response length is known in advance, so a series streams
straight from disk. Transfer syntax negotiation follows PS3.18 §8.7.3.5:
``transfer-syntax=*`` means "as stored"; no parameter means Explicit VR
Little Endian; other uncompressed targets are made by pydicom; anything
else is 406 Not Acceptable.
"""
from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import numpy as np
import pydicom
from flask import Response
from pydicom import encaps
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder, pixel_array
from pydicom.uid import UID
from werkzeug.exceptions import NotAcceptable

from app.dicomweb import dicom_json
from app.dicomweb.multipart import (AcceptRange, Part, content_type, encode, encoded_length,
                                    is_multipart_range, new_boundary, parse_accept, type_matches)
from app.models import Tenant
from app.services import audit, retrieve
from app.services.audit import Actor
from app.services.errors import Invalid, NotFound
from app.services.ingest import archive
from app.services.storage import Storage

IMPLICIT, EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
DEFLATED, BIG_ENDIAN = "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"
_NATIVE = {IMPLICIT, EXPLICIT, DEFLATED, BIG_ENDIAN}
OCTET = "application/octet-stream"
# PS3.18 Table 8.7.3-5: media type of each compressed pixel data transfer syntax.
MEDIA_TYPES = {
    "1.2.840.10008.1.2.5": "image/dicom-rle",
    **dict.fromkeys(["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                     "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"], "image/jpeg"),
    **dict.fromkeys(["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"], "image/jls"),
    **dict.fromkeys(["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"], "image/jp2"),
    **dict.fromkeys(["1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"], "image/jpx"),
    **dict.fromkeys(["1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                     "1.2.840.10008.1.2.4.203"], "image/jphc"),
}
_PIXEL_DATA = 0x7FE00010
_CHUNK = 4 << 20
_DEFAULT_FRAMES = [AcceptRange("multipart/related", OCTET, None, 1.0)]


@dataclass(frozen=True)
class Stored:
    """What streaming an instance needs, copied out of the index before the audit commit."""

    study_uid: str
    series_uid: str
    sop_uid: str
    transfer_syntax: str
    key: str
    size: int
    frames: int
    rows: int | None

    def url(self, base: str) -> str:
        return f"{base}/studies/{self.study_uid}/series/{self.series_uid}/instances/{self.sop_uid}"


def select(tenant: Tenant, study: str, series: str = "", sop: str = "") -> list[Stored]:
    """The tenant's instances under the path's UIDs (one index query); 404 if none."""
    matches = retrieve.select(tenant, study, series, sop)
    if not matches:
        raise NotFound("no such study, series or instance")
    return [Stored(m.study.study_uid, m.series.series_uid, m.instance.sop_uid,  # type: ignore
                   m.instance.transfer_syntax_uid, m.instance.storage_key,  # type: ignore
                   m.instance.size_bytes, m.instance.number_of_frames or 1,  # type: ignore
                   m.instance.rows) for m in matches]  # type: ignore[union-attr]


def _audit(tenant: Tenant, actor: Actor, action: str, items: list[Stored], study: str,
           series: str, sop: str, detail: str = "") -> None:
    level, uid = ("instance", sop) if sop else ("series", series) if series else ("study", study)
    audit.access(tenant, actor, action or f"{level}.retrieve", level, uid,
                 detail=detail or f"{len(items)} instances")


def multipart_response(parts: list[Part], part_type: str) -> Response:
    boundary = new_boundary()
    response = Response(encode(parts, boundary), content_type=content_type(part_type, boundary),
                        direct_passthrough=True)
    length = encoded_length(parts, boundary)
    if length is not None:
        response.content_length = length
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --------------------------------------------------------------------------- instances


def _decodable(ts: str) -> bool:
    if ts in _NATIVE:
        return ts != BIG_ENDIAN
    try:
        return get_decoder(UID(ts)).is_available
    except (NotImplementedError, ValueError):
        return False


def _can_make(stored: str, target: str) -> bool:
    return stored == target or (target in (IMPLICIT, EXPLICIT) and _decodable(stored))


def _dicom_target(accept: str, stored: set[str]) -> str | None:
    """The transfer syntax to send (``None``: each as stored), or 406 (PS3.18 §8.7.3.5)."""
    ranges = parse_accept(accept) or [AcceptRange("multipart/related", "", None, 1.0)]
    for accepted in ranges:
        if not (is_multipart_range(accepted) or accepted.media_type == "application/dicom"):
            continue
        if not type_matches(accepted.part_type, "application/dicom"):
            continue
        if accepted.transfer_syntax == "*":
            return None
        target = accepted.transfer_syntax or EXPLICIT
        if all(_can_make(ts, target) for ts in stored):
            return target
    raise NotAcceptable("none of the accepted media types / transfer syntaxes can be provided")


def transcode(data: bytes, target: str) -> bytes:
    """Re-encode Part 10 ``data`` in an uncompressed ``target`` transfer syntax."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data))
        if ds.file_meta.TransferSyntaxUID.is_compressed and "PixelData" in ds:
            ds.decompress()
        ds.file_meta.TransferSyntaxUID = UID(target)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True, implicit_vr=target == IMPLICIT,
                   little_endian=True)
    return out.getvalue()


def file_chunks(store: Storage, key: str) -> Iterator[bytes]:
    """The stored object in large reads (one or two per typical CT slice)."""
    with store.open(key) as f:
        while block := f.read(_CHUNK):
            yield block


def _transcoded(store: Storage, key: str, target: str) -> Iterator[bytes]:
    with store.open(key) as f:
        yield transcode(f.read(), target)


def retrieve_instances(tenant: Tenant, actor: Actor, accept: str, study: str,
                       series: str = "", sop: str = "") -> Response:
    """Study, series or instance as multipart/related application/dicom (PS3.18 §10.4.1)."""
    items = select(tenant, study, series, sop)
    target = _dicom_target(accept, {i.transfer_syntax for i in items})
    store = archive()
    parts = []
    for item in items:
        if target is None or target == item.transfer_syntax:
            parts.append(Part(f"application/dicom; transfer-syntax={item.transfer_syntax}",
                              file_chunks(store, item.key), item.size))
        elif len(items) == 1:  # one instance: convert now, so a failure is a clean 406
            try:
                body = transcode(b"".join(file_chunks(store, item.key)), target)
            except Exception as exc:
                raise NotAcceptable(f"cannot convert to {target}") from exc
            parts.append(Part(f"application/dicom; transfer-syntax={target}", [body], len(body)))
        else:
            parts.append(Part(f"application/dicom; transfer-syntax={target}",
                              _transcoded(store, item.key, target)))
    _audit(tenant, actor, "", items, study, series, sop)
    return multipart_response(parts, "application/dicom")


# --------------------------------------------------------------------------- metadata


def _read(f: BinaryIO, ts: str) -> Dataset:
    """Read with large values left on disk (a deflated body cannot be seeked into)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(f, defer_size=None if ts == DEFLATED
                               else dicom_json.BULK_THRESHOLD)


def _metadata_json(store: Storage, item: Stored, base: str) -> bytes:
    with store.open(item.key) as f:
        ds = _read(f, item.transfer_syntax)
        url = item.url(base)
        doc = dicom_json.instance_json(ds, lambda tag: f"{url}/bulkdata/{tag}",
                                       item.transfer_syntax)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json_array(items: list[Stored], render: Callable[[Stored], bytes]) -> Iterator[bytes]:
    yield b"["
    for i, item in enumerate(items):
        yield (b"," if i else b"") + render(item)
    yield b"]"


def metadata(tenant: Tenant, actor: Actor, base: str, study: str, series: str = "",
             sop: str = "") -> Response:
    """All non-bulk attributes of each instance, bulk data by BulkDataURI (PS3.18 §10.4.1.1.2)."""
    items = select(tenant, study, series, sop)
    store = archive()
    _audit(tenant, actor, "metadata.retrieve", items, study, series, sop)
    body = _json_array(items, lambda item: _metadata_json(store, item, base))
    response = Response(body, content_type="application/dicom+json", direct_passthrough=True)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --------------------------------------------------------------------------- frames, bulk data


def _frame_numbers(text: str, count: int) -> list[int]:
    try:
        numbers = [int(n) for n in text.split(",") if n.strip()]
    except ValueError as exc:
        raise Invalid("frame list must be comma-separated numbers") from exc
    if not numbers or min(numbers) < 1:
        raise Invalid("frame numbers start at 1")
    if max(numbers) > count:
        raise NotFound(f"the instance has {count} frame(s)")
    return numbers


def _frame_choice(accept: str, stored: str) -> tuple[bool, str]:
    """``(native, part content type)`` for frames of an instance stored as ``stored``.

    ``native`` sends the stored bytes (a compressed frame's bitstream); else
    frames are sent uncompressed, little endian (PS3.18 §8.7.3.5, Table 8.7.3-5).
    """
    native_type = MEDIA_TYPES.get(stored, OCTET)
    native_ts = EXPLICIT if stored == DEFLATED else stored
    for accepted in parse_accept(accept) or _DEFAULT_FRAMES:
        if not is_multipart_range(accepted):
            continue
        part_type, wanted = accepted.part_type or OCTET, accepted.transfer_syntax
        if part_type == OCTET and wanted in ("*", native_ts):
            return True, f"{OCTET}; transfer-syntax={native_ts}"
        if part_type == OCTET and wanted in (None, EXPLICIT, IMPLICIT) and _decodable(stored):
            return False, f"{OCTET}; transfer-syntax={wanted or EXPLICIT}"
        if type_matches(part_type, native_type) and wanted in (None, "*", native_ts):
            if native_type != OCTET:  # compressed: the frame's bitstream, e.g. image/jpeg
                return True, f"{native_type}; transfer-syntax={native_ts}"
            if wanted == native_ts or stored != BIG_ENDIAN:
                return True, f"{OCTET}; transfer-syntax={native_ts}"
            return False, f"{OCTET}; transfer-syntax={EXPLICIT}"
    raise NotAcceptable("none of the accepted frame media types can be provided")


def _native_frames(f: BinaryIO, ds: Dataset, stored: str, numbers: list[int],
                   count: int) -> list[bytes]:
    if stored in MEDIA_TYPES:
        offsets = None
        if "ExtendedOffsetTable" in ds:
            offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
        data = ds.PixelData
        return [encaps.get_frame(data, n - 1, number_of_frames=count, extended_offsets=offsets)
                for n in numbers]
    bits = int(ds.BitsAllocated)
    pixels = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
    if bits == 1:  # frames are bit-packed back to back, not byte aligned (PS3.5 §8.1.1)
        flat = np.unpackbits(np.frombuffer(ds.PixelData, np.uint8), bitorder="little")
        return [np.packbits(flat[(n - 1) * pixels:n * pixels], bitorder="little").tobytes()
                for n in numbers]
    size = pixels * bits // 8
    raw = ds.get_item(_PIXEL_DATA, keep_deferred=True)
    frames = []
    for n in numbers:
        if raw.value is not None:
            frames.append(bytes(raw.value[(n - 1) * size:n * size]))
        else:  # deferred: read just this frame from the file
            f.seek(raw.value_tell + (n - 1) * size)
            frames.append(f.read(size))
    return frames


def _little_endian(frame: bytes, ds: Dataset, stored: str) -> bytes:
    bits = int(ds.BitsAllocated)
    if stored != BIG_ENDIAN or bits <= 8:
        return frame
    return np.frombuffer(frame, f">u{bits // 8}").byteswap().tobytes()


def _frames(f: BinaryIO, item: Stored, numbers: list[int], native: bool) -> list[bytes]:
    ds = _read(f, item.transfer_syntax)
    if _PIXEL_DATA not in ds:
        raise NotFound("the instance has no pixel data")
    if item.transfer_syntax not in MEDIA_TYPES:
        frames = _native_frames(f, ds, item.transfer_syntax, numbers, item.frames)
        return frames if native else [_little_endian(fr, ds, item.transfer_syntax)
                                      for fr in frames]
    if native:
        return _native_frames(f, ds, item.transfer_syntax, numbers, item.frames)
    try:
        return [pixel_array(ds, index=n - 1).tobytes() for n in numbers]
    except Exception as exc:
        raise NotAcceptable("the frames cannot be decompressed; accept the stored "
                            f"transfer syntax {item.transfer_syntax}") from exc


def frames(tenant: Tenant, actor: Actor, accept: str, study: str, series: str, sop: str,
           frame_list: str) -> Response:
    """Frames of an image as multipart/related parts (PS3.18 §10.4.1.1.3)."""
    item = select(tenant, study, series, sop)[0]
    if item.rows is None:
        raise NotFound("the instance has no pixel data")
    numbers = _frame_numbers(frame_list, item.frames)
    native, part_type = _frame_choice(accept, item.transfer_syntax)
    with archive().open(item.key) as f:
        bodies = _frames(f, item, numbers, native)
    _audit(tenant, actor, "instance.retrieve", [item], study, series, sop,
           detail=f"frames {','.join(map(str, numbers))}"[:200])
    parts = [Part(part_type, [body], len(body)) for body in bodies]
    return multipart_response(parts, part_type.partition(";")[0])


def bulkdata(tenant: Tenant, actor: Actor, accept: str, study: str, series: str, sop: str,
             tag_text: str) -> Response:
    """One top-level attribute's value (PS3.18 §10.4.1.1.5); Pixel Data as its frames."""
    try:
        tag = int(tag_text, 16) if len(tag_text) == 8 else -1
    except ValueError:
        tag = -1
    if tag < 0:
        raise Invalid("bulk data is addressed by an 8-digit hexadecimal tag")
    item = select(tenant, study, series, sop)[0]
    if tag == _PIXEL_DATA and item.rows is not None:
        return frames(tenant, actor, accept, study, series, sop,
                      ",".join(str(n) for n in range(1, item.frames + 1)))
    if not any(is_multipart_range(r) and type_matches(r.part_type or OCTET, OCTET)
               for r in parse_accept(accept) or _DEFAULT_FRAMES):
        raise NotAcceptable("bulk data is sent as application/octet-stream")
    with archive().open(item.key) as f:
        ds = _read(f, item.transfer_syntax)
        value = ds[tag].value if tag in ds else None
    if not isinstance(value, (bytes, bytearray)):
        raise NotFound("no such bulk data attribute")
    _audit(tenant, actor, "instance.retrieve", [item], study, series, sop,
           detail=f"bulkdata {tag_text.upper()}")
    return multipart_response([Part(OCTET, [bytes(value)], len(value))], OCTET)

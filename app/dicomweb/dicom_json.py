"""The DICOM JSON Model (PS3.18 Annex F) for QIDO-RS results and WADO-RS metadata.

Index values (QIDO-RS) are encoded directly by VR, which is much cheaper than
building a pydicom dataset per match. Stored instances (metadata) go through
pydicom's ``to_json_dict``; top-level bulk data — Pixel Data and any large
binary value — is replaced by a ``BulkDataURI`` (PS3.18 §F.2.6) *without
reading it*: the file is read with deferred values, so metadata of a large
series costs a header read per instance, not its pixels.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Callable

from pydicom import datadict
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

log = logging.getLogger(__name__)

UTF8 = "ISO_IR 192"
#: A binary value longer than this (bytes) is bulk data; matches ``defer_size``.
BULK_THRESHOLD = 1024
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW", "US or SS or OW"}
_PIXEL_TAGS = {0x7FE00008, 0x7FE00009, 0x7FE00010}
_NUMBER_VRS = {"IS", "DS", "SL", "SS", "UL", "US", "FL", "FD", "SV", "UV"}
_TEXT_VRS = {"LT", "ST", "UT", "UR"}
_AMBIGUOUS = {"OB or OW": "OW", "US or SS": "US", "US or OW": "US", "US or SS or OW": "US"}  # single-valued: a backslash is text
_UNDEFINED = 0xFFFFFFFF


# --------------------------------------------------------------------------- keywords


@lru_cache(maxsize=4096)
def keyword_of(token: str) -> str | None:
    """The keyword named by ``token`` — a keyword or an 8-digit hex tag — or ``None``."""
    token = token.strip()
    if len(token) == 8 and all(c in "0123456789abcdefABCDEF" for c in token):
        return datadict.keyword_for_tag(int(token, 16)) or None
    return token if datadict.tag_for_keyword(token) is not None else None


@lru_cache(maxsize=4096)
def tag_hex(keyword: str) -> str:
    """``"00100010"`` for ``"PatientName"``."""
    return f"{datadict.tag_for_keyword(keyword):08X}"


@lru_cache(maxsize=4096)
def vr_of(keyword: str) -> str:
    vr = datadict.dictionary_VR(keyword)
    return _AMBIGUOUS.get(vr, vr)


# --------------------------------------------------------------------------- index values


def _person_name(value: str) -> dict[str, str]:
    groups = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), value.split("=")))
    return {k: v for k, v in groups.items() if v}


def _number(vr: str, value: Any) -> Any:
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    if vr in ("DS", "FL", "FD"):
        number = float(text)
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() \
            else number
    return int(text)


def element(keyword: str, value: Any) -> dict[str, Any]:
    """The JSON of one attribute from an index value (``None``/``""`` → no ``Value``).

    Multi-valued strings use ``\\`` as in DICOM; a Person Name's component
    groups (``Alphabetic=Ideographic=Phonetic``) become the PS3.18 §F.2.2 object.
    """
    vr = vr_of(keyword)
    item: dict[str, Any] = {"vr": vr}
    if value is None or value == "":
        return item
    values = [value] if not isinstance(value, str) or vr in _TEXT_VRS else value.split("\\")
    if vr == "PN":
        item["Value"] = [_person_name(v) for v in values]
    elif vr in _NUMBER_VRS:
        try:
            item["Value"] = [_number(vr, v) for v in values if str(v).strip() != ""]
        except ValueError:
            log.warning("index value of %s is not a number; omitted", keyword)
    else:
        item["Value"] = [v for v in values]
    return item


def dataset(attributes: dict[str, Any]) -> dict[str, Any]:
    """A DICOM JSON object from ``{keyword: index value}``, in tag order."""
    encoded = {tag_hex(k): element(k, v) for k, v in attributes.items()}
    return dict(sorted(encoded.items()))


# --------------------------------------------------------------------------- stored instances


def _raw_length(raw: Any) -> int:
    if isinstance(raw, RawDataElement):
        return raw.length
    value = raw.value
    return len(value) if isinstance(value, (bytes, bytearray)) else 0


def _raw_vr(raw: Any) -> str:
    if raw.VR:
        return raw.VR
    try:
        return datadict.dictionary_VR(raw.tag)
    except KeyError:
        return "UN"


def _bulk_vr(ds: Dataset, raw: Any, vr: str) -> str:
    if raw.tag in _PIXEL_TAGS and vr not in ("OF", "OD"):
        if _raw_length(raw) == _UNDEFINED:
            return "OB"  # encapsulated (PS3.5 §A.4)
        return "OW" if int(ds.get("BitsAllocated", 16) or 16) > 8 or " or " in vr else vr
    return "OW" if " or " in vr else vr


def is_bulk(raw: Any) -> bool:
    """Whether a top-level element is bulk data, decided without reading its value."""
    length = _raw_length(raw)
    if length == 0:
        return False
    if raw.tag in _PIXEL_TAGS:
        return True
    return _raw_vr(raw) in _BINARY_VRS and (length == _UNDEFINED or length > BULK_THRESHOLD)


def instance_json(ds: Dataset, bulk_uri: Callable[[str], str],
                  transfer_syntax: str = "") -> dict[str, Any]:
    """All attributes of a stored instance as DICOM JSON, bulk data as ``BulkDataURI``.

    Parameters
    ----------
    ds
        The dataset, ideally read with ``defer_size`` so bulk values stay on disk.
    bulk_uri
        Maps an 8-digit tag to its WADO-RS bulkdata URI (PS3.18 §10.4.1.1.4).
    transfer_syntax
        Stored transfer syntax, reported as Available Transfer Syntax UID (0008,3002).

    Notes
    -----
    JSON is UTF-8 (PS3.18 §F.2), so Specific Character Set becomes ``ISO_IR 192``.
    An element pydicom cannot convert is left out and logged by tag, not value.
    """
    out: dict[str, Any] = {}
    for tag in ds.keys():
        if tag >> 16 == 0x0002:
            continue
        key = f"{tag:08X}"
        raw = ds.get_item(tag, keep_deferred=True)
        if raw is not None and is_bulk(raw):
            out[key] = {"vr": _bulk_vr(ds, raw, _raw_vr(raw)), "BulkDataURI": bulk_uri(key)}
            continue
        try:
            out[key] = ds[tag].to_json_dict(None, BULK_THRESHOLD)
        except Exception as exc:  # one malformed value must not hide the rest
            log.warning("metadata: element %s left out (%s)", key, type(exc).__name__)
    if "00080005" in out:
        out["00080005"] = {"vr": "CS", "Value": [UTF8]}
    if transfer_syntax:
        out[f"{Tag(0x00083002):08X}"] = {"vr": "UI", "Value": [transfer_syntax]}
    return dict(sorted(out.items()))

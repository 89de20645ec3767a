"""Query/Retrieve identifiers: reading requests, building C-FIND responses.

PS3.4 §C.2.2 (attribute matching) and §C.4.1.1.3 (C-FIND identifier): the
request holds the matching keys (non-empty values) and the return keys (every
key present); each response carries exactly the requested keys, filled from
the index or empty when the index does not keep them, plus Query/Retrieve
Level and Specific Character Set. Responses are UTF-8 (``ISO_IR 192``,
PS3.3 §C.12.1.1.2) because patient names are often Chinese.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag
from pydicom.valuerep import PersonName

from app.services import query
from app.services.query import Level, Match
from dicom_node import statuses
from dicom_node.contexts import QUERY_RETRIEVE

QUERY_RETRIEVE_LEVEL = Tag(0x0008, 0x0052)
SPECIFIC_CHARACTER_SET = Tag(0x0008, 0x0005)
UTF8 = "ISO_IR 192"
_PATIENT_ROOT = {models[0] for models in QUERY_RETRIEVE.values()}
_LEVELS = {level.value: level for level in Level}
# Keys answered by the node itself rather than read from the index.
_NODE_KEYS = {"RetrieveAETitle", "InstanceAvailability", "NumberOfPatientRelatedStudies"}
# Unique keys (PS3.4 §C.2.2.1.1) a C-MOVE/C-GET names at each level (§C.4.2, §C.4.3).
_UNIQUE = {Level.PATIENT: "PatientID", Level.STUDY: "StudyInstanceUID",
           Level.SERIES: "SeriesInstanceUID", Level.IMAGE: "SOPInstanceUID"}
_MULTI_VALUED_TEXT = {"LT", "ST", "UT"}  # may contain a backslash that is not a delimiter
_INTEGER_VRS = {"IS", "US", "UL", "SS", "SL", "UV", "SV"}


class BadIdentifier(Exception):
    """The identifier cannot be used; carries the status to answer with."""

    def __init__(self, status: int, comment: str, offending: list[int] | None = None) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment
        self.offending = offending or []

    def as_status(self) -> Dataset:
        return statuses.with_comment(self.status, self.comment, self.offending)


@dataclass(frozen=True)
class ReturnKey:
    tag: BaseTag
    keyword: str
    vr: str


@dataclass(frozen=True)
class FindRequest:
    """A decoded C-FIND identifier."""

    level: Level
    filters: dict[str, str] = field(default_factory=dict)
    keys: tuple[ReturnKey, ...] = ()
    #: Some requested key is not kept by the index (answered empty, PS3.4 Table C.4-1 FF01).
    unsupported: bool = False


@dataclass(frozen=True)
class RetrieveRequest:
    """A decoded C-MOVE/C-GET identifier: the level and the unique keys given."""

    level: Level
    uids: dict[str, str]

    @property
    def object_uid(self) -> str:
        return self.uids.get(_UNIQUE[self.level], "")


def level_of(identifier: Dataset, model: str) -> Level:
    """The Query/Retrieve Level (0008,0052), checked against the information model.

    Raises
    ------
    BadIdentifier
        0xA900 when missing, unknown, or PATIENT under the Study Root model
        (PS3.4 §C.6.2: the Study Root model has no patient level).
    """
    raw = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    level = _LEVELS.get(raw)
    if level is None:
        raise BadIdentifier(statuses.IDENTIFIER_DOES_NOT_MATCH,
                            "missing or invalid Query/Retrieve Level", [QUERY_RETRIEVE_LEVEL])
    if level is Level.PATIENT and model not in _PATIENT_ROOT:
        raise BadIdentifier(statuses.IDENTIFIER_DOES_NOT_MATCH,
                            "PATIENT level is not in the Study Root model", [QUERY_RETRIEVE_LEVEL])
    return level


def parse_find(identifier: Dataset, model: str) -> FindRequest:
    """Split a C-FIND identifier into matching filters and return keys.

    Raises
    ------
    BadIdentifier
        0xA900 for a bad level; 0xC000 when the identifier cannot be decoded.
    """
    try:
        level = level_of(identifier, model)
        known = set(query.attributes(level)) | _NODE_KEYS
        filters: dict[str, str] = {}
        keys: list[ReturnKey] = []
        unsupported = False
        for elem in identifier:
            if elem.tag in (QUERY_RETRIEVE_LEVEL, SPECIFIC_CHARACTER_SET) \
                    or elem.tag.element == 0 or elem.tag.group in (0x0000, 0x0002):
                continue
            keys.append(ReturnKey(elem.tag, elem.keyword, _single_vr(elem.VR)))
            unsupported |= elem.keyword not in known
            text = _filter_text(elem)
            if text and elem.keyword:
                filters[elem.keyword] = text
    except BadIdentifier:
        raise
    except Exception as exc:  # pydicom decodes lazily: bad lengths or VRs surface here
        raise BadIdentifier(statuses.UNABLE_TO_PROCESS,
                            f"identifier cannot be decoded ({type(exc).__name__})") from exc
    return FindRequest(level, filters, tuple(keys), unsupported)


def parse_retrieve(identifier: Dataset, model: str) -> RetrieveRequest:
    """Read the level and unique keys of a C-MOVE/C-GET identifier.

    Raises
    ------
    BadIdentifier
        0xA900 when the level is bad or its unique key is missing; 0xC000 when
        the identifier cannot be decoded.
    """
    try:
        level = level_of(identifier, model)
        uids = {kw: _filter_text(identifier[kw]) for kw in _UNIQUE.values() if kw in identifier}
    except BadIdentifier:
        raise
    except Exception as exc:
        raise BadIdentifier(statuses.UNABLE_TO_PROCESS,
                            f"identifier cannot be decoded ({type(exc).__name__})") from exc
    uids = {kw: value for kw, value in uids.items() if value}
    unique = _UNIQUE[level]
    if unique not in uids:
        raise BadIdentifier(statuses.IDENTIFIER_DOES_NOT_MATCH,
                            f"{unique} is required at {level.value} level", [Tag(unique)])
    return RetrieveRequest(level, uids)


def response(match: Match, request: FindRequest, retrieve_ae: str) -> Dataset:
    """The C-FIND response identifier for one match, in the requested keys only."""
    ds = Dataset()
    ds.SpecificCharacterSet = UTF8
    ds.QueryRetrieveLevel = request.level.value
    for key in request.keys:
        if key.vr == "SQ":
            ds.add(DataElement(key.tag, "SQ", []))
            continue
        ds.add(DataElement(key.tag, key.vr, _value(match, key, retrieve_ae)))
    return ds


def _value(match: Match, key: ReturnKey, retrieve_ae: str) -> Any:
    if key.keyword == "RetrieveAETitle":
        return retrieve_ae
    if key.keyword == "InstanceAvailability":
        return "ONLINE"  # everything indexed is on line storage
    value = match.value(key.keyword) if key.keyword else None
    if value is None or value == "":
        return None
    if key.vr in _INTEGER_VRS:
        return int(value)
    if isinstance(value, str) and "\\" in value and key.vr not in _MULTI_VALUED_TEXT:
        return value.split("\\")
    return value


def _single_vr(vr: str) -> str:
    # Ambiguous dictionary VRs ("US or SS") only arise for keys we answer empty.
    return vr.split(" or ")[0] if vr else "UN"


def _filter_text(elem: DataElement) -> str:
    """A key's value as a matching string ('' means universal matching)."""
    if elem.VR == "SQ" or elem.value is None:
        return ""
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        return ""
    if isinstance(value, (list, MultiValue)):
        return "\\".join(str(v) for v in value)
    if isinstance(value, PersonName):
        return str(value)
    return str(value).strip()

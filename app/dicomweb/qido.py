"""QIDO-RS: search for studies, series and instances (PS3.18 §10.6).

Query parameters are attribute keywords or tags with PS3.4 §C.2.2.2 match
values, plus ``includefield``, ``limit``, ``offset`` and ``fuzzymatching``
(PS3.18 §8.3.4). Matching itself is :func:`app.services.query.search`, the
same code C-FIND uses. Results carry the default attributes of PS3.18
Table 10.6.3-3 (study), 10.6.3-4 (series) and 10.6.3-5 (instance) that the
index keeps, the attributes of the levels above when the path does not fix
them (§10.6.3.3.1), and any ``includefield`` attributes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from flask import Response
from werkzeug.datastructures import MultiDict

from app.dicomweb import dicom_json
from app.models import Tenant
from app.services import audit, query
from app.services.audit import Actor
from app.services.errors import Invalid
from app.services.query import Level, Match

# PS3.18 Table 10.6.3-3/-4/-5; attributes the index does not keep (e.g. Timezone
# Offset From UTC, Performed Procedure Step Start Date) are simply absent.
DEFAULTS: dict[Level, tuple[str, ...]] = {
    Level.STUDY: ("SpecificCharacterSet", "StudyDate", "StudyTime", "AccessionNumber",
                  "InstanceAvailability", "ModalitiesInStudy", "ReferringPhysicianName",
                  "RetrieveURL", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                  "StudyInstanceUID", "StudyID", "NumberOfStudyRelatedSeries",
                  "NumberOfStudyRelatedInstances"),
    Level.SERIES: ("SpecificCharacterSet", "Modality", "SeriesDescription", "RetrieveURL",
                   "SeriesInstanceUID", "SeriesNumber", "NumberOfSeriesRelatedInstances",
                   "StudyInstanceUID"),
    Level.IMAGE: ("SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "InstanceAvailability",
                  "RetrieveURL", "InstanceNumber", "Rows", "Columns", "NumberOfFrames",
                  "StudyInstanceUID", "SeriesInstanceUID"),
}
_CONTROL = {"limit", "offset", "includefield", "fuzzymatching", "emptyvaluematching",
            "multiplevaluematching", "accept", "charset"}
_ACTION = {Level.STUDY: "study.query", Level.SERIES: "series.query", Level.IMAGE: "instance.query"}
_OBJECT = {Level.STUDY: "study", Level.SERIES: "series", Level.IMAGE: "instance"}


@dataclass(frozen=True)
class Search:
    """A parsed QIDO-RS request."""

    level: Level
    filters: dict[str, str]
    include: tuple[str, ...]  # keywords to return, defaults first
    limit: int
    offset: int
    fuzzy: bool
    capped: bool  # the client asked for more than the server returns at once


def _integer(args: MultiDict, name: str, default: int | None) -> int | None:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    if not raw.strip().isdigit():
        raise Invalid(f"{name} must be a non-negative integer")
    return int(raw)


def _includefields(args: MultiDict, level: Level) -> tuple[bool, list[str]]:
    wanted, everything = [], False
    for value in args.getlist("includefield"):
        for token in value.split(","):
            token = token.strip()
            if token.lower() == "all":
                everything = True
            elif token:
                keyword = dicom_json.keyword_of(token)
                if keyword is None:
                    raise Invalid(f"includefield: unknown attribute {token!r}")
                wanted.append(keyword)
    return everything, wanted


def _filters(args: MultiDict, path: Mapping[str, str]) -> dict[str, str]:
    filters: dict[str, str] = {}
    for name in args:
        if name in _CONTROL:
            continue
        # Sequence paths ("00400275.00401001") are valid but not indexed: ignored.
        keywords = [dicom_json.keyword_of(p) for p in name.split(".")]
        if not all(keywords):
            raise Invalid(f"unknown query parameter {name!r}")
        if len(keywords) == 1:
            filters[keywords[0]] = args.get(name, "")  # type: ignore[index]
    filters.update(path)  # the path's UIDs win over a query parameter
    return filters


def _levels(level: Level, path: Mapping[str, str]) -> list[Level]:
    """Levels whose default attributes are returned (PS3.18 §10.6.3.3.1)."""
    levels = [level]
    if level is Level.IMAGE and "SeriesInstanceUID" not in path:
        levels.insert(0, Level.SERIES)
    if level is not Level.STUDY and not path:
        levels.insert(0, Level.STUDY)
    return levels


def parse(level: Level, args: MultiDict, path: Mapping[str, str], max_results: int) -> Search:
    """Validate the query parameters; raise :class:`Invalid` (HTTP 400) when malformed."""
    fuzzy_raw = (args.get("fuzzymatching") or "false").lower()
    if fuzzy_raw not in ("true", "false"):
        raise Invalid("fuzzymatching must be true or false")
    limit = _integer(args, "limit", None)
    offset = _integer(args, "offset", 0) or 0
    everything, extra = _includefields(args, level)
    include: list[str] = []
    for lvl in _levels(level, path):
        include += [k for k in DEFAULTS[lvl] if k not in include]
    if everything:
        extra = list(query.attributes(level)) + extra
    include += [k for k in extra if k not in include]
    capped = limit is None or limit > max_results
    return Search(level, _filters(args, path), tuple(include),
                  max_results if capped else limit, offset, fuzzy_raw == "true",  # type: ignore
                  capped)


def _retrieve_url(base: str, match: Match, level: Level) -> str:
    url = f"{base}/studies/{match.study.study_uid}"  # type: ignore[union-attr]
    if level in (Level.SERIES, Level.IMAGE):
        url += f"/series/{match.series.series_uid}"  # type: ignore[union-attr]
    if level is Level.IMAGE:
        url += f"/instances/{match.instance.sop_uid}"  # type: ignore[union-attr]
    return url


def _value(keyword: str, match: Match, level: Level, base: str, known: set[str]) -> Any:
    if keyword == "RetrieveURL":
        return _retrieve_url(base, match, level)
    if keyword == "InstanceAvailability":
        return "ONLINE"
    if keyword == "SpecificCharacterSet":
        return dicom_json.UTF8  # JSON is UTF-8 (PS3.18 §F.2)
    if keyword in known or keyword == "NumberOfPatientRelatedStudies":
        return match.value(keyword)
    return _ABSENT


_ABSENT = object()


def result(match: Match, search: Search, base: str) -> dict[str, Any]:
    """One match as a DICOM JSON object with the requested attributes."""
    known = set(query.attributes(search.level))
    attributes = {}
    for keyword in search.include:
        value = _value(keyword, match, search.level, base, known)
        if value is not _ABSENT:
            attributes[keyword] = value
    return dicom_json.dataset(attributes)


def run(tenant: Tenant, search: Search, base: str, actor: Actor) -> tuple[list[dict], bool]:
    """Run ``search`` for ``tenant``; return the results and whether more remain.

    The query's keys (never its values, which may be names) are audited.
    """
    matches = query.search(tenant, search.level, search.filters, limit=search.limit + 1,
                           offset=search.offset, fuzzy=search.fuzzy)
    more = len(matches) > search.limit
    matches = matches[: search.limit]
    results = [result(m, search, base) for m in matches]
    keys = ",".join(sorted(k for k, v in search.filters.items() if v))
    audit.access(tenant, actor, _ACTION[search.level], _OBJECT[search.level],
                 search.filters.get("StudyInstanceUID", ""),
                 detail=f"keys={keys} results={len(results)}" + (" fuzzy" if search.fuzzy else ""))
    return results, more


def respond(results: list[dict], more: bool, search: Search) -> Response:
    """The results as application/dicom+json; a ``Warning`` when the server cut them short.

    An empty result is ``200 []``, which dicomweb-client and OHIF both accept.
    """
    body = json.dumps(results, ensure_ascii=False, separators=(",", ":"))
    response = Response(body, content_type="application/dicom+json")
    if more and search.capped:  # PS3.18 §8.3.4.4: tell the client more can be requested
        response.headers["Warning"] = ('299 pacs: "The number of results exceeded the maximum '
                                       'supported by the server. Additional results can be '
                                       'requested."')
    response.headers["Cache-Control"] = "private, no-store"
    return response

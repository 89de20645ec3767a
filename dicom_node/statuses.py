"""DIMSE status codes the node answers with, named after the standard.

General statuses are from PS3.7 Annex C (Status Type Encoding); the
service-specific ones are from PS3.4 Annex B (Storage, Table B.2-1) and
Annex C (Query/Retrieve: C-FIND Table C.4-1, C-MOVE Table C.4-2, C-GET
Table C.4-3). Association rejections are PS3.8 §9.3.4 (A-ASSOCIATE-RJ PDU)
result/source/reason values.
"""
from __future__ import annotations

from pydicom.dataset import Dataset

# --- General (PS3.7 Annex C) ---------------------------------------------------
SUCCESS = 0x0000
#: PS3.7 Annex C.5 "Processing failure": a general failure in processing the
#: operation — used for an instance whose UIDs contradict the archive.
PROCESSING_FAILURE = 0x0110
#: PS3.7 Annex C.5 "Refused: Not authorized" — the tenant was suspended mid-association.
NOT_AUTHORIZED = 0x0124

# --- Storage (PS3.4 Table B.2-1) -------------------------------------------------
#: "Refused: Out of Resources" (A700–A7FF): the archive could not take the
#: instance now (disk, database); a modality may retry later.
STORE_OUT_OF_RESOURCES = 0xA700
#: "Error: Cannot understand" (C000–CFFF): the data set cannot be parsed or lacks
#: the UIDs every composite instance must carry (PS3.4 §B.2.3).
STORE_CANNOT_UNDERSTAND = 0xC210

# --- Query/Retrieve (PS3.4 Tables C.4-1, C.4-2, C.4-3) ------------------------------
PENDING = 0xFF00
#: C-FIND pending, "one or more Optional Keys were not supported for existence
#: and/or matching for this Identifier" (Table C.4-1).
PENDING_WARNING = 0xFF01
CANCEL = 0xFE00
#: "Refused: Out of Resources" (C-FIND A700; C-MOVE/C-GET A701 "unable to
#: calculate number of matches").
FIND_OUT_OF_RESOURCES = 0xA700
RETRIEVE_OUT_OF_RESOURCES = 0xA701
#: "Error: Identifier does not match SOP Class": no or an invalid Query/Retrieve
#: Level, or the unique key the level needs is missing.
IDENTIFIER_DOES_NOT_MATCH = 0xA900
#: "Failed: Unable to process" (C000–CFFF): the identifier cannot be decoded,
#: or a key holds a value that cannot be matched (e.g. a malformed date range).
UNABLE_TO_PROCESS = 0xC000
#: C-MOVE "Refused: Move Destination unknown" (Table C.4-2).
MOVE_DESTINATION_UNKNOWN = 0xA801

# --- A-ASSOCIATE-RJ (PS3.8 §9.3.4, Table 9-21) ---------------------------------------
REJECTED_PERMANENT = 0x01
SOURCE_SERVICE_USER = 0x01
REASON_CALLING_AE_NOT_RECOGNISED = 0x03
REASON_CALLED_AE_NOT_RECOGNISED = 0x07

# Error Comment (0000,0902) is LO: at most 64 characters (PS3.7 §E.1).
_ERROR_COMMENT_MAX = 64


def with_comment(status: int, comment: str = "", offending: list[int] | None = None) -> Dataset:
    """A status dataset carrying Error Comment and Offending Element (PS3.7 Annex C).

    Parameters
    ----------
    status
        The (0000,0900) Status value.
    comment
        Short, PHI-free reason, e.g. a domain error's ``message``.
    offending
        Tags for (0000,0901) Offending Element, when a key is at fault.
    """
    ds = Dataset()
    ds.Status = status
    if comment:
        ds.ErrorComment = comment.encode("ascii", "replace").decode()[:_ERROR_COMMENT_MAX]
    if offending:
        ds.OffendingElement = offending
    return ds

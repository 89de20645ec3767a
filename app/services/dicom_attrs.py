"""Reading index attributes out of a pydicom dataset, safely."""
from __future__ import annotations

import re

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def text(ds: Dataset, keyword: str, limit: int = 200) -> str:
    """The element's value as text ('' when absent or unreadable), multi-values joined by ``\\``."""
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed value must not stop indexing of the rest
        return ""
    if value is None:
        return ""
    if isinstance(value, (list, MultiValue)):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit]


def integer(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except Exception:
        return None


def number(ds: Dataset, keyword: str) -> float | None:
    try:
        value = ds.get(keyword)
        return float(value) if value not in (None, "") else None
    except Exception:
        return None


def valid_uid(uid: str) -> bool:
    """PS3.5 §9.1: digits and dots, no leading zeros in components, ≤ 64 chars."""
    return 0 < len(uid) <= 64 and bool(UID_RE.match(uid))

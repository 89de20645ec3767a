"""Values in view-state queries: one way to write a number and to read numbers and flags.

Every view state of the farm (:class:`~render_farm.viewport.ViewState`, the
MPR, curved MPR, VR, fusion and DSA states) travels in a URL with a
canonical encoding, so equal views share a cache key; these helpers keep
that encoding the same everywhere. Errors name the query key.
"""
from __future__ import annotations

import math

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def number(value: float) -> str:
    """The shortest text that parses back to the same float; integers without ".0"."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def finite_number(key: str, text: str) -> float:
    """`text` as a finite float, or ValueError naming `key`."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{key}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{key}: expected a finite number, got {text!r}")
    return value


def flag(key: str, text: str) -> bool:
    """`text` as a boolean (1/0, true/false, yes/no, on/off), or ValueError naming `key`."""
    if text.strip().lower() in TRUE:
        return True
    if text.strip().lower() in FALSE:
        return False
    raise ValueError(f"{key}: expected 1 or 0, got {text!r}")

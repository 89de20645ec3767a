"""Person-name helpers: search text with pinyin, ASCII fallbacks for modalities."""
from __future__ import annotations

import re

from pypinyin import Style, lazy_pinyin

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_SEPARATORS = re.compile(r"[\s^=,]+")


def search_text(pn: str) -> str:
    """Lower-case text a name can be found by: each PN group as written and
    joined, plus the pinyin of its Chinese characters in full and as initials.

    ``"Zhang^San=张^三"`` matches ``zhang``, ``zhangsan``, ``张三``, ``zs``.
    """
    pn = pn or ""
    parts = {pn.lower()}
    for group in pn.split("="):
        parts.add(_SEPARATORS.sub("", group).lower())
    hanzi = "".join(_CJK.findall(pn))
    if hanzi:
        syllables = lazy_pinyin(hanzi)
        parts.add("".join(syllables))
        parts.add(" ".join(syllables))
        parts.add("".join(lazy_pinyin(hanzi, style=Style.FIRST_LETTER)))
    return " | ".join(sorted(p for p in parts if p))


def normalise_query(text: str) -> str:
    """A user's name query as matched against :func:`search_text`."""
    return _SEPARATORS.sub("", text or "").lower()


def to_ascii(pn: str) -> str:
    """An ASCII PN for modalities that cannot show Chinese: pinyin ``FAMILY^GIVEN``."""
    alphabetic = (pn or "").split("=")[0]
    if alphabetic and not _CJK.search(alphabetic):
        return alphabetic
    components = (pn or "").split("=")[-1].split("^")
    return "^".join("".join(lazy_pinyin(c)).upper() for c in components)


def display(pn: str) -> str:
    """How a PN reads on screen: the ideographic group if present, else alphabetic."""
    groups = (pn or "").split("=")
    ideographic = groups[1] if len(groups) > 1 and groups[1] else ""
    chosen = ideographic or groups[0]
    # Chinese names are written without a space between family and given name.
    separator = "" if _CJK.search(chosen) else " "
    return separator.join(c.strip() for c in chosen.split("^") if c.strip())

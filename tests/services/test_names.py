"""How person names are shown, searched and made ASCII for modalities."""
from __future__ import annotations

import pytest

from app.services import names


@pytest.mark.parametrize("pn, shown", [
    ("Zhang^San=张^三", "张三"),
    ("张三", "张三"),
    ("Smith^John", "Smith John"),
    ("Ouyang^Xiuying=欧阳^秀英=", "欧阳秀英"),
    ("", ""),
])
def test_display(pn, shown):
    assert names.display(pn) == shown


@pytest.mark.parametrize("query", ["张三", "zhangsan", "zhang san", "ZS", "Zhang^San", "zhang"])
def test_search_text_finds_the_name(query):
    assert names.normalise_query(query) in names.search_text("Zhang^San=张^三").replace(" ", "")


def test_ascii_for_modalities():
    assert names.to_ascii("张^三") == "ZHANG^SAN"
    assert names.to_ascii("Zhang^San=张^三") == "Zhang^San"

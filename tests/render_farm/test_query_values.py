"""The one encoding of numbers and flags in view-state queries."""
import pytest

from render_farm.query_values import finite_number, flag, number


def test_numbers_are_written_shortest_and_read_back_exactly():
    for value in (0.0, 3.0, -2.5, 0.1, 1 / 3, 1e20, -400.0):
        assert float(number(value)) == value
    assert (number(3.0), number(-2.5), number(0.1)) == ("3", "-2.5", "0.1")


@pytest.mark.parametrize("text", ["abc", "nan", "inf", "-inf", ""])
def test_bad_numbers_name_the_key(text):
    with pytest.raises(ValueError, match="^wc: expected"):
        finite_number("wc", text)


def test_flags():
    assert [flag("inv", t) for t in ("1", "true", "ON", "0", "no")] == [True, True, True, False, False]
    with pytest.raises(ValueError, match="^inv: expected 1 or 0"):
        flag("inv", "maybe")

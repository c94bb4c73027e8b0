"""The one rule for a CSV field an instructor opens in a spreadsheet (grades.csv, the class
report's files): a field a spreadsheet would read as a formula is written as text."""

from __future__ import annotations

import pytest

from course.classroom.spreadsheet import field


@pytest.mark.parametrize(("value", "written"), [
    ("=HYPERLINK(\"http://example.invalid\")", "'=HYPERLINK(\"http://example.invalid\")"),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("-3.5", "-3.5"),
    (-3.5, "-3.5"),
    ("+7", "+7"),
    (103.0, "103.0"),
    ("alice", "alice"),
    (None, ""),
    ("", ""),
])
def test_a_formula_is_written_as_text_and_a_number_as_a_number(value: object,
                                                               written: str) -> None:
    assert field(value) == written

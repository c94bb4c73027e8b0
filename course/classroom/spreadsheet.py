"""One rule for a value written into a CSV file an instructor opens in a spreadsheet.

Student ids, names from a roster, cell ids and codes reach grades.csv and the class report's
files; a field that begins with ``=``, ``+``, ``-`` or ``@`` would be read by a spreadsheet as a
formula (which can fetch addresses or run commands), so it is written with a leading ``'``,
which shows it as text. Numbers, negative ones included, are left as numbers."""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@")


def field(value: Any) -> str:
    """``value`` as a CSV field a spreadsheet shows as text ("" for None)."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

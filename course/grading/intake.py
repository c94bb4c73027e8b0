"""Reading what a submission hands the grader, within bounds: its notebook and the lines its
sandbox prints.

Both come from the student, so both are read as hostile data. A JSON text is measured before
it is parsed (its length, how many containers and items it holds and how deeply they nest), so
that no file or line can make the grader recurse without end, hold gigabytes, or fail with an
exception nobody expects (``json.loads`` raises ``RecursionError``, not ``ValueError``, on deep
nesting). What a bound refuses fails that submission (or that run of a check) with a reason;
it never reaches the rest of the class.

A notebook is then checked field by field, for every field the grader reads (cells, their kind
and source, nbgrader's metadata): a notebook nbformat accepts can still hold a number in a
source list or a list as a ``grade_id``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class JsonBounds:
    """What one JSON text may hold. The defaults are a protocol line's: an honest line is at
    most about 0.4 MB, 12,000 containers, 13,000 items and 11 levels deep."""

    max_bytes: int = 32 * 2**20
    max_depth: int = 48
    max_containers: int = 256 * 2**10  # objects and arrays
    max_items: int = 2**20  # commas: items and keys after the first of each container
    ascii_only: bool = True  # the observer writes json.dumps' ASCII; nothing else is ours


LINE = JsonBounds()
#: A notebook: nbgrader's size limit of the grader, UTF-8, deeper metadata (widgets) allowed.
NOTEBOOK = JsonBounds(max_bytes=20 * 2**20, max_depth=64, max_containers=2**20,
                      max_items=2 * 2**20, ascii_only=False)


class Refused(ValueError):
    """A JSON text outside its bounds, or not JSON: the reason, in words."""


_KEEP = b'"[]{}'
_DROP = bytes(byte for byte in range(256) if byte not in _KEEP)


def nesting_depth(text: bytes) -> int:
    """How deeply the arrays and objects of the JSON ``text`` nest, counting only brackets
    outside strings, in C and numpy time (a line of several MB takes milliseconds; ``text`` is
    never parsed). Exact for valid JSON in UTF-8 or ASCII; for anything else the parser
    refuses the text anyway."""
    # escapes first, left to right as JSON reads them: an escaped backslash, then an escaped
    # quote, can neither open nor close a string
    skeleton = text.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _DROP)
    marks = np.frombuffer(skeleton, dtype=np.uint8)
    if marks.size == 0:
        return 0
    outside = (np.cumsum(marks == ord('"')) & 1) == 0
    opening = ((marks == ord("[")) | (marks == ord("{"))) & outside
    closing = ((marks == ord("]")) | (marks == ord("}"))) & outside
    steps = opening.astype(np.int32) - closing.astype(np.int32)
    return int(np.cumsum(steps).max())


def parse(text: bytes, bounds: JsonBounds = LINE) -> Any:
    """The JSON value of ``text``, or ``Refused`` saying which bound it exceeds or why it is
    not JSON. The cheap measures run first, so a refused text costs no parse."""
    size = len(text)
    if size > bounds.max_bytes:
        raise Refused(f"{_mib(size)} MiB, more than the {_mib(bounds.max_bytes)} MiB allowed")
    if bounds.ascii_only and not text.isascii():
        raise Refused("it holds bytes that are not ASCII (the grader's lines are ASCII JSON)")
    containers = text.count(b"[") + text.count(b"{")
    if containers > bounds.max_containers:
        raise Refused(f"{containers} arrays and objects, more than the "
                      f"{bounds.max_containers} allowed")
    items = text.count(b",")
    if items > bounds.max_items:
        raise Refused(f"{items} items, more than the {bounds.max_items} allowed")
    depth = nesting_depth(text) if containers > bounds.max_depth else 0
    if depth > bounds.max_depth:
        raise Refused(f"nested {depth} levels deep, more than the {bounds.max_depth} allowed")
    try:
        return json.loads(text.decode("ascii" if bounds.ascii_only else "utf-8"))
    except UnicodeDecodeError as error:
        raise Refused(f"it is not UTF-8 text: {error}") from None
    except (ValueError, RecursionError) as error:  # RecursionError: a safety net only
        raise Refused(str(error)[:300]) from None


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")


# ----------------------------------------------------------------------------- protocol lines
#: How the observer begins a run's line: ``{"run": <index>, "events": ``.
RUN_LINE = re.compile(rb'\{"run": (\d{1,6}), "events": ')
#: Lines that are not a run's (the header, "done") are short; a longer one is not ours.
MAX_SHORT_LINE = 256 * 2**10
MAX_FAILED_CELLS = 1000
MAX_FAILED_TEXT = 500
MAX_ERROR_NAME = 100


def run_index(line: bytes) -> int | None:
    """The run a line claims to be the record of, read from its first bytes (the line itself
    is parsed only when its run is judged)."""
    match = RUN_LINE.match(line)
    return int(match.group(1)) if match else None


def failed_cells(header: Any) -> list[list[Any]]:
    """The observer header's list of cells that raised, keeping only entries of its own shape
    ``[cell number, error name, error text, line or None]``, with bounded text and count: a
    header is printed in the sandbox, so anything there may be forged."""
    failed = header.get("failed") if isinstance(header, dict) else None
    if not isinstance(failed, list):
        return []
    kept = []
    for entry in failed[:MAX_FAILED_CELLS]:
        if (isinstance(entry, list) and len(entry) in (3, 4) and type(entry[0]) is int
                and isinstance(entry[1], str) and isinstance(entry[2], str)):
            line = entry[3] if len(entry) == 4 and type(entry[3]) is int else None
            kept.append([entry[0], entry[1][:MAX_ERROR_NAME], entry[2][:MAX_FAILED_TEXT],
                         line])
    return kept


# ----------------------------------------------------------------------------- notebooks
class Unreadable(ValueError):
    """The submission cannot be read as a notebook: nothing of it runs."""


_NBGRADER_FLAGS = ("grade", "solution", "locked", "task")


def read_notebook(path: Path, bounds: JsonBounds = NOTEBOOK) -> list[dict[str, Any]]:
    """The cells of the notebook at ``path``, after checking every field the grader and
    nbgrader's autograde read; ``Unreadable`` names the file and what is wrong."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise Unreadable(f"submission {str(path)!r} cannot be read: {error}") from error
    if size > bounds.max_bytes:
        raise Unreadable(f"submission {str(path)!r} is {size / 2**20:.0f} MiB, more than the "
                         f"{bounds.max_bytes // 2**20} MiB a notebook may have")
    try:
        data = parse(path.read_bytes(), bounds)
    except OSError as error:
        raise Unreadable(f"submission {str(path)!r} cannot be read: {error}") from error
    except Refused as error:
        raise Unreadable(f"submission {str(path)!r} is not a notebook: {error}") from None
    problem = notebook_problem(data)
    if problem:
        raise Unreadable(f"submission {str(path)!r} is not a readable notebook: {problem}")
    return data["cells"]


def notebook_problem(data: Any) -> str | None:
    """What makes ``data`` (a parsed .ipynb) unusable to the grader, or None."""
    if not isinstance(data, dict):
        return f"the file holds {_kind(data)}, not an object"
    if not isinstance(data.get("metadata", {}), dict):
        return f"the notebook's metadata is {_kind(data['metadata'])}, not an object"
    cells = data.get("cells")
    if not isinstance(cells, list):
        return "it has no list of cells" if cells is None else \
            f"its cells are {_kind(cells)}, not a list"
    for number, cell in enumerate(cells, start=1):
        problem = cell_problem(cell)
        if problem:
            return f"cell {number}: {problem}"
    return None


def cell_problem(cell: Any) -> str | None:
    """What is wrong with one cell of a notebook, or None."""
    if not isinstance(cell, dict):
        return f"{_kind(cell)}, not an object"
    if not isinstance(cell.get("cell_type"), str):
        return f"its cell_type is {_kind(cell.get('cell_type'))}, not text"
    source = cell.get("source", "")
    if not isinstance(source, str) and not (
            isinstance(source, list) and all(isinstance(line, str) for line in source)):
        wrong = next((line for line in source if not isinstance(line, str)), None) \
            if isinstance(source, list) else source
        return f"its source holds {_kind(wrong)}, not text"
    metadata = cell.get("metadata", {})
    if not isinstance(metadata, dict):
        return f"its metadata is {_kind(metadata)}, not an object"
    nbgrader = metadata.get("nbgrader", {})
    if not isinstance(nbgrader, dict):
        return f"its nbgrader metadata is {_kind(nbgrader)}, not an object"
    if "grade_id" in nbgrader and not isinstance(nbgrader["grade_id"], str):
        return f"its nbgrader grade_id is {_kind(nbgrader['grade_id'])}, not text"
    points = nbgrader.get("points", 0)
    if isinstance(points, bool) or not isinstance(points, int | float):
        return f"its nbgrader points are {_kind(points)}, not a number"
    for flag in _NBGRADER_FLAGS:
        if flag in nbgrader and not isinstance(nbgrader[flag], bool):
            return f"its nbgrader {flag!r} is {_kind(nbgrader[flag])}, not true or false"
    return None


def _kind(value: Any) -> str:
    """A JSON value's kind, with its article: "a list", "an object", "text", "null"."""
    names = {dict: "an object", list: "a list", str: "text", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), f"a {type(value).__name__}")

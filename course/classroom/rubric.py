"""The rubric of the written answers, read from its one source: the instructor guide.

The guide (``docs/instructor-guide.md``) holds it between ``<!-- BEGIN RUBRIC -->`` and
``<!-- END RUBRIC -->`` (``course.authoring.release.RUBRIC_REGION``, which the release scans,
the student wheel and the Binder image treat as secret), one section per written answer:

    ### `reflection_clipping` (3 points): one norm for all gradients

    - Full marks: ...

The formgrader shows each section beside the answer it grades (``course.classroom.
formgrader_view``), so graders read the very text the guide says, and a question added to the
lesson without its rubric is named (``MissingRubric``) instead of graded without one. Nothing
here writes anything: the rubric reaches the grader's browser only, never a student's file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course.assignment import cells, paths
from course.authoring.release import GUIDE, RUBRIC_REGION

#: A section's heading: ``### `grade_id` (N points): title``.
HEADING = re.compile(r"^### `(?P<grade_id>[A-Za-z0-9_-]+)` \((?P<points>\d+) points?\): "
                     r"(?P<title>\S.*?)\s*$")


class RubricError(ValueError):
    """The guide's rubric cannot be read as one section per written answer."""


class MissingRubric(RubricError):
    """A written answer of the assignment has no section in the guide's rubric."""


@dataclass(frozen=True)
class Section:
    """The rubric of one written answer: its grade_id, its points, its title, and the
    criteria (markdown, as written in the guide)."""

    grade_id: str
    points: int
    title: str
    text: str
    line: int  # the heading's line in the guide


def sections(guide: Path = GUIDE) -> dict[str, Section]:
    """grade_id -> its rubric section, in the guide's order. Raises ``RubricError`` naming the
    guide (and the line) when the guide or its markers are missing, a ``###`` heading is not
    ``### `grade_id` (N points): title``, a grade_id has two sections, or a section is empty."""
    try:
        text = guide.read_text()
    except OSError as error:
        raise RubricError(f"{guide}: cannot read the instructor guide: {error}") from error
    region = RUBRIC_REGION.search(text)
    if region is None:
        raise RubricError(f"{guide}: no rubric between <!-- BEGIN RUBRIC --> and "
                          "<!-- END RUBRIC -->")
    begin = text.count("\n", 0, region.start()) + 1  # the BEGIN marker's line
    found: dict[str, Section] = {}
    heading: tuple[re.Match[str], int] | None = None  # the open section's heading and line
    body: list[str] = []

    def close() -> None:
        if heading is None:
            return
        match, line = heading
        criteria = "\n".join(body).strip()
        if not criteria:
            raise RubricError(f"{guide}, line {line}: the rubric section of "
                              f"{match['grade_id']} is empty")
        found[match["grade_id"]] = Section(match["grade_id"], int(match["points"]),
                                           match["title"], criteria, line)

    for number, text_line in enumerate(region.group(0).splitlines()[1:], start=begin + 1):
        if text_line.startswith("<!-- END RUBRIC -->"):
            break
        if text_line.startswith("### "):
            close()
            match = HEADING.match(text_line)
            if match is None:
                raise RubricError(f"{guide}, line {number}: {text_line.strip()!r} is not a "
                                  "rubric heading '### `grade_id` (N points): title'")
            if match["grade_id"] in found:
                raise RubricError(f"{guide}, line {number}: a second rubric section for "
                                  f"{match['grade_id']} (the first is at line "
                                  f"{found[match['grade_id']].line})")
            heading, body = (match, number), []
        elif heading is not None:
            body.append(text_line)
        elif text_line.strip():
            raise RubricError(f"{guide}, line {number}: rubric text before the first "
                              "'### `grade_id` (N points): title' heading")
    close()
    return found


def written_answers(notebook: Path = paths.SOURCE_NOTEBOOK) -> dict[str, int]:
    """grade_id -> points of every written answer of the assignment (its source notebook)."""
    source = nbformat.read(notebook, as_version=4)
    return {grade_id: int(points) for grade_id, points, _ in cells.manual_cells(source)}


def for_answers(answers: dict[str, int] | None = None, guide: Path = GUIDE
                ) -> dict[str, Section]:
    """The rubric section of each written answer ``answers`` (grade_id -> points; default:
    the assignment's), exactly one each. Raises ``MissingRubric`` naming the guide and every
    answer without a section, and ``RubricError`` for a section whose points are not the
    answer's (or any fault ``sections`` finds)."""
    answers = written_answers() if answers is None else answers
    found = sections(guide)
    missing = [grade_id for grade_id in answers if grade_id not in found]
    if missing:
        raise MissingRubric(
            f"{guide}: no rubric section for {', '.join(missing)} (each written answer needs "
            "one '### `grade_id` (N points): title' between <!-- BEGIN RUBRIC --> and "
            "<!-- END RUBRIC -->)")
    for grade_id, points in answers.items():
        if found[grade_id].points != points:
            raise RubricError(f"{guide}, line {found[grade_id].line}: the rubric of {grade_id} "
                              f"says {found[grade_id].points} points, the notebook {points}")
    return {grade_id: found[grade_id] for grade_id in answers}

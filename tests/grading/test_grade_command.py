"""`python -m course.grading.grade` (`make grade FILE=...`) on the command line: a file that is
not a notebook is the caller's mistake, named in one line on stderr and never reported as a
student's 0; the readable files given beside it are still graded. Every report printed says
what the command cannot grade: the written answers a grader grades by hand, and their points,
read from the assignment's source notebook (the same cells GRADING.md lists)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from course.assignment import cells, paths
from course.grading import grade

#: A file given by mistake: (its name, its text, what the refusal says it received).
NOT_NOTEBOOKS = [
    ("README.md", "# TinyTorch Module 07\n", "a .md file the grader cannot read as JSON "
                                             "(Expecting value: line 1 column 1 (char 0))"),
    ("essay.ipynb", "not json", "a file the grader cannot read as JSON (Expecting value"),
    ("list.ipynb", "[1, 2]", "JSON that is not a notebook the grader reads: the file holds "
                             "a list, not an object"),
    ("no-format.ipynb", '{"cells": []}', 'JSON without "nbformat" (not a notebook)'),
    ("version-3.ipynb", '{"nbformat": 3, "nbformat_minor": 0, "worksheets": []}',
     "a notebook of nbformat 3 (open it in Jupyter and save it to make it nbformat 4)"),
    ("number-source.ipynb",
     '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, '
     '"cells": [{"cell_type": "code", "metadata": {}, "source": [1]}]}',
     "JSON that is not a notebook the grader reads: cell 1: its source holds a number"),
]


def _refusal(path: Path, received: str) -> str:
    return f"error: {path}: expected {grade.EXPECTED}, received {received}"


@pytest.mark.parametrize(("name", "text", "received"), NOT_NOTEBOOKS,
                         ids=[name for name, _, _ in NOT_NOTEBOOKS])
def test_a_file_that_is_not_a_notebook_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str,
        received: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert grade.main([str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "", "a report was printed for a file that is not a notebook"
    assert len(err.splitlines()) == 1, err
    assert err.startswith(_refusal(path, received)), err


def test_a_missing_file_and_a_folder_are_refused_in_one_line_each(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.ipynb"
    assert grade.main([str(missing), str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [_refusal(missing, "nothing: no such file"),
                                _refusal(tmp_path, "a folder or other non-file")]


@pytest.fixture(scope="module")
def blank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A notebook that defines nothing: graded in a second, every check failing."""
    path = tmp_path_factory.mktemp("blank") / "blank.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), path)
    return path


def test_the_readable_files_beside_a_refused_one_are_graded(
        blank: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# TinyTorch\n")
    cache = tmp_path / "cache"
    status = grade.main([str(readme), str(blank), str(tmp_path / "gone.ipynb"),
                         "--cache", str(cache)])
    out, err = capsys.readouterr()
    assert status == 2, err
    reports = json.loads(out)
    assert [report["file"] for report in reports] == [str(blank)], "several files: a list"
    assert reports[0]["total"] == 0 and reports[0]["gradable"] is True, reports[0]["ended"]
    assert err.splitlines() == [
        _refusal(readme, "a .md file the grader cannot read as JSON (Expecting value: line 1 "
                         "column 1 (char 0))"),
        _refusal(tmp_path / "gone.ipynb", "nothing: no such file"),
        "error: 2 of 3 files given were not graded (named above): missing or not notebooks"], err
    kept = list(cache.glob("*/*.json"))
    assert len(kept) == 1, kept
    assert "max_by_hand" not in kept[0].read_text(), "the printed maxima reached the cache"


def test_a_report_says_the_points_graded_by_hand_apart_from_the_automatic_ones(
        blank: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert grade.main([str(blank)]) == 0
    out, err = capsys.readouterr()
    assert err == "", "one file graded: nothing but JSON"
    report = json.loads(out)
    source = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
    written = cells.manual_cells(source)
    assert written, "the assignment has written answers"
    automatic = sum(cell["max_points"] for cell in report["cells"])
    by_hand = sum(points for _, points, _ in written)
    assert report["max_total"] == report["max_automatic"] == automatic == 100
    assert report["max_by_hand"] == by_hand
    assert report["max_possible"] == automatic + by_hand
    table = paths.GRADING_TABLE.read_text()
    said = re.search(r"\*\*total, graded by hand\*\* \| \| \*\*(\d+)\*\*", table)
    assert said and int(said.group(1)) == report["max_by_hand"], "GRADING.md says otherwise"
    assert [(c["grade_id"], c["points"]) for c in report["to_grade_by_hand"]] == [
        (grade_id, points) for grade_id, points, _ in written]
    assert all(c["question"] and "points)" not in c["question"]
               for c in report["to_grade_by_hand"])
    assert f"({by_hand:g} points) are graded by hand" in report["by_hand_note"]
    keys = list(report)
    assert keys[keys.index("max_total") + 1:keys.index("max_total") + 4] == [
        "max_automatic", "max_by_hand", "max_possible"]

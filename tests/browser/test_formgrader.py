"""A written answer graded by hand in nbgrader's formgrader, in a real browser, and that grade
in grades.csv and on the student's feedback page.

A throw-away course autogrades one submission (the reference's code and the example written
answers) through the instructor's pipeline: every check passes and every written answer waits
for a grader. JupyterLab, started in the course root like a grader's (nbgrader's server
extension on), serves nbgrader's formgrader at ``/formgrader``; the test walks Manual Grading ->
07_training -> 07_training -> the submission, as a grader would, types points and a comment
for the answer ``reflection_clipping`` and leaves each box (the formgrader saves on change).
Then ``nbgrader export`` and ``make feedback``'s function run, and the grade is in grades.csv
and the comment on the student's page. Screenshots: build/screenshots/formgrader-written-
answer.png (the formgrader, graded) and feedback-written-answer.png (the student's page).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from submissions import _as_submitted, write

from course.assignment import cells, paths
from course.authoring.release import nbgrader
from course.classroom import autograde, nbgrader_trusted

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

ANSWER = "reflection_clipping"
POINTS = 2
COMMENT = "Right numbers; now say why the sqrt(k) growth matters for deep models."


@pytest.fixture(scope="module")
def course(copy_course: Callable[[Path], None], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course with alice's submission autograded: 100 automatic points, written answers
    waiting for a grader."""
    root = tmp_path_factory.mktemp("formgrader")
    course = root / "course"
    course.mkdir()
    copy_course(course)
    source = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
    write(_as_submitted(source), root / "downloads" / "alice.ipynb")
    assert autograde.main([str(root / "downloads"), "--course", str(course)]) == 0
    assert [s for s, score, _ in autograde.scores(course) if score == 100.0] == ["alice"]
    return course


def _manual_points() -> int:
    source = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
    return sum(points for _, points, _ in cells.manual_cells(source))


def test_a_grade_given_in_the_formgrader_reaches_export_and_feedback(
        course: Path, start_jupyterlab: Callable[..., object], page: Page,
        screenshot: Callable[..., Path]) -> None:
    lab = start_jupyterlab(course, cwd=course)
    page.goto(lab.url("/formgrader"), wait_until="domcontentloaded")
    page.get_by_role("link", name="Manual Grading").click()
    page.get_by_role("link", name=paths.ASSIGNMENT, exact=True).first.click()
    page.wait_for_url(re.compile(rf"/formgrader/gradebook/{paths.ASSIGNMENT}/?$"))
    page.get_by_role("link", name="07_training", exact=True).first.click()
    page.wait_for_url(re.compile(rf"/formgrader/gradebook/{paths.ASSIGNMENT}/07_training/?$"))
    row = page.locator("tr", has=page.locator("a[href*='/formgrader/submissions/']")).first
    row.wait_for()
    assert f"0 / {_manual_points()}" in row.inner_text(), row.inner_text()  # manual column
    assert row.locator("[data-search='needs manual grade']").count() == 1  # the flag column
    row.locator("a[href*='/formgrader/submissions/']:visible").first.click()

    score = page.locator(f"input.score#{ANSWER}")
    score.wait_for()
    page.wait_for_function("() => window.formgrader && window.formgrader.grades && "
                           "window.formgrader.grades.loaded && window.formgrader.comments.loaded")
    assert "needs_manual_grade" in (score.get_attribute("class") or "")
    panel = page.locator(".nbgrader_cell", has=score)
    assert "Global clipping divides both gradients by 5" in panel.inner_text()  # her answer

    with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url
                              and r.request.method == "PUT") as saved:
        score.fill(str(POINTS))
        score.press("Tab")
    assert saved.value.ok, saved.value.status
    comment = page.locator(f"textarea#{ANSWER}-comment")
    with page.expect_response(lambda r: "/formgrader/api/comment/" in r.url
                              and r.request.method == "PUT") as saved:
        comment.fill(COMMENT)
        comment.press("Tab")
    assert saved.value.ok, saved.value.status
    panel.scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, -120)")  # below the formgrader's fixed navbar
    screenshot("formgrader-written-answer.png")

    nbgrader("export", course=course)
    with open(course / "grades.csv", newline="") as handle:
        alice = next(row for row in csv.DictReader(handle) if row["student_id"] == "alice")
    assert float(alice["score"]) == 100.0 + POINTS
    assert float(alice["max_score"]) == 100.0 + _manual_points()

    assert nbgrader_trusted.feedback(course, ["alice"], jobs=1) == []
    html = course / "feedback" / "alice" / paths.ASSIGNMENT / "07_training.html"
    page.goto(html.as_uri())
    answer = page.locator(".written_answer", has=page.locator(f"a[name='{ANSWER}']"))
    said = " ".join(answer.inner_text().split())
    assert f"Score: {POINTS:.1f} / 3.0" in said and "graded by hand" in said, said
    assert f"Grader's comment: {COMMENT}" in said, said
    assert "Global clipping divides both gradients by 5" in said
    heading = page.locator("h4").first.inner_text()
    assert f"Score: {100.0 + POINTS}" in heading, heading
    answer.scroll_into_view_if_needed()
    screenshot("feedback-written-answer.png")

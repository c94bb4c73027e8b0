"""The course's formgrader (``make formgrader``) in a real browser: a written answer graded by
hand, its grade in grades.csv and on the student's feedback page; the maths, the rubric and the
student's name as the grader sees them.

A throw-away course autogrades one submission (the reference's code and the example written
answers, one with a formula) through the instructor's pipeline: every check passes and every
written answer waits for a grader. ``make formgrader``'s command (``python -m
course.classroom.formgrader``) starts JupyterLab in the course root with nbgrader's formgrader
and the course's extension, and prints the formgrader's URL with its token (read here, as a
grader would copy it). With every request not to 127.0.0.1 aborted, the first test opens the
submission in Manual Grading: each formula is MathML (no MathJax, no ``$\\`` left), each
written answer has its rubric from the instructor guide beside it, and the student is named
(by id, then by the roster) in the list, the grading page and Manage Students, never "None,
None" nor "Submission #1". The second walks Manual Grading -> 07_training -> 07_training -> the
submission, as a grader would, types points and a comment for the answer
``reflection_clipping`` and leaves each box (the formgrader saves on change). Then ``nbgrader
export`` and ``make feedback``'s function run, and the grade is in grades.csv and the comment on
the student's page, which holds no line of the rubric. Screenshots: build/screenshots/
formgrader-rubric.png, formgrader-maths.png and formgrader-submissions.png (the grading view),
formgrader-written-answer.png (graded) and feedback-written-answer.png (the student's page).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import nbformat
import pytest
from submissions import _as_submitted, write

from course.assignment import cells, paths
from course.authoring.release import nbgrader, rubric_lines
from course.classroom import autograde, formgrader, nbgrader_trusted, rubric

if TYPE_CHECKING:
    from conftest import Formgrader
    from playwright.sync_api import Page, Route

pytestmark = pytest.mark.slow

ANSWER = "reflection_clipping"
POINTS = 2
COMMENT = "Right numbers; now say why the sqrt(k) growth matters for deep models."
#: A formula in alice's answer to the checkpoint question: the grader reads it as maths.
FORMULA_ANSWER, FORMULA = "reflection_checkpoint_interval", r"$T = \sqrt{2 C F}$"


@pytest.fixture(scope="module")
def course(copy_course: Callable[[Path], None], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course with alice's submission autograded: 100 automatic points, written answers
    waiting for a grader."""
    root = tmp_path_factory.mktemp("formgrader")
    course = root / "course"
    course.mkdir()
    copy_course(course)
    source = _as_submitted(nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4))
    answer = next(c for c in source.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                  == FORMULA_ANSWER)
    answer.source += f"\n\nYoung's interval: {FORMULA}."
    write(source, root / "downloads" / "alice.ipynb")
    assert autograde.main([str(root / "downloads"), "--course", str(course)]) == 0
    assert [s for s, score, _ in autograde.scores(course) if score == 100.0] == ["alice"]
    assert formgrader.name_students(course) == {}  # make autograde named her (by her id)
    return course


@pytest.fixture(scope="module")
def served(course: Path, start_formgrader: Callable[[Path], Formgrader]) -> Formgrader:
    """``make formgrader``'s command for the course: the URL it printed, its server up."""
    server = start_formgrader(course)
    # `make autograde` named alice by her id already: nothing left to name
    assert not any(line.startswith("named ") for line in server.printed), server.printed
    assert server.seconds_to_url < 30, f"the URL took {server.seconds_to_url:.1f} s"
    print(f"make formgrader printed its URL after {server.seconds_to_url:.1f} s")
    return server


@pytest.fixture
def offline(page: Page) -> Iterator[list[str]]:
    """Every request of the page not to 127.0.0.1 aborted, as on a machine with no network;
    yields the aborted URLs."""
    aborted: list[str] = []

    def route(request: Route) -> None:
        if urlparse(request.request.url).hostname == "127.0.0.1":
            request.continue_()
        else:
            aborted.append(request.request.url)
            request.abort()

    page.route("**/*", route)
    yield aborted
    page.unroute("**/*")


def _open_submission(page: Page, served: Formgrader) -> None:
    """Manual Grading's list of 07_training's submissions, then alice's, loaded."""
    page.goto(served.url(f"/formgrader/gradebook/{paths.ASSIGNMENT}/07_training"),
              wait_until="domcontentloaded")
    link = page.locator("td.name a[href*='/formgrader/submissions/']:visible").first
    link.wait_for()
    link.click()
    page.locator(f"input.score#{ANSWER}").wait_for()
    page.wait_for_function("() => window.formgrader && window.formgrader.grades && "
                           "window.formgrader.grades.loaded")


def _visible_text(page: Page) -> str:
    return page.locator("body").inner_text()


def test_the_grading_view_renders_maths_shows_the_rubric_and_names_the_student(
        course: Path, served: Formgrader, page: Page, offline: list[str],
        screenshot: Callable[..., Path]) -> None:
    # the URL `make formgrader` printed logs the grader in; Manual Grading's list names the
    # student from the start: no "Submission #1"
    page.goto(served.url("/formgrader"), wait_until="domcontentloaded")
    page.goto(served.url(f"/formgrader/gradebook/{paths.ASSIGNMENT}/07_training"),
              wait_until="domcontentloaded")
    names = page.locator("td.name a:visible")
    names.first.wait_for()
    assert names.all_inner_texts() == ["alice"], names.all_inner_texts()
    listed = _visible_text(page)
    assert "Submission #" not in listed and "None" not in listed, listed
    screenshot("formgrader-submissions.png")

    _open_submission(page, served)
    shown = _visible_text(page)
    assert "Submission #" not in shown and "None, None" not in shown
    assert page.locator("li.live-notebook a.student-name").inner_text().strip() == "alice"
    assert page.locator(".panel-title .student-name").inner_text().strip() == "alice"

    # maths: MathML written by the server, no MathJax, no LaTeX left in the lesson or answers
    assert page.locator("math").count() >= 10, page.locator("math").count()
    assert page.locator("script[src*='mathjax' i]").count() == 0
    for text in page.locator(".text_cell_render").all_inner_texts():
        assert "$\\" not in text and "$$" not in text, text[:300]
    formula = page.locator(".nbgrader_cell", has=page.locator(f"input.score#{FORMULA_ANSWER}"))
    assert formula.locator("math msqrt").count() == 1, formula.inner_html()[:2000]

    # each written answer with its rubric beside it, the guide's words
    sections = rubric.for_answers()
    assert len(sections) == 6
    for grade_id, section in sections.items():
        panel = page.locator(".nbgrader_cell", has=page.locator(f"input.score#{grade_id}"))
        aside = page.locator(f"aside.rubric[data-grade-id='{grade_id}']")
        assert aside.count() == 1, grade_id
        said = " ".join(aside.inner_text().split())
        assert section.title in said and f"({section.points} points)" in said, said
        first = section.text.splitlines()[0].removeprefix("- ")  # "Full marks: ..."
        assert first in said, (first, said)
        answer_box, rubric_box = panel.bounding_box(), aside.bounding_box()
        assert answer_box and rubric_box
        assert rubric_box["x"] >= answer_box["x"] + answer_box["width"], (grade_id, answer_box,
                                                                          rubric_box)
        assert rubric_box["y"] < answer_box["y"] + answer_box["height"], grade_id  # beside
    assert page.locator("aside.rubric-missing").count() == 0

    answer = page.locator(f"aside.rubric[data-grade-id='{ANSWER}']")
    answer.scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, -160)")  # below the formgrader's fixed navbar
    screenshot("formgrader-rubric.png")
    lesson = page.locator(".text_cell_render", has=page.locator("math[display='block']")).first
    lesson.scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, -120)")
    screenshot("formgrader-maths.png")
    assert offline == [], f"the formgrader asked the network for {offline}"

    # Manage Students reads "alice", not nbgrader's "alice, None"
    page.goto(served.url("/formgrader/manage_students"), wait_until="domcontentloaded")
    student = page.locator("td.name a")
    student.first.wait_for()
    assert student.all_inner_texts() == ["alice"], student.all_inner_texts()

    # a roster names her as the course knows her, in the list and on the grading page
    (course / formgrader.ROSTER).write_text("id,first_name,last_name\nalice,Alice,Liddell\n")
    try:
        assert formgrader.name_students(course) == {"alice": "Liddell, Alice"}
        _open_submission(page, served)
        assert page.locator("li.live-notebook a.student-name").inner_text().strip() == \
            "Liddell, Alice"
        heading = " ".join(page.locator(".panel-title").inner_text().split())
        assert heading.startswith("Liddell, Alice (alice)"), heading
    finally:
        (course / formgrader.ROSTER).unlink()
    assert offline == [], f"the formgrader asked the network for {offline}"


def _manual_points() -> int:
    source = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
    return sum(points for _, points, _ in cells.manual_cells(source))


def test_a_grade_given_in_the_formgrader_reaches_export_and_feedback(
        course: Path, served: Formgrader, page: Page,
        screenshot: Callable[..., Path]) -> None:
    page.goto(served.url("/formgrader"), wait_until="domcontentloaded")
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
    page_text = html.read_text()
    assert not [line for line in rubric_lines() if line in page_text], "rubric on the page"
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


REWRITTEN = "Both rules are the same: each divides the gradients by the same factor."


def test_an_answer_rewritten_after_grading_is_to_grade_again_in_the_formgrader(
        course: Path, served: Formgrader, page: Page, offline: list[str],
        screenshot: Callable[..., Path]) -> None:
    """alice's answer was graded 2 with a comment; she resubmits it rewritten (the rest the
    same): after `make autograde`, the formgrader flags it, its box is empty, the old grade is
    where the grader types ("was 2/3 for an earlier answer; its comment: ..."), and her page
    says it is to grade again; her other answers are as they were."""
    from nbgrader.api import Gradebook

    from course.assignment import config

    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        grade = gradebook.find_grade(ANSWER, "07_training", paths.ASSIGNMENT, "alice")
        grade.manual_score, grade.needs_manual_grade = float(POINTS), False
        gradebook.find_comment(ANSWER, "07_training", paths.ASSIGNMENT,
                               "alice").manual_comment = COMMENT
        gradebook.db.commit()
    folder = course / "submitted" / "alice" / paths.ASSIGNMENT
    notebook = nbformat.read(folder / paths.NOTEBOOK, as_version=4)
    next(c for c in notebook.cells
         if c.metadata.get("nbgrader", {}).get("grade_id") == ANSWER).source = REWRITTEN
    nbformat.write(notebook, folder / paths.NOTEBOOK)
    (folder / "timestamp.txt").write_text("2099-01-01 00:00:00.000000 UTC")
    assert autograde.main(["--course", str(course)]) == 0

    page.goto(served.url("/formgrader"), wait_until="domcontentloaded")
    page.goto(served.url(f"/formgrader/gradebook/{paths.ASSIGNMENT}/07_training"),
              wait_until="domcontentloaded")
    page.locator("td.name a:visible").first.wait_for()
    row = page.locator("tr", has=page.locator("td.name a:visible")).first
    assert row.locator("[data-search='needs manual grade']").count() == 1, row.inner_html()
    _open_submission(page, served)
    page.wait_for_function("() => window.formgrader.comments.loaded")
    score = page.locator(f"input.score#{ANSWER}")
    assert "needs_manual_grade" in (score.get_attribute("class") or "")
    assert score.input_value() == ""
    comment = page.locator(f"textarea#{ANSWER}-comment")
    assert comment.input_value() == ""
    assert comment.get_attribute("placeholder") == (
        f"was {POINTS}/3 for an earlier answer; its comment: {COMMENT}")
    panel = page.locator(".nbgrader_cell", has=score)
    assert REWRITTEN in panel.inner_text()
    panel.scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, -120)")
    screenshot("formgrader-graded-again.png")
    assert offline == [], f"the formgrader asked the network for {offline}"

    page.unroute("**/*")  # the page below is a file
    assert nbgrader_trusted.feedback(course, ["alice"], jobs=1) == []
    html = course / "feedback" / "alice" / paths.ASSIGNMENT / "07_training.html"
    page.goto(html.as_uri())
    answer = page.locator(".written_answer", has=page.locator(f"a[name='{ANSWER}']"))
    said = " ".join(answer.inner_text().split())
    assert f"to grade again: 3.0 points (was {POINTS}/3 for an earlier answer)" in said, said
    assert "Score:" not in said and COMMENT not in said, said
    stated = " ".join(page.locator("#graded").inner_text().split())
    assert stated.startswith("Your submission of 2099-01-01 00:00:00 UTC"), stated
    assert f"Still waiting for a grader: {ANSWER}" in stated, stated
    assert "Score: 100.0 /" in page.locator("h4").first.inner_text()
    page.locator("#graded").scroll_into_view_if_needed()
    screenshot("feedback-graded-again.png")

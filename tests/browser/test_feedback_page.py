"""What a student reads in the feedback of `make feedback`, in a real browser.

A throw-away course grades one submission with a bug (gradients never cleared between steps)
through the instructor's pipeline (trusted grading, nbgrader's autograde, the course's feedback
page), and the page is opened in headless chromium: every graded cell is named by its check,
each failing check's message fits the page's width (it wraps instead of being cut at the right
edge), and no folder of the grader's appears anywhere in the page. The screenshot goes to
build/screenshots/08-feedback.png.

The same page with the network blocked (every request that is not for a file is aborted, and
none may be made): the lesson's formulas are MathML that chromium lays out (a fraction stands
taller than a digit), and each graded test cell shows its name, points and message but no
source (no ``run_check(``, no hidden tests). Screenshot: build/screenshots/feedback-page.png.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from mutants_loop_modes import MUTANTS
from submissions import from_training_source, write
from variants import mutant_source

from course.assignment import cells, paths
from course.assignment.cells import source_graded_cells as graded_cells
from course.classroom import autograde, nbgrader_trusted
from course.classroom.feedback import graded_title

SOURCE = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

pytestmark = pytest.mark.slow

BUG = "no-zero-grad-between-steps"


@pytest.fixture(scope="module")
def feedback_page(
        copy_course: Callable[[Path], None],
        tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the feedback page of a submission that fails check 1.2, the course folder)."""
    root = tmp_path_factory.mktemp("feedback")
    course = root / "course"
    course.mkdir()
    copy_course(course)
    mutant = next(m for m in MUTANTS if m.name == BUG)
    downloads = root / "downloads"
    write(from_training_source(mutant_source(mutant)), downloads / "carol.ipynb")
    assert autograde.main([str(downloads), "--course", str(course)]) == 0
    assert nbgrader_trusted.feedback(course, ["carol"], jobs=1) == []
    return course / "feedback" / "carol" / paths.ASSIGNMENT / "07_training.html", course


def test_feedback_names_every_graded_cell_and_wraps_messages(
        page: Page, screenshot: Callable[..., Path], feedback_page: tuple[Path, Path]) -> None:
    html, course = feedback_page
    page.goto(html.as_uri())
    names = page.locator("#toc li a").all_inner_texts()
    # the checks by name, then the written answers a grader grades by hand
    expected = [c.check for c in graded_cells()] + [grade_id for grade_id, _, _ in
                                                    cells.manual_cells(SOURCE)]
    assert [n.split(":")[0] for n in names] == expected, (
        f"expected the table of contents to name the {len(expected)} graded cells by their "
        f"check, in order; it reads {names}")
    assert "Test cell" not in page.content()
    failed = page.locator("#toc li.failed a").all_inner_texts()
    assert any(n.startswith("1.2:") for n in failed), f"1.2 not marked failed: {failed}"

    errors = page.locator("div.output_error pre")
    assert errors.count() >= 1, "no failing check's message on the page"
    for index in range(errors.count()):
        width = errors.nth(index).evaluate("e => [e.scrollWidth, e.clientWidth]")
        assert width[0] <= width[1] + 1, (
            f"message {index} is wider than its box ({width[0]} px > {width[1]} px): it is "
            f"cut off at the right edge instead of wrapping")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px"

    text = page.content()
    for folder in (course, paths.REPO, Path.home()):
        assert str(folder) not in text, f"the feedback shows the grader's folder {folder}"
    assert not re.search(r"/(tmp|root|home|work)/\S", page.inner_text("body")), (
        "the feedback shows an absolute path")
    first = errors.first
    first.scroll_into_view_if_needed()
    screenshot("08-feedback.png", full_page=False)


#: For each graded cell (by its anchor): its cell's text, whether it holds a source area, and
#: the message in its output.
_GRADED_CELLS = """(ids) => ids.map((id) => {
  const anchor = document.querySelector(`a[name="${id}"]`);
  const cell = anchor && anchor.closest("div.cell");
  const message = cell && cell.querySelector(".output_subarea pre");
  return cell ? [cell.innerText, !!cell.querySelector(".input_area, .highlight"),
                 message ? message.innerText.trim() : ""]
              : [null, false, ""];
})"""

#: Each formula's box, and for a fraction, its height against a digit's.
_FORMULAS = """() => Array.from(document.querySelectorAll("div.text_cell_render math")).map((m) => {
  const box = m.getBoundingClientRect();
  const frac = m.querySelector("mfrac"), digit = m.querySelector("mn");
  return {display: m.getAttribute("display"), mathml: m instanceof MathMLElement,
          width: box.width, height: box.height,
          fraction: frac ? frac.getBoundingClientRect().height : 0,
          digit: digit ? digit.getBoundingClientRect().height : 0};
})"""


def test_feedback_page_offline_renders_maths_and_shows_no_test_source(
        page: Page, screenshot: Callable[..., Path], feedback_page: tuple[Path, Path]) -> None:
    html, _ = feedback_page
    asked: list[str] = []

    def files_only(route: Route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            asked.append(route.request.url)
            route.abort()

    page.route("**/*", files_only)
    try:
        page.goto(html.as_uri(), wait_until="load")
        assert asked == [], f"the page asks the network for {asked}"

        formulas = page.evaluate(_FORMULAS)
        assert len(formulas) >= 10, f"expected the lesson's formulas as MathML, found {formulas}"
        for formula in formulas:
            assert formula["mathml"] and formula["width"] > 0 and formula["height"] > 0, (
                f"a formula is not laid out as MathML: {formula}")
        fractions = [f for f in formulas if f["display"] == "block" and f["fraction"]]
        assert fractions and all(f["fraction"] > 1.5 * f["digit"] > 0 for f in fractions), (
            f"a displayed fraction is not stacked (MathML not rendered?): {fractions}")
        body = page.inner_text("body")
        assert "$" not in "".join(page.locator("div.text_cell_render").all_inner_texts()), (
            "LaTeX delimiters left in the lesson's text")

        cells = graded_cells()
        shown = page.evaluate(_GRADED_CELLS, [c.grade_id for c in cells])
        for (text, has_source, message), cell in zip(shown, cells, strict=True):
            assert text is not None, f"no cell for the graded cell {cell.grade_id}"
            assert not has_source and "run_check(" not in text, (
                f"the graded cell {cell.grade_id} shows its source: {text[:300]!r}")
            assert graded_title(cell.grade_id) in text and f" / {cell.points}" in text, (
                f"the graded cell {cell.grade_id} is not shown by its name and points: {text!r}")
            assert message, f"the graded cell {cell.grade_id} shows no message: {text!r}"
        assert "BEGIN HIDDEN TESTS" not in body and "run this cell again" not in body

        # the first graded check (name, points, message) with the clipping formula below it
        page.evaluate("""(id) => window.scrollTo(0, document.querySelector(`a[name="${id}"]`)
                         .closest("div.cell").getBoundingClientRect().top + scrollY - 120)""",
                      cells[0].grade_id)
        screenshot("feedback-page.png", full_page=False)
    finally:
        page.unroute("**/*", files_only)

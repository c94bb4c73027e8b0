"""What a student reads in the feedback of `make feedback`, in a real browser.

A throw-away course grades one submission with a bug (gradients never cleared between steps)
through the instructor's pipeline (trusted grading, nbgrader's autograde, the course's feedback
page), and the page is opened in headless chromium: every graded cell is named by its check,
each failing check's message fits the page's width (it wraps instead of being cut at the right
edge), and no folder of the grader's appears anywhere in the page. The screenshot goes to
build/screenshots/08-feedback.png.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from mutants_loop_modes import MUTANTS
from submissions import from_training_source, write
from variants import mutant_source

from course import autograde, grade, nbgrader_trusted, paths
from course.trusted import graded_cells

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

BUG = "no-zero-grad-between-steps"


@pytest.fixture(scope="module")
def feedback_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the feedback page of a submission that fails check 1.2, the course folder)."""
    root = tmp_path_factory.mktemp("feedback")
    course = root / "course"
    course.mkdir()
    grade.make_course(course)
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
    expected = [c.check for c in graded_cells()]
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

"""The feedback page of ``make feedback`` as a student reads it.

A throw-away course grades a class of three through the instructor's pipeline (trusted grading,
nbgrader's autograde, the course's feedback page): alice hands in the reference, bob the
untouched release, carol the reference with an ``evaluate`` that records a graph (no
``no_grad``). On alice's and bob's pages:

- a graded test cell shows as its name (check and title), its points and the trusted grader's
  message, never its source: no ``### BEGIN HIDDEN TESTS``, no ``run_check(``, no seed;
  the answer cells still show the student's code;
- the lesson's maths is MathML written into the page (one ``<math>`` per formula, no ``$``
  left in the prose), and no script is loaded from the network (no MathJax from a CDN);
- nothing tells the student to run a cell again: bob's page says what is missing
  ("not written yet: CosineSchedule.get_lr"), not "write it, then run this cell again".

Carol's page gives her every point and says, under check 2.2 only, that the graph her
``evaluate`` records is checked in the notebook but not graded (the trusted grade cannot
recompute it, ``checks.replay.ungraded``).

The fast tests below pin the page's parts without grading: a formula the converter cannot
render stays readable as its LaTeX source in ``<code>``, and the checks' own "not written yet"
message loses its instruction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from bs4 import BeautifulSoup, Tag
from submissions import from_training_source, write
from variants import mutant_source

from checks.diagnose import NOT_GRADED, NOT_WRITTEN, not_written
from course.assignment import paths
from course.assignment.cells import source_graded_cells as graded_cells
from course.classroom import autograde, nbgrader_trusted
from course.classroom.feedback import feedback_message, graded_title, math_html

STUDENTS = ("alice", "bob")  # the reference, the untouched release
CAROL = "carol"  # the reference, its evaluate without no_grad: a bug the grade leaves out
RERUN = "run this cell again"


# ----------------------------------------------------------------------------- the pages
@pytest.fixture(scope="module")
def pages(
        copy_course: Callable[[Path], None],
        tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """student -> the HTML of their feedback page."""
    root = tmp_path_factory.mktemp("feedback-page")
    course = root / "course"
    course.mkdir()
    copy_course(course)
    downloads = root / "downloads"
    write(from_training_source(paths.REFERENCE.read_text()), downloads / "alice.ipynb")
    (downloads / "bob.ipynb").write_bytes(
        (course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK).read_bytes())
    write(from_training_source(mutant_source(_graph_in_evaluate())), downloads / "carol.ipynb")
    assert autograde.main([str(downloads), "--course", str(course)]) == 0
    assert nbgrader_trusted.feedback(course, [*STUDENTS, CAROL], jobs=2) == []
    return {s: (course / "feedback" / s / paths.ASSIGNMENT / "07_training.html").read_text()
            for s in (*STUDENTS, CAROL)}


def _graph_in_evaluate() -> Any:
    """The catalog's mutant whose evaluate records a graph: 2.2 fails on it in the notebook,
    and the trusted grade leaves it out."""
    from mutants_loop_modes import MUTANTS

    return next(m for m in MUTANTS if m.name == "evaluate-without-no-grad")


def _graded_panel(soup: BeautifulSoup, grade_id: str) -> Tag:
    """The cell on the page that holds the anchor of graded cell ``grade_id``."""
    anchor = soup.find("a", attrs={"name": grade_id})
    assert anchor is not None, f"no anchor for the graded cell {grade_id} on the page"
    cell = anchor.find_parent("div", class_="cell")
    assert cell is not None, f"the anchor of {grade_id} is in no cell"
    return cell


def _formulas(source: str) -> list[str]:
    """The formulas of a markdown text, as the lesson writes them ($$...$$ and $...$)."""
    return re.findall(r"\$\$.+?\$\$|\$.+?\$", source, flags=re.S)


@pytest.mark.slow
@pytest.mark.parametrize("student", STUDENTS)
def test_graded_cells_show_name_points_and_message_never_source(
        pages: dict[str, str], student: str) -> None:
    """Each graded test cell: its name, points and message, no source; answer cells: code."""
    html = pages[student]
    assert "BEGIN HIDDEN TESTS" not in html and "END HIDDEN TESTS" not in html
    soup = BeautifulSoup(html, "html.parser")
    passed = student == "alice"
    for cell in graded_cells():
        panel = _graded_panel(soup, cell.grade_id)
        text = panel.get_text(" ", strip=True)
        where = f"{student}'s graded cell {cell.grade_id}"
        assert "run_check(" not in text and "seed=" not in text, (
            f"{where} shows the test cell's source: {text[:300]!r}")
        assert panel.find(class_="input_area") is None and panel.find(
            class_="highlight") is None, f"{where} shows a source area"
        assert graded_title(cell.grade_id) in text, f"{where} is not named: {text[:200]!r}"
        score = cell.points if passed else 0.0
        assert f"Score: {score} / {cell.points}" in text, f"{where}: no points in {text!r}"
        if passed:
            assert "passed (trusted grading)" in text, f"{where}: no message in {text!r}"
        else:
            message = panel.find(class_="output_error")
            assert message is not None and NOT_WRITTEN in message.get_text(), (
                f"{where}: no trusted message in {text!r}")
    if not passed:
        first = _graded_panel(soup, graded_cells()[0].grade_id).get_text(" ", strip=True)
        assert "not written yet: CosineSchedule.get_lr" in first, first
        return
    # the answer cells still show the student's code
    answers = [label for label in soup.find_all("span", class_="nbgrader-label")
               if label.get_text().startswith("Your answer")]
    assert len(answers) >= 7, f"expected the 7 answer cells labelled, found {len(answers)}"
    code = " ".join(a.find_parent("div", class_="panel").get_text() for a in answers)
    for definition in ("def get_lr", "def clip_grad_norm", "def train_epoch", "def evaluate"):
        assert definition in code, f"alice's answer cells do not show {definition!r}"


@pytest.mark.slow
@pytest.mark.parametrize("student", STUDENTS)
def test_maths_is_mathml_and_nothing_loads_from_the_network(
        pages: dict[str, str], student: str) -> None:
    soup = BeautifulSoup(pages[student], "html.parser")
    lesson = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
    formulas = [f for c in lesson.cells if c.cell_type == "markdown"
                for f in _formulas(c.source)]
    assert len(formulas) >= 10, f"the lesson's formulas were not found: {formulas}"
    prose = soup.find_all("div", class_="text_cell_render")
    maths = [m for div in prose for m in div.find_all("math")]
    assert len(maths) == len(formulas), (
        f"expected one <math> per formula of the lesson ({len(formulas)}), found {len(maths)}")
    assert not soup.find_all("code", class_="tex"), "a lesson formula was left as LaTeX source"
    blocks = [m for m in maths if m.get("display") == "block"]
    assert len(blocks) == sum(f.startswith("$$") for f in formulas)
    assert any(m.find("mfrac") and m.find("mi", string="π") for m in blocks), (
        "the cosine schedule's formula is not a MathML fraction with pi")
    assert any(m.find("msqrt") for m in blocks), "the global norm is not a MathML square root"
    mtexts = " ".join(t.get_text() for m in maths for t in m.find_all("mtext"))
    assert "max_norm" in mtexts and "\\" not in mtexts, mtexts
    for div in prose:
        for node in div.find_all(["code", "pre", "math"]):
            node.extract()
        text = div.get_text()
        assert "$" not in text and "\\frac" not in text, (
            f"LaTeX left in the prose: {text.strip()[:300]!r}")
    for script in soup.find_all("script"):
        source = script.get("src", "")
        assert not source, f"the page loads a script: {source}"
        assert "mathjax" not in script.get_text().lower(), "the page still configures MathJax"
    for link in soup.find_all("link"):
        assert not link.get("href", "").startswith(("http:", "https:", "//")), link
    assert "cdn." not in pages[student]


@pytest.mark.slow
def test_a_bug_the_grade_leaves_out_is_said_under_its_check(pages: dict[str, str]) -> None:
    """Carol's evaluate records a graph: every check gives its points, and check 2.2's panel
    says, after its confirmation, that this is checked in the notebook and not graded, with
    what was expected and seen; no other panel says anything but its confirmation."""
    soup = BeautifulSoup(pages[CAROL], "html.parser")
    for cell in graded_cells():
        panel = _graded_panel(soup, cell.grade_id)
        text = panel.get_text(" ", strip=True)
        assert f"Score: {cell.points} / {cell.points}" in text, f"{cell.grade_id}: {text!r}"
        assert "passed (trusted grading)" in text and panel.find(class_="output_error") is None
        if cell.check == "2.2":
            said = panel.find(class_="output_stream").get_text()
            assert said.index("passed (trusted grading)") < said.index(NOT_GRADED), said
            assert "requires_grad of the model's outputs inside evaluate's forward" in said
            assert "a graph was recorded during evaluate: wrap the loop in no_grad()" in said
        else:
            assert NOT_GRADED not in text, f"{cell.grade_id} says {text!r}"
    assert NOT_GRADED not in pages["alice"]


@pytest.mark.slow
def test_no_message_tells_the_student_to_run_a_cell_again(pages: dict[str, str]) -> None:
    for student, html in pages.items():
        assert RERUN not in html, f"{student}'s page says {RERUN!r}"
    bob = BeautifulSoup(pages["bob"], "html.parser").get_text()
    assert "not written yet: CosineSchedule.get_lr" in bob
    assert "this check runs CosineSchedule.get_lr" not in bob


# ----------------------------------------------------------------------------- the parts
class _Replayed(NotImplementedError):
    """A stub's NotImplementedError as the trusted grader replays it."""

    __replayed__ = {"innermost": "CosineSchedule.get_lr"}  # noqa: RUF012 - read by checks


def test_the_not_written_message_says_only_what_is_missing() -> None:
    said = not_written(_Replayed())
    assert RERUN in said, "the checks' message changed: check what the page filters"
    assert feedback_message(said) == "not written yet: CosineSchedule.get_lr"
    first = "first, your notebook did not run cleanly: the answer cell answer_x raised NameError"
    assert feedback_message(f"{first}\n{said}") == (
        f"{first}\nnot written yet: CosineSchedule.get_lr")
    kept = "loss after 3 steps: expected 0.25, got 0.5\n  the optimizer steps once per window"
    assert feedback_message(kept) == kept


@pytest.mark.parametrize("tex", [
    r"\frac{1}{",  # the converter refuses it
    r"\arg\min_x f(x)",  # a command it passes through as text
    r"\text{<b}oom",  # text it would copy raw into the page
    r"\href{javascript:alert(1)}{x}",  # a link
    r"\style{color:red}{x}",  # a style
])
@pytest.mark.parametrize("display", [False, True])
def test_a_formula_the_converter_cannot_render_stays_its_latex_source(
        tex: str, display: bool) -> None:
    html = math_html(tex, display=display)
    soup = BeautifulSoup(f"<p>{html}</p>", "html.parser")
    code = soup.find("code", class_="tex")
    assert code is not None and "<math" not in html, html
    assert code.get_text() == tex, f"the source is not shown as written: {html}"
    assert soup.p.get_text() == tex, f"the formula changes what follows it: {html}"


def test_a_formula_it_renders_is_mathml_with_text_mode_escapes_resolved() -> None:
    html = math_html(r"\text{lr}(e) = \text{min\_lr} + \frac{1}{2}", display=True)
    math = BeautifulSoup(html, "html.parser").find("math")
    assert math is not None and math.get("display") == "block", html
    assert [t.get_text() for t in math.find_all("mtext")] == ["lr", "min_lr"]
    assert math.find("mfrac") is not None


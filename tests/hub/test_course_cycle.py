"""The course's whole cycle on a real JupyterHub (the session's hub, tests/hub/conftest.py), as
its users go through it, with a screenshot of each step in build/screenshots/hub-*.png:

1. the instructor releases the assignment (``nbgrader release_assignment`` in their course,
   which the hub set up as ``make release`` leaves it);
2. student A logs in through the hub's login page in a real browser (Debian's chromium), opens
   the Assignment List, fetches, opens the notebook (no solution in it), writes the answers,
   runs Validate (nbgrader's dialog: success) and submits;
3. student B submits the untouched release; student C submits the answers, then a version with
   a bug (the later counts);
4. the instructor collects; the course's trusted grading (``course.classroom.autograde`` and
   ``course.classroom.nbgrader_trusted feedback``: what ``make autograde`` and ``make feedback``
   run, here on the instructor's course root) grades and writes feedback; the instructor releases
   it;
5. each student fetches their feedback (A from the Assignment List in the browser) and sees
   their own score and messages: A 100, B 0, C as graded, never anyone else's.

Students B and C and the instructor type the guide's commands (docs/instructor-guide.md, its
``hub-cycle`` block, read here line by line) into their servers' real terminals (JupyterLab's
terminal websocket: the instructor's a login shell, a student's the students' configuration's
shell, beside the served folder with their environment first on PATH); root types its one
line on the grading host."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from hub_accounts import ALICE, BOB, CAROL, INSTRUCTOR, in_terminal, log_in
from submissions import from_training_source
from variants import mutant_source

from course.assignment import paths
from course.authoring import release
from course.classroom import autograde
from course.classroom import hub as hubmod

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

ASSIGNMENT = paths.ASSIGNMENT
VALIDATE_TIMEOUT = 240.0  # nbgrader's Validate runs the whole notebook in the student's server
SCORE = re.compile(rf"{ASSIGNMENT} \(Score: ([\d.]+) / ([\d.]+)\)")


def _bug() -> str:
    """A training.py with one real bug: the cosine schedule's missing half."""
    import mutants_schedule_clipping

    bug, = (m for m in mutants_schedule_clipping.MUTANTS if m.name == "cosine_missing_half")
    return mutant_source(bug)


def _answers(path: Path, owner: str, code: str) -> None:
    """The student writes their answers (``code``: a whole training.py) into their fetched
    notebook, keeping the release's cells (ids, metadata), as an editor would save it."""
    released = nbformat.read(path, as_version=4)
    answered = from_training_source(code)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in answered.cells}
    for cell in released.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in by_id:
            cell.source = by_id[grade_id].source
    nbformat.write(released, path)
    shutil.chown(path, owner, owner)


def guide_steps(guide: Path = paths.REPO / "docs" / "instructor-guide.md"
                ) -> dict[int, list[tuple[str, str]]]:
    """The guide's hub cycle: step number -> (who types it, the line), from its ``hub-cycle``
    block (``instructor$``, ``student$``, ``root#`` prompts)."""
    block = guide.read_text().split("<!-- hub-cycle")[1].split("```sh")[1].split("```")[0]
    steps: dict[int, list[tuple[str, str]]] = {}
    for line in (raw.strip() for raw in block.splitlines()):
        if (heading := re.match(r"# (\d+)\.", line)) is not None:
            steps[int(heading.group(1))] = []
        elif line:
            prompt, _, command = line.partition(" ")
            steps[max(steps)].append((prompt.rstrip("$#"), command))
    return steps


STEPS = guide_steps()


def _type(hub: hubmod.Hub, step: int, line: int, student: str = "") -> str:
    """The guide's ``line`` of ``step``, typed where its prompt says: the instructor's or
    ``student``'s server terminal, or root's shell in this repository."""
    who, command = STEPS[step][line]
    if who == "root":
        command = command.replace("INSTRUCTOR", INSTRUCTOR)
        done = subprocess.run(["bash", "-c", command], cwd=paths.REPO, capture_output=True,
                              text=True, timeout=900)
        status, shown = done.returncode, done.stdout + done.stderr
    else:
        status, shown = in_terminal(hub, INSTRUCTOR if who == "instructor" else student,
                                    command)
    assert status == 0, f"step {step}, `{command}` as {who} {student}: {shown[-3000:]}"
    return shown


def test_the_guide_gives_every_step_of_the_cycle() -> None:
    assert [[who for who, _ in STEPS[n]] for n in sorted(STEPS)] == [
        ["instructor"], ["student", "student"], ["instructor"], ["root"],
        ["instructor", "instructor"], ["student"]], STEPS


def _page_text(page: Page) -> str:
    return page.locator("body").inner_text()


def _assignment_list(page: Page) -> None:
    page.locator("#jp-MainMenu .lm-MenuBar-item", has_text="Nbgrader").click()
    page.locator("#jp-mainmenu-nbgrader .lm-Menu-item", has_text="Assignment List").click()
    page.locator("#released_assignments_list").wait_for()


def _submitted(hub: hubmod.Hub, name: str) -> list[Path]:
    inbound = hub.exchange / hubmod.COURSE_ID / "inbound"
    return sorted(inbound.glob(f"{name}+{ASSIGNMENT}+*"))


@pytest.fixture(scope="module")
def course_root(hub: hubmod.Hub) -> Path:
    return hub.account(INSTRUCTOR).home / hubmod.COURSE_FOLDER


def test_the_instructor_releases_the_assignment(hub: hubmod.Hub, course_root: Path) -> None:
    _type(hub, 1, 0)
    released = hub.exchange / hubmod.COURSE_ID / "outbound" / ASSIGNMENT / paths.NOTEBOOK
    assert released.is_file(), f"expected the release in the exchange at {released}"
    text = released.read_text()
    assert "### BEGIN SOLUTION" not in text and "NotImplementedError" in text


def test_student_a_fetches_validates_and_submits_in_the_browser(
        hub: hubmod.Hub, page: Page, screenshot: Callable[..., Path]) -> None:
    log_in(page, hub, ALICE)
    screenshot("hub-01-student-logged-in.png")
    _assignment_list(page)
    released = page.locator("#released_assignments_list")
    released.get_by_text(ASSIGNMENT).wait_for()
    screenshot("hub-02-assignment-list.png")
    released.get_by_role("button", name="Fetch").click()
    fetched = page.locator("#fetched_assignments_list")
    fetched.get_by_text(ASSIGNMENT).first.wait_for()
    notebook = hub.account(ALICE).home / ASSIGNMENT / paths.NOTEBOOK
    assert notebook.is_file(), f"expected the fetched notebook at {notebook}"
    # no line of the reference solution, hidden tests or rubric in what the student got
    assert release.scan(notebook.parent, release.secrets()) == []
    screenshot("hub-03-fetched.png")
    _answers(notebook, ALICE, paths.REFERENCE.read_text())
    page.goto(f"{hub.url}/user/{ALICE}/lab/tree/{ASSIGNMENT}/{paths.NOTEBOOK}",
              wait_until="domcontentloaded")
    toolbar = page.locator(".jp-NotebookPanel-toolbar")
    toolbar.get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(state="visible", timeout=VALIDATE_TIMEOUT * 1000)
    message = dialog.locator("#validation-message").inner_text()
    screenshot("hub-04-validated.png")
    assert "Success! Your notebook passes all the tests." in message, message[:1000]
    dialog.get_by_role("button").last.click()
    _assignment_list(page)
    page.locator("#fetched_assignments_list").get_by_role("button", name="Submit").click()
    page.locator("#submitted_assignments_list").get_by_text(ASSIGNMENT).first.wait_for(
        timeout=60_000)
    screenshot("hub-05-submitted.png")
    assert len(_submitted(hub, ALICE)) == 1


def test_students_b_and_c_submit_from_their_terminals(hub: hubmod.Hub) -> None:
    for name in (BOB, CAROL):
        _type(hub, 2, 0, name)  # fetch
    _type(hub, 2, 1, BOB)  # submit the untouched release
    notebook = hub.account(CAROL).home / ASSIGNMENT / paths.NOTEBOOK
    _answers(notebook, CAROL, paths.REFERENCE.read_text())
    _type(hub, 2, 1, CAROL)
    _answers(notebook, CAROL, _bug())  # a second submission, with a bug: this one counts
    _type(hub, 2, 1, CAROL)
    assert [len(_submitted(hub, n)) for n in (BOB, CAROL)] == [1, 2]


def test_the_instructor_collects_grades_and_returns_feedback(
        hub: hubmod.Hub, course_root: Path) -> None:
    _type(hub, 3, 0)  # collect
    collected = sorted(p.name for p in (course_root / "submitted").iterdir())
    assert collected == sorted((ALICE, BOB, CAROL)), collected
    # trusted grading as root (each sandbox runs as a uid of its own, in control groups);
    # everything it writes in the course is written by the instructor's own process
    _type(hub, 4, 0)
    owner = course_root.stat().st_uid
    roots = [str(p) for p in course_root.rglob("*") if p.lstat().st_uid != owner]
    assert not roots, f"root wrote into the instructor's course: {roots[:10]}"
    graded = {student: score for student, score, _ in autograde.scores(course_root)}
    assert graded[ALICE] == 100 and graded[BOB] == 0 and 0 < graded[CAROL] < 100, graded
    _type(hub, 5, 0)  # the feedback pages, in the instructor's account
    _type(hub, 5, 1)  # released


def _feedback(hub: hubmod.Hub, name: str) -> str:
    pages = sorted((hub.account(name).home / ASSIGNMENT / "feedback").glob(
        f"*/{ASSIGNMENT}.html"))
    assert pages, f"no feedback fetched into {name}'s {ASSIGNMENT}/feedback/"
    return pages[-1].read_text()


def test_each_student_fetches_their_own_feedback(
        hub: hubmod.Hub, course_root: Path, page: Page,
        screenshot: Callable[..., Path]) -> None:
    graded = {student: score for student, score, _ in autograde.scores(course_root)}
    _assignment_list(page)
    submitted = page.locator("#submitted_assignments_list")
    submitted.get_by_role("button", name="Fetch Feedback").first.click()
    submitted.get_by_text("view feedback").first.wait_for(timeout=60_000)
    screenshot("hub-06-feedback-fetched.png")
    for name in (BOB, CAROL):
        _type(hub, 6, 0, name)
    for name in (ALICE, BOB, CAROL):
        text = _feedback(hub, name)
        shown = SCORE.search(re.sub(r"<[^>]+>", " ", text).replace("\n", " "))
        assert shown, f"no score on {name}'s feedback page"
        assert float(shown.group(1)) == pytest.approx(graded[name]), (name, shown.group(0))
        others = [n for n in (ALICE, BOB, CAROL) if n != name]
        assert not any(other in text for other in others), f"{name}'s page names a classmate"
    feedback = sorted((hub.account(ALICE).home / ASSIGNMENT / "feedback").glob("*"))[-1].name
    page.goto(f"{hub.url}/user/{ALICE}/files/{ASSIGNMENT}/feedback/{feedback}/"
              f"{ASSIGNMENT}.html", wait_until="load")
    assert "(Score: 100.0 /" in _page_text(page), _page_text(page)[:500]
    screenshot("hub-07-feedback-page.png", full_page=False)

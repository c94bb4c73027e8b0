"""The instructor's formgrader on the session's real JupyterHub (tests/hub/conftest.py), in a real
browser (Debian's chromium), on a submission made to attack it, with a screenshot of each:

1. Bob resubmits through the exchange: three written answers hold script (an ``<img onerror>``,
   a ``<script>``, an ``<svg onload>``, each of which would mark the page it runs in, in
   ``window.__owned`` and the title, and call a listener these tests serve), and a cell he added
   would leave a file in the instructor's home if it ran on the instructor's account. The
   instructor collects (``nbgrader collect --update``) and root grades it as the guide's hub
   cycle does (``course.classroom.autograde --course ~/course``, for Bob only).
2. The instructor logs in through the hub, opens their formgrader (Manual Grading, 07_training,
   07_training, Bob's submission): no handler ran, the listener heard nothing, each answer is
   on the page as its text (``build/screenshots/hub-formgrader-script-answer.png``). The same
   page, with the answers put back as Bob wrote them, runs nothing either: the course's
   formgrader (``course.classroom.formgrader_view``, loaded by the instructor's server) renders
   a student's markdown inert by itself. The control: the same answers as nbconvert's plain
   markdown renderer writes them (what nbgrader's own page shows) run all three in this
   browser and call the listener: the checks can fail.
3. In Manage Submissions the instructor clicks Autograde for Bob: the dialog shows the course's
   refusal (``KERNEL_REFUSED``: run ``make autograde``), Bob's cell did not run (the same cell
   run on the instructor's account leaves the file) and his autograded notebook is untouched
   (``build/screenshots/hub-formgrader-autograde-button.png``).

The formgrader is the one a grader has on this hub: nbgrader's server extension in the
instructor's own server (``/user/<instructor>/formgrader``, the course root ``~/course`` from the
hub's nbgrader configuration). The screenshots wrap the page's long preformatted lines (layout
only), after every check has read the page.

It runs after the course cycle (test_course_cycle.py: the release, Bob's fetched notebook, the
gradebook); run alone, it releases and fetches what is missing. It changes only Bob's
collected submission and grade and adds a submission of his to the inbound: test_walls.py,
later in the session, still finds the release, the gradebook and Bob's submissions."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from hub_accounts import BOB, INSTRUCTOR, as_account, log_in

from course.assignment import config, paths
from course.classroom import hub as hubmod
from course.classroom import inert, nbgrader_trusted

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

ASSIGNMENT = paths.ASSIGNMENT
NOTEBOOK_ID = paths.NOTEBOOK.removesuffix(".ipynb")
#: Seconds the formgrader's Autograde may take to answer (were it to run the notebook in a
#: kernel, as nbgrader's own would, it executes every cell).
AUTOGRADE_TIMEOUT = 300.0
#: Seconds a handler gets to run once the page has loaded: the control runs all three in well
#: under one.
SETTLE_MS = 2000
#: The file Bob's added cell writes when it runs on the instructor's account (a kernel of the
#: instructor's server): their home, which neither a student nor a grading sandbox can write.
MARKER = Path("/home") / INSTRUCTOR / "a-kernel-ran-bobs-code"
MARKER_CELL = ("# my own scratch cell\n"
               "try:\n"
               f"    open({str(MARKER)!r}, 'w').write('ran')\n"
               "except OSError:\n"
               "    pass\n")


def _attacks(beacon: str) -> dict[str, str]:
    """Bob's written answers, by graded cell: each handler marks the page (``window.__owned``,
    the title) and calls ``beacon``, where the listener counts it."""
    def mark(name: str) -> str:
        return (f"window.__owned=(window.__owned||[]).concat('{name}');"
                f"document.title='owned';fetch('{beacon}/{name}')")

    return {
        "reflection_clipping": ("Global clipping keeps the direction of the update. "
                                f'<img src=x onerror="{mark("img")}">'),
        "reflection_resume": f"<script>{mark('script')}</script>",
        "reflection_accumulation": (f'<svg onload="{mark("svg")}"><circle r="4"></circle>'
                                    "</svg>"),
    }


@dataclass
class Listener:
    """An HTTP server on this machine that only counts what reaches it (the handlers' calls)."""

    server: ThreadingHTTPServer
    heard: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    heard: list[str] = []

    class Count(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            heard.append(self.path)
            self.send_response(204)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Count)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Listener(server, heard)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _nbgrader(hub: hubmod.Hub, name: str, *args: str, cwd: Path | None = None) -> str:
    return as_account(hub, name, [str(hub.account(name).python), "-m", "nbgrader", *args],
                      cwd=cwd)


def _graded_cells(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in notebook.cells
            if c.metadata.get("nbgrader", {}).get("grade_id")}


@dataclass
class Intake:
    """Bob's attacking submission, taken in: where each copy of it is, what it holds."""

    course: Path
    attacks: dict[str, str]
    submitted: Path
    autograded: Path


@pytest.fixture(scope="module")
def intake(hub: hubmod.Hub, listener: Listener) -> Intake:
    course = hub.account(INSTRUCTOR).home / hubmod.COURSE_FOLDER
    released = hub.exchange / hubmod.COURSE_ID / "outbound" / ASSIGNMENT / paths.NOTEBOOK
    if not released.is_file():  # run without the course cycle
        _nbgrader(hub, INSTRUCTOR, "release_assignment", ASSIGNMENT, cwd=course)
    fetched = hub.account(BOB).home / ASSIGNMENT / paths.NOTEBOOK
    if not fetched.is_file():
        _nbgrader(hub, BOB, "fetch_assignment", ASSIGNMENT)
    # Bob writes his answers in the notebook he fetched (the release's cells, ids, metadata)
    attacks = _attacks(listener.url)
    notebook = nbformat.read(fetched, as_version=4)
    cells = _graded_cells(notebook)
    for grade_id, text in attacks.items():
        assert cells[grade_id].cell_type == "markdown", grade_id
        cells[grade_id].source = text
    notebook.cells.insert(1, nbformat.v4.new_code_cell(MARKER_CELL))
    nbformat.write(notebook, fetched)
    shutil.chown(fetched, BOB, BOB)
    _nbgrader(hub, BOB, "submit", ASSIGNMENT)
    # the instructor takes it in (his later submission replaces the cycle's) and root grades
    # it on the instructor's course, as the guide's hub cycle does (make autograde COURSE=...,
    # for Bob only)
    _nbgrader(hub, INSTRUCTOR, "collect", "--update", ASSIGNMENT, cwd=course)
    command = ["-m", "course.classroom.autograde", "--course", str(course), "--student", BOB]
    done = subprocess.run([sys.executable, *command], cwd=paths.REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    taken = Intake(course, attacks,
                   course / "submitted" / BOB / ASSIGNMENT / paths.NOTEBOOK,
                   course / "autograded" / BOB / ASSIGNMENT / paths.NOTEBOOK)
    # collect took the answers as Bob wrote them; the autograded notebook, which the
    # formgrader shows, holds each as its text
    submitted = _graded_cells(nbformat.read(taken.submitted, as_version=4))
    autograded = _graded_cells(nbformat.read(taken.autograded, as_version=4))
    for grade_id, text in attacks.items():
        assert submitted[grade_id].source == text, grade_id
        shown = autograded[grade_id].source
        assert shown.startswith("*This answer held markup") and text in shown, shown
        assert inert.active_part(shown) is None, shown
    assert not MARKER.exists(), "Bob's cell ran on the instructor's account while grading"
    return taken


@pytest.fixture(scope="module")
def formgrader(hub: hubmod.Hub, page: Page) -> str:
    """The instructor logged in through the hub; the address of their formgrader."""
    log_in(page, hub, INSTRUCTOR)
    return f"{hub.url}/user/{INSTRUCTOR}/formgrader"


def _submission_id(course: Path, student: str) -> str:
    from nbgrader.api import Gradebook

    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        return gradebook.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, student).id


def _settled(page: Page) -> None:
    """Wait for the page's load (its images tried), then give any handler time to run."""
    try:
        page.wait_for_load_state("load", timeout=30_000)
    except Exception:  # noqa: BLE001 - a resource that never loads: the settling still counts
        pass
    page.wait_for_timeout(SETTLE_MS)


def _ran(page: Page) -> dict[str, object]:
    return page.evaluate("() => ({owned: window.__owned || null, title: document.title})")


def _wrap_long_lines(page: Page) -> None:
    """For the screenshot only, once every check has read the page: the page's preformatted
    blocks (an answer kept as its text, the dialog's traceback) wrap their long lines instead
    of hiding them behind a horizontal scroll bar. Layout only: no text changes."""
    page.add_style_tag(content="pre, pre code { white-space: pre-wrap !important; "
                               "word-break: break-all; }")


def _answer(page: Page, grade_id: str):  # noqa: ANN202 - Playwright's Locator
    cell = page.locator(".nbgrader_cell").filter(has=page.locator(f"input#{grade_id}"))
    return cell.locator(".text_cell_render")


def test_a_script_answer_runs_nothing_in_the_instructors_formgrader(
        hub: hubmod.Hub, intake: Intake, listener: Listener, formgrader: str, page: Page,
        screenshot: Callable[..., Path]) -> None:
    # as the guide says: Manual Grading, 07_training, 07_training, a submission
    page.goto(formgrader, wait_until="domcontentloaded")
    page.get_by_role("link", name="Manual Grading").first.click()
    page.wait_for_url(re.compile(r"/formgrader/gradebook/?$"))
    page.locator("#main-table").get_by_role("link", name=ASSIGNMENT, exact=True).click()
    page.wait_for_url(re.compile(rf"/formgrader/gradebook/{ASSIGNMENT}/?$"))
    page.locator("#main-table").get_by_role("link", name=NOTEBOOK_ID, exact=True).click()
    page.wait_for_url(re.compile(rf"/formgrader/gradebook/{ASSIGNMENT}/{NOTEBOOK_ID}/?$"))
    submission = _submission_id(intake.course, BOB)
    link = f'a.name-shown[href$="/formgrader/submissions/{submission}"]'
    page.locator("#main-table").locator(link).click()
    page.wait_for_url(re.compile(rf"/formgrader/submissions/{submission}"))
    first = next(iter(intake.attacks))
    _answer(page, first).wait_for()
    _settled(page)
    seen = _ran(page)
    assert seen["owned"] is None, f"a handler of Bob's answers ran in the formgrader: {seen}"
    assert seen["title"] != "owned", seen
    assert listener.heard == [], f"the formgrader's page called the listener: {listener.heard}"
    for grade_id, text in intake.attacks.items():
        shown = _answer(page, grade_id).inner_text()
        assert text in shown, f"{grade_id}: the answer is not on the page as its text: {shown!r}"
        assert "shown as its text" in shown, shown
    _wrap_long_lines(page)
    # the first answer's panel just under the formgrader's bar (Manual Grading / 07_training /
    # 07_training / the student's name): the three answers below it
    _answer(page, first).evaluate("e => window.scrollTo(0, e.closest('.nbgrader_cell')"
                                  ".getBoundingClientRect().top + window.scrollY - 70)")
    screenshot("hub-formgrader-script-answer.png", full_page=False)

    # a second layer: the course's formgrader renders a student's markdown inert by itself
    # (course.classroom.formgrader_view): the same page with Bob's answers as he wrote them,
    # as nbgrader's own autograde would leave them, runs nothing either
    kept = intake.autograded.read_bytes()
    owner = intake.autograded.stat()
    raw = nbformat.read(intake.autograded, as_version=4)
    for grade_id, cell in _graded_cells(raw).items():
        if grade_id in intake.attacks:
            cell.source = intake.attacks[grade_id]
    try:
        nbformat.write(raw, intake.autograded)
        page.reload(wait_until="domcontentloaded")
        _answer(page, first).wait_for()
        _settled(page)
        seen = _ran(page)
        shown_cells = {g: _answer(page, g).count() for g in intake.attacks}
    finally:
        intake.autograded.write_bytes(kept)
        os.chown(intake.autograded, owner.st_uid, owner.st_gid)
    assert seen["owned"] is None and seen["title"] != "owned", seen
    assert listener.heard == [], listener.heard
    assert set(shown_cells.values()) == {1}, shown_cells  # each answer's cell on the page

    # the control: Bob's answers as a plain markdown renderer writes them (nbconvert's, which
    # nbgrader's own formgrader page uses), in this browser, run every handler and call the
    # listener: the checks above can fail
    from nbconvert.filters.markdown import markdown2html_mistune

    markup = "".join(markdown2html_mistune(text) for text in intake.attacks.values())
    page.set_content(f"<html><head><title>control</title></head><body>{markup}</body></html>")
    try:
        page.wait_for_function("() => (window.__owned || []).length === 3", timeout=15_000)
    except Exception as error:  # noqa: BLE001 - said as what the control saw
        pytest.fail(f"the control did not run Bob's handlers ({error}); it saw {_ran(page)}: "
                    "the checks above prove nothing")
    seen = _ran(page)
    assert sorted(seen["owned"]) == ["img", "script", "svg"] and seen["title"] == "owned", seen
    page.wait_for_timeout(SETTLE_MS)
    assert sorted(listener.heard) == ["/img", "/script", "/svg"], listener.heard
    assert intake.autograded.read_bytes() == kept


def test_the_autograde_button_shows_the_refusal_and_runs_no_student_code(
        hub: hubmod.Hub, intake: Intake, formgrader: str, page: Page,
        screenshot: Callable[..., Path]) -> None:
    # the control: Bob's cell, run on the instructor's account, leaves the marker
    python = str(hub.account(INSTRUCTOR).python)
    as_account(hub, INSTRUCTOR, [python, "-c", MARKER_CELL], timeout=60)
    assert MARKER.is_file(), "Bob's cell, run as the instructor, left no marker"
    MARKER.unlink()
    before = intake.autograded.read_bytes()
    # Manage Assignments, the assignment's submissions, Bob's Autograde
    page.goto(formgrader, wait_until="domcontentloaded")
    page.get_by_role("link", name="Manage Assignments").first.click()
    page.wait_for_url(re.compile(r"/formgrader/manage_assignments/?$"))
    page.locator(f'#main-table a[href$="/formgrader/manage_submissions/{ASSIGNMENT}"]').click()
    page.wait_for_url(re.compile(rf"/formgrader/manage_submissions/{ASSIGNMENT}/?$"))
    row = page.locator("#main-table tr").filter(
        has=page.locator("td.student-id", has_text=re.compile(rf"^{re.escape(BOB)}$")))
    row.locator("td.autograde a").click()
    dialog = page.locator(".modal-dialog")
    dialog.wait_for(state="visible", timeout=AUTOGRADE_TIMEOUT * 1000)
    page.wait_for_timeout(500)  # the dialog's fade-in
    shown = dialog.inner_text()
    _wrap_long_lines(page)
    screenshot("hub-formgrader-autograde-button.png", full_page=False)
    assert page.locator("#error-modal").is_visible(), f"not an error dialog: {shown[:2000]}"
    said = " ".join(shown.split())
    assert " ".join(nbgrader_trusted.KERNEL_REFUSED.split()) in said, shown[:3000]
    assert "make autograde" in said
    assert not MARKER.exists(), "the formgrader's Autograde ran Bob's code as the instructor"
    assert intake.autograded.read_bytes() == before, "the autograded notebook was rewritten"

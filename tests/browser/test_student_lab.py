"""The student's JupyterLab holds the student's nbgrader tools only.

``binder/jupyter-student/`` is the Jupyter configuration every student environment installs
into its ``etc/jupyter`` (``make lab``'s student venv, the Binder image, a hub image). Here a
JupyterLab from this venv reads it through ``JUPYTER_CONFIG_PATH`` (which outranks the venv's
own ``nbgrader.json``), launched the way ``make lab`` launches it: from the repository folder,
serving the working copy ``work/07_training/`` of a release. In that lab:

- no Formgrader, Create Assignment, Course List or Assignment List: no Nbgrader menu, no such
  command registered or offered by the command palette, and their server extensions not loaded;
- nothing about courses or an exchange in the page or the server log, where a lab with
  nbgrader's defaults logs "The course directory root is not a subdirectory of the notebook
  server root" (make lab starts in the repository, the course root nbgrader assumes);
- the Validate button in the notebook toolbar, and clicking it shows nbgrader's validation
  result for the released notebook (checks "not written yet");
- on a student's first open (no user settings yet) no "Would you like to get notified about
  official Jupyter news?" prompt: the configuration's lab setting defaults (``overrides.d``,
  installed into the lab's application settings folder) answer it. The control, the same lab
  without them, shows the prompt;
- a check message longer than the Validate dialog is wide wraps inside it (the configuration's
  ``custom/custom.css``); the control, the same dialog with that stylesheet off, overflows;
- a terminal (File > New > Terminal, or the Launcher's from a folder) finds the environment's
  commands first on PATH and opens in the working copy, where ``tinytorch complete
  07_training.ipynb`` is typed, although ``make lab`` starts JupyterLab from the repository,
  which holds a ``tinytorch/`` of its own, without the student venv on PATH. The control, a lab
  without the configuration, opens its terminals in the repository without those commands.

Two controls make those absences mean something: the same lab with nbgrader's defaults shows
the instructor entries and logs the error, and the configuration for a hub with an exchange
(the assignment list kept on) shows the Assignment List and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sysconfig
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from course.assignment import paths
from course.student import environment as student_env

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from .conftest import JupyterLab

pytestmark = pytest.mark.slow

VALIDATE_TIMEOUT = 120.0  # s: nbgrader runs the notebook (about 4 s here)
INSTRUCTOR_ENTRIES = ("Formgrader", "Create Assignment", "Course List")
EXCHANGE_ENTRIES = ("Assignment List",)
#: What nbgrader shows or logs when its instructor or exchange tools run without a course or an
#: exchange (the course list, the assignment list, the formgrader).
ERRORS = (
    "Error fetching courses",
    "The exchange directory does not exist",
    "ExchangeError",
    "The course directory root is not a subdirectory of the notebook server root",
)
#: Server extensions a student's server must not load, by the line nbgrader logs when it does.
INSTRUCTOR_SERVER_LOGS = (
    "Loading the formgrader nbgrader serverextension",
    "Loading the course_list nbgrader serverextension",
    "Loading the assignment_list nbgrader serverextension",
)
VALIDATE_LOG = "Loading the validate_assignment nbgrader serverextension"
NEWS = "Would you like to get notified about official Jupyter news?"
NEWS_WAIT = 20.0  # s: the prompt shows within a second or two of the lab being restored
NOTIFICATIONS = "@jupyterlab/apputils-extension:notification"
#: The environment's scripts folder, where pip puts its commands: these labs run from this venv,
#: which stands in for the student's (where ``tinytorch`` is one of them).
BIN = sysconfig.get_path("scripts")
#: What a terminal is asked to print: its folder, its PATH and where ``jupyter`` is found.
#: Each value follows a marker the shell computes ("tt2:"), so the terminal's echo of a typed
#: line (``tt$((1+1)):``) never reads as a value, whatever prompt precedes the output: ``sh``
#: (``$SHELL`` unset) prints "# " or "$ " before it, on the same line.
TERMINAL_LINES = ['echo "tt$((1+1)):cwd=$(pwd -P)"', 'echo "tt$((1+1)):path=$PATH"',
                  'echo "tt$((1+1)):jupyter=$(command -v jupyter)"']
#: A value the shell printed for TERMINAL_LINES: the rest of its line.
TERMINAL_VALUE = re.compile(r"tt2:(cwd|path|jupyter)=([^\r\n]*)")
ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def _path_without(folder: str) -> str:
    """This process's PATH without ``folder``: a shell where no venv is activated, as
    ``make lab`` is typed (it runs ``.venv-student/bin/jupyter`` by its path)."""
    kept = [entry for entry in os.environ.get("PATH", "").split(os.pathsep)
            if entry and os.path.realpath(entry) != os.path.realpath(folder)]
    return os.pathsep.join(kept)


def _lab(start: Callable[..., JupyterLab], base: Path, course_dir: Path,
         config_path: Path | None, **options: object) -> JupyterLab:
    """A lab serving ``repo/work/07_training`` (a release) launched from ``repo``, which holds
    a ``tinytorch/`` of its own as the course's repository does, with BIN not on PATH, by an
    account whose home has no shell startup files (this machine's ``~/.bashrc`` would put its
    own folders on a terminal's PATH)."""
    repo = base / "repo"
    work = repo / "work" / paths.ASSIGNMENT
    shutil.copytree(course_dir / "release" / paths.ASSIGNMENT, work)
    (repo / "tinytorch").mkdir()
    home = base / "student-home"
    home.mkdir()
    return start(work, cwd=repo, config_path=config_path,
                 env={"PATH": _path_without(BIN), "HOME": str(home)}, **options)


def _first_open(start: Callable[..., JupyterLab], base: Path, course_dir: Path, *,
                settings: bool) -> JupyterLab:
    """A student's first lab: the configuration installed into a prefix as ``make lab``
    installs it into the student venv (``etc/jupyter`` and, with ``settings``, the lab's
    setting defaults), and no user settings at all."""
    prefix = base / "prefix"
    prefix.mkdir()
    student_env.install_config(prefix)
    app_settings = prefix / student_env.LAB_SETTINGS_DIR
    if not settings:
        shutil.rmtree(app_settings)
        app_settings.mkdir(parents=True)
    return _lab(start, base, course_dir, prefix / "etc" / "jupyter",
                app_settings_dir=app_settings, user_settings=False)


@pytest.fixture(scope="module")
def first_open_lab(start_jupyterlab: Callable[..., JupyterLab], course_dir: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> JupyterLab:
    return _first_open(start_jupyterlab, tmp_path_factory.mktemp("first"), course_dir,
                       settings=True)


@pytest.fixture(scope="module")
def first_open_without_defaults(start_jupyterlab: Callable[..., JupyterLab], course_dir: Path,
                                tmp_path_factory: pytest.TempPathFactory) -> JupyterLab:
    """The control: the same, without the configuration's lab setting defaults."""
    return _first_open(start_jupyterlab, tmp_path_factory.mktemp("first-control"), course_dir,
                       settings=False)


@pytest.fixture(scope="module")
def student_lab(start_jupyterlab: Callable[..., JupyterLab], course_dir: Path,
                tmp_path_factory: pytest.TempPathFactory) -> JupyterLab:
    """With the students' configuration as the repository holds it."""
    assert (student_env.CONFIG / "labconfig").is_dir(), student_env.CONFIG
    return _lab(start_jupyterlab, tmp_path_factory.mktemp("student"), course_dir,
                student_env.CONFIG)


@pytest.fixture(scope="module")
def default_lab(start_jupyterlab: Callable[..., JupyterLab], course_dir: Path,
                tmp_path_factory: pytest.TempPathFactory) -> JupyterLab:
    """With nbgrader's own defaults (every extension on): the control."""
    return _lab(start_jupyterlab, tmp_path_factory.mktemp("default"), course_dir, None)


@pytest.fixture(scope="module")
def hub_lab(start_jupyterlab: Callable[..., JupyterLab], course_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> JupyterLab:
    """With the configuration the instructor guide gives a hub with an exchange
    (``python -m course.student.environment config --exchange``)."""
    base = tmp_path_factory.mktemp("hub")
    prefix = base / "prefix"
    prefix.mkdir()
    student_env.install_config(prefix, exchange=True)
    return _lab(start_jupyterlab, base, course_dir, prefix / "etc" / "jupyter")


def _menu_bar(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#jp-MainMenu .lm-MenuBar-itemLabel").all_inner_texts()]


def _nbgrader_menu(page: Page) -> list[str]:
    """The visible entries of the Nbgrader menu (opened, read, closed)."""
    page.locator("#jp-MainMenu .lm-MenuBar-item", has_text="Nbgrader").click()
    menu = page.locator("#jp-mainmenu-nbgrader")
    menu.wait_for(state="visible")
    labels = menu.locator(".lm-Menu-item:visible .lm-Menu-itemLabel").all_inner_texts()
    page.keyboard.press("Escape")
    return [label.strip() for label in labels]


def _nbgrader_commands(page: Page) -> dict[str, str]:
    """nbgrader's commands registered in the lab, with their labels."""
    return page.evaluate("""() => Object.fromEntries(window.jupyterapp.commands.listCommands()
        .filter((id) => id.startsWith("nbgrader:"))
        .map((id) => [id, window.jupyterapp.commands.label(id)]))""")


def _palette(page: Page, query: str) -> list[str]:
    """The command palette's entries for ``query`` (opened, read, closed)."""
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:activate-command-palette')")
    search = page.locator(".jp-ModalCommandPalette .lm-CommandPalette-input")
    search.wait_for(state="visible")
    search.fill(query)
    palette = page.locator(".jp-ModalCommandPalette .lm-CommandPalette-content")
    # The palette redraws on the next frame: wait until it shows entries or says it has none.
    palette.locator(".lm-CommandPalette-item, .lm-CommandPalette-emptyMessage").first.wait_for()
    labels = palette.locator(".lm-CommandPalette-item .lm-CommandPalette-itemLabel")
    found = [t.strip() for t in labels.all_inner_texts()]
    search.fill("")
    page.keyboard.press("Escape")
    return found


def _server_log(lab: JupyterLab) -> str:
    return lab.log_path.read_text(errors="replace")


def test_student_lab_offers_no_instructor_or_exchange_tool(
    page: Page, student_lab: JupyterLab, screenshot: Callable[..., Path]
) -> None:
    student_lab.open_notebook(page, paths.NOTEBOOK)
    assert "Nbgrader" not in _menu_bar(page), (
        f"expected no Nbgrader menu (its entries are instructor and exchange tools); the menu "
        f"bar is {_menu_bar(page)}"
    )
    assert _nbgrader_commands(page) == {}, (
        f"expected no nbgrader command registered; found {_nbgrader_commands(page)}"
    )
    for query in ("nbgrader", *INSTRUCTOR_ENTRIES, *EXCHANGE_ENTRIES):
        offered = _palette(page, query)
        unwanted = [e for e in offered
                    if any(w.lower() in e.lower() for w in (*INSTRUCTOR_ENTRIES,
                                                            *EXCHANGE_ENTRIES))]
        assert not unwanted, f"the command palette offers {unwanted} for {query!r}"
    body = page.locator("body").inner_text()
    shown = [e for e in ERRORS if e in body] + re.findall(r"[^\n]*\bexchange\b[^\n]*", body, re.I)
    assert not shown, f"expected no course or exchange message in the page; saw {shown}"
    toolbar = page.locator(".jp-NotebookPanel-toolbar")
    assert toolbar.get_by_role("button", name="Validate").count() == 1, (
        f"expected nbgrader's Validate button in the notebook toolbar; it reads "
        f"{toolbar.inner_text()!r}"
    )
    screenshot("07-student-lab.png")


def test_validate_button_shows_nbgraders_result(
    page: Page, student_lab: JupyterLab, screenshot: Callable[..., Path]
) -> None:
    student_lab.open_notebook(page, paths.NOTEBOOK)
    page.locator(".jp-NotebookPanel-toolbar").get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.wait_for(state="visible", timeout=VALIDATE_TIMEOUT * 1000)
    except Exception as error:  # Playwright's TimeoutError
        pytest.fail(f"expected nbgrader's validation dialog within {VALIDATE_TIMEOUT:.0f} s "
                    f"of clicking Validate ({error}). Server log:\n{student_lab.log_tail()}")
    header = dialog.locator(".jp-Dialog-header").inner_text().strip()
    message = dialog.locator("#validation-message")
    text = message.inner_text()
    assert header == "Validation Results", f"expected nbgrader's dialog; its header is {header!r}"
    # The release's stubs raise NotImplementedError: validation names the unwritten methods.
    assert "validation-failed" in (message.get_attribute("class") or ""), text[:500]
    assert "The following cell failed" in text and "not written yet" in text, text[:500]
    assert "CosineSchedule.get_lr" in text, text[:500]
    screenshot("08-student-validate.png")
    dialog.get_by_role("button").last.click()
    dialog.wait_for(state="hidden")


def test_student_server_loads_validate_only(student_lab: JupyterLab) -> None:
    """Last of the student lab's tests, so its log covers opening the notebook and validating."""
    log = _server_log(student_lab)
    assert VALIDATE_LOG in log, f"expected {VALIDATE_LOG!r} in the server log:\n{log[-3000:]}"
    loaded = [line for line in INSTRUCTOR_SERVER_LOGS if line in log]
    assert not loaded, f"expected these nbgrader server extensions off; the log says {loaded}"
    errors = [e for e in ERRORS if e in log]
    assert not errors, f"expected none of {ERRORS} in the server log; found {errors}:\n{log}"
    assert "Traceback" not in log, f"expected no traceback in the server log:\n{log}"


def test_control_nbgrader_defaults_show_instructor_tools_and_the_error(
    page: Page, default_lab: JupyterLab
) -> None:
    """The checks above can fail: with nbgrader's defaults they see every instructor entry,
    and the server log holds the course-root error."""
    default_lab.open_notebook(page, paths.NOTEBOOK)
    menu = _nbgrader_menu(page)
    for entry in (*INSTRUCTOR_ENTRIES, *EXCHANGE_ENTRIES):
        assert any(entry.lower() in m.lower() for m in menu), f"{entry!r} not in {menu}"
    assert any("Formgrader" in e for e in _palette(page, "Formgrader"))
    assert len(_nbgrader_commands(page)) >= 4, _nbgrader_commands(page)
    log = _server_log(default_lab)
    assert ERRORS[-1] in log, f"expected nbgrader's course-root error in the log:\n{log[-3000:]}"
    assert all(line in log for line in INSTRUCTOR_SERVER_LOGS), log[-3000:]


def test_hub_configuration_keeps_the_assignment_list_only(
    page: Page, hub_lab: JupyterLab
) -> None:
    hub_lab.open_notebook(page, paths.NOTEBOOK)
    assert _nbgrader_menu(page) == list(EXCHANGE_ENTRIES)
    assert list(_nbgrader_commands(page).values()) == list(EXCHANGE_ENTRIES)
    log = _server_log(hub_lab)
    assert INSTRUCTOR_SERVER_LOGS[-1] in log, log[-3000:]
    assert not [line for line in INSTRUCTOR_SERVER_LOGS[:-1] if line in log], log[-3000:]
    assert ERRORS[-1] not in log, log[-3000:]


def _notification_defaults(lab: JupyterLab) -> dict[str, object]:
    """The defaults the lab's server gives the notification settings (overrides applied)."""
    url = lab.url(f"/lab/api/settings/{NOTIFICATIONS}")
    with urllib.request.urlopen(url, timeout=10) as response:
        schema = json.load(response)["schema"]["properties"]
    return {name: schema[name]["default"] for name in ("fetchNews", "checkForUpdates")}


def test_a_students_first_lab_asks_nothing_about_news(
    page: Page, first_open_lab: JupyterLab, screenshot: Callable[..., Path]
) -> None:
    assert _notification_defaults(first_open_lab) == {"fetchNews": "false",
                                                      "checkForUpdates": False}
    first_open_lab.open_notebook(page, paths.NOTEBOOK)
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    time.sleep(NEWS_WAIT / 4)  # the control's prompt shows within a second of that
    shown = page.get_by_text(NEWS).count()
    assert shown == 0, f"expected no news prompt on a student's first open; it shows {shown}x"
    screenshot("07-student-first-open.png")


def test_control_without_the_defaults_the_news_prompt_shows(
    page: Page, first_open_without_defaults: JupyterLab
) -> None:
    assert _notification_defaults(first_open_without_defaults)["fetchNews"] == "none"
    first_open_without_defaults.open_notebook(page, paths.NOTEBOOK)
    page.get_by_text(NEWS).first.wait_for(state="visible", timeout=NEWS_WAIT * 1000)



#: nbgrader's Validate dialog: one ``pre`` per failing cell's source and per error it printed.
VALIDATION_PRES = ".jp-Dialog #validation-message pre"
CUSTOM_CSS = 'link[rel="stylesheet"][href$="custom/custom.css"]'
LONG_ERROR_NOTEBOOK = "07_training-long-error.ipynb"
LONG_ERROR_CELL = "answer_CosineSchedule"
STUB = "raise NotImplementedError()"
#: A student's get_lr multiplying mismatched arrays: numpy's message alone is 137 characters.
LONG_ERROR = "return float(np.ones((2, 3)) @ np.ones((4, 5)))"
#: Each ``pre`` of the dialog as laid out: its content's width against its own, its right edge
#: against the dialog body's, and its lines of text against the lines the browser drew.
_PRE_LAYOUT = """(pres) => pres.map((pre) => {
  const range = document.createRange();
  range.selectNodeContents(pre);
  const tops = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
  const lines = pre.innerText.replace(/\\n$/, "").split("\\n");
  return {scrollWidth: pre.scrollWidth, clientWidth: pre.clientWidth,
          right: Math.round(pre.getBoundingClientRect().right),
          bodyRight: Math.round(pre.closest(".jp-Dialog-body").getBoundingClientRect().right),
          lines: lines.length, drawn: tops.size, longest: Math.max(...lines.map((l) => l.length)),
          whiteSpace: getComputedStyle(pre).whiteSpace, long: pre.innerText.includes("matmul"),
          text: pre.innerText.slice(0, 120)};
})"""


def _long_error_notebook(lab: JupyterLab) -> str:
    """Beside the release in ``lab``, the release with a written ``get_lr`` that crashes with
    numpy's long message; its name."""
    notebook = json.loads((lab.root_dir / paths.NOTEBOOK).read_text())
    cell = next(c for c in notebook["cells"]
                if c["metadata"].get("nbgrader", {}).get("grade_id") == LONG_ERROR_CELL)
    source = "".join(cell["source"])
    assert STUB in source, f"expected the release's stub in {LONG_ERROR_CELL}:\n{source}"
    cell["source"] = source.replace(STUB, LONG_ERROR, 1)
    (lab.root_dir / LONG_ERROR_NOTEBOOK).write_text(json.dumps(notebook))
    return LONG_ERROR_NOTEBOOK


def test_validate_dialog_wraps_long_lines(
    page: Page, first_open_lab: JupyterLab, screenshot: Callable[..., Path]
) -> None:
    """In a student's lab (the configuration installed as ``make lab`` installs it), a check
    message longer than nbgrader's Validate dialog is wide wraps inside the dialog instead of
    running off it. The control, the same dialog with the configuration's stylesheet turned
    off, shows that the line is long enough to overflow and that the stylesheet wraps it."""
    first_open_lab.open_notebook(page, _long_error_notebook(first_open_lab))
    assert page.locator(CUSTOM_CSS).count() == 1, "expected the lab to load custom/custom.css"
    page.locator(".jp-NotebookPanel-toolbar").get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.wait_for(state="visible", timeout=VALIDATE_TIMEOUT * 1000)
    except Exception as error:  # Playwright's TimeoutError
        pytest.fail(f"expected nbgrader's validation dialog within {VALIDATE_TIMEOUT:.0f} s "
                    f"of clicking Validate ({error}). Server log:\n{first_open_lab.log_tail()}")
    pres = page.locator(VALIDATION_PRES)
    layout = pres.evaluate_all(_PRE_LAYOUT)
    long = [row for row in layout if row["long"]]
    assert len(long) == 1, ("expected one error naming numpy's matmul; the dialog shows "
                            f"{[row['text'] for row in layout[:6]]}")
    overflowing = [row for row in layout if row["scrollWidth"] > row["clientWidth"]
                   or row["right"] > row["bodyRight"]]
    assert not overflowing, f"expected every line inside the dialog; these overflow: {overflowing}"
    assert long[0]["drawn"] > long[0]["lines"], f"expected the long line wrapped: {long[0]}"
    # Each empty written answer is listed by the line that names its question.
    texts = [row["text"] for row in layout]
    for n in range(1, 7):
        named = [i for i, text in enumerate(texts) if text.startswith(f"**R{n}, your answer**")]
        assert len(named) == 1 and "YOUR ANSWER HERE" in texts[named[0]], (n, texts)
        assert texts[named[0] + 1].startswith("You did not provide a response"), texts
    screenshot("validate-dialog.png")

    page.locator(CUSTOM_CSS).evaluate("(link) => { link.disabled = true; }")
    unstyled = next(row for row in pres.evaluate_all(_PRE_LAYOUT) if row["long"])
    assert unstyled["whiteSpace"] == "pre", unstyled
    assert unstyled["scrollWidth"] > unstyled["clientWidth"], (
        f"expected the control (no custom.css) to overflow: {unstyled}")
    dialog.get_by_role("button").last.click()
    dialog.wait_for(state="hidden")


def _terminal(lab: JupyterLab, cwd: str | None = None) -> dict[str, str]:
    """A new terminal's folder, PATH and ``jupyter`` (TERMINAL_LINES), asked for ``cwd``."""
    shown = ESCAPES.sub("", lab.in_terminal(TERMINAL_LINES, cwd=cwd))
    found = dict(TERMINAL_VALUE.findall(shown))
    assert set(found) == {"cwd", "path", "jupyter"}, f"the terminal showed {shown[-2000:]!r}"
    return found


def test_a_students_terminal_opens_beside_the_notebook_with_its_commands(
    first_open_lab: JupyterLab
) -> None:
    """In a student's lab (the configuration installed as ``make lab`` installs it), a terminal
    opened from the menu (no folder asked for) starts in the working copy with the
    environment's commands first on PATH; one opened from the working copy's ``tinytorch/``
    (Launcher, "Open in Terminal") starts there, not in the repository's ``tinytorch/``."""
    root = first_open_lab.root_dir.resolve()
    new = _terminal(first_open_lab)
    assert new["cwd"] == str(root), f"expected the terminal in the working copy {root}: {new}"
    assert new["path"].split(os.pathsep)[0] == BIN, f"expected {BIN} first on PATH: {new}"
    assert new["jupyter"] == os.path.join(BIN, "jupyter"), new
    assert _terminal(first_open_lab, cwd="tinytorch")["cwd"] == str(root / "tinytorch")


def test_control_without_the_configuration_terminals_open_in_the_repository(
    default_lab: JupyterLab
) -> None:
    """The test above can fail: without the students' configuration, the same terminals open
    in the folder the server was started from (``make lab``'s repository) and find none of the
    environment's commands."""
    repo = default_lab.root_dir.parents[1].resolve()
    new = _terminal(default_lab)
    assert new["cwd"] == str(repo), new
    assert new["path"].split(os.pathsep)[0] != BIN and new["jupyter"] == "", new
    assert _terminal(default_lab, cwd="tinytorch")["cwd"] == str(repo / "tinytorch")

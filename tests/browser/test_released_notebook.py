"""The released notebook as a student first meets it, in JupyterLab in a real browser.

A lab with the students' configuration serves a copy of the release (nothing written yet):

- the notebook opens unmodified: once its kernel is idle, JupyterLab does not mark it as
  changed (no dot on its tab), so closing it right away asks nothing (on a machine whose Python
  is not the students' pinned one, the copy records this kernel's version instead);
- a teaching picture of code not written yet shows its red message as a picture (IPython's
  inline PNG), never a ``<Figure size ... with 0 Axes>`` line. The cells above the first such
  picture run one by one (the checks' cells are skipped: they fail, as they should, on a blank
  notebook), and the picture is saved as build/screenshots/09-unwritten-picture.png;
- JupyterLab's own "Run All" on it reaches the last cell: only the graded checks fail (each
  with "not written yet"), every demo cell says "not written yet: <the part>" instead of a
  traceback (build/screenshots/10-run-all-unwritten.png);
- a written answer of the reflection arrives as "YOUR ANSWER HERE", is typed like any markdown
  cell, renders, and is saved in its nbgrader cell (build/screenshots/11-written-answer.png).
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from course.assignment import paths
from course.authoring import build
from course.student import environment as student_env

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from .conftest import JupyterLab

pytestmark = pytest.mark.slow

CELL_TIMEOUT = 60.0  # s: one cell runs
SETTLE = 3.0  # s after the kernel is idle, for late metadata updates to land
PICTURE = "viz.plot_clipping(clip_grad_norm)"
RUN_ALL_TIMEOUT = 180.0  # s: every cell of the release (about 5 s under nbclient)
STOPPED = 8.0  # s of an idle kernel with no new cell run: Run All has stopped

PANEL_JS = """(path) => Array.from(window.jupyterapp.shell.widgets("main")).find(
  (w) => w.context && w.context.path === path && w.sessionContext)"""


@pytest.fixture(scope="module")
def lab(start_jupyterlab: Callable[..., JupyterLab], course_dir: Path,
        tmp_path_factory: pytest.TempPathFactory) -> JupyterLab:
    root = tmp_path_factory.mktemp("released") / paths.ASSIGNMENT
    shutil.copytree(course_dir / "release" / paths.ASSIGNMENT, root)
    here = platform.python_version()
    if here != build.student_python():
        # The kernel here is this venv's Python, not the students' pinned one (whose version
        # tests/project/test_binder.py holds): record this kernel's version, nothing else.
        notebook = root / paths.NOTEBOOK
        data = json.loads(notebook.read_text())
        data["metadata"]["language_info"]["version"] = here
        notebook.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return start_jupyterlab(root, config_path=student_env.CONFIG)


def _dirty(page: Page) -> dict[str, object]:
    return page.evaluate(f"""(path) => {{
      const panel = ({PANEL_JS})(path);
      const tab = document.querySelector(`li.lm-TabBar-tab[data-id="${{panel.id}}"]`);
      return {{ model: panel.model.dirty,
                tab: tab ? tab.classList.contains("jp-mod-dirty") : null }};
    }}""", paths.NOTEBOOK)


def test_the_released_notebook_opens_unmodified(page: Page, lab: JupyterLab) -> None:
    lab.open_notebook(page, paths.NOTEBOOK)
    time.sleep(SETTLE)
    state = _dirty(page)
    assert state == {"model": False, "tab": False}, (
        f"expected the notebook unmodified right after opening; JupyterLab marks it changed "
        f"({state}): something in the released file differs from what JupyterLab writes back")


def _run_cell(page: Page, index: int) -> None:
    page.evaluate(f"""([path, index]) => {{
      const app = window.jupyterapp, panel = ({PANEL_JS})(path);
      app.shell.activateById(panel.id);
      panel.content.activeCellIndex = index;
      return app.commands.execute("notebook:run-cell");
    }}""", [paths.NOTEBOOK, index])
    page.wait_for_function(f"""([path, index]) => {{
      const panel = ({PANEL_JS})(path);
      const cell = panel.content.widgets[index];
      const kernel = panel.sessionContext.session.kernel;
      return cell.model.executionCount !== null && kernel.status === "idle";
    }}""", arg=[paths.NOTEBOOK, index], timeout=CELL_TIMEOUT * 1000)


def test_a_picture_of_unwritten_code_shows_its_message(
        page: Page, lab: JupyterLab, screenshot: Callable[..., Path]) -> None:
    lab.open_notebook(page, paths.NOTEBOOK)
    cells = page.evaluate(f"""(path) => ({PANEL_JS})(path).content.widgets.map((c) => [
      c.model.type, c.model.sharedModel.getSource()])""", paths.NOTEBOOK)
    target = next((i for i, (kind, source) in enumerate(cells)
                   if kind == "code" and source.strip() == PICTURE), None)
    assert target is not None, f"no cell {PICTURE!r} in the released notebook"
    for index, (kind, source) in enumerate(cells[: target + 1]):
        if kind == "code" and "run_check(" not in source:
            _run_cell(page, index)
    outputs = page.evaluate(f"""([path, index]) => ({PANEL_JS})(path).content.widgets[index]
      .model.outputs.toJSON()""", [paths.NOTEBOOK, target])
    kinds = [sorted(o.get("data", {})) or [o["output_type"]] for o in outputs]
    assert any("image/png" in k for k in kinds), f"the picture cell shows {outputs}"
    texts = " ".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", ""))
                     for o in outputs)
    assert "0 Axes" not in texts and "Traceback" not in texts, texts
    picture = page.evaluate(f"""([path, index]) => ({PANEL_JS})(path).content.widgets[index]
      .node.querySelector(".jp-OutputArea-output img") !== null""", [paths.NOTEBOOK, target])
    assert picture, "the picture's PNG is not on the page"
    page.evaluate(f"""([path, index]) => ({PANEL_JS})(path).content.widgets[index]
      .node.scrollIntoView()""", [paths.NOTEBOOK, target])
    screenshot("09-unwritten-picture.png")


def test_run_all_reaches_every_cell_and_only_the_checks_fail(
        page: Page, lab: JupyterLab, screenshot: Callable[..., Path]) -> None:
    lab.open_notebook(page, paths.NOTEBOOK)
    page.evaluate(f"""(path) => {{
      const app = window.jupyterapp, panel = ({PANEL_JS})(path);
      app.shell.activateById(panel.id);
      void app.commands.execute("notebook:run-all-cells");  // the menu's Run > Run All Cells
    }}""", paths.NOTEBOOK)
    # Run All is over when the last code cell has run, or when the kernel has stayed idle
    # with no new cell run for a while (it stopped at an error): then the test says which.
    progress_js = f"""(path) => {{
      const panel = ({PANEL_JS})(path);
      const code = panel.content.widgets.filter((c) => c.model.type === "code");
      return [code.filter((c) => c.model.executionCount !== null).length, code.length,
              code[code.length - 1].model.executionCount !== null,
              panel.sessionContext.session.kernel.status];
    }}"""
    deadline, last, since = time.monotonic() + RUN_ALL_TIMEOUT, None, time.monotonic()
    while time.monotonic() < deadline:
        ran, _, finished, status = page.evaluate(progress_js, paths.NOTEBOOK)
        if finished and status == "idle":
            break
        if (ran, status) != last:
            last, since = (ran, status), time.monotonic()
        elif status == "idle" and time.monotonic() - since > STOPPED:
            break
        time.sleep(0.25)
    cells = page.evaluate(f"""(path) => ({PANEL_JS})(path).content.widgets
      .filter((c) => c.model.type === "code").map((c) => ({{
        id: c.model.id, ran: c.model.executionCount !== null,
        graded: !!((c.model.getMetadata("nbgrader") || {{}}).grade),
        source: c.model.sharedModel.getSource(),
        outputs: c.model.outputs.toJSON() }}))""", paths.NOTEBOOK)
    unrun = [c["id"] for c in cells if not c["ran"]]
    assert not unrun, f"Run All stopped before these cells: {unrun}"
    failed = [c["id"] for c in cells if any(o["output_type"] == "error" for o in c["outputs"])]
    assert failed == [c["id"] for c in cells if c["graded"]], failed
    for cell in cells:
        if "viz.demo()" in cell["source"]:
            text = " ".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", ""))
                            for o in cell["outputs"])
            assert "not written yet: " in text and "Traceback" not in text, (cell["id"], text)
    demo = next(i for i, c in enumerate(cells) if "viz.demo()" in c["source"])
    page.evaluate(f"""([path, id]) => ({PANEL_JS})(path).content.widgets.find(
      (c) => c.model.id === id).node.scrollIntoView()""", [paths.NOTEBOOK, cells[demo]["id"]])
    screenshot("10-run-all-unwritten.png")


def test_a_written_answer_is_typed_rendered_and_saved(
        page: Page, lab: JupyterLab, screenshot: Callable[..., Path], course_dir: Path) -> None:
    """The reflection's answer cells arrive as "YOUR ANSWER HERE" under the line naming the
    question (no example answer), and a student types into one as into any markdown cell: it
    renders, and the saved file holds the answer in the same cell, its nbgrader metadata
    (points, graded by hand) unchanged."""
    lab.open_notebook(page, paths.NOTEBOOK)
    answer = "Global norm: *one factor* keeps the direction of (3, 4)."
    index = page.evaluate(f"""(path) => ({PANEL_JS})(path).content.widgets.findIndex(
      (c) => c.model.id === "reflection_clipping")""", paths.NOTEBOOK)
    assert index >= 0, "no written answer reflection_clipping in the released notebook"
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.scroll_into_view_if_needed()
    shown = cell.locator(".jp-RenderedMarkdown").inner_text().strip()
    assert shown.startswith("R1, your answer") and shown.endswith("YOUR ANSWER HERE"), shown
    cell.dblclick()  # a markdown cell opens for editing on a double-click
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(answer)
    page.keyboard.press("Shift+Enter")  # render it
    rendered = cell.locator(".jp-RenderedMarkdown")
    rendered.wait_for()
    assert rendered.locator("em").inner_text() == "one factor"
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(f"""(path) => !({PANEL_JS})(path).model.dirty""", arg=paths.NOTEBOOK)
    cell.scroll_into_view_if_needed()
    screenshot("11-written-answer.png")
    saved = json.loads((lab.root_dir / paths.NOTEBOOK).read_text())
    written = next(c for c in saved["cells"] if c.get("id") == "reflection_clipping")
    assert "".join(written["source"]) == answer
    released = json.loads((course_dir / "release" / paths.ASSIGNMENT / paths.NOTEBOOK)
                          .read_text())
    before = next(c for c in released["cells"] if c.get("id") == "reflection_clipping")
    assert "".join(before["source"]).endswith(":\n\nYOUR ANSWER HERE"), before["source"]
    assert written["metadata"]["nbgrader"] == before["metadata"]["nbgrader"]
    assert (written["metadata"]["nbgrader"]["points"], written["metadata"]["nbgrader"]["grade"],
            written["metadata"]["nbgrader"]["solution"]) == (3, True, True)

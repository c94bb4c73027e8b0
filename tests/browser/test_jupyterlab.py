"""What a student sees: the Module 07 notebook run in JupyterLab in a real browser.

All cells of the instructor's notebook (solutions included, so every cell runs) are run with
JupyterLab's own "Run All" command in headless chromium. While they run, the live training
view is sampled; afterwards the page is checked: the schedule explorer's sliders redraw its
plot, the live view was updated during the run and ends with a progress bar, no widget failed to
display and no cell has an error or stderr output. Screenshots for humans go to
build/screenshots/.

A second lab runs the notebook with a SyntaxError in train_epoch's answer cell: Run All goes on
past it to the last cell, and every check of the Trainer names that cell, its error and line
(build/screenshots/run-all-syntax-error.png).

The fixtures (server, browser, screenshots) are in this folder's conftest.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

    from .conftest import JupyterLab

pytestmark = pytest.mark.slow

NOTEBOOK_NAME = "07_training.ipynb"
NOTEBOOK_PATH = Path(__file__).resolve().parents[2] / "notebooks" / "source" / "07_training" / \
    NOTEBOOK_NAME  # the instructor's notebook (the lab's copy is conftest's)
EXPLORER_SOURCE = "viz.schedule_explorer(CosineSchedule)"  # the whole cell
LIVE_SOURCE = "viz.train_live("  # part of the cell
RUN_TIMEOUT = 180.0  # s: all cells (about 15 s under nbclient)
REDRAW_TIMEOUT = 30.0  # s: the explorer redraws after a slider moves
SAMPLE_EVERY = 0.1  # s between two looks at the live view
MIN_LIVE_IMAGES = 3  # distinct pictures of the live view seen during the run
SETTLE = 1.0  # s without a new picture (kernel idle) before the explorer counts as redrawn

# Defines window.__tt: the notebook panel, its cells tagged with data-tt-index (their position
# in the notebook) and a snapshot of the run, read through the JupyterLab application object.
HELPERS_JS = r"""
(path) => {
  const hash = (text) => {
    let h = 2166136261;
    for (let i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 16777619); }
    return (h >>> 0).toString(16) + ":" + text.length;
  };
  const panel = () => {
    const app = window.jupyterapp;
    if (!app) return null;
    return Array.from(app.shell.widgets("main")).find(
      (w) => w.context && w.context.path === path && w.content && w.sessionContext) || null;
  };
  const lastImage = (index) => {
    const images = document.querySelectorAll(
      `[data-tt-index="${index}"] .jp-OutputArea-output img`);
    const img = images[images.length - 1];
    return img && img.src ? hash(img.src) : null;
  };
  const tag = () => {
    const p = panel();
    p.content.widgets.forEach((cell, i) => { cell.node.dataset.ttIndex = String(i); });
    return p.content.widgets.map((cell) => ({
      type: cell.model.type, source: cell.model.sharedModel.getSource() }));
  };
  const state = (watched) => {
    const p = panel();
    const kernel = p.sessionContext.session && p.sessionContext.session.kernel;
    const code = p.content.widgets.filter((cell) => cell.model.type === "code");
    const problems = [];
    p.content.widgets.forEach((cell, i) => {
      if (cell.model.type !== "code") return;
      for (const out of cell.model.outputs.toJSON()) {
        if (out.output_type === "error") {
          problems.push(`cell ${i}: ${out.ename}: ${out.evalue}`);
        } else if (out.output_type === "stream" && out.name === "stderr") {
          problems.push(`cell ${i} wrote to stderr: ${String(out.text).slice(0, 300)}`);
        }
      }
    });
    const running = code.filter((cell) =>
      cell.model.executionState === "running" ||
      /\*/.test(cell.node.querySelector(".jp-InputPrompt")?.textContent || "")).length;
    const last = code[code.length - 1];
    return {
      kernel: kernel ? kernel.status : "no kernel",
      executed: code.filter((cell) => cell.model.executionCount !== null).length,
      codeCells: code.length,
      running,
      lastCount: last ? last.model.executionCount : null,
      problems,
      image: watched === null ? null : lastImage(watched),  // of the watched cell
      runError: window.__ttRunError || null,
    };
  };
  window.__tt = { hash, panel, lastImage, tag, state };
  return true;
}
"""

RUN_ALL_JS = """
(path) => {
  const app = window.jupyterapp;
  app.shell.activateById(window.__tt.panel().id);
  app.commands.execute("notebook:run-all-cells").catch((e) => { window.__ttRunError = String(e); });
  return true;
}
"""

# JupyterLab renders both stderr streams and errors (tracebacks) with the stderr mime type.
STDERR_OUTPUTS = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
TRACEBACK_TEXT = "Traceback (most recent call last)"
PROGRESS_BARS = ".widget-hprogress, .widget-vprogress, .widget-progress"  # ipywidgets 8 and 7


@dataclass
class Run:
    """What was seen while JupyterLab ran all cells."""

    explorer: int  # notebook position of the schedule explorer cell
    live: int  # notebook position of the live training cell
    final: dict[str, Any]  # window.__tt.state() once the run ended
    seconds: float
    live_images: list[str] = field(default_factory=list)  # distinct hashes, in order seen
    samples: int = 0


def _cell(page: Page, index: int) -> Locator:
    return page.locator(f'[data-tt-index="{index}"]')


def _describe(state: dict[str, Any]) -> str:
    return (
        f"kernel {state['kernel']}, {state['executed']} of {state['codeCells']} code cells "
        f"executed, {state['running']} running or queued, last cell count {state['lastCount']}, "
        f"problems {state['problems'] or 'none'}, run command error {state['runError']}"
    )


def _find(cells: list[dict[str, str]], what: str, match: Callable[[str], bool]) -> int:
    found = [i for i, c in enumerate(cells) if c["type"] == "code" and match(c["source"])]
    assert len(found) == 1, (
        f"expected exactly one code cell with {what} in {NOTEBOOK_NAME}, found {len(found)} "
        f"(at positions {found})"
    )
    return found[0]


@pytest.fixture(scope="module")
def run(page: Page, jupyterlab: JupyterLab, screenshot: Callable[..., Path]) -> Run:
    """Open the notebook, run all cells with JupyterLab's command, and watch the live view."""
    jupyterlab.open_notebook(page, NOTEBOOK_NAME)
    page.evaluate(HELPERS_JS, NOTEBOOK_NAME)
    # The notebook alone, full width, for the screenshots.
    page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); "
                  "window.jupyterapp.shell.collapseRight(); }")
    cells = page.evaluate("() => window.__tt.tag()")
    explorer = _find(cells, repr(EXPLORER_SOURCE), lambda s: s.strip() == EXPLORER_SOURCE)
    live = _find(cells, repr(LIVE_SOURCE), lambda s: LIVE_SOURCE in s)

    start = time.monotonic()
    page.evaluate(RUN_ALL_JS, NOTEBOOK_NAME)
    seen: list[str] = []
    samples = 0
    stuck_since: float | None = None
    while True:
        state = page.evaluate("(live) => window.__tt.state(live)", live)
        samples += 1
        if state["image"] and state["image"] not in seen:
            seen.append(state["image"])
        idle = state["kernel"] == "idle" and state["running"] == 0
        if idle and state["lastCount"] is not None:
            break
        # Run All stops at the first error: then the kernel idles with the last cell not run.
        if idle and (state["problems"] or state["runError"]):
            stuck_since = stuck_since or time.monotonic()
            if time.monotonic() - stuck_since > 3.0:
                pytest.fail(f"expected every cell to run; the run stopped: {_describe(state)}")
        else:
            stuck_since = None
        if time.monotonic() - start > RUN_TIMEOUT:
            pytest.fail(
                f"expected all cells to finish within {RUN_TIMEOUT:.0f} s; after that: "
                f"{_describe(state)}. Server log:\n{jupyterlab.log_tail()}"
            )
        time.sleep(SAMPLE_EVERY)
    seconds = time.monotonic() - start
    print(f"Run All took {seconds:.1f} s; {samples} samples, {len(seen)} live images seen")

    page.evaluate("() => window.__tt.panel().content.node.scrollTo(0, 0)")
    _cell(page, 0).scroll_into_view_if_needed()
    screenshot("01-notebook-top.png")
    return Run(explorer, live, state, seconds, seen, samples)


def test_run_all_executes_every_code_cell(run: Run) -> None:
    final = run.final
    assert final["executed"] == final["codeCells"], (
        f"expected all {final['codeCells']} code cells to have an execution count after Run "
        f"All; {final['executed']} have one ({_describe(final)})"
    )
    assert final["problems"] == [], f"expected no error or stderr output; saw {final['problems']}"


def _image_hash(page: Page, index: int) -> str | None:
    return page.evaluate("(i) => window.__tt.lastImage(i)", index)


def test_schedule_explorer_slider_redraws_the_plot(
    page: Page, run: Run, screenshot: Callable[..., Path]
) -> None:
    cell = _cell(page, run.explorer)
    cell.scroll_into_view_if_needed()
    sliders = cell.locator(".jp-OutputArea-output .widget-slider")
    sliders.first.wait_for(state="visible", timeout=REDRAW_TIMEOUT * 1000)
    labels = [t.strip() for t in sliders.locator(".widget-label").all_inner_texts()]
    assert 3 <= len(labels) <= 4, (
        f"expected 3 or 4 sliders (max_lr, min_lr, total_epochs, warmup_epochs) in the schedule "
        f"explorer's output; saw {len(labels)}: {labels}"
    )
    assert {"max_lr", "min_lr", "total_epochs"} <= set(labels), (
        f"expected sliders labelled max_lr, min_lr and total_epochs; saw {labels}"
    )
    before = _image_hash(page, run.explorer)
    assert before is not None, "expected the schedule explorer to show a plotted image; saw none"

    max_lr = sliders.filter(has=page.locator(".widget-label", has_text=re.compile(r"^\s*max_lr")))
    readout = max_lr.locator(".widget-readout")
    value_before = readout.inner_text().strip()
    handle = max_lr.locator(".noUi-handle")
    handle.focus()
    for _ in range(5):
        handle.press("ArrowLeft")
    value_after = readout.inner_text().strip()
    assert value_after != value_before, (
        f"expected ArrowLeft on the max_lr slider to lower its value; readout stayed "
        f"{value_before!r}"
    )
    # Each key press asks the kernel for a redraw: wait until the plot has changed and then
    # settled (kernel idle, same image for a while), so the screenshot shows the last one.
    deadline = time.monotonic() + REDRAW_TIMEOUT
    current, stable_since = before, time.monotonic()
    while True:
        state = page.evaluate("(i) => window.__tt.state(i)", run.explorer)
        if state["image"] != current:
            current, stable_since = state["image"], time.monotonic()
        settled = state["kernel"] == "idle" and time.monotonic() - stable_since > SETTLE
        if current not in (None, before) and settled:
            break
        if time.monotonic() > deadline:
            pytest.fail(
                f"expected the explorer's plot to change and settle within {REDRAW_TIMEOUT:.0f} s "
                f"after max_lr went from {value_before} to {value_after}; the image was {before} "
                f"and is {current} (kernel {state['kernel']})"
            )
        time.sleep(SAMPLE_EVERY)
    page.evaluate(
        "(i) => document.querySelector(`[data-tt-index='${i}']`).scrollIntoView({block: 'start'})",
        run.explorer - 1 if run.explorer > 0 else 0,
    )
    screenshot("02-schedule-explorer.png")


def test_live_training_view_updates_during_the_run(
    page: Page, run: Run, screenshot: Callable[..., Path]
) -> None:
    assert len(run.live_images) >= MIN_LIVE_IMAGES, (
        f"expected the live training figure to change at least {MIN_LIVE_IMAGES} times while "
        f"the cells ran (sampled every {SAMPLE_EVERY} s, {run.samples} samples over "
        f"{run.seconds:.1f} s); saw {len(run.live_images)} distinct images"
    )
    cell = _cell(page, run.live)
    cell.scroll_into_view_if_needed()
    final = _image_hash(page, run.live)
    assert final == run.live_images[-1], (
        f"expected the live view to end with the last image seen during the run "
        f"({run.live_images[-1]}); it shows {final}"
    )
    text = cell.locator(".jp-OutputArea").inner_text()
    bars = cell.locator(".jp-OutputArea-output").locator(PROGRESS_BARS)
    assert bars.count() == 1, (
        f"expected one tqdm progress bar widget ({PROGRESS_BARS}) in the live training cell's "
        f"output; saw {bars.count()}. Output text: {text[:500]!r}"
    )
    assert re.search(r"epochs:\W*100%\W*20/20", text), (
        f"expected the progress bar to read 'epochs: 100% 20/20' at the end; output text: "
        f"{text[:500]!r}"
    )
    finished = bars.locator(".progress-bar-success")
    assert finished.count() == 1, (
        "expected tqdm to mark the finished bar as a success (.progress-bar-success); its "
        f"classes are {bars.locator('.progress-bar').get_attribute('class')!r}"
    )
    page.evaluate(
        "(i) => document.querySelector(`[data-tt-index='${i}']`).scrollIntoView({block: 'start'})",
        run.live,
    )
    screenshot("03-live-training.png")


def test_no_widget_or_cell_shows_an_error(page: Page, run: Run) -> None:
    """Last, so it also covers what the slider test changed."""
    body = page.locator("body").inner_text()
    assert "Error displaying widget" not in body, (
        "expected every widget to display; the page says 'Error displaying widget' "
        f"around: {body[max(0, body.find('Error displaying widget') - 200):][:400]!r}"
    )
    stderr = page.locator(STDERR_OUTPUTS)
    assert stderr.count() == 0, (
        f"expected no stderr or traceback output on the page; saw {stderr.count()}: "
        f"{[t[:300] for t in stderr.all_inner_texts()]}"
    )
    tracebacks = page.locator(".jp-OutputArea-output", has_text=TRACEBACK_TEXT)
    assert tracebacks.count() == 0, (
        f"expected no traceback in any output (widget outputs included); saw "
        f"{tracebacks.count()}: {[t[:300] for t in tracebacks.all_inner_texts()]}"
    )
    state = page.evaluate("(live) => window.__tt.state(live)", run.live)
    assert state["problems"] == [], (
        f"expected no error or stderr output in any cell; saw {state['problems']}"
    )


def test_the_error_checks_do_see_an_error(page: Page, run: Run) -> None:
    """The control of the test above: a cell that writes to stderr and raises, added at the
    end and run, is caught by each of its checks (so their zero counts mean something)."""
    page.evaluate(
        """() => {
          const notebook = window.__tt.panel().content;
          const at = notebook.widgets.length;
          notebook.model.sharedModel.insertCell(at, {
            cell_type: "code",
            source: "import sys\\nprint('control', file=sys.stderr)\\n1 / 0",
          });
          notebook.activeCellIndex = at;
          window.jupyterapp.commands.execute("notebook:run-cell");
        }"""
    )
    control = page.locator(".jp-Notebook .jp-CodeCell").last
    errors = control.locator(STDERR_OUTPUTS)
    errors.nth(1).wait_for(timeout=REDRAW_TIMEOUT * 1000)
    assert errors.count() == 2, (
        f"expected the control cell's stderr line and traceback to match {STDERR_OUTPUTS!r}; "
        f"{errors.count()} did"
    )
    traceback = control.locator(".jp-OutputArea-output", has_text=TRACEBACK_TEXT)
    assert traceback.count() == 1, (
        f"expected the control cell's traceback to contain {TRACEBACK_TEXT!r}; "
        f"outputs: {control.locator('.jp-OutputArea').inner_text()[:500]!r}"
    )
    problems = page.evaluate("(live) => window.__tt.state(live).problems", run.live)
    assert any("ZeroDivisionError" in p for p in problems) and any(
        "stderr" in p for p in problems
    ), f"expected the cell models to report the control's error and stderr; saw {problems}"


# ----------------------------------------------------------------------------- a broken answer
EPOCH_CELL = "answer_Trainer_train_epoch"
BROKEN_TIMEOUT = 120.0  # s: Run All with the Trainer's checks failing at once (about 10 s)


def _with_a_syntax_error(folder: Path) -> int:
    """Write the notebook into ``folder`` with one closing parenthesis dropped in its
    train_epoch answer cell; the line of the cell the SyntaxError is at."""
    notebook = json.loads(NOTEBOOK_PATH.read_text())
    cell = next(c for c in notebook["cells"] if c.get("id") == EPOCH_CELL)
    source = "".join(cell["source"])
    assert source.count("self._set_mode(True)") == 1, "train_epoch's cell changed"
    line = source[: source.index("self._set_mode(True)")].count("\n") + 1
    cell["source"] = source.replace("self._set_mode(True)", "self._set_mode(True")
    (folder / NOTEBOOK_NAME).write_text(json.dumps(notebook))
    return line


def test_run_all_goes_on_past_a_syntax_error_and_the_checks_name_the_cell(
        page: Page, start_jupyterlab: Callable[..., JupyterLab],
        screenshot: Callable[..., Path], tmp_path: Path) -> None:
    """JupyterLab's Run All on a notebook whose train_epoch cell has a SyntaxError: the run
    goes on past it to the last cell, and each of the Trainer's checks names the cell, its
    error and line instead of "not written yet". Screenshot: run-all-syntax-error.png."""
    line = _with_a_syntax_error(tmp_path)
    lab = start_jupyterlab(tmp_path)
    lab.open_notebook(page, NOTEBOOK_NAME)
    page.evaluate(HELPERS_JS, NOTEBOOK_NAME)
    page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); "
                  "window.jupyterapp.shell.collapseRight(); }")
    cells = page.evaluate("() => window.__tt.tag()")
    page.evaluate(RUN_ALL_JS, NOTEBOOK_NAME)
    start = time.monotonic()
    while True:
        state = page.evaluate("() => window.__tt.state(null)")
        if state["kernel"] == "idle" and state["running"] == 0 and state["lastCount"]:
            break
        if time.monotonic() - start > BROKEN_TIMEOUT:
            pytest.fail(f"expected Run All to reach the last cell within {BROKEN_TIMEOUT:.0f} s; "
                        f"{_describe(state)}")
        time.sleep(SAMPLE_EVERY)
    assert state["executed"] == state["codeCells"], _describe(state)
    said = (f"the answer cell for Trainer.train_epoch raised SyntaxError at line {line}: "
            "fix it first")
    checks = [p for p in state["problems"] if ": CheckFailed: " in p]
    assert len(checks) >= 15 and all(said in p for p in checks), checks
    assert not [p for p in state["problems"] if "not written yet" in p], state["problems"]
    shown = page.locator(".jp-Notebook").inner_text()
    assert f"✗ check 1.1: {said}" in shown, "the check's red line is not on the page"
    broken = next(i for i, c in enumerate(cells) if c["type"] == "code"
                  and "self._set_mode(True\n" in c["source"])
    first = next(i for i, c in enumerate(cells) if c["source"].startswith('run_check("1.1"'))
    scroll = ("([selector, block]) => document.querySelector(selector)"
              ".scrollIntoView({block: block})")
    page.evaluate(scroll, [f"[data-tt-index='{first}']", "start"])
    screenshot("run-all-syntax-error.png")  # the checks: each names the cell
    page.evaluate(scroll, [f"[data-tt-index='{broken}'] .jp-OutputArea", "center"])
    screenshot("run-all-syntax-error-cell.png")  # the cell and its SyntaxError

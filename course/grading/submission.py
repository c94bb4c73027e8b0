"""Trusted grading of Module 07: the student's code runs sandboxed; the score is decided outside.

The trust model
---------------
A score is decided by trusted code in a process that never ran student code, from plain data
returned by a sandbox, for inputs drawn at grading time.

* **Where student code runs.** Only in ``course.grading.sandbox``: a private folder holding the
  student's code cells and the released packages (``tinytorch`` without Module 07's solution,
  ``checks``), with no source notebook, reference, gradebook, other submission or instructor
  repository; no network; its own PID namespace; an unprivileged uid when the grader is root;
  limits on CPU, memory, file size, processes, output and wall-clock time. Inside,
  ``course.grading.observer`` executes the cells and runs each check's *observation*
  (``checks.observe``): every call into the student's code and what came back, as JSON.
* **Where the score is decided.** Here, in the parent, which starts sandboxes but runs no
  student code: each check is *judged* (``checks.judge``) by replaying it on the record, with
  the check's own tolerances and messages. A cell earns its points when its check passes both
  on the visible data (seed 0, what the student debugged against) and on data drawn now with
  ``secrets`` for this submission and check (never written to disk, sent to the sandbox only
  on its stdin). A record that stops early (exit, crash, time or memory limit) or does not
  follow the check (tampering) fails that check and every later one; earlier ones keep their
  points.
* **What a cheater can still do.** Everything inside the sandbox is theirs: they may replace
  the checks there, forge the record, or print anything. None of it reaches the score except
  the record's numbers, and a record passes only if it holds what a correct implementation
  returns for inputs that did not exist before grading began. What remains is computing the
  right numbers: writing a correct implementation, or obtaining one (plagiarism, which no
  grader of outputs can tell apart), or a learned fake that happens to be right on fresh data.

One file can only fail itself
-----------------------------
A submission also controls what the grading *process* reads: its notebook's JSON and every line
its sandbox prints. So everything it hands over is read within bounds (``course.grading.intake``: a
notebook validated field by field, each line measured in length, containers and nesting depth
before it is parsed, each run's record kept as bytes and parsed only when judged, the header's
fields validated), and a record is replayed within the bounds of ``checks.replay`` and
``checks.checkpoints`` (exception texts and frames, files per folder, archive members and
their declared sizes). Judging one submission has a budget (``Budget``): a wall-clock deadline
(``SIGALRM`` in the worker's main thread), a cap on the memory the worker may add and on its
CPU time (rlimits, so a loop in C still ends), and a file-size limit. Whatever still goes wrong
with one submission becomes that submission's report, and the class goes on. Each report says
how long judging took (``judge_seconds``) and the grading process's peak resident memory
meanwhile (``peak_memory_mb``).

Whose failure it is
-------------------
A report that gives no score says whose failure that is (``grader_failed``), because the two
are kept differently: a cache keeps a decided report for these bytes and a gradebook takes it
as the student's score, which is right only for what the bytes decided.

* **The submission's** (``failed_itself``: "not gradable:" and why; ``refused``): what the
  student's bytes decide. Its notebook cannot be read; its code loops, exits, kills its own
  sandbox or exceeds the sandbox's limits (the run's ``ended``); its record breaks a judging
  budget (``JudgeTimeout``, ``MemoryError``, ``RecursionError``: the budgets exist to bound
  what a record costs); its judging process, running it alone, crashed or ran out of CPU
  (``course.grading.pool``). Grading the same bytes again decides the same, so it is kept and
  written as a 0.
* **The grader's** (``grader_failed``: "grading failed (grader):" and why): nothing about
  these bytes was decided. The sandbox ended before the student's first cell ran (bubblewrap
  or Python could not start, limits too small for the observer itself); the grader's own code
  raised (an ``OSError`` starting a sandbox, a ``KeyboardInterrupt``, any exception no budget
  explains); its grading process could not start (no sandbox slot) or was killed by a signal
  from outside; a Dask worker or judging process was lost, or timed out
  (``course.grading.cluster``). Such a report is never cached nor written into a gradebook;
  the student is named, and a plain rerun grades them again.

Nothing the student's code does can make a failure the grader's: its code runs only after the
observer's first line (``ready``), in a sandbox with its own PID namespace and, when the
grader is root, its own uid, from which no grading process can be signalled. (Without
bubblewrap, as an ordinary user, the sandbox runs as the grader's uid without that namespace,
and, as with every other guarantee here, this one does not hold.)

What a check learns only from an instrument the student's code can write, with no consequence
the judge recomputes (whether ``evaluate`` built a graph), is left out of the verdict
(``checks.replay.graded``), but not out of the report: the judge words what the record says of
it as a note (``checks.replay.ungraded``), and the cell's message carries it, under a passed
check too ("not graded (checked in your notebook, not in the grade): ..."). A note never
decides a point.

The notebook's in-kernel ``run_check`` stays the student's instant feedback; it is never the
grade. Both word a broken cell alike: a failed check whose code comes from a cell that raised
names that cell ("the answer cell for Trainer.train_epoch raised SyntaxError at line 12: fix it
first", ``checks.raised``), from the sandbox's list of cells that raised and the grader's own
copy of their text. That list only words messages; it never decides a point.

This module grades one submission and knows nothing of where: a grading process
(``course.grading.process``) calls ``grade_one`` for each ``Task`` it is handed, whether that
process belongs to this machine's pool (``course.grading.pool``) or to a Dask worker
(``course.grading.cluster``); ``course.grading.batch`` maps it over a class through the runner
its caller chose. ``python -m course.grading.grade`` (``make grade``) and ``python -m
course.classroom.autograde`` use it.
"""

from __future__ import annotations

import compileall
import dataclasses
import json
import os
import py_compile
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from checks import CHECKS, judge, needs
from checks.diagnose import printable
from checks.raised import Raised, blocking
from checks.raised import message as raised_message
from course.assignment.cells import DEMO, GradedCell, source_graded_cells
from course.assignment.packages import stage
from course.grading import intake, sandbox
from course.grading.budget import (
    DEFAULT_BUDGET,
    Budget,
    JudgeTimeout,
    deadline,
    describe,
    peak_memory_mb,
    reset_peak_memory,
)
from course.grading.intake import Unreadable, read_notebook

__all__ = ["GRADER_FAILED", "OnReport", "Task", "Unreadable", "failed_itself", "grade_one",
           "grader_failed", "not_gradable", "refused", "staged"]

#: How the ``ended`` of a report begins when the grader, not the submission, failed.
GRADER_FAILED = "grading failed (grader): "
#: Failures of judging that its budget exists for: a record that costs too much is the
#: submission's (``budget.describe`` words them).
_BUDGET_ERRORS = (JudgeTimeout, MemoryError, RecursionError)

#: Largest notebook read at all: a bigger file is refused with its size, unread.
MAX_NOTEBOOK_BYTES = intake.NOTEBOOK.max_bytes
#: The lines of one submission's runs the grader holds at most (an honest record: about 3 MB).
MAX_RECORD_BYTES = 64 * 2**20
#: Output a sandboxed run may print before it is stopped (its records, and some slack).
MAX_OUTPUT_BYTES = MAX_RECORD_BYTES + 32 * 2**20
#: A report's message or reason is cut at this length.
MAX_MESSAGE_CHARS = 20_000
OBSERVER = Path(__file__).with_name("observer.py")
BOOT = ("import sys; sys.path[:0] = [{inside!r}, {site!r}]; import runpy; "
        "runpy.run_path({inside!r} + '/_observer.py', run_name='__main__')")


class Task(NamedTuple):
    """What grading one submission needs, as plain data a grading process can be sent: the
    notebook's path, its hidden seed per check, the sandbox's limits, the graded cells and the
    judging budget."""

    path: str
    seeds: dict[str, int]
    limits: sandbox.Limits
    graded: list[GradedCell]
    budget: Budget


#: Called with (index of the submission in its class, report) as each report is decided.
OnReport = Callable[[int, dict[str, Any]], None]


def draw_seeds(cells: Sequence[GradedCell]) -> dict[str, int]:
    """A fresh hidden seed per check, from the operating system's randomness."""
    return {cell.check: 1 + secrets.randbelow(2**31 - 2) for cell in cells}


# ----------------------------------------------------------------------------- the notebook
def student_code(path: Path, graded: Sequence[GradedCell]) -> list[str]:
    """The code cells the student's notebook runs, in order, without its graded test cells
    (recognised by nbgrader metadata or by their grade_id). Schema versions, metadata and
    missing or renamed graded cells do not matter: the checks run on whatever the code
    defines. A file that is not a notebook the grader can read raises ``Unreadable``."""
    return [source for _, source in student_cells(path, graded)]


def student_cells(path: Path, graded: Sequence[GradedCell]) -> list[tuple[str, str]]:
    """``student_code``'s cells, each with how a student finds it: its answer cell's
    ``grade_id``, else its place among the notebook's code cells ("code cell 9")."""
    cells = read_notebook(path)  # every field used below is checked there
    graded_ids = {cell.grade_id for cell in graded}
    code: list[tuple[str, str]] = []
    kept = 0  # code cells up to the last graded or answer cell: what a graded cell can see
    position = 0
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        position += 1
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") in graded_ids or (meta.get("grade") and not meta.get("solution")):
            kept = len(code)
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        if isinstance(tags, list) and DEMO in tags and not meta.get("solution"):
            continue  # shows the code at work, defines nothing a check uses
        source = cell.get("source", "")
        label = (f"the answer cell {meta['grade_id']}" if meta.get("solution")
                 and meta.get("grade_id") else f"code cell {position}")
        code.append((label, "".join(source) if isinstance(source, list) else source))
        if meta.get("solution"):  # an answer is always kept, whatever graded cells were deleted
            kept = len(code)
    return code[:kept] if kept else code


def _raised_first(failed: list[list[Any]], labels: list[str]) -> str:
    """What a student must read before any check's message when cells raised while the
    notebook ran: which cell, what, and at which line."""
    if not failed:
        return ""
    said = []
    for number, name, text, *rest in failed[:3]:
        where = labels[number - 1] if 0 < number <= len(labels) else f"code cell {number}"
        line = f", line {rest[0]}" if rest and rest[0] else ""
        said.append(f"{where} raised {name}{line}: {text.splitlines()[0][:200] if text else ''}")
    more = f" (and {len(failed) - 3} more cells)" if len(failed) > 3 else ""
    return ("first, your notebook did not run cleanly: " + "; ".join(said) + more
            + ". What that cell defines is missing or old in every check below: fix it first."
            "\n\n")


# ----------------------------------------------------------------------------- one submission
def packages_folder(root: Path) -> Path:
    """The released packages and the observer, as every sandbox receives them, compiled.

    A sandbox cannot write bytecode into this read-only folder, so without it every sandbox
    would compile tinytorch and checks again (about 0.1 s of each submission's 1.3 s, more
    on a loaded machine). The bytecode is made here, by the grader, from the sources it
    staged; it is checked against their hash when imported (``CHECKED_HASH``: no file times),
    and the release digest (``cache.release_digest``) covers it, so a Dask worker is never
    handed other bytecode than its client's."""
    folder = root / "template"
    folder.mkdir(parents=True)
    stage(folder)  # tinytorch with Module 07 stripped, and checks: what a student receives
    shutil.copy(OBSERVER, folder / "_observer.py")
    # named as the sandbox sees them (``ddir``), not by this run's temporary folder: the same
    # sources give the same bytes, so the digest, the cache's key, stays the same between runs
    if not compileall.compile_dir(folder, ddir=sandbox.INSIDE, quiet=1, workers=1,
                                  invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH):
        raise RuntimeError(f"the staged packages in {folder} do not compile")
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


@contextmanager
def staged() -> Iterator[Path]:
    """The packages folder (``packages_folder``) in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tinytorch-trusted-") as tmp:
        os.chmod(tmp, 0o755)
        yield packages_folder(Path(tmp))


def grade_one(path: Path, template: Path, *, seeds: dict[str, int] | None = None,
              limits: sandbox.Limits = sandbox.DEFAULT_LIMITS, slot: int = 0,
              graded: Sequence[GradedCell] | None = None,
              budget: Budget = DEFAULT_BUDGET) -> dict[str, Any]:
    """Grade one notebook: run it sandboxed, judge every check here. The report has the same
    shape as ``course.grading.grade``'s, plus the isolation layers, how the run ended, the time
    spent judging and the grading process's peak memory. Never raises: whatever goes wrong while
    reading, running, judging or reporting this submission becomes its report, with the
    reason: a broken judging budget as the submission's failure, any other error (a
    ``SystemExit``, an ``OSError`` starting the sandbox, an interrupt) as the grader's."""
    start = time.perf_counter()
    graded = list(graded or source_graded_cells())
    reset_peak_memory()
    reason, graders = None, False
    try:
        report = _grade_one(path, template, graded, seeds, limits, slot, budget, start)
    except BaseException as error:  # noqa: BLE001 - this submission's report, not the class's
        reason, graders = describe(error, budget), not isinstance(error, _BUDGET_ERRORS)
    if reason is not None:  # out of the handler: the failed frames and their memory are gone
        report = (grader_failed if graders else failed_itself)(path, graded, start, reason)
    report["peak_memory_mb"] = peak_memory_mb()
    return report


def _grade_one(path: Path, template: Path, graded: list[GradedCell],
               seeds: dict[str, int] | None, limits: sandbox.Limits, slot: int,
               budget: Budget, start: float) -> dict[str, Any]:
    seeds = dict(seeds or draw_seeds(graded))
    try:
        labelled = student_cells(path, graded)
        cells = [source for _, source in labelled]
    except Unreadable as error:
        return refused(path, graded, start, str(error))
    runs = [(cell.check, run_seed) for cell in graded for run_seed in (0, seeds[cell.check])]
    request = json.dumps({"cells": cells, "runs": runs}).encode()
    record = _Record(len(runs))
    # what the grader reads of a run's output is bounded anyway (MAX_RECORD_BYTES): the run may
    # print little more, so that its unread output cannot fill this process's memory either
    limits = dataclasses.replace(limits, output=min(limits.output, MAX_OUTPUT_BYTES))
    result = sandbox.run(template, BOOT.format(inside=_inside(template),
                                               site=sandbox.site_packages()),
                         stdin=request, on_line=record.on_line, limits=limits, slot=slot)
    if not (record.ready or _said_ready(result.unread)):
        # the student's code never began: nothing of theirs was decided, the failure is ours
        said = result.stderr.decode("utf-8", "replace").strip().splitlines()
        return grader_failed(path, graded, start, (
            f"the sandbox ended before the notebook's code ran "
            f"({result.reason or f'exit code {result.returncode}'})"
            + (f": {said[-1][:300]}" if said else "")))
    ended = result.reason
    missing = record.first_missing()
    if ended is None and missing is not None:
        ended = (f"the run ended early (exit code {result.returncode}) during the check "
                 f"{runs[missing][0]!r}")
    judging = time.perf_counter()
    verdicts: dict[tuple[str, int], str | None] = {}
    notes: dict[str, list[str]] = {}
    with deadline(budget.seconds):
        for index, (check, run_seed) in enumerate(runs):
            verdicts[(check, run_seed)] = _judge_run(check, run_seed, record.take(index),
                                                     record.refused.get(index), ended,
                                                     notes.setdefault(check, []))
    report = _report(path, graded, verdicts, start, ended, record.failed, layers=result.layers,
                     labels=[label for label, _ in labelled],
                     raised=raised_cells(cells, record.failed), notes=notes)
    report["judge_seconds"] = round(time.perf_counter() - judging, 3)
    return report


def _said_ready(unread: bytes) -> bool:
    """Whether a run stopped before its output was read had said it was ready: its first line,
    written before any student code runs, is then the first of what was left unread (a stop
    that races the reading of that line cannot make the student's failure the grader's)."""
    first = unread.split(b"\n", 1)[0]
    try:
        said = intake.parse(first) if first.startswith(b"{") else None
    except intake.Refused:
        return False
    return isinstance(said, dict) and said.get("ready") is True


class _Record:
    """The lines a sandboxed run prints, sorted as they arrive: "ready" (the observer's first,
    before any student code runs) says the sandbox started; each run's line is kept as bytes
    (parsed only when it is judged, one at a time), within a length and a total; the header
    gives only its validated list of cells that raised; "done" ends the run. Anything else is
    ignored: a forged line is judged like any other, an oversized one fails its run."""

    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.lines: dict[int, bytes] = {}
        self.refused: dict[int, str] = {}
        self.failed: list[list[Any]] = []
        self.header = False
        self.ready = False
        self.size = 0

    def on_line(self, line: bytes) -> bool:
        index = intake.run_index(line)
        if index is not None:
            if index < self.runs and index not in self.lines and index not in self.refused:
                self._keep(index, line)
            return True
        if len(line) > intake.MAX_SHORT_LINE or not line.startswith(b"{"):
            return True  # not ours: ignore, unread
        try:
            message = intake.parse(line)
        except intake.Refused:
            return True
        if not isinstance(message, dict):
            return True
        if message.get("ready") is True:
            self.ready = True
        if "cells" in message and not self.header:
            self.header = True
            self.failed = intake.failed_cells(message)
        return "done" not in message

    def _keep(self, index: int, line: bytes) -> None:
        if len(line) > intake.LINE.max_bytes:
            self.refused[index] = (f"its record is a line of {len(line) / 2**20:.0f} MiB, more "
                                   f"than the {intake.LINE.max_bytes // 2**20} MiB a run's "
                                   "record may have")
        elif self.size + len(line) > MAX_RECORD_BYTES:
            self.refused[index] = (f"the records of this submission exceed the "
                                   f"{MAX_RECORD_BYTES // 2**20} MiB the grader reads")
        else:
            self.lines[index] = line
            self.size += len(line)

    def first_missing(self) -> int | None:
        return next((i for i in range(self.runs)
                     if i not in self.lines and i not in self.refused), None)

    def take(self, index: int) -> bytes | None:
        """The run's line, handed over once (the record keeps no copy)."""
        line = self.lines.pop(index, None)
        if line is not None:
            self.size -= len(line)
        return line


def _judge_run(check: str, seed: int, line: bytes | None, refusal: str | None,
               ended: str | None, notes: list[str] | None = None) -> str | None:
    """One run's verdict, from its line (parsed within bounds here) or the reason it has none;
    ``notes`` receives what the check found and leaves out of the verdict (``checks.judge``)."""
    if line is None:
        return judge(check, [], seed=seed, ended=refusal or ended)
    try:
        message = intake.parse(line)
    except intake.Refused as error:
        return judge(check, [], seed=seed, ended=f"its record was refused: {error}")
    del line
    events = message.get("events") if isinstance(message, dict) else None
    if not isinstance(events, list):
        return judge(check, [], seed=seed, ended="its record holds no list of events")
    return judge(check, events, seed=seed, notes=notes)


def _inside(folder: Path) -> str:
    return sandbox.INSIDE if sandbox.bubblewrap_works() else str(folder)


def raised_cells(sources: list[str], failed: list[list[Any]]) -> list[Raised]:
    """The cells that raised in the sandbox (its validated ``[number, error, text, line]``),
    each with what its text defines, as the kernel's record has them (``checks.raised``): the
    text is the grader's own copy of the submission, so only the error's name, text and line
    come from the sandbox, and they only word messages."""
    found = []
    for number, name, text, *rest in failed:
        if 0 < number <= len(sources):
            cell = Raised.of(sources[number - 1], name, text, rest[0] if rest else None)
            if cell is not None:
                found.append(cell)
    return found


def _with_note(message: str, notes: list[str]) -> str:
    """A cell's message with the first note of its check's runs after it (the visible run's,
    when it has one: the data the student debugs against): a finding the grade leaves out
    ("not graded: ..."), said under the check whether it passed or failed. A note only words
    the report; it never decides a point."""
    if not notes:
        return message
    return f"{message}\n\n{notes[0]}" if message else notes[0]


def _failed_message(check: str, messages: list[str], first: str, raised: list[Raised]) -> str:
    """A failed check's message: the cell it needs that raised, as the notebook says it, when
    there is one (the cause before its consequence); else its own first message, after what
    the cells that raised were."""
    broken = blocking(needs(check), raised) if check in CHECKS else []
    return raised_message(broken) if broken else first + messages[0]


def _report(path: Path, graded: Sequence[GradedCell], verdicts: dict[tuple[str, int], Any],
            start: float, ended: str | None, failed_cells: list[Any],
            layers: list[str], gradable: bool = True,
            labels: list[str] | None = None, grader: bool = False,
            raised: list[Raised] | None = None,
            notes: dict[str, list[str]] | None = None) -> dict[str, Any]:
    first = _raised_first(failed_cells, labels or [])
    cells = []
    for cell in graded:
        mine = [v for (check, _), v in verdicts.items() if check == cell.check]
        messages = [m for m in mine if m]
        passed = bool(mine) and not messages
        if not mine:
            message = f"not graded: {ended}"
        else:
            message = "" if passed else _failed_message(cell.check, messages, first, raised or [])
            message = _with_note(message, (notes or {}).get(cell.check, []))
        cells.append({"grade_id": cell.grade_id, "points": cell.points if passed else 0.0,
                      "max_points": cell.points, "passed": passed,
                      "message": printable(message, MAX_MESSAGE_CHARS)})
    return {
        "file": str(path),
        "total": sum(c["points"] for c in cells),
        "max_total": sum(c["max_points"] for c in cells),
        "seconds": round(time.perf_counter() - start, 2),
        "cells": cells,
        "ended": printable(ended, MAX_MESSAGE_CHARS) if ended else ended,
        "cells_that_raised": [
            {"cell": (labels or [])[number - 1] if 0 < number <= len(labels or []) else
             f"code cell {number}", "error": printable(name), "message": printable(text),
             "line": rest[0] if rest else None}
            for number, name, text, *rest in failed_cells],
        "isolation": layers,
        "gradable": gradable,
        "grader_failed": grader,
        "judge_seconds": 0.0,
    }


def grader_failed(path: Path | str, graded: Sequence[GradedCell], start: float,
                  reason: str) -> dict[str, Any]:
    """The report of a submission the grader failed to grade through no doing of the
    submission's (module docstring, "Whose failure it is"): no points decided,
    ``grader_failed`` true, "grading failed (grader):" and why. Never cached nor written as a
    score: a plain rerun grades it again."""
    return _report(Path(path), graded, {}, start, f"{GRADER_FAILED}{reason}", [], layers=[],
                   gradable=False, grader=True)


#: The name the runners of a class call ``grader_failed`` by (``course.grading.cluster``):
#: every report they make with it is a failure of the grader's (a judging process or a worker
#: lost or out of time, the cluster's own error), never of the submission's.
not_gradable = grader_failed


def failed_itself(path: Path | str, graded: Sequence[GradedCell], start: float,
                  reason: str) -> dict[str, Any]:
    """The report of a submission that broke its own judging (a judging budget, a judging
    process it crashed when graded alone): 0 points, "not gradable:" and why. The same bytes
    decide the same again, so it is kept and written like any score."""
    return _report(Path(path), graded, {}, start, f"not gradable: {reason}", [], layers=[],
                   gradable=False)


def refused(path: Path | str, graded: Sequence[GradedCell], start: float,
            reason: str) -> dict[str, Any]:
    """The report of a submission refused before it ran (unreadable, too large): 0 points,
    and ``reason`` as how it ended."""
    return _report(Path(path), graded, {}, start, reason, [], layers=[], gradable=False)


def renamed(report: Any, old: str, new: str) -> Any:
    """``report`` (any plain data) with every ``old`` in its strings replaced by ``new``: a
    report decided on a copy of a submission (the grader's private copy, a worker's temporary
    file) names the submission's own path instead."""
    if isinstance(report, str):
        return report.replace(old, new)
    if isinstance(report, list):
        return [renamed(v, old, new) for v in report]
    if isinstance(report, dict):
        return {k: renamed(v, old, new) for k, v in report.items()}
    return report

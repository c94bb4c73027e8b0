"""Trusted grading of Module 07: the student's code runs sandboxed; the score is decided outside.

The trust model
---------------
A score is decided by trusted code in a process that never ran student code, from plain data
returned by a sandbox, for inputs drawn at grading time.

* **Where student code runs.** Only in ``course.sandbox``: a private folder holding the
  student's code cells and the released packages (``tinytorch`` without Module 07's solution,
  ``checks``), with no source notebook, reference, gradebook, other submission or instructor
  repository; no network; its own PID namespace; an unprivileged uid when the grader is root;
  limits on CPU, memory, file size, processes, output and wall-clock time. Inside,
  ``course.observer`` executes the cells and runs each check's *observation*
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

The notebook's in-kernel ``run_check`` stays the student's instant feedback; it is never the
grade.

``python -m course.grade`` (``make grade``) and ``python -m course.autograde`` use it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from checks import judge
from course import build, paths, sandbox
from course.release import stage

#: Largest notebook read at all: a bigger file is refused with its size, unread.
MAX_NOTEBOOK_BYTES = 20 * 2**20
OBSERVER = Path(__file__).with_name("observer.py")
BOOT = ("import sys; sys.path[:0] = [{inside!r}, {site!r}]; import runpy; "
        "runpy.run_path({inside!r} + '/_observer.py', run_name='__main__')")


@dataclass(frozen=True)
class GradedCell:
    grade_id: str
    points: float
    check: str


def graded_cells() -> list[GradedCell]:
    """Every graded cell of the assignment: its grade_id, points and check, in order."""
    source = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
    return [GradedCell(g, float(p), c) for g, p, c in build.graded_cells(source)]


def draw_seeds(cells: Sequence[GradedCell]) -> dict[str, int]:
    """A fresh hidden seed per check, from the operating system's randomness."""
    return {cell.check: 1 + secrets.randbelow(2**31 - 2) for cell in cells}


# ----------------------------------------------------------------------------- the notebook
class Unreadable(ValueError):
    """The submission cannot be read as a notebook: nothing of it runs."""


def student_code(path: Path, graded: Sequence[GradedCell]) -> list[str]:
    """The code cells the student's notebook runs, in order, without its graded test cells
    (recognised by nbgrader metadata or by their grade_id). Schema versions, metadata and
    missing or renamed graded cells do not matter: the checks run on whatever the code
    defines."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise Unreadable(f"submission {str(path)!r} cannot be read: {error}") from error
    if size > MAX_NOTEBOOK_BYTES:
        raise Unreadable(f"submission {str(path)!r} is {size / 2**20:.0f} MiB, more than the "
                         f"{MAX_NOTEBOOK_BYTES // 2**20} MiB a notebook may have")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        cells = data["cells"]
        if not isinstance(cells, list):
            raise TypeError("cells is not a list")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise Unreadable(f"submission {str(path)!r} is not a notebook: {error}") from error
    graded_ids = {cell.grade_id for cell in graded}
    code: list[str] = []
    kept = 0  # code cells up to the last graded one: what a graded cell can see
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        meta = meta if isinstance(meta, dict) else {}
        if meta.get("grade_id") in graded_ids or (meta.get("grade") and not meta.get("solution")):
            kept = len(code)
            continue
        source = cell.get("source", "")
        code.append("".join(source) if isinstance(source, list) else str(source))
    return code[:kept] if kept else code


# ----------------------------------------------------------------------------- one submission
def packages_folder(root: Path) -> Path:
    """The released packages and the observer, as every sandbox receives them."""
    folder = root / "template"
    folder.mkdir(parents=True)
    stage(folder)  # tinytorch with Module 07 stripped, and checks: what a student receives
    shutil.copy(OBSERVER, folder / "_observer.py")
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def grade_one(path: Path, template: Path, *, seeds: dict[str, int] | None = None,
              limits: sandbox.Limits = sandbox.DEFAULT_LIMITS, slot: int = 0,
              graded: Sequence[GradedCell] | None = None) -> dict[str, Any]:
    """Grade one notebook: run it sandboxed, judge every check here. The report has the same
    shape as ``course.grade``'s, plus the isolation layers and how the run ended."""
    start = time.perf_counter()
    graded = list(graded or graded_cells())
    seeds = dict(seeds or draw_seeds(graded))
    try:
        cells = student_code(path, graded)
    except Unreadable as error:
        return _report(path, graded, {}, start, str(error), [], layers=[])
    runs = [(cell.check, run_seed) for cell in graded for run_seed in (0, seeds[cell.check])]
    request = json.dumps({"cells": cells, "runs": runs}).encode()
    records: dict[int, list[dict[str, Any]]] = {}
    header: dict[str, Any] = {}

    def on_line(line: bytes) -> bool:
        try:
            message = json.loads(line)
        except ValueError:
            return True  # not ours: ignore
        if not isinstance(message, dict):
            return True
        if "run" in message and isinstance(message.get("events"), list):
            index = message["run"]
            if isinstance(index, int) and 0 <= index < len(runs) and index not in records:
                records[index] = message["events"]
        elif "cells" in message and not header:
            header.update(message)
        return "done" not in message

    result = sandbox.run(template, BOOT.format(inside=_inside(template),
                                               site=sandbox._site_packages()),
                         stdin=request, on_line=on_line, limits=limits, slot=slot)
    ended = result.reason
    if ended is None and len(records) < len(runs):
        ended = (f"the run ended early (exit code {result.returncode}) during the check "
                 f"{runs[len(records)][0]!r}")
    verdicts: dict[int, str | None] = {}
    for index, (check, run_seed) in enumerate(runs):
        events = records.get(index, [])
        verdicts[index] = judge(check, events, seed=run_seed,
                                ended=None if index in records else ended)
    failed = header.get("failed", []) if isinstance(header.get("failed"), list) else []
    return _report(path, graded, {r: verdicts[i] for i, r in enumerate(runs)}, start, ended,
                   failed, layers=result.layers)


def _inside(folder: Path) -> str:
    return sandbox.INSIDE if sandbox.bubblewrap_works() else str(folder)


def _report(path: Path, graded: Sequence[GradedCell], verdicts: dict[tuple[str, int], Any],
            start: float, ended: str | None, failed_cells: list[Any],
            layers: list[str]) -> dict[str, Any]:
    cells = []
    for cell in graded:
        mine = [v for (check, _), v in verdicts.items() if check == cell.check]
        messages = [m for m in mine if m]
        passed = bool(mine) and not messages
        if not mine:
            message = f"not graded: {ended}"
        else:
            message = "" if passed else messages[0]
        cells.append({"grade_id": cell.grade_id, "points": cell.points if passed else 0.0,
                      "max_points": cell.points, "passed": passed, "message": message})
    return {
        "file": str(path),
        "total": sum(c["points"] for c in cells),
        "max_total": sum(c["max_points"] for c in cells),
        "seconds": round(time.perf_counter() - start, 2),
        "cells": cells,
        "ended": ended,
        "cells_that_raised": failed_cells,
        "isolation": layers,
    }


# ----------------------------------------------------------------------------- a class
_SLOT: int = 0
_TEMPLATE: Path | None = None


def _init_worker(slots: Any, template: str) -> None:
    global _SLOT, _TEMPLATE
    _SLOT = slots.get()
    _TEMPLATE = Path(template)


def _work(args: tuple[str, dict[str, int], sandbox.Limits, list[GradedCell]]
          ) -> dict[str, Any]:
    path, seeds, limits, graded = args
    assert _TEMPLATE is not None
    return grade_one(Path(path), _TEMPLATE, seeds=seeds, limits=limits, slot=_SLOT,
                     graded=graded)


def grade(files: Sequence[Path | str], *, jobs: int | None = None,
          limits: sandbox.Limits = sandbox.DEFAULT_LIMITS,
          seeds: Sequence[dict[str, int]] | None = None) -> list[dict[str, Any]]:
    """Grade every file, ``jobs`` sandboxes at a time (default: one per core). Reports come
    back in the order of ``files``; one submission's crash, loop or lie changes no other's.
    ``seeds`` (one mapping per file) replace the drawn hidden seeds, for reproducible tests."""
    files = [Path(f) for f in files]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(files) or 1))
    graded = graded_cells()
    chosen = list(seeds) if seeds is not None else [draw_seeds(graded) for _ in files]
    if len(chosen) != len(files):
        raise ValueError(f"seeds: {len(chosen)} mappings for {len(files)} files")
    with tempfile.TemporaryDirectory(prefix="tinytorch-trusted-") as tmp:
        os.chmod(tmp, 0o755)
        template = packages_folder(Path(tmp))
        if jobs == 1:
            return [grade_one(f, template, seeds=s, limits=limits, graded=graded)
                    for f, s in zip(files, chosen, strict=True)]
        import multiprocessing

        context = multiprocessing.get_context("forkserver")
        slots = context.Manager().Queue()
        for slot in range(jobs):
            slots.put(slot)
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                 initargs=(slots, str(template))) as pool:
            # the graded cells, read once here rather than by every submission's worker
            work = [(str(f), s, limits, graded) for f, s in zip(files, chosen, strict=True)]
            return list(pool.map(_work, work))

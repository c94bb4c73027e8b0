"""Grade a class: one function maps grading one submission over every submission, through a
runner its caller chooses.

A runner is where the work happens: ``course.grading.pool.LocalPool`` (this machine's
processes, the default) or ``course.grading.cluster.DaskCluster`` (a Dask cluster's workers).
Each has one method, ``grade(tasks, template=..., on_report=...)``, which runs every ``Task``
in a grading process (``course.grading.process``) and returns the reports in the order of the
tasks, handing each to ``on_report`` as it is decided. What a task is, how a submission is
judged and what its report says are decided here and in ``course.grading.submission``, the same
wherever it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from course.assignment.cells import source_graded_cells
from course.grading import sandbox
from course.grading.budget import DEFAULT_BUDGET, Budget
from course.grading.submission import OnReport, Task, draw_seeds, staged


@runtime_checkable
class Runner(Protocol):
    """Where a class's submissions are graded. A runner with a ``release`` attribute (that
    release's digest) grades against a release of its own: it is given no staged template,
    graded cells or seeds."""

    def grade(self, tasks: Sequence[Task], *, template: Path,
              on_report: OnReport | None = None) -> list[dict[str, Any]]: ...


def grade(files: Sequence[Path | str], *, runner: Runner | None = None,
          limits: sandbox.Limits = sandbox.DEFAULT_LIMITS,
          seeds: Sequence[dict[str, int]] | None = None,
          budget: Budget = DEFAULT_BUDGET, template: Path | None = None,
          on_report: OnReport | None = None) -> list[dict[str, Any]]:
    """Grade every file through ``runner`` (default: this machine's pool, one process per
    core). Reports come back in the order of ``files``; one submission's crash, loop, lie or
    malformed file changes no other's. ``seeds`` (one mapping per file) replace the hidden
    seeds drawn now, for reproducible tests; ``template`` is a packages folder already staged
    (``submission.staged()``); ``on_report`` is told of each report the moment it is decided
    (to store it, show progress)."""
    files = [Path(f) for f in files]
    own = getattr(runner, "release", None)
    # read once here, not by every submission's process
    graded = [] if own else source_graded_cells()
    chosen = list(seeds) if seeds is not None else [draw_seeds(graded) for _ in files]
    if len(chosen) != len(files):
        raise ValueError(f"seeds: {len(chosen)} mappings for {len(files)} files")
    if runner is None:
        from course.grading.pool import LocalPool

        runner = LocalPool()
    tasks = [Task(str(f), s, limits, graded, budget) for f, s in zip(files, chosen, strict=True)]
    if template is None and not own:
        with staged() as folder:
            return runner.grade(tasks, template=folder, on_report=on_report)
    return runner.grade(tasks, template=template, on_report=on_report)

"""This machine's processes as the place a class is graded: a pool that survives its workers.

``LocalPool`` is a runner (``course.grading.batch``): it grades a class's tasks in grading
processes of this machine (``course.grading.process``), ``jobs`` at a time, started by
``forkserver``. ``run_in_pool`` is the pool itself, for any function: when a process dies
(killed, out of memory, a crash) the pool is rebuilt, the tasks that were running are run again
one at a time to find the one that breaks a pool by itself, and the rest go on; no result is
lost and none is reported twice.

Whose failure a death is (``course.grading.submission``, "Whose failure it is") is decided
only for a task that ran alone, from how its process ended: killed by a signal from outside
(``process.OUTSIDE_SIGNALS``) or never started (no sandbox slot, a failed start) is the
grader's, reported as such and graded again by a rerun; a crash or its CPU budget, alone, is
the submission's.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.grading import process, slots
from course.grading.budget import memory_budget
from course.grading.process import DIED
from course.grading.submission import OnReport, Task, failed_itself, grade_one, grader_failed


@dataclass(frozen=True)
class LocalPool:
    """Grade on this machine: ``jobs`` grading processes (default one per core, never more
    than there are submissions). A class of one with one job is graded in this process (``make
    grade``: there is no class to protect)."""

    jobs: int | None = None

    def grade(self, tasks: Sequence[Task], *, template: Path,
              on_report: OnReport | None = None) -> list[dict[str, Any]]:
        jobs = max(1, min(self.jobs or os.cpu_count() or 1, len(tasks) or 1))
        if len(tasks) == 1 and jobs == 1:
            task = tasks[0]
            try:
                slot = slots.acquire()
            except (OSError, RuntimeError) as error:  # nothing of the submission's ran yet
                report = grader_failed(task.path, task.graded, time.perf_counter(),
                                       f"no sandbox slot could be had: {error}"[:600])
            else:
                try:
                    with memory_budget(task.budget):
                        report = grade_one(Path(task.path), template, seeds=task.seeds,
                                           limits=task.limits, graded=task.graded,
                                           budget=task.budget, slot=slot)
                finally:
                    slots.release(slot)
            if on_report is not None:
                on_report(0, report)
            return [report]
        return run_in_pool(
            process.work, list(tasks), jobs, context=multiprocessing.get_context("forkserver"),
            initializer=process.start, initargs=lambda size: (str(template),),
            done=on_report, failed=lambda task, why: failed_itself(
                task.path, task.graded, time.perf_counter(), why),
            lost=lambda task, why: grader_failed(
                task.path, task.graded, time.perf_counter(), why))


def run_in_pool(fn: Callable[[Any], Any], tasks: Sequence[Any], jobs: int, *,
                context: Any, failed: Callable[[Any, str], Any],
                initializer: Callable[..., None] | None = None,
                initargs: Callable[[int], tuple[Any, ...]] = lambda size: (),
                done: Callable[[int, Any], None] | None = None,
                lost: Callable[[Any, str], Any] | None = None) -> list[Any]:
    """``[fn(task) for task in tasks]``, ``jobs`` processes at a time. When a process dies
    (``BrokenProcessPool``: killed, out of memory, a crash) no other task is lost: the pool
    is rebuilt, the tasks that were running when it broke are run again one at a time (so the
    one that breaks a pool of its own is known), and the rest go on in parallel. A task that
    breaks its pool when it runs alone gets ``failed(task, reason)`` if its process crashed
    or exited by itself, and ``lost(task, reason)`` (default ``failed``) if its process was
    killed from outside (``process.OUTSIDE_SIGNALS``) or never began it (its initializer
    failed: no sandbox slot): then the task did nothing wrong. A task whose call raises gets
    ``lost`` too (``fn`` is trusted code that reports what its task does wrong). ``done(index,
    result)`` is called as each task's result is final, in the order they finish."""
    lost = lost or failed
    results: dict[int, Any] = _Results(done)
    waiting = list(range(len(tasks)))
    with tempfile.TemporaryDirectory(prefix="tinytorch-running-") as running:
        while waiting:
            suspects, _ = _pool_round(fn, tasks, waiting, jobs, context, initializer, initargs,
                                      Path(running), results, lost)
            for index in suspects:  # each alone: a pool it breaks by itself names it
                again, ends = _pool_round(fn, tasks, [index], 1, context, initializer,
                                          initargs, Path(running), results, lost)
                if again and index not in results:
                    results[index] = _blame(tasks[index], ends.get(index), failed, lost)
            waiting = [i for i in waiting if i not in results]
    return [results[i] for i in range(len(tasks))]


@dataclass(frozen=True)
class _End:
    """How the process that ran a task ended: whether it began the task, its exit code
    (negative: the signal; None: unknown) and, if its start failed, why."""

    started: bool
    exitcode: int | None = None
    start_error: str | None = None


def _blame(task: Any, end: _End | None, failed: Callable[[Any, str], Any],
           lost: Callable[[Any, str], Any]) -> Any:
    """The result of a task whose process died when it ran alone, by whose failure that was."""
    if end is None or not end.started:
        said = f" ({end.start_error})" if end is not None and end.start_error else ""
        return lost(task, f"no grading process could start to grade it{said}; a rerun grades "
                          "it again")
    how, outside = process.ending(end.exitcode)
    if outside:
        return lost(task, f"the grader's process judging it was {how}, from outside, in the "
                          "class and again when it was graded alone; a rerun grades it again")
    return failed(task, f"{DIED} ({how}, in the class and again when it was graded alone)")


class _Results(dict):
    """Results by task index, announcing each to ``done`` as it is set."""

    def __init__(self, done: Callable[[int, Any], None] | None) -> None:
        super().__init__()
        self._done = done

    def __setitem__(self, index: int, value: Any) -> None:
        super().__setitem__(index, value)
        if self._done is not None:
            self._done(index, value)


def _pool_round(fn: Callable[[Any], Any], tasks: Sequence[Any], indices: list[int], jobs: int,
                context: Any, initializer: Callable[..., None] | None,
                initargs: Callable[[int], tuple[Any, ...]], running: Path,
                results: dict[int, Any], failed: Callable[[Any, str], Any]
                ) -> tuple[list[int], dict[int, _End]]:
    """Run ``indices`` in one pool, filling ``results`` (a task whose call raised gets
    ``failed``). Returns ([], {}) when the pool stayed whole, else the tasks that had started
    and not come back when it broke (all those not done when no task had started), and how
    the process of each task that had not come back ended."""
    size = max(1, min(jobs, len(indices)))
    broken = False
    starting = (_starting, (str(running), initializer, *initargs(size))) if initializer \
        else (None, ())
    with ProcessPoolExecutor(size, mp_context=context, initializer=starting[0],
                             initargs=starting[1]) as pool:
        futures = {pool.submit(_marked, fn, str(running), i, tasks[i]): i for i in indices}
        # the pool's own processes (a private attribute, read only): how the process that ran
        # a task ended says whose failure its death was; without it, nobody is told it was
        # the grader's
        processes = getattr(pool, "_processes", None)
        processes = processes if isinstance(processes, dict) else {}
        try:
            for future in as_completed(futures):  # each result handed on as it arrives
                index = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                except BaseException as error:  # noqa: BLE001 - this task's failure only
                    result = failed(tasks[index], f"the grader failed on it: "
                                                  f"{type(error).__name__}: {error}"[:400])
                (running / str(index)).unlink(missing_ok=True)
                results[index] = result
        except BaseException:  # the grader's own interruption (Ctrl-C): stop, do not wait
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    marks = {int(p.name): _pid(p) for p in running.iterdir() if p.name.isdigit()}
    start_errors = [p.read_text(errors="replace") for p in running.iterdir()
                    if p.name.startswith("start-")]
    for mark in running.iterdir():
        mark.unlink()
    if not broken:
        return [], {}
    unfinished = [i for i in indices if i not in results]
    ends = {}
    for index in unfinished:
        if index not in marks:
            ends[index] = _End(False, start_error=start_errors[0][:400] if start_errors else None)
        else:
            ran = processes.get(marks[index])
            ends[index] = _End(True, getattr(ran, "exitcode", None))
    return [i for i in sorted(marks) if i in unfinished] or unfinished, ends


def _pid(mark: Path) -> int | None:
    try:
        return int(mark.read_text())
    except (OSError, ValueError):
        return None


def _starting(running: str, initializer: Callable[..., None], *args: Any) -> None:
    """``initializer(*args)`` in a new process of the pool; if it fails, why is left in
    ``running`` for the parent, and the process ends before any task (the pool breaks, and
    the parent says why for each task that could not start, without a traceback)."""
    try:
        initializer(*args)
    except BaseException as error:  # noqa: BLE001 - said by the parent, for every task
        with contextlib.suppress(OSError):
            (Path(running) / f"start-{os.getpid()}").write_text(
                f"{type(error).__name__}: {error}"[:400])
        os._exit(1)


def _marked(fn: Callable[[Any], Any], running: str, index: int, task: Any) -> Any:
    """``fn(task)``, leaving a mark that the task started, holding this process's id (the
    parent removes it when the result arrives, so a mark left when a pool breaks names a
    suspect, and the process whose end says why)."""
    mark = Path(running) / str(index)
    mark.with_name(f".{index}").write_text(str(os.getpid()))
    os.replace(mark.with_name(f".{index}"), mark)  # whole, or not there: the task not begun
    return fn(task)

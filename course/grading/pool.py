"""This machine's processes as the place a class is graded: a pool that survives its workers.

``LocalPool`` is a runner (``course.grading.batch``): it grades a class's tasks in grading
processes of this machine (``course.grading.process``), ``jobs`` at a time, started by
``forkserver``. ``run_in_pool`` is the pool itself, for any function: a task whose process dies
(killed, out of memory, a crash) gets a report saying so, the pool is rebuilt, the tasks that
were running are run again one at a time to find the one that breaks a pool by itself, and the
rest go on; no result is lost and none is reported twice.
"""

from __future__ import annotations

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
from course.grading.submission import OnReport, Task, grade_one, not_gradable


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
            slot = slots.acquire()
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
            done=on_report, failed=lambda task, why: not_gradable(
                task.path, task.graded, time.perf_counter(), why))


def run_in_pool(fn: Callable[[Any], Any], tasks: Sequence[Any], jobs: int, *,
                context: Any, failed: Callable[[Any, str], Any],
                initializer: Callable[..., None] | None = None,
                initargs: Callable[[int], tuple[Any, ...]] = lambda size: (),
                done: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``[fn(task) for task in tasks]``, ``jobs`` processes at a time. A task whose call
    raises, or whose process dies (``BrokenProcessPool``: killed, out of memory, a crash),
    gets ``failed(task, reason)`` instead; the other tasks are not lost: the pool is rebuilt,
    the tasks that were running when it broke are run again one at a time (so the one that
    breaks a pool of its own is known), and the rest go on in parallel. ``done(index,
    result)`` is called as each task's result is final, in the order they finish."""
    results: dict[int, Any] = _Results(done)
    waiting = list(range(len(tasks)))
    with tempfile.TemporaryDirectory(prefix="tinytorch-running-") as running:
        while waiting:
            suspects = _pool_round(fn, tasks, waiting, jobs, context, initializer, initargs,
                                   Path(running), results, failed)
            for index in suspects:  # each alone: a pool it breaks by itself names it
                again = _pool_round(fn, tasks, [index], 1, context, initializer, initargs,
                                    Path(running), results, failed)
                if again and index not in results:
                    results[index] = failed(tasks[index], DIED)
            waiting = [i for i in waiting if i not in results]
    return [results[i] for i in range(len(tasks))]


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
                results: dict[int, Any], failed: Callable[[Any, str], Any]) -> list[int]:
    """Run ``indices`` in one pool, filling ``results``. Returns [] when the pool stayed
    whole, else the tasks that had started and not come back when it broke (all those not
    done when no task had started)."""
    size = max(1, min(jobs, len(indices)))
    broken = False
    with ProcessPoolExecutor(size, mp_context=context, initializer=initializer,
                             initargs=initargs(size)) as pool:
        futures = {pool.submit(_marked, fn, str(running), i, tasks[i]): i for i in indices}
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
    started = sorted(int(p.name) for p in running.iterdir() if p.name.isdigit())
    for mark in running.iterdir():
        mark.unlink()
    if not broken:
        return []
    unfinished = [i for i in indices if i not in results]
    return [i for i in started if i in unfinished] or unfinished


def _marked(fn: Callable[[Any], Any], running: str, index: int, task: Any) -> Any:
    """``fn(task)``, leaving a mark that the task started (the parent removes it when the
    result arrives, so a mark left when a pool breaks names a suspect)."""
    (Path(running) / str(index)).touch()
    return fn(task)

"""A grading process: the process that judges submissions one at a time, in its main thread.

Whoever runs a class (this machine's pool, ``course.grading.pool``, or a Dask worker's judging
process, ``course.grading.cluster``) starts such processes and hands each a ``Task`` at a time.
``start`` gives the process what every judging process must have: a sandbox slot unique on this
host (``course.grading.slots``: no other grader here, a second pool or a Dask worker included,
runs its sandboxes as the same uid), no core files, and a cap on the files it may write; ``work``
grades one task within its memory and CPU budget (``course.grading.budget``). The deadline's
``SIGALRM`` and the rlimits hold only in a process's main thread, which is why judging never
runs in a thread of a worker.
"""

from __future__ import annotations

import pickle
import resource
import signal
import time
from pathlib import Path
from typing import Any

from course.grading import slots
from course.grading.budget import memory_budget, soften
from course.grading.submission import Task, grade_one, grader_failed

#: Largest file the grading process may write (what judging writes is a checkpoint: KBs).
MAX_WRITTEN_FILE = 64 * 2**20
#: Why a submission has no report when the process judging it ended (the runner says so, and
#: goes on); ``ending`` says how it ended and whose failure that is.
DIED = ("the grader's process judging it ended abruptly (killed, out of memory or a crash); "
        "the rest of the class was graded in a new one")
#: Signals that only something outside a grading process sends it (an administrator, the
#: kernel's OOM killer, a terminal's Ctrl-C, a test): a death by one of them says nothing
#: about the submission being judged. Its own budget ends it with SIGXCPU, a crash with
#: SIGSEGV, SIGBUS or SIGABRT, none of these. (The sandbox cannot send them: its own PID
#: namespace, and its own uid when the grader is root.)
OUTSIDE_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                             signal.SIGQUIT})

_slot: int | None = None
_template: Path | None = None


def start(template: str | Path | None = None) -> int:
    """Make this process a grading process: take a host-wide sandbox slot (held until the
    process ends) and the limits of a process that judges; ``template`` is the staged
    packages folder its tasks run against (or ``use``'s later). Returns the slot."""
    global _slot, _template
    _slot = slots.acquire()
    _template = Path(template) if template else None
    # past the file-size budget a write fails with an error instead of ending the process (a
    # sandbox's run gets the default back: subprocess restores SIGXFSZ)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    soften(resource.RLIMIT_FSIZE, MAX_WRITTEN_FILE)
    return _slot


def use(template: str | Path) -> None:
    """Grade the next tasks against the packages folder ``template``."""
    global _template
    _template = Path(template)


def work(task: Task) -> dict[str, Any]:
    """One submission, within its memory and CPU budget; the report is checked to travel
    back (a report that cannot be pickled becomes a report saying so)."""
    if _slot is None or _template is None:
        raise RuntimeError("work() needs a grading process: call start(template) first")
    limits, budget = task.limits, task.budget
    with memory_budget(budget, cpu_seconds=budget.seconds + limits.wall + 60):
        report = grade_one(Path(task.path), _template, seeds=task.seeds, limits=limits,
                           slot=_slot, graded=task.graded, budget=budget)
    try:
        pickle.dumps(report)
    except BaseException as error:  # noqa: BLE001 - reported, never raised to the class
        report = grader_failed(task.path, task.graded, time.perf_counter(),
                               f"its report cannot be sent back ({type(error).__name__})")
    return report


def ending(exitcode: int | None) -> tuple[str, bool]:
    """How a grading process ended, in words, and whether that was the grader's failure
    rather than the submission's: killed by a signal only something outside it sends
    (``OUTSIDE_SIGNALS``). ``exitcode`` as ``multiprocessing`` gives it (a negative signal
    number), None when unknown (then it is not said to be the grader's)."""
    if exitcode is None:
        return "how is unknown", False
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}", -exitcode in OUTSIDE_SIGNALS
    return f"exit code {exitcode}", False

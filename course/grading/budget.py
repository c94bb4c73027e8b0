"""What judging one submission may use in the process that judges it, whatever its record holds.

A record is the student's data: replaying it must end in bounded time and memory, or one
submission could stall or starve the class. ``Budget`` is that bound; ``deadline`` holds the
wall clock (``SIGALRM`` in the main thread), ``memory_budget`` the memory and CPU time of the
process (rlimits, so a loop in C still ends). Whatever breaks a budget becomes that
submission's report (``describe``), never the class's failure.
"""

from __future__ import annotations

import resource
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Budget:
    """What grading one submission may use in the grading process, whatever its record
    holds: the wall-clock time of judging, and the resident memory of the process (enforced
    as a cap on the address space it may add while grading it)."""

    seconds: float = 60.0
    memory: int = 480 * 2**20


DEFAULT_BUDGET = Budget()


class JudgeTimeout(BaseException):
    """Judging a submission took longer than its budget. Not an Exception: no handler of a
    check's may absorb it."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise ``JudgeTimeout`` in this (main) thread once ``seconds`` have passed. A no-op off
    the main thread, where signals cannot be received."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum: int, frame: Any) -> None:
        raise JudgeTimeout(f"judging took longer than its budget of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def memory_budget(budget: Budget, *, cpu_seconds: float | None = None) -> Iterator[None]:
    """Hold this process to ``budget.memory`` bytes of resident memory (as a cap on the
    address space it may add, a soft limit: a sandbox started meanwhile sets its own), and,
    with ``cpu_seconds``, to that much more CPU time (past it the kernel ends the process:
    the last resort against a loop in C that no signal handler can interrupt). Restored on
    exit."""
    figures = memory_figures()
    vm, rss = figures.get("VmSize", 0), figures.get("VmRSS", 0)
    room = max(budget.memory - rss, 128 * 2**20)
    saved = {}
    try:
        if vm:
            saved[resource.RLIMIT_AS] = soften(resource.RLIMIT_AS, vm + room)
        if cpu_seconds is not None:
            used = resource.getrusage(resource.RUSAGE_SELF)
            spent = used.ru_utime + used.ru_stime
            saved[resource.RLIMIT_CPU] = soften(resource.RLIMIT_CPU,
                                                 int(spent + cpu_seconds) + 1)
        yield
    finally:
        for kind, soft in saved.items():
            resource.setrlimit(kind, (soft, resource.getrlimit(kind)[1]))


def soften(kind: int, value: int) -> int:
    """Set ``kind``'s soft limit to ``value`` (never above the hard limit); returns the old."""
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, hard))
    return soft


def memory_figures() -> dict[str, int]:
    """This process's memory figures from /proc (bytes), empty where there is no /proc."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return {}
    figures = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmSize", "VmRSS", "VmHWM") and value.strip().endswith("kB"):
            figures[key] = int(value.split()[0]) * 1024
    return figures


def reset_peak_memory() -> None:
    """Start this process's peak resident memory afresh (Linux), so a report's peak is its
    own submission's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_mb() -> float | None:
    peak = memory_figures().get("VmHWM")
    return round(peak / 2**20, 1) if peak else None


def describe(error: BaseException, budget: Budget) -> str:
    """Why grading stopped, in words, for the report (the error's text bounded)."""
    if isinstance(error, JudgeTimeout):
        return str(error)
    if isinstance(error, MemoryError):
        return (f"judging it needed more than the grader's memory budget of "
                f"{budget.memory // 2**20} MiB")
    if isinstance(error, RecursionError):
        return "its record is nested too deeply for the grader (RecursionError)"
    text = str(error)[:300]
    return f"the grader failed on it: {type(error).__name__}" + (f": {text}" if text else "")

"""Times a student can reason from: every timing of section 5 runs the same way, here.

A single reading of a few milliseconds on a shared machine (a laptop with a browser open, a hub
or Binder serving many students) is mostly the machine: other processes take the cores, and
numpy's BLAS, free to start one thread per core, waits for them. So each piece of work is timed

* with numpy's BLAS pinned to one thread (``threadpoolctl``): the work then measures this
  library's arithmetic, not how the BLAS threads met the machine's other work;
* in CPU time (``time.thread_time``): on one thread the whole run computes in the thread that
  times it, and the seconds a core spent on it leave out the moments the machine gave that core
  to another process, which is most of what a busy machine adds to a wall clock;
* after warm-up runs (first calls allocate, fill caches, import lazily);
* several times, interleaved with the work it is compared with (repeat ``r`` starts at the
  ``r``-th piece), so a slow moment of the machine falls on every side, not on one;
* on a collected heap whose older objects are frozen out of the garbage collector, so a
  collection of the notebook's heap is not charged to whichever run it lands in.

A ``Timing`` keeps every repeat; the pictures show its median with the interquartile range
(the middle half of the repeats) as the spread. Two timings whose ranges overlap differ by less
than this machine's noise, and ``difference`` says so instead of naming a winner.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

#: Timed runs of each piece of work, after WARMUP untimed ones; the pictures say how many.
REPEATS = 7
WARMUP = 2
#: BLAS threads while timing: one, so the cores other processes take do not enter the times.
THREADS = 1
#: What a timing's clock counted: the seconds a core ran the work, or the seconds that passed.
CPU, WALL = "CPU", "wall-clock"

Key = TypeVar("Key")


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """First quartile, median and third quartile of ``samples`` (numpy's linear interpolation
    between the sorted samples)."""
    if not samples:
        raise ValueError("no samples: time the work at least once")
    q1, median, q3 = np.percentile(np.asarray(samples, dtype=float), (25, 50, 75))
    return float(q1), float(median), float(q3)


def duration(seconds: float) -> str:
    """``seconds`` in the unit that reads best: ``"7.7 ms"``, ``"180 µs"``."""
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def threads_words(threads: int | None) -> str:
    """How many BLAS threads a timing ran on, in words for a picture or a printed line."""
    if threads is None:
        return "BLAS threads as the machine set them"
    return f"{threads} BLAS thread" + ("" if threads == 1 else "s")


@dataclass(frozen=True)
class Timing:
    """The seconds one piece of work took, once per timed repeat, with how it was timed.

    ``threads`` is the number of BLAS threads numpy had during the runs, as threadpoolctl read
    it (None when numpy's BLAS was not found). The median is the typical run; ``q1`` to ``q3``,
    the middle half of the repeats, is how much this machine moved it.
    """

    samples: tuple[float, ...]
    warmup: int
    threads: int | None
    #: What the clock counted: ``CPU`` (the seconds a core ran the work) or ``WALL``.
    clock: str = "wall-clock"

    @property
    def repeats(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return quartiles(self.samples)[1]

    @property
    def q1(self) -> float:
        return quartiles(self.samples)[0]

    @property
    def q3(self) -> float:
        return quartiles(self.samples)[2]

    def scaled(self, factor: float) -> Timing:
        """The same runs in another unit (per step, in microseconds): each sample times
        ``factor``, so the median and quartiles scale with it."""
        return Timing(tuple(s * factor for s in self.samples), self.warmup, self.threads,
                      self.clock)

    def overlaps(self, other: Timing) -> bool:
        """Whether the two interquartile ranges share a point: the difference between the two
        medians is then no larger than what this machine does to either of them."""
        return self.q1 <= other.q3 and other.q1 <= self.q3

    def brief(self) -> str:
        """The median, then in brackets the middle half of the runs: ``7.7 ms (7.0 to 7.9 ms)``."""
        return f"{duration(self.median)} ({duration(self.q1)} to {duration(self.q3)})"

    def how(self) -> str:
        """How the timing was taken, for a picture's title or a printed line."""
        return (f"{self.clock} time, median of {self.repeats} runs after {self.warmup} "
                f"warm-ups, {threads_words(self.threads)}")

    def __str__(self) -> str:
        return f"{self.brief()}, the middle half of the runs in brackets; {self.how()}"


@dataclass(frozen=True)
class Difference:
    """How much slower (or faster) ``other`` is than ``base``, by their medians, and whether
    that is more than the noise: ``within_noise`` when their interquartile ranges overlap."""

    change: float
    within_noise: bool

    def short(self) -> str:
        """Two lines, for an annotation on a picture."""
        return f"{self.change:+.0%}\n" + ("within the noise" if self.within_noise
                                          else "outside the spread")

    def __str__(self) -> str:
        return f"{self.change:+.0%} " + ("(within the noise of this machine)"
                                         if self.within_noise else "(outside the spread)")


def difference(base: Timing, other: Timing) -> Difference:
    """``other`` against ``base``: the relative change of the median, and whether the spreads
    overlap (then no winner is named: another run could order them the other way)."""
    return Difference((other.median - base.median) / base.median, base.overlaps(other))


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Collect once, then keep the objects alive now out of the collector's reach: a notebook's
    heap (IPython, matplotlib) costs tens of milliseconds to collect, and a collection landing
    inside a timed run would charge it to that run. Collections of what the runs make go on."""
    if gc.get_freeze_count():  # already frozen by an enclosing block: leave it to that block
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _blas_threads() -> int | None:
    """The most threads any BLAS library loaded in this process has now (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    counts = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(counts) if counts else None


def time_runs(
    setups: Mapping[Key, Callable[[], Callable[[], object]]],
    *,
    repeats: int = REPEATS,
    warmup: int = WARMUP,
    threads: int | None = THREADS,
    clock: Callable[[], float] | None = None,
) -> dict[Key, Timing]:
    """Time each piece of work ``repeats`` times after ``warmup`` untimed runs, interleaved.

    ``setups[key]()`` prepares one run (fresh objects, untimed) and returns it; only calling the
    run is timed, with ``clock``. Repeat ``r`` runs the pieces starting from the ``r``-th, so
    none always runs first. Everything runs inside ``threadpool_limits(limits=threads)``
    (``None``: the machine's BLAS threads, left as they are).

    Without a ``clock``, a run on one BLAS thread is timed in CPU time (``time.thread_time``):
    the whole run, numpy's BLAS included, then computes in this thread, and the seconds a core
    gave it do not count the moments the machine gave the core to other processes, which is
    most of what a busy machine does to a wall clock. Any other run is timed by the wall clock
    (``time.perf_counter``), as a CPU clock of one thread would miss the BLAS threads' work.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, not {repeats} and {warmup}")
    # Imported here: the package imports with numpy alone (see tinytorch/viz/__init__.py).
    from threadpoolctl import threadpool_limits

    keys = list(setups)
    samples: dict[Key, list[float]] = {key: [] for key in keys}
    with threadpool_limits(limits=threads), _frozen_heap():
        used = _blas_threads()
        if clock is None:
            clock, name = ((time.thread_time, CPU) if used == 1
                           else (time.perf_counter, WALL))
        else:
            name = WALL
        for _ in range(warmup):
            for key in keys:
                setups[key]()()
        for r in range(repeats):
            shift = r % len(keys) if keys else 0
            for key in keys[shift:] + keys[:shift]:
                run = setups[key]()
                gc.collect()  # each run starts from the same, collected, young heap
                start = clock()
                run()
                samples[key].append(clock() - start)
    return {key: Timing(tuple(values), warmup, used, name) for key, values in samples.items()}


def error_bars(timings: Sequence[Timing],
               scale: float = 1.0) -> tuple[list[float], list[list[float]]]:
    """Medians and matplotlib's ``yerr`` (distances down to q1 and up to q3), times ``scale``."""
    medians = [t.median * scale for t in timings]
    below = [(t.median - t.q1) * scale for t in timings]
    above = [(t.q3 - t.median) * scale for t in timings]
    return medians, [below, above]

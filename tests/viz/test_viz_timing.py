"""How section 5 takes and reads its times (``tinytorch.viz.timing``), with fake work and a fake
clock: BLAS pinned to one thread inside every run, warm-ups and repeats counted, runs
interleaved, median and quartiles of known durations, and "within the noise" said exactly when
two interquartile ranges overlap. No test here times anything real: timings depend on the
machine and its load, and section 5's real times are ``python -m benchmarks.section5``'s."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from threadpoolctl import threadpool_info, threadpool_limits

from tinytorch.core.training import Trainer
from tinytorch.viz import timing
from tinytorch.viz.clipping_cost import ClippingCosts, clipping_lines, draw_clipping_cost
from tinytorch.viz.measure import Epoch, EpochSettings, measure_epochs
from tinytorch.viz.memory_and_time import (
    BatchCosts,
    draw_memory_and_time,
    measure_memory_and_time,
    time_lines,
)
from tinytorch.viz.timing import Timing, difference, quartiles, time_runs


@pytest.fixture(autouse=True)
def no_figure_left_open():
    yield
    assert plt.get_fignums() == []


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


class FakeClock:
    """A clock that moves only when a fake run says how long it took."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, seconds: float) -> None:
        self.now += seconds


def _timed(samples: Sequence[float], threads: int | None = 1) -> Timing:
    return Timing(tuple(samples), timing.WARMUP, threads)


# ---- the runs: threads, warm-ups, repeats, order

def test_every_run_sees_one_blas_thread_and_the_limit_is_lifted_after() -> None:
    if not _blas_threads():
        pytest.skip("numpy's BLAS is not visible to threadpoolctl here")
    seen: list[list[int]] = []
    with threadpool_limits(limits=2):  # as a 2-core machine leaves numpy: 2 threads
        before = _blas_threads()
        times = time_runs({"a": lambda: lambda: seen.append(_blas_threads())},
                          repeats=3, warmup=2)
        assert _blas_threads() == before
    assert len(seen) == 5 and all(threads == [1] * len(before) for threads in seen)
    assert times["a"].threads == 1


def test_no_limit_leaves_the_machines_threads() -> None:
    if not _blas_threads():
        pytest.skip("numpy's BLAS is not visible to threadpoolctl here")
    seen: list[list[int]] = []
    with threadpool_limits(limits=2):
        before = _blas_threads()
        times = time_runs({"a": lambda: lambda: seen.append(_blas_threads())},
                          repeats=1, warmup=0, threads=None)
    assert seen == [before] and times["a"].threads == max(before)


@pytest.mark.parametrize(("repeats", "warmup"), [(7, 2), (1, 0), (5, 3)])
def test_warmups_are_untimed_and_each_repeat_is_one_timed_run(repeats: int, warmup: int) -> None:
    clock, prepared, ran = FakeClock(), [], []

    def setup() -> Callable[[], None]:
        prepared.append(clock.now)
        clock.work(100.0)  # preparing a run (a model, a loader) is never timed

        def run() -> None:
            ran.append(1)
            clock.work(0.25)

        return run

    times = time_runs({"a": setup}, repeats=repeats, warmup=warmup, clock=clock)
    assert len(prepared) == len(ran) == warmup + repeats
    assert times["a"].samples == (0.25,) * repeats
    assert (times["a"].repeats, times["a"].warmup) == (repeats, warmup)


def test_a_pinned_run_is_timed_in_cpu_time_and_waiting_is_not_counted() -> None:
    """On one BLAS thread the run computes in the timing thread, so its CPU time is the work:
    40 ms asleep (a machine giving the core to others) count as nothing. Left to several BLAS
    threads, the same sleep is timed by the wall clock, which would miss nothing the BLAS
    threads did."""
    if not _blas_threads():
        pytest.skip("numpy's BLAS is not visible to threadpoolctl here")
    asleep = {"sleep": lambda: lambda: time.sleep(0.04)}
    pinned = time_runs(asleep, repeats=2, warmup=0)["sleep"]
    assert pinned.clock == timing.CPU and max(pinned.samples) < 0.02, pinned
    assert pinned.how().startswith("CPU time, median of 2 runs")
    with threadpool_limits(limits=2):
        free = time_runs(asleep, repeats=2, warmup=0, threads=None)["sleep"]
    if free.threads == 1:
        pytest.skip("numpy's BLAS runs one thread on this machine whatever the limit")
    assert free.clock == timing.WALL and min(free.samples) >= 0.04, free


def test_repeats_take_turns_starting_from_each_piece_of_work() -> None:
    order: list[str] = []
    setups = {key: (lambda key=key: lambda: order.append(key)) for key in "abc"}
    time_runs(setups, repeats=4, warmup=1)
    assert order == list("abc" + "abc" + "bca" + "cab" + "abc")


def test_median_and_quartiles_of_known_durations() -> None:
    clock, durations = FakeClock(), iter([9.0, 9.0, 5.0, 1.0, 4.0, 2.0, 3.0, 7.0, 6.0])
    times = time_runs({"a": lambda: lambda: clock.work(next(durations))},
                      repeats=7, warmup=2, clock=clock)["a"]
    assert times.samples == (5.0, 1.0, 4.0, 2.0, 3.0, 7.0, 6.0)  # the warm-ups' 9s are gone
    # sorted 1..7: the median is the 4th; the quartiles lie halfway between the 2nd and 3rd
    # and between the 5th and 6th (numpy's linear interpolation)
    assert (times.q1, times.median, times.q3) == (2.5, 4.0, 5.5)
    assert quartiles([2.0, 1.0]) == (1.25, 1.5, 1.75)


def test_a_timing_in_another_unit_keeps_its_shape() -> None:
    per_step = _timed([10.0, 20.0, 30.0, 40.0]).scaled(0.5)
    assert (per_step.q1, per_step.median, per_step.q3) == (8.75, 12.5, 16.25)
    assert (per_step.repeats, per_step.warmup, per_step.threads) == (4, timing.WARMUP, 1)
    assert str(_timed([0.0071, 0.0077, 0.0079])) == (
        "7.7 ms (7.4 ms to 7.8 ms), the middle half of the runs in brackets; wall-clock time, "
        "median of 3 runs after 2 warm-ups, 1 BLAS thread")


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="repeats"):
        time_runs({"a": lambda: lambda: None}, repeats=0)
    with pytest.raises(ValueError, match="no samples"):
        quartiles([])


# ---- the reading: within the noise exactly when the spreads overlap

@pytest.mark.parametrize(("a", "b", "within"), [
    ([1.0, 2.0, 3.0], [1.5, 2.5, 3.5], True),    # overlapping ranges: 1.5-2.5 and 2.0-3.0
    ([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], True),    # touching: q3 of a is q1 of b, 2.5
    ([1.0, 2.0, 3.0], [3.0, 4.0, 5.0], False),   # 1.5-2.5 against 3.5-4.5
    ([10.0, 10.0, 10.0], [10.0, 10.0, 10.0], True),
])
def test_within_the_noise_is_said_exactly_when_the_ranges_overlap(a, b, within) -> None:
    first, second = _timed(a), _timed(b)
    assert first.overlaps(second) == second.overlaps(first) == within
    change = difference(first, second)
    assert change.within_noise == within
    assert ("within the noise of this machine" in str(change)) == within
    assert ("outside the spread" in str(change)) == (not within)
    assert change.short().splitlines()[1] == ("within the noise" if within
                                              else "outside the spread")


def test_the_change_is_read_from_the_medians() -> None:
    change = difference(_timed([1.0, 2.0, 3.0]), _timed([2.0, 3.0, 4.0]))
    assert change.change == pytest.approx(0.5)
    assert str(change) == "+50% (within the noise of this machine)"
    assert str(difference(_timed([2.0, 2.0, 2.0]), _timed([1.0, 1.0, 1.0]))) == (
        "-50% (outside the spread)")


samples = st.lists(st.floats(0.001, 1.0, allow_nan=False), min_size=1, max_size=9)


@given(samples, samples)
def test_the_wording_follows_the_overlap_of_the_quartiles(a: list[float], b: list[float]) -> None:
    qa, qb = np.percentile(a, (25, 75)), np.percentile(b, (25, 75))
    overlap = qa[0] <= qb[1] and qb[0] <= qa[1]
    change = difference(_timed(a), _timed(b))
    assert change.within_noise == overlap
    assert str(change).endswith("(within the noise of this machine)" if overlap
                                else "(outside the spread)")


# ---- the pictures say it: spread, repeats, threads, and the same words as the printed lines

def _epoch(samples: Sequence[float], peak: float = 1000.0) -> Epoch:
    return Epoch(peak, 10, _timed(samples))


def test_the_clipping_picture_shows_each_spread_and_names_only_costs_outside_it() -> None:
    costs = ClippingCosts(widths=(64, 256), batch_size=32, max_norm=1.0,
                          without=(_timed([1e-4, 2e-4, 3e-4]), _timed([1e-4, 2e-4, 3e-4])),
                          with_clip=(_timed([1.5e-4, 2.2e-4, 3e-4]), _timed([4e-4, 5e-4, 6e-4])))
    fig = draw_clipping_cost(costs)
    ax = fig.axes[0]
    assert "time, median of 3 runs after 2 warm-ups, 1 BLAS thread" in ax.get_title()
    assert "middle half of the runs" in ax.get_title()
    bars = [c for c in ax.containers if c.get_label().startswith("grad_clip_norm")]
    assert [p.get_height() for p in bars[0].patches] == pytest.approx([200, 200])
    segments = bars[1].errorbar.lines[2][0].get_segments()  # q1 to q3 of "with clipping"
    assert [y for s in segments for y in (s[0][1], s[1][1])] == pytest.approx([185, 260, 450, 550])
    assert [t.get_text() for t in ax.texts] == ["+10%\nwithin the noise",
                                                "+150%\noutside the spread"]
    lines = clipping_lines(costs)
    assert lines[1].endswith("clipping costs +10% (within the noise of this machine)")
    assert lines[2].endswith("clipping costs +150% (outside the spread)")


def test_the_time_picture_measures_k_1_once_and_labels_the_rest_by_their_spreads() -> None:
    shared = _epoch([0.007, 0.008, 0.009])
    costs = BatchCosts(micro_batch=32, effective=(32, 64, 128),
                       one_batch=(shared, _epoch([0.004, 0.005, 0.006]),
                                  _epoch([0.002, 0.0025, 0.003])),
                       accumulated=(shared, _epoch([0.005, 0.006, 0.007]),
                                    _epoch([0.007, 0.0075, 0.008])))
    fig = draw_memory_and_time(costs, {32: 500.0, 64: 900.0, 128: 1700.0})
    ax = fig.axes[1]
    assert "time, median of 3 runs after 2 warm-ups, 1 BLAS thread" in ax.get_title()
    lines = {c.get_label(): c for c in ax.containers}
    one, acc = lines["one batch of that size"], lines["accumulated batches of 32"]
    assert one.lines[0].get_ydata() == pytest.approx([8, 5, 2.5])
    assert acc.lines[0].get_ydata() == pytest.approx([8, 6, 7.5])
    assert acc.lines[0].get_xdata()[0] == one.lines[0].get_xdata()[0]  # one point, both lines
    assert [t.get_text() for t in ax.texts] == ["k = 1: one run,\nboth lines",
                                                "+20%\nwithin the noise",
                                                "+200%\noutside the spread"]
    printed = time_lines(costs)
    assert "one run for both ways" in printed[1]
    assert printed[2].endswith("accumulation +20% (within the noise of this machine)")
    assert printed[3].endswith("accumulation +200% (outside the spread)")


def test_equal_settings_are_measured_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """k = 1 is one batch of 32: one traced epoch and one series of timed ones, shared."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    epochs: list[tuple[int, int]] = []

    class Counting(Trainer):
        def train_epoch(self, loader, accumulation_steps=1):
            epochs.append((loader.batch_size, accumulation_steps))
            return super().train_epoch(loader, accumulation_steps=accumulation_steps)

    costs = measure_memory_and_time(Counting, x, y, effective=(32, 64), repeats=3, warmup=1)
    assert costs.same_run(0) and not costs.same_run(1)
    # three settings (32 once, 64 at once, 32 accumulated twice): 1 traced + 1 + 3 runs each
    assert sorted(set(epochs)) == [(32, 1), (32, 2), (64, 1)]
    assert all(epochs.count(s) == 5 for s in set(epochs))
    assert all(e.time.repeats == 3 and e.time.warmup == 1
               for e in costs.one_batch + costs.accumulated)
    measured = measure_epochs(Counting, x, y, {"a": EpochSettings(64), "b": EpochSettings(64)},
                              repeats=1, warmup=0)
    assert measured["a"] is measured["b"]

"""Time one training step of a 784-256-10 MLP: tinytorch vs hand-written numpy vs PyTorch CPU.

Run from the repository root::

    .venv/bin/python -m benchmarks.train_step            # full run (make bench)
    .venv/bin/python -m benchmarks.train_step --quick    # smoke run, a few seconds

The step is Linear(784, 256), ReLU, Linear(256, 10), softmax cross-entropy, SGD(lr=0.1), fp32,
at batch sizes 32 and 128, in four forms that do the same math from the same initial weights:

* ``tinytorch``: the five-line loop a student writes (forward, loss, backward, step, zero_grad);
* ``trainer``: ``Trainer.train_epoch`` over the same batches, so the Trainer's own cost shows;
* ``numpy``: explicit forward, log-softmax cross-entropy, hand-derived backward, in-place SGD;
* ``torch``: ``nn.Linear``, ``F.cross_entropy`` and ``torch.optim.SGD``, when torch imports.

Why it is built this way:

* Every BLAS/OpenMP pool is pinned to one thread (environment variables before numpy and torch
  load, ``threadpool_limits(1)``, ``torch.set_num_threads(1)``), and the pinning is verified
  with ``threadpool_info()``: a multi-threaded BLAS would measure the machine, not the library,
  and would favour whichever implementation parallelises its tiny matrices best.
* Before anything is timed the implementations must agree (losses of the first steps and the
  parameters after a few steps): a fast step that computes something else is not a result.
* Each repeat times every implementation for a short block of steps (20 by default), in an
  order rotated every repeat, and there are many repeats (75). On the shared VM this was
  written on, the host has slow phases of ~50-100 ms costing up to 30%; blocks of 200 steps
  put whole phases on one implementation and moved tinytorch/numpy between 1.18 and 1.44 from
  run to run, while 20-step blocks keep it within about +-0.03. Reported times are medians of
  the per-step time over repeats; ratios are medians of the per-repeat ratios (both sides ran
  milliseconds apart, so a slow phase divides out), all measured in the same run.
* ``Trainer.train_epoch`` is timed as one epoch per block, so its per-epoch work (mode switch,
  clearing gradients, history) is spread over the block's steps, as over an epoch's batches.
* Peak memory is traced with ``tracemalloc`` (numpy reports its buffers to it) over 1,000 steps
  after a warm-up step; the traced memory at step 100 and step 1,000 must be the same, which
  shows no autograd graph or gradient is kept alive from one step to the next.

Exit status: 0 when the implementations agree (missed speed targets are reported, not fatal),
1 when they disagree, 2 when the thread pools could not be pinned to one thread.
"""

# ruff: noqa: E402 (the imports below must follow the thread-pinning environment variables)
from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # Only when run as the program: these variables are read once, when numpy's OpenBLAS and
    # torch's OpenMP/MKL load, and imported as a library (by the tests) we must not change the
    # environment that the rest of the process and its subprocesses inherit.
    for _variable in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ):
        os.environ[_variable] = "1"

import argparse
import contextlib
import gc
import json
import platform
import statistics
import subprocess
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Trainer

IN_FEATURES, HIDDEN, CLASSES = 784, 256, 10
LEARNING_RATE = 0.1
BATCH_SIZES = (32, 128)
POOL_SIZE = 16  # distinct batches, cycled: data generation stays out of the timed loop
TARGET_RATIO = 1.2  # tinytorch may take at most 1.2x the time of numpy and of PyTorch
AGREEMENT_STEPS = 5
RTOL, ATOL = 1e-4, 1e-6  # float32: summation order differs between BLAS libraries
BUSY_THRESHOLD = 0.05  # off-CPU share of the timed wall time above which the report warns
GROWTH_TOLERANCE = 16 * 1024  # bytes; a kept-alive step would hold >1 MiB (the gradients)
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Parameters in tinytorch's layout: W1 (784, 256), b1 (256,), W2 (256, 10), b2 (10,).
Params = list[np.ndarray]


# ============================================================================ data and weights
def initial_weights(seed: int) -> Params:
    """One initialisation (PyTorch's default: uniform in +-1/sqrt(fan_in)) copied into every
    implementation, so they start from identical weights and can be compared."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in ((IN_FEATURES, HIDDEN), (HIDDEN, CLASSES)):
        bound = 1.0 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, size=fan_out).astype(np.float32))
    return params


def batch_pool(batch_size: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """MNIST-shaped batches: pixels in [0, 1) and integer labels. The content does not change
    the cost of a dense step; distinct batches keep the training honest (no single-batch
    caching effects) without paying for data generation inside the timed loop."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.random((batch_size, IN_FEATURES), dtype=np.float32),
            rng.integers(0, CLASSES, size=batch_size, dtype=np.int64),
        )
        for _ in range(POOL_SIZE)
    ]


def cycle(items: Sequence[Any], count: int) -> list[Any]:
    """``count`` items taken round-robin from ``items`` (references, not copies)."""
    return [items[i % len(items)] for i in range(count)]


# ============================================================================ implementations
class Implementation:
    """One way of running the training step. Subclasses keep their own parameters and convert
    the shared numpy batches to their own input type once, outside the timed loop."""

    name = ""

    def prepare(self, x: np.ndarray, y: np.ndarray) -> Any:
        """The batch in the form this implementation's step consumes."""
        raise NotImplementedError

    def run(self, batches: Sequence[Any]) -> None:
        """Train on ``batches``, one optimizer step each (the timed unit)."""
        raise NotImplementedError

    def run_recording(self, batches: Sequence[Any]) -> list[float]:
        """Train on ``batches`` and return the loss of every step, for the agreement check."""
        raise NotImplementedError

    def parameters(self) -> Params:
        """Copies of the parameters in tinytorch's layout."""
        raise NotImplementedError


class StepImplementation(Implementation):
    """An implementation driven by a plain Python loop over ``step``."""

    def step(self, batch: Any) -> Any:
        """One forward, backward and update; returns the loss object (not converted, so the
        timed loop pays for no conversion a training loop would not need)."""
        raise NotImplementedError

    def loss_value(self, loss: Any) -> float:
        raise NotImplementedError

    def run(self, batches: Sequence[Any]) -> None:
        step = self.step
        for batch in batches:
            step(batch)

    def run_recording(self, batches: Sequence[Any]) -> list[float]:
        return [self.loss_value(self.step(batch)) for batch in batches]


def _tinytorch_model(init: Params) -> Sequential:
    model = Sequential(Linear(IN_FEATURES, HIDDEN, seed=0), ReLU(), Linear(HIDDEN, CLASSES, seed=0))
    for param, value in zip(model.parameters(), init, strict=True):
        param.data[...] = value
    return model


class TinytorchLoop(StepImplementation):
    """tinytorch as a student uses it: the five lines of a training loop, nothing else."""

    name = "tinytorch"

    def __init__(self, init: Params) -> None:
        self.model = _tinytorch_model(init)
        self.loss_fn = CrossEntropyLoss()
        self.optimizer = SGD(self.model.parameters(), lr=LEARNING_RATE)

    def prepare(self, x: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
        # What tinytorch.data.DataLoader yields: float32 Tensors, labels included.
        return Tensor(x), Tensor(y)

    def step(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss

    def loss_value(self, loss: Tensor) -> float:
        return loss.item()

    def parameters(self) -> Params:
        return [p.data.copy() for p in self.model.parameters()]


class _LossRecorder:
    """Trainer callback that keeps each batch's loss (used only by the agreement check)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_batch_end(self, trainer: Trainer, batch: int, loss: float, samples: int) -> None:
        self.losses.append(loss)


class TrainerEpoch(Implementation):
    """``Trainer.train_epoch`` (accumulation_steps=1, no clipping, no schedule) over the same
    batches: its per-step time minus tinytorch's is what the Trainer's bookkeeping costs."""

    name = "trainer"

    def __init__(self, init: Params) -> None:
        self.model = _tinytorch_model(init)
        self.trainer = Trainer(
            self.model, SGD(self.model.parameters(), lr=LEARNING_RATE), CrossEntropyLoss()
        )

    def prepare(self, x: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
        return Tensor(x), Tensor(y)

    def run(self, batches: Sequence[Any]) -> None:
        self.trainer.train_epoch(batches, accumulation_steps=1)

    def run_recording(self, batches: Sequence[Any]) -> list[float]:
        recorder = _LossRecorder()
        self.trainer.callbacks.append(recorder)
        try:
            self.run(batches)
        finally:
            self.trainer.callbacks.remove(recorder)
        return recorder.losses

    def parameters(self) -> Params:
        return [p.data.copy() for p in self.model.parameters()]


class NumpyStep(StepImplementation):
    """The same step written out by hand in idiomatic numpy: the floor a numpy library can
    approach. It allocates its temporaries like ordinary numpy code does (no preallocated
    ``out=`` buffers), so the comparison is library overhead, not buffer tricks."""

    name = "numpy"

    def __init__(self, init: Params) -> None:
        self.params = [p.copy() for p in init]

    def prepare(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x, y

    def step(self, batch: tuple[np.ndarray, np.ndarray]) -> np.float32:
        x, y = batch
        w1, b1, w2, b2 = self.params
        n = x.shape[0]
        rows = np.arange(n)
        # forward
        z1 = x @ w1 + b1
        h = np.maximum(z1, 0)
        logits = h @ w2 + b2
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -log_probs[rows, y].mean()
        # backward: d(mean cross-entropy)/d(logits) = (softmax - one_hot) / n
        d_logits = np.exp(log_probs)
        d_logits[rows, y] -= 1.0
        d_logits *= 1.0 / n
        d_w2 = h.T @ d_logits
        d_b2 = d_logits.sum(axis=0)
        d_h = d_logits @ w2.T
        d_h *= z1 > 0
        d_w1 = x.T @ d_h
        d_b1 = d_h.sum(axis=0)
        # SGD, in place (after every gradient is computed: d_h needed the old w2)
        for param, grad in zip(self.params, (d_w1, d_b1, d_w2, d_b2), strict=True):
            param -= LEARNING_RATE * grad
        return loss

    def loss_value(self, loss: np.float32) -> float:
        return float(loss)

    def parameters(self) -> Params:
        return [p.copy() for p in self.params]


class TorchStep(StepImplementation):
    """PyTorch CPU, written the way its tutorials write the loop."""

    name = "torch"

    def __init__(self, torch: Any, init: Params) -> None:
        nn = torch.nn
        self.torch = torch
        self.cross_entropy = torch.nn.functional.cross_entropy
        self.model = nn.Sequential(
            nn.Linear(IN_FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES)
        )
        with torch.no_grad():
            for layer, (weight, bias) in zip(
                (self.model[0], self.model[2]), (init[0:2], init[2:4]), strict=True
            ):
                # nn.Linear stores weight as (out, in): the transpose of tinytorch's.
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight.T)))
                layer.bias.copy_(torch.from_numpy(bias))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)

    def prepare(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        return self.torch.from_numpy(x), self.torch.from_numpy(y)

    def step(self, batch: tuple[Any, Any]) -> Any:
        x, y = batch
        loss = self.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss

    def loss_value(self, loss: Any) -> float:
        return float(loss.item())

    def parameters(self) -> Params:
        first, second = self.model[0], self.model[2]
        return [
            first.weight.detach().numpy().T.copy(),
            first.bias.detach().numpy().copy(),
            second.weight.detach().numpy().T.copy(),
            second.bias.detach().numpy().copy(),
        ]


def load_torch(enabled: bool) -> tuple[Any, str | None]:
    """(torch module, None), or (None, why not): PyTorch is an optional oracle."""
    if not enabled:
        return None, "disabled with --no-torch"
    try:
        import torch
    except (ImportError, OSError) as exc:  # OSError: a wheel whose shared libraries fail
        return None, f"torch is not importable ({type(exc).__name__}: {exc})"
    return torch, None


def build_implementations(init: Params, torch: Any) -> list[Implementation]:
    impls: list[Implementation] = [TinytorchLoop(init), TrainerEpoch(init), NumpyStep(init)]
    if torch is not None:
        impls.append(TorchStep(torch, init))
    return impls


# ============================================================================ agreement
@dataclass
class Agreement:
    """Result of comparing every implementation with the numpy reference at one batch size."""

    batch_size: int
    steps: int
    losses: dict[str, list[float]] = field(default_factory=dict)
    max_loss_diff: dict[str, float] = field(default_factory=dict)
    max_param_diff: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "steps": self.steps,
            "passed": self.passed,
            "losses": self.losses,
            "max_abs_loss_diff_vs_numpy": self.max_loss_diff,
            "max_abs_param_diff_vs_numpy": self.max_param_diff,
            "failures": self.failures,
        }


def check_agreement(
    batch_size: int, torch: Any = None, *, steps: int = AGREEMENT_STEPS, seed: int = 0
) -> Agreement:
    """Train every implementation ``steps`` steps from the same weights on the same batches and
    compare the loss of each step (the first one included) and the final parameters with the
    hand-written numpy step, within float32 tolerances (rtol 1e-4, atol 1e-6)."""
    init = initial_weights(seed)
    pool = batch_pool(batch_size, seed + batch_size)[:steps]
    result = Agreement(batch_size=batch_size, steps=steps)
    recorded: dict[str, tuple[list[float], Params]] = {}
    for impl in build_implementations(init, torch):
        losses = impl.run_recording([impl.prepare(x, y) for x, y in pool])
        recorded[impl.name] = (losses, impl.parameters())
        result.losses[impl.name] = losses
    ref_losses, ref_params = recorded["numpy"]
    names = ("W1", "b1", "W2", "b2")
    for name, (losses, params) in recorded.items():
        if name == "numpy":
            continue
        if len(losses) != len(ref_losses):
            result.failures.append(
                f"batch {batch_size}: {name} took {len(losses)} steps on {len(ref_losses)} "
                "batches, one step per batch was expected"
            )
            continue
        loss_a, loss_b = np.array(losses), np.array(ref_losses)
        result.max_loss_diff[name] = float(np.max(np.abs(loss_a - loss_b)))
        if not np.allclose(loss_a, loss_b, rtol=RTOL, atol=ATOL):
            worst = int(np.argmax(np.abs(loss_a - loss_b)))
            result.failures.append(
                f"batch {batch_size}: {name} loss at step {worst + 1} is {loss_a[worst]:.7g}, "
                f"numpy's is {loss_b[worst]:.7g} (rtol {RTOL:g}, atol {ATOL:g})"
            )
        diffs = []
        for pname, p, ref in zip(names, params, ref_params, strict=True):
            if p.shape != ref.shape:
                result.failures.append(
                    f"batch {batch_size}: {name} {pname} has shape {p.shape}, numpy's {ref.shape}"
                )
                continue
            diff = float(np.max(np.abs(p.astype(np.float64) - ref)))
            diffs.append(diff)
            if not np.allclose(p, ref, rtol=RTOL, atol=ATOL):
                result.failures.append(
                    f"batch {batch_size}: {name} {pname} after {steps} steps differs from "
                    f"numpy's by up to {diff:.3g} (rtol {RTOL:g}, atol {ATOL:g})"
                )
        result.max_param_diff[name] = max(diffs, default=float("nan"))
    others = set(recorded) - {"numpy"}
    failing = {name for name in others if any(f": {name} " in f for f in result.failures)}
    if len(others) >= 2 and failing == others:
        result.failures.append(
            f"batch {batch_size}: every implementation ({', '.join(sorted(others))}) disagrees "
            "with the hand-written numpy step: the reference itself may be the one that is wrong"
        )
    return result


# ============================================================================ timing
_freeze_depth = 0


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the objects alive now out of the garbage collector's reach until the block ends.

    torch and torch._dynamo leave hundreds of thousands of objects behind; a full collection
    over them costs ~0.15 s. Landing inside a timed block it would charge the harness's heap to
    whichever implementation was running (a tinytorch-only process has no such heap), and the
    explicit collections between blocks would cost more than the blocks. Re-entrant: only the
    outermost block freezes and unfreezes.
    """
    global _freeze_depth
    if _freeze_depth == 0:
        gc.collect()
        gc.freeze()
    _freeze_depth += 1
    try:
        yield
    finally:
        _freeze_depth -= 1
        if _freeze_depth == 0:
            gc.unfreeze()


@dataclass
class Timings:
    """Per-step seconds of each implementation, one entry per repeat: wall-clock time (what is
    reported) and this thread's CPU time (what shows whether the machine was busy)."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def time_implementations(
    impls: Sequence[Implementation],
    pool: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    steps: int,
    repeats: int,
    warmup: int,
) -> Timings:
    """Time ``repeats`` blocks of ``steps`` steps of every implementation.

    Repeat r runs the implementations in an order rotated by r, so none always runs first
    (after the garbage collector, or while the CPU clock ramps) and slow phases of the machine
    fall on all of them. The collector stays on while timing, because a real training loop runs
    with it and tinytorch's graph objects (Tensors, closures) are what it collects. But the
    objects alive before timing (torch and torch._dynamo alone are hundreds of thousands) are
    frozen out of it (``frozen_heap``).
    """
    prepared = {impl.name: [impl.prepare(x, y) for x, y in pool] for impl in impls}
    batches = {name: cycle(items, steps) for name, items in prepared.items()}
    for impl in impls:
        impl.run(cycle(prepared[impl.name], warmup))
    timings = Timings({impl.name: [] for impl in impls}, {impl.name: [] for impl in impls})
    with frozen_heap():
        for r in range(repeats):
            shift = r % len(impls)
            for impl in [*impls[shift:], *impls[:shift]]:
                gc.collect()  # each block starts from the same, collected, young generation
                wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
                impl.run(batches[impl.name])
                cpu, wall = time.thread_time_ns() - cpu, time.perf_counter_ns() - wall
                timings.wall[impl.name].append(wall / 1e9 / steps)
                timings.cpu[impl.name].append(cpu / 1e9 / steps)
    return timings


def summarize(wall: list[float], cpu: list[float]) -> dict[str, Any]:
    us = [t * 1e6 for t in wall]
    return {
        "median_us": statistics.median(us),
        "p25_us": float(np.percentile(us, 25)),
        "p75_us": float(np.percentile(us, 75)),
        "min_us": min(us),
        "max_us": max(us),
        "median_cpu_us": statistics.median(t * 1e6 for t in cpu),
        "per_repeat_us": us,
        # Share of the wall time this thread was not running: near 0 on a quiet machine.
        "off_cpu_fraction": max(0.0, 1.0 - sum(cpu) / sum(wall)),
    }


# ============================================================================ memory
def measure_memory(impl: StepImplementation, pool: Sequence[Any], steps: int) -> dict[str, Any]:
    """Peak traced memory over steps 1..``steps`` after one untraced warm-up step, and the
    memory still traced after step ``steps // 10`` and after step ``steps``.

    Tracing starts after the parameters exist and after the warm-up step, so the figures are
    what a step allocates on top of the model: activations, gradients and temporaries. The
    last loss stays referenced between steps, as in any loop; if it kept its graph (or
    gradients were never released) the traced memory would hold a whole step's buffers, and
    a leak would make step ``steps`` hold more than step ``steps // 10``.
    """
    batches = [impl.prepare(x, y) for x, y in pool]
    early = max(1, steps // 10)
    impl.step(batches[0])
    current: dict[int, int] = {}
    with frozen_heap():
        gc.collect()
        tracemalloc.start()
        try:
            loss = None
            for i in range(1, steps + 1):
                loss = impl.step(batches[i % len(batches)])
                if i in (early, steps):
                    current[i] = tracemalloc.get_traced_memory()[0]
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        del loss
    growth = current[steps] - current[early]
    return {
        "steps": steps,
        "peak_bytes": peak,
        "peak_mib": peak / 2**20,
        "early_step": early,
        "traced_at_early_step_bytes": current[early],
        "traced_at_last_step_bytes": current[steps],
        "growth_bytes": growth,
        "no_growth": abs(growth) <= GROWTH_TOLERANCE,
    }


# ============================================================================ threads
class ThreadPinningError(RuntimeError):
    """A BLAS/OpenMP pool kept more than one thread: timings would not be comparable."""


def _pool_summary(entry: dict[str, Any]) -> str:
    version = f" {entry['version']}" if entry.get("version") else ""
    return (
        f"{entry.get('prefix', '?')} ({entry.get('user_api')}, {entry.get('internal_api')}"
        f"{version}): {entry.get('num_threads')} thread(s)"
    )


@contextlib.contextmanager
def single_threaded(torch: Any) -> Iterator[dict[str, Any]]:
    """Pin every thread pool threadpoolctl can see, and torch's intra-op pool, to one thread;
    yield what was verified. Raises ThreadPinningError if any pool still has more than one thread
    (timings would then measure the machine's cores, not the library). Restores the previous
    limits on exit, so importing and running this from a test leaves the process as it was."""
    previous = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=1):
        if torch is not None:
            torch.set_num_threads(1)
        try:
            pools = threadpool_info()
            torch_threads = torch.get_num_threads() if torch is not None else None
            wrong = [_pool_summary(p) for p in pools if p.get("num_threads") != 1]
            if torch_threads not in (None, 1):
                wrong.append(f"torch.get_num_threads() = {torch_threads}")
            if wrong:
                raise ThreadPinningError(
                    "could not pin thread pools to one thread: " + "; ".join(wrong)
                )
            yield {
                "threadpools": pools,
                "torch_num_threads": torch_threads,
                "environment": {
                    k: os.environ.get(k)
                    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                },
            }
        finally:
            if previous is not None:
                torch.set_num_threads(previous)


# ============================================================================ the run
@dataclass(frozen=True)
class Settings:
    """What to run. ``quick`` only records that the smoke-test sizes were chosen."""

    batch_sizes: tuple[int, ...] = BATCH_SIZES
    steps: int = 20
    repeats: int = 75
    warmup: int = 50
    memory_steps: int = 1000
    use_torch: bool = True
    seed: int = 0
    quick: bool = False


QUICK = {"steps": 5, "repeats": 3, "warmup": 2, "memory_steps": 20}


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parents[1],  # the repository root
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout
    return None


def _library_version() -> dict[str, Any]:
    """The commit measured and any uncommitted change to the library: a table pasted into the
    README must say which code it timed."""
    commit = _git("rev-parse", "--short", "HEAD")
    status = _git("status", "--porcelain", "--", "tinytorch")
    return {
        "git_commit": commit.strip() if commit else None,
        "uncommitted_library_changes": (
            sorted(line[3:] for line in status.splitlines() if line.strip()) if status else []
        ),
    }


def run(settings: Settings) -> dict[str, Any]:
    """Check agreement, then time and trace; return the report (see ``render_markdown``).

    The report's ``agreement.passed`` is False (and nothing is timed) if the implementations
    disagree: timings of different computations would be meaningless.
    """
    started = time.perf_counter()
    torch, torch_missing = load_torch(settings.use_torch)
    report: dict[str, Any] = {
        "settings": {
            "batch_sizes": list(settings.batch_sizes),
            "steps": settings.steps,
            "repeats": settings.repeats,
            "warmup": settings.warmup,
            "memory_steps": settings.memory_steps,
            "seed": settings.seed,
            "quick": settings.quick,
            "learning_rate": LEARNING_RATE,
            "target_ratio": TARGET_RATIO,
        },
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": None if torch is None else torch.__version__,
            "torch_missing": torch_missing,
            "cpu": _cpu_name(),
            "platform": platform.platform(),
            **_library_version(),
        },
    }
    with single_threaded(torch) as threads:
        report["threads"] = threads
        agreements = [check_agreement(b, torch, seed=settings.seed) for b in settings.batch_sizes]
        report["agreement"] = {
            "passed": all(a.passed for a in agreements),
            "rtol": RTOL,
            "atol": ATOL,
            "by_batch": {str(a.batch_size): a.as_dict() for a in agreements},
        }
        if not report["agreement"]["passed"]:
            report["elapsed_s"] = time.perf_counter() - started
            return report
        report["timing"], report["memory"] = {}, {}
        with frozen_heap():
            measure_all(report, settings, torch)
    report["ratios"], report["targets"] = ratios_and_targets(report)
    report["elapsed_s"] = time.perf_counter() - started
    return report


def measure_all(report: dict[str, Any], settings: Settings, torch: Any) -> None:
    """Time every implementation and trace tinytorch's and numpy's memory, per batch size."""
    for batch_size in settings.batch_sizes:
        pool = batch_pool(batch_size, settings.seed + batch_size)
        impls = build_implementations(initial_weights(settings.seed), torch)
        times = time_implementations(
            impls, pool, steps=settings.steps, repeats=settings.repeats, warmup=settings.warmup
        )
        report["timing"][str(batch_size)] = {
            name: summarize(wall, times.cpu[name]) for name, wall in times.wall.items()
        }
        init = initial_weights(settings.seed)
        report["memory"][str(batch_size)] = {
            impl.name: measure_memory(impl, pool, settings.memory_steps)
            for impl in (TinytorchLoop(init), NumpyStep(init))
        }


def ratios_and_targets(report: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ratios measured in this run, and PASS/MISS for each speed target.

    A ratio is the median over repeats of the ratio of the two implementations' times in the
    same repeat: they ran within milliseconds of each other, so a slow phase of the host (on a
    shared VM these last ~50-100 ms and cost up to 30%) divides out instead of landing on one
    side. The plain ratio of the two medians is kept in the JSON as a cross-check.
    """
    pairs = {
        "tinytorch/numpy": ("tinytorch", "numpy"),
        "tinytorch/torch": ("tinytorch", "torch"),
        "trainer/numpy": ("trainer", "numpy"),
        "trainer/tinytorch": ("trainer", "tinytorch"),
    }
    ratios: dict[str, Any] = {}
    targets: list[dict[str, Any]] = []
    for batch, timing in report["timing"].items():
        present = {key: (a, b) for key, (a, b) in pairs.items() if a in timing and b in timing}
        ratios[batch] = {
            key: statistics.median(
                x / y
                for x, y in zip(timing[a]["per_repeat_us"], timing[b]["per_repeat_us"], strict=True)
            )
            for key, (a, b) in present.items()
        }
        ratios[batch]["of medians"] = {
            key: timing[a]["median_us"] / timing[b]["median_us"] for key, (a, b) in present.items()
        }
        memory = report["memory"][batch]
        ratios[batch]["memory tinytorch/numpy"] = (
            memory["tinytorch"]["peak_bytes"] / memory["numpy"]["peak_bytes"]
        )
        for key, other in (("tinytorch/torch", "PyTorch CPU"), ("tinytorch/numpy", "numpy")):
            ratio = ratios[batch].get(key)
            targets.append(
                {
                    "target": f"tinytorch <= {TARGET_RATIO}x {other}",
                    "batch_size": int(batch),
                    "ratio": ratio,
                    "result": (
                        "n/a" if ratio is None else "PASS" if ratio <= TARGET_RATIO else "MISS"
                    ),
                }
            )
        for name in ("tinytorch", "numpy"):
            targets.append(
                {
                    "target": f"{name}: no memory growth, step {memory[name]['early_step']} to "
                    f"{memory[name]['steps']}",
                    "batch_size": int(batch),
                    "ratio": None,
                    "result": "PASS" if memory[name]["no_growth"] else "MISS",
                }
            )
    return ratios, targets


# ============================================================================ output
def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _tree(env: dict[str, Any]) -> str:
    commit = env.get("git_commit") or "an unknown commit"
    changed = env.get("uncommitted_library_changes") or []
    return f"{commit} + uncommitted changes to {', '.join(changed)}" if changed else commit


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown, ready to paste into README.md."""
    env, settings = report["environment"], report["settings"]
    torch_note = (
        f"PyTorch {env['torch']}"
        if env["torch"]
        else f"PyTorch not measured: {env['torch_missing']}"
    )
    lines = [
        "Training step of a 784-256-10 MLP (Linear, ReLU, Linear, cross-entropy, SGD lr=0.1, "
        "fp32), all BLAS/OpenMP pools pinned to 1 thread. Times: median per-step time over "
        f"{settings['repeats']} interleaved repeats of {settings['steps']} steps each "
        f"(after {settings['warmup']} warm-up steps); ratios: median of the per-repeat ratios. "
        f"{env['cpu']}, Python {env['python']}, "
        f"numpy {env['numpy']}, {torch_note}; tinytorch at {_tree(env)}."
        + (" QUICK RUN: smoke-test sizes, the numbers are noise." if settings["quick"] else ""),
        "",
    ]
    agreement = report["agreement"]
    if not agreement["passed"]:
        lines.append("**Agreement FAILED; nothing was timed.**")
        lines.append("")
        for batch in agreement["by_batch"].values():
            lines.extend(f"- {failure}" for failure in batch["failures"])
        return "\n".join(lines) + "\n"

    has_torch = env["torch"] is not None
    off_cpu = max(
        t["off_cpu_fraction"] for timing in report["timing"].values() for t in timing.values()
    )
    if off_cpu > BUSY_THRESHOLD:
        lines += [
            f"**Warning: the machine was busy.** This process was off the CPU for up to "
            f"{off_cpu:.0%} of an implementation's timed wall time; other processes were "
            "competing for the cores, so rerun on a quiet machine before trusting these numbers.",
            "",
        ]
    head = ["batch", "tinytorch (µs)", "Trainer (µs)", "numpy (µs)"]
    head += ["PyTorch (µs)"] if has_torch else []
    head += ["tinytorch / numpy"] + (["tinytorch / PyTorch"] if has_torch else [])
    head += ["Trainer / numpy", "Trainer / tinytorch"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for batch, timing in report["timing"].items():
        ratios = report["ratios"][batch]
        cells = [batch] + [
            f"{timing[name]['median_us']:.0f}"
            for name in ("tinytorch", "trainer", "numpy", *(("torch",) if has_torch else ()))
        ]
        cells.append(_ratio(ratios["tinytorch/numpy"]))
        if has_torch:
            cells.append(_ratio(ratios["tinytorch/torch"]))
        cells += [_ratio(ratios["trainer/numpy"]), _ratio(ratios["trainer/tinytorch"])]
        lines.append("| " + " | ".join(cells) + " |")

    last = settings["memory_steps"]
    early = max(1, last // 10)
    lines += [
        "",
        f"Peak memory traced by tracemalloc over steps 1..{last} after a warm-up step "
        "(allocations on top of the parameters), and memory still held after step "
        f"{early} and after step {last} (flat: no graph or gradient outlives its step):",
        "",
        "| batch | tinytorch peak (MiB) | numpy peak (MiB) | tinytorch / numpy "
        f"| tinytorch held after step {early} / {last} (KiB) "
        f"| numpy held after step {early} / {last} (KiB) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for batch, memory in report["memory"].items():
        tt, npy = memory["tinytorch"], memory["numpy"]
        held = [
            f"{m['traced_at_early_step_bytes'] / 1024:.1f} / "
            f"{m['traced_at_last_step_bytes'] / 1024:.1f}"
            for m in (tt, npy)
        ]
        lines.append(
            f"| {batch} | {tt['peak_mib']:.2f} | {npy['peak_mib']:.2f} | "
            f"{_ratio(report['ratios'][batch]['memory tinytorch/numpy'])} | {held[0]} | {held[1]} |"
        )

    compared = ", ".join(n for n in ("tinytorch", "trainer", "torch") if n != "torch" or has_torch)
    by_batch = agreement["by_batch"].values()
    worst_loss = max(
        (d for b in by_batch for d in b["max_abs_loss_diff_vs_numpy"].values()), default=0.0
    )
    worst_param = max(
        (d for b in by_batch for d in b["max_abs_param_diff_vs_numpy"].values()), default=0.0
    )
    lines += [
        "",
        f"Agreement: PASS. From identical weights, {compared} match numpy on the loss of each of "
        f"{AGREEMENT_STEPS} steps and on the parameters after them (rtol {agreement['rtol']:g}, "
        f"atol {agreement['atol']:g}; largest differences {worst_loss:.1e} in a loss, "
        f"{worst_param:.1e} in a parameter).",
        "",
        "| target | batch | ratio | result |",
        "|---|---:|---:|---|",
    ]
    for target in report["targets"]:
        ratio = "" if target["ratio"] is None else f"{target['ratio']:.2f}"
        lines.append(
            f"| {target['target']} | {target['batch_size']} | {ratio} | {target['result']} |"
        )
    return "\n".join(lines) + "\n"


def render_threads(report: dict[str, Any]) -> str:
    threads = report["threads"]
    lines = ["Thread pools (threadpoolctl.threadpool_info() inside threadpool_limits(1)):"]
    lines += [f"  {_pool_summary(p)}" for p in threads["threadpools"]]
    if threads["torch_num_threads"] is not None:
        lines.append(f"  torch.get_num_threads(): {threads['torch_num_threads']}")
    else:
        lines.append(f"  torch: {report['environment']['torch_missing']}")
    return "\n".join(lines)


def write_results(report: dict[str, Any], markdown: str, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    md_path, json_path = directory / "latest.md", directory / "latest.json"
    md_path.write_text(markdown)
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return [md_path, json_path]


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, Path]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.train_step",
        description="Time a 784-256-10 MLP training step: tinytorch vs numpy vs PyTorch CPU.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-test sizes ({', '.join(f'{k}={v}' for k, v in QUICK.items())}); "
        "numbers are noise",
    )
    defaults = Settings()
    parser.add_argument(
        "--steps",
        type=int,
        help=f"timed steps per implementation per repeat (default {defaults.steps}; short "
        "blocks interleave finely enough to cancel the host's slow phases)",
    )
    parser.add_argument(
        "--repeats", type=int, help=f"interleaved repeats (default {defaults.repeats})"
    )
    parser.add_argument(
        "--warmup", type=int, help=f"untimed warm-up steps (default {defaults.warmup})"
    )
    parser.add_argument(
        "--memory-steps", type=int, help="traced steps for peak memory (default 1000)"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="batch sizes (default 32 128)")
    parser.add_argument(
        "--no-torch", action="store_true", help="leave PyTorch out even if it is installed"
    )
    parser.add_argument("--seed", type=int, default=0, help="weights and data seed (default 0)")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where latest.md and latest.json go (default benchmarks/results)",
    )
    args = parser.parse_args(argv)
    base = Settings(quick=args.quick, **(QUICK if args.quick else {}))
    chosen = {
        "steps": args.steps,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "memory_steps": args.memory_steps,
    }
    values = {k: (v if v is not None else getattr(base, k)) for k, v in chosen.items()}
    for name, value in values.items():
        least = 0 if name == "warmup" else 1
        if value < least:
            parser.error(f"--{name.replace('_', '-')} must be >= {least}")
    if values["memory_steps"] < 10:
        parser.error("--memory-steps must be >= 10 (growth is compared at steps/10 and steps)")
    batch_sizes = tuple(args.batch_sizes) if args.batch_sizes else base.batch_sizes
    if any(b < 1 for b in batch_sizes):
        parser.error("--batch-sizes must be positive")
    settings = Settings(
        batch_sizes=batch_sizes,
        use_torch=not args.no_torch,
        seed=args.seed,
        quick=args.quick,
        **values,
    )
    return settings, args.output_dir


def main(argv: Sequence[str] | None = None) -> int:
    settings, output_dir = parse_args(argv)
    try:
        report = run(settings)
    except ThreadPinningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    markdown = render_markdown(report)
    print(render_threads(report))
    print()
    print(markdown, end="")
    paths = write_results(report, markdown, output_dir)
    print()
    print(f"Wrote {', '.join(str(p) for p in paths)} in {report['elapsed_s']:.1f} s.")
    if not report["agreement"]["passed"]:
        failures = [
            failure
            for batch in report["agreement"]["by_batch"].values()
            for failure in batch["failures"]
        ]
        print(
            "error: the implementations disagree, so their timings would compare different "
            "computations:\n  " + "\n  ".join(failures),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``training_memory`` against ``tracemalloc`` on the lesson's digits model: each predicted
component is what a real step allocates, within a stated tolerance.

numpy reports every array it allocates to ``tracemalloc``, so the bytes traced while a piece of
the step runs are that piece's arrays plus a little of Python's own: the Tensor objects, the
backward closures, the optimizer's state dicts, a Dropout's Generator. TOLERANCE bounds that
part. It is tight enough to tell the prediction's known bugs apart (a ReLU mask left out, an
optimizer buffer too many or too few), which the last test shows.

One measured part is not in the prediction, and the test names it: tinytorch's optimizer keeps
one scratch array per parameter shape for its in-place update (``Optimizer._descend``), made at
the first step. It is not state: no checkpoint holds it.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import training_memory
from tinytorch.viz import digits_mlp

#: Python's own allocations around the arrays: a fixed part and a part that grows with them.
TOLERANCE_BYTES = 4 * 1024
TOLERANCE_FRACTION = 0.02

OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "SGD": lambda ps: SGD(ps, lr=0.1),
    "SGD momentum": lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    "Adam": lambda ps: Adam(ps),
    "AdamW": lambda ps: AdamW(ps),
}


def within(measured: int, predicted: int) -> bool:
    return abs(measured - predicted) <= TOLERANCE_BYTES + TOLERANCE_FRACTION * predicted


@pytest.fixture
def traced() -> Iterator[Callable[[], int]]:
    """The bytes traced now, after a garbage collection (so cycles freed late do not count)."""
    tracemalloc.start()
    digits_mlp()  # a first model: one-time allocations (imports, caches) are not the model's

    def now() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    yield now
    tracemalloc.stop()


def measure(now: Callable[[], int], kind: str, batch_size: int) -> tuple[dict, dict]:
    """(prediction, what tracemalloc saw) for one step of the digits model."""
    x = Tensor(np.random.default_rng(0).normal(size=(batch_size, 64)))
    start = now()
    model = digits_mlp()
    built = now()
    optimizer = OPTIMIZERS[kind](model.parameters())
    predicted = training_memory(model, optimizer, batch_size)
    ready = now()
    out = model.forward(x)
    forward = now()
    out.sum().backward()
    del out
    backward = now()
    optimizer.step()
    stepped = now()
    scratch = sum(a.nbytes for a in optimizer._scratch.values())
    return predicted, {"parameters": built - start, "activations": forward - ready,
                       "gradients": backward - ready,
                       "optimizer_state": stepped - backward - scratch}


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [32, 256])
def test_each_component_is_what_tracemalloc_sees(traced, kind: str, batch_size: int) -> None:
    predicted, measured = measure(traced, kind, batch_size)
    for component, bytes_seen in measured.items():
        assert within(bytes_seen, predicted[component]), (
            f"{component}: predicted {predicted[component]:,} bytes, tracemalloc saw "
            f"{bytes_seen:,} (tolerance {TOLERANCE_BYTES:,} + {TOLERANCE_FRACTION:.0%})")


def test_the_tolerance_tells_the_known_bugs_apart(traced) -> None:
    """The miscounts the check names would fall outside the tolerance on the lesson's model at
    a batch of 256: the comparison above can fail."""
    predicted, measured = measure(traced, "Adam", 256)
    relu_mask = 256 * 64  # one byte per number of the hidden layer
    assert not within(measured["activations"], predicted["activations"] - relu_mask)
    one_buffer = predicted["parameters"]
    assert not within(measured["optimizer_state"], predicted["optimizer_state"] - one_buffer)
    assert not within(measured["optimizer_state"], predicted["optimizer_state"] + one_buffer)
    assert not within(measured["gradients"], 0)

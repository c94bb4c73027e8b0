"""What training costs: ``training_memory(model, optimizer, batch_size)`` predicts, in bytes, what
one training step keeps in memory (parameters, gradients, optimizer state, activations, total).

The check never takes a formula for the truth. It builds every model twice from the same seeds,
hands one copy to the student's function before any step (a prediction is made before the step
runs), and on the other copy runs one real step: a forward pass on a batch of ``batch_size``
rows, backward, ``optimizer.step()``. Then it counts the bytes that step held:

* parameters: ``p.data.nbytes`` over ``model.parameters()``;
* gradients: the ``.grad`` arrays backward left on them;
* optimizer state: every array in ``optimizer.state`` after the step (step counters are ints);
* activations: every array the forward pass's graph holds, each once: the output of every
  operation and the arrays its backward function keeps (ReLU's mask), the input batch and the
  parameters excepted.

All of it runs on the check's own objects with tinytorch's own code, so a trusted judge counts
the same bytes from the seed alone and compares them with the plain numbers the student's
function returned (``checks.replay``). The per-layer table of the lesson is used only to name a
likely bug, never as the expected value.

A hidden run (``seed > 0``) draws other widths, depths, activations, dropout rates and batch
sizes, and deals the four optimizers to the four models in another order: the same kinds of
layer and optimizer as the visible run, in shapes the student never saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from checks.diagnose import Deviations, fail
from checks.fixtures import MLP
from checks.seeds import shifted, variation
from tinytorch.core.activations import ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.layers import Dropout, Linear, Sequential, modules, set_training
from tinytorch.core.optimizers import SGD, Adam, AdamW, grad_array
from tinytorch.core.tensor import Tensor

KEYS = ("parameters", "gradients", "optimizer_state", "activations", "total")
FLOAT = 4  # bytes of a float32
MASK = 1  # bytes of a bool


@dataclass(frozen=True)
class Case:
    """One model and optimizer, built afresh by ``build`` (the same objects at every call)."""

    label: str
    build: Callable[[], Any]
    optimizer: tuple[str, Callable[[list], Any]]
    batch_size: int
    n_in: int


# ----------------------------------------------------------------------------- the cases
def cases(seed: int) -> list[Case]:
    """Five cases on four models: a Sequential with plain SGD and with SGD with momentum (only
    the buffer differs); the checks' duck-typed MLP with Dropout; nested Sequentials with a
    bias-free Linear, Tanh, Sigmoid and a Dropout of p = 0; a deeper stack with Dropout. The
    last three get Adam, AdamW and SGD with momentum, in another order at a hidden run."""
    vary = variation(seed, 80)

    def draw(low: int, high: int, visible: int) -> int:
        return int(vary.integers(low, high + 1)) if seed else visible

    def rate(low: float, high: float, visible: float) -> float:
        return round(float(vary.uniform(low, high)), 2) if seed else visible

    def at(k: int) -> int:
        return shifted(k, seed)

    a_in, a_hidden, a_out, a_batch = draw(2, 24, 8), draw(1, 48, 16), draw(1, 12, 3), \
        draw(1, 96, 32)
    b_in, b_hidden, b_out, b_batch = draw(2, 24, 4), draw(1, 48, 12), draw(1, 12, 2), \
        draw(1, 96, 10)
    b_p = rate(0.05, 0.6, 0.25)
    c_in, c_1, c_2, c_batch = draw(2, 24, 6), draw(1, 48, 10), draw(1, 24, 5), draw(1, 96, 7)
    d_in, d_out, d_batch = draw(2, 24, 5), draw(1, 12, 4), draw(1, 96, 3)
    d_widths = [draw(1, 32, 9) for _ in range(draw(2, 4, 2))]
    d_acts = ([[ReLU, Sigmoid, Tanh][int(vary.integers(3))] for _ in d_widths] if seed
              else [ReLU, Sigmoid])
    d_p = rate(0.05, 0.6, 0.5)
    momentum, other_momentum = rate(0.5, 0.95, 0.9), rate(0.5, 0.95, 0.5)

    def model_a() -> Any:
        return Sequential(Linear(a_in, a_hidden, seed=at(1)), ReLU(),
                          Linear(a_hidden, a_out, seed=at(2)))

    def model_b() -> Any:
        return MLP(b_in, b_hidden, b_out, dropout=b_p, seed=at(3))

    def model_c() -> Any:
        return Sequential(Linear(c_in, c_1, bias=False, seed=at(6)), Tanh(),
                          Sequential(Linear(c_1, c_2, seed=at(7)), Sigmoid()), Dropout(0.0))

    def model_d() -> Any:
        layers: list[Any] = []
        width = d_in
        for i, (hidden, act) in enumerate(zip(d_widths, d_acts, strict=True)):
            layers += [Linear(width, hidden, seed=at(10 + i)), act()]
            if i == 0:
                layers.append(Dropout(d_p, seed=at(9)))
            width = hidden
        layers.append(Linear(width, d_out, seed=at(20)))
        return Sequential(*layers)

    def shown(build: Callable[[], Any]) -> str:
        model = build()
        return repr(model) if isinstance(model, Sequential) else _duck(model)

    dealt: list[tuple[str, Callable[[list], Any]]] = [
        ("Adam", lambda ps: Adam(ps, lr=0.01)),
        ("AdamW", lambda ps: AdamW(ps, lr=0.01, weight_decay=0.01)),
        (f"SGD with momentum {other_momentum:g}",
         lambda ps: SGD(ps, lr=0.1, momentum=other_momentum)),
    ]
    if seed:
        dealt = [dealt[int(i)] for i in variation(seed, 81).permutation(len(dealt))]
    return [
        Case(shown(model_a), model_a, ("SGD without momentum", lambda ps: SGD(ps, lr=0.1)),
             a_batch, a_in),
        Case(shown(model_a), model_a, (f"SGD with momentum {momentum:g}",
                                       lambda ps: SGD(ps, lr=0.1, momentum=momentum)),
             a_batch, a_in),
        *[Case(shown(build), build, kind, batch, n_in) for (build, batch, n_in), kind in zip(
            [(model_b, b_batch, b_in), (model_c, c_batch, c_in), (model_d, d_batch, d_in)],
            dealt, strict=True)],
    ]


def _duck(model: Any) -> str:
    """A duck-typed model as a message shows it: its class and layers in order."""
    inner = ", ".join(repr(layer) for layer in list(modules(model))[1:])
    return f"{type(model).__name__} (no base class: {inner})"


# ----------------------------------------------------------------------------- counting
@dataclass(frozen=True)
class Counted:
    """The bytes one real step held, counted on the check's own objects."""

    parameters: int
    gradients: int
    optimizer_state: int
    activations: int
    elements: int  # numbers in the parameters
    weights: int  # bytes of the parameters with two dimensions (no biases)

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state + self.activations


def _graph_bytes(out: Tensor, x: Tensor, params: list[Tensor]) -> int:
    """Bytes of every array the graph behind ``out`` holds, each once: every node's data and
    the arrays its backward function closes over, without the input and the parameters."""
    skip_nodes = {id(x)} | {id(p) for p in params}
    skip_arrays = {id(x.data)} | {id(p.data) for p in params}
    arrays: dict[int, np.ndarray] = {}
    stack, seen = [out], set()
    while stack:
        node = stack.pop()
        if id(node) in seen or id(node) in skip_nodes:
            continue
        seen.add(id(node))
        arrays[id(node.data)] = node.data
        for cell in getattr(node._backward, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # a cell not filled yet
                continue
            if isinstance(value, np.ndarray) and value.size:
                arrays[id(value)] = value
        stack.extend(node._parents)
    return sum(a.nbytes for key, a in arrays.items() if key not in skip_arrays)


def count(case: Case, seed: int) -> Counted:
    """One real training step of ``case`` on a fresh copy, and the bytes it held."""
    model = case.build()
    params = list(model.parameters())
    optimizer = case.optimizer[1](params)
    x = Tensor(np.random.default_rng(shifted(30, seed)).normal(size=(case.batch_size, case.n_in)))
    set_training(model, True)
    out = model.forward(x)
    activations = _graph_bytes(out, x, params)
    out.sum().backward()
    gradients = sum(g.nbytes for g in (grad_array(p) for p in params) if g is not None)
    optimizer.step()
    state = sum(v.nbytes for s in optimizer.state for v in s.values()
                if isinstance(v, np.ndarray))
    return Counted(sum(p.data.nbytes for p in params), gradients, state, activations,
                   sum(p.data.size for p in params),
                   sum(p.data.nbytes for p in params if p.data.ndim == 2))


def layer_table(model: Any, batch_size: int) -> list[tuple[str, int, str]]:
    """(layer, bytes, kind) as the lesson's table counts them, in the order ``modules`` walks;
    only to show the expectation layer by layer and to name a likely bug."""
    rows, width = [], 0
    for module in modules(model):
        if isinstance(module, Linear):
            width = module.out_features
            rows.append((repr(module), FLOAT * batch_size * width, "linear"))
        elif isinstance(module, ReLU):
            rows.append(("ReLU", (FLOAT + MASK) * batch_size * width, "relu"))
        elif isinstance(module, Sigmoid | Tanh | Softmax):
            rows.append((type(module).__name__, FLOAT * batch_size * width, "smooth"))
        elif isinstance(module, Dropout):
            kept = 2 * FLOAT * batch_size * width if module.p > 0 else 0
            rows.append((repr(module), kept, "dropout" if module.p > 0 else "dropout0"))
    return rows


# ----------------------------------------------------------------------------- judging
def _bytes(n: int) -> str:
    return f"{n:,} bytes"


def _whole(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return False
    return bool(np.isfinite(value)) and float(value) == int(value) and value >= 0


def _returned(result: Any, what: str) -> dict[str, int]:
    if not isinstance(result, dict):
        fail(what, f"a dict with the keys {', '.join(KEYS)}", f"a {type(result).__name__}: "
             f"{str(result)[:80]}", "return the dict of the five components, in bytes")
    missing = [k for k in KEYS if k not in result]
    if missing:
        fail(what, f"the keys {', '.join(KEYS)}", f"keys {sorted(map(str, result))}",
             f"missing {', '.join(missing)}: return every component under exactly these names")
    odd = {k: result[k] for k in KEYS if not _whole(result[k])}
    if odd:
        fail(what, "each value a whole number of bytes (an int), >= 0",
             ", ".join(f"{k} = {v!r}" for k, v in odd.items()),
             "bytes are whole numbers: count with ints (p.data.nbytes, 4 * batch_size * width)")
    return {k: int(result[k]) for k in KEYS}


def _size_bug(observed: int, counted: int, elements: int, weights: int) -> str:
    """Why parameters or gradients came out other than ``counted`` bytes."""
    if observed == elements and elements != counted:
        return ("counted numbers, not bytes: every float32 takes 4 bytes (p.data.nbytes is "
                "the size in bytes, p.data.size the count of numbers)")
    if observed == 2 * counted:
        return "8 bytes per number: tinytorch keeps float32, 4 bytes each"
    if observed == weights and weights != counted:
        return "the biases are missing: count every tensor of model.parameters()"
    return "sum p.data.nbytes over every p in model.parameters()"


def _optimizer_reason(name: str) -> str:
    if name.startswith("SGD without"):
        return "plain SGD keeps no buffer"
    if name.startswith("SGD with"):
        return "SGD with momentum keeps one buffer per parameter (momentum_buffer)"
    return f"{name} keeps two buffers per parameter (exp_avg and exp_avg_sq)"


def _ratio(n: int, of: int) -> str:
    return f"{n / of:.3g}x" if of else "?"


def _activation_bug(observed: int, counted: int, case: Case) -> str:
    """The likely bug behind a wrong ``activations``, named from the layer table."""
    rows = layer_table(case.build(), case.batch_size)
    n = case.batch_size

    def total(kind: str) -> int:
        return sum(b for _, b, k in rows if k == kind)

    relu_numbers = total("relu") // (FLOAT + MASK)
    zero_dropouts = sum(2 * FLOAT * n * w for w in _dropout0_widths(case.build()))
    candidates = [
        (counted - relu_numbers, relu_numbers,
         "ReLU's mask is missing: its backward keeps the boolean array x > 0 (1 byte per "
         "number) beside its output"),
        (counted + 3 * relu_numbers, relu_numbers,
         "ReLU's mask counted as 4 bytes per number: it is a boolean array, 1 byte each"),
        (counted - total("dropout") // 2, total("dropout"),
         "Dropout's mask is missing: in training mode it keeps its mask (float32) and its "
         "output"),
        (counted - total("dropout"), total("dropout"),
         "Dropout counted as nothing: with p > 0 it keeps a mask and an output, 8 bytes per "
         "number"),
        (counted + zero_dropouts, zero_dropouts,
         "a Dropout with p = 0 returns its input unchanged: it keeps nothing"),
        (counted + FLOAT * n * case.n_in, 1,
         "the input batch is not counted: the data loader holds it, not the step"),
        (counted - total("relu") - total("smooth") - total("dropout"),
         total("relu") + total("smooth") + total("dropout"),
         "only the Linear layers were counted: every activation layer keeps arrays too"),
        (counted - total("linear"), total("linear"),
         "the Linear layers' outputs are missing: each keeps 4 * batch_size * out_features"),
        (counted // n if n > 1 else -1, 1,
         "batch_size is missing: every kept array has one row per sample of the batch"),
        (counted // FLOAT if counted else -1, 1,
         "counted numbers, not bytes: a float32 takes 4 bytes, a mask's bool 1 byte"),
    ]
    for value, relevant, bug in candidates:
        if relevant and value == observed and value != counted:
            return bug
    return ("compare layer by layer with the table: Linear 4 * batch_size * out_features, "
            "ReLU 5 * batch_size * width, Sigmoid/Tanh 4 * batch_size * width, Dropout (p > 0) "
            "8 * batch_size * width, the layers in the order modules(model) yields them")


def _dropout0_widths(model: Any) -> list[int]:
    widths, width = [], 0
    for module in modules(model):
        if isinstance(module, Linear):
            width = module.out_features
        elif isinstance(module, Dropout) and module.p == 0:
            widths.append(width)
    return widths


def _judge(case: Case, returned: dict[str, int], counted: Counted, found: Deviations) -> None:
    name = case.optimizer[0]
    where = f"{case.label} with {name}, batch_size={case.batch_size}"
    with found.part():
        if returned["parameters"] != counted.parameters:
            fail(f"parameters of {where}",
                 f"{_bytes(counted.parameters)} ({counted.elements} float32 numbers x 4)",
                 _bytes(returned["parameters"]),
                 _size_bug(returned["parameters"], counted.parameters, counted.elements,
                           counted.weights))
    with found.part():
        if returned["gradients"] != counted.gradients:
            bug = ("backward gives every parameter a gradient of its own shape and dtype: "
                   "gradients take as many bytes as the parameters") \
                if returned["gradients"] in (0, 2 * counted.gradients) else \
                _size_bug(returned["gradients"], counted.gradients, counted.elements,
                          counted.weights)
            fail(f"gradients of {where}", _bytes(counted.gradients),
                 _bytes(returned["gradients"]), bug)
    with found.part():
        observed, expected = returned["optimizer_state"], counted.optimizer_state
        if observed != expected:
            bug = (f"optimizer_state is {_ratio(observed, counted.parameters)} the parameters "
                   f"for {name}: {_optimizer_reason(name)}")
            if observed == 0 and expected:
                bug += ("; optimizer.state is empty until the first step: predict from the "
                        "optimizer's kind and settings, not from what it holds now")
            fail(f"optimizer_state of {where}",
                 f"{_bytes(expected)} ({_ratio(expected, counted.parameters)} the parameters)",
                 f"{_bytes(observed)} ({_ratio(observed, counted.parameters)} the parameters)",
                 bug)
    with found.part():
        if returned["activations"] != counted.activations:
            rows = layer_table(case.build(), case.batch_size)
            shown = " + ".join(f"{layer} {b:,}" for layer, b, _ in rows if b)
            fail(f"activations of {where}", f"{_bytes(counted.activations)} ({shown})",
                 _bytes(returned["activations"]),
                 _activation_bug(returned["activations"], counted.activations, case))
    with found.part():
        parts = sum(returned[k] for k in KEYS[:-1])
        if returned["total"] != parts:
            fail(f"total of {where}", f"{_bytes(parts)}, the sum of the four components "
                 "you returned", _bytes(returned["total"]),
                 "total must be parameters + gradients + optimizer_state + activations")


def check_training_memory(training_memory: Any, *, seed: int = 0) -> None:
    """Each model and optimizer of ``cases(seed)``: the student's prediction, made before any
    step, equals the bytes one real step held, component by component."""
    found = Deviations()
    for case in cases(seed):
        counted = count(case, seed)
        model = case.build()
        optimizer = case.optimizer[1](model.parameters())
        with found.part():
            what = f"training_memory({case.label}, {case.optimizer[0]}, {case.batch_size})"
            returned = _returned(training_memory(model, optimizer, case.batch_size), what)
            _judge(case, returned, counted, found)
    found.report()


CHECKS: dict[str, Callable[..., None]] = {"memory": check_training_memory}

"""Audit 7.1 to 7.3: the Trainer works with the layers, activations, losses and optimizers of
Modules 01-06, whatever the architecture, the loss or the optimizer.

Gradients seen by the optimizer are compared with central differences (``numerical_grad``),
first updates with the optimizers' formulas written out by hand here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from support import SimpleModel, blobs, loader, numerical_grad

from tinytorch.core.activations import ReLU, Sigmoid, Tanh
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CosineSchedule, Trainer


def _regression_data(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y = x1 - 2 x2 + 0.5 on [-1, 1]^2, float32, targets of shape (n, 1)."""
    x = np.random.default_rng(seed).uniform(-1, 1, size=(n, 2)).astype(np.float32)
    return x, (x[:, :1] - 2 * x[:, 1:] + 0.5).astype(np.float32)


def _full_loss(model, loss_fn, x: np.ndarray, y: np.ndarray) -> float:
    return float(loss_fn(model.forward(Tensor(x)), Tensor(y)).data)


def _grad(p: Tensor) -> np.ndarray | None:
    if p.grad is None:
        return None
    return np.array(p.grad.data if isinstance(p.grad, Tensor) else p.grad)


def _recording(cls):
    """A subclass of optimizer ``cls`` that keeps a copy of every gradient it is asked to apply."""

    class Recording(cls):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)
            self.seen_grads: list[list[np.ndarray | None]] = []

        def step(self):
            self.seen_grads.append([_grad(p) for p in self.params])
            super().step()

    return Recording


# ------------------------------------------------------------------ 7.1: architectures
class GeneratorModel:
    """Duck-typed model whose parameters() is a generator (no base class, no list)."""

    def __init__(self) -> None:
        self.hidden = Linear(2, 8, seed=0)
        self.act = Tanh()
        self.out = Linear(8, 1, seed=1)
        self.training = True

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.act(self.hidden(x)))

    def parameters(self) -> Iterator[Tensor]:
        yield from self.hidden.parameters()
        yield from self.out.parameters()


class ListModel(GeneratorModel):
    """The same model with parameters() returning a list."""

    def parameters(self) -> list[Tensor]:  # type: ignore[override]
        return list(super().parameters())


ARCHITECTURES: dict[str, Callable[[], object]] = {
    "single_linear": lambda: Linear(2, 1, seed=0),
    "mlp_relu": lambda: Sequential(Linear(2, 8, seed=0), ReLU(), Linear(8, 1, seed=1)),
    "mlp_sigmoid": lambda: Sequential(Linear(2, 8, seed=0), Sigmoid(), Linear(8, 1, seed=1)),
    "mlp_tanh": lambda: Sequential(Linear(2, 8, seed=0), Tanh(), Linear(8, 1, seed=1)),
    "deep_mixed": lambda: Sequential(
        Linear(2, 8, seed=0), Tanh(), Linear(8, 8, seed=1), ReLU(), Linear(8, 1, seed=2)
    ),
    "duck_typed_audit_model": lambda: SimpleModel(2, 8, 1),
    "duck_typed_generator_params": GeneratorModel,
}


@pytest.mark.audit("7.1")
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_architecture_trains(name):
    """Audit 7.1: a single Linear, Linear+ReLU+Linear, Sigmoid and Tanh hidden layers, a deeper
    Sequential mixing activations, and duck-typed models without a base class all train: the
    loss on the data falls below 2 % of its initial value, and every parameter moved."""
    x, y = _regression_data()
    model = ARCHITECTURES[name]()
    before = [p.data.copy() for p in model.parameters()]
    initial = _full_loss(model, MSELoss(), x, y)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss())
    data = loader(x, y, batch_size=16, shuffle=True, seed=0)
    for _ in range(40):
        trainer.train_epoch(data)

    final = _full_loss(model, MSELoss(), x, y)
    assert final < 0.02 * initial, f"{name}: loss {initial:.4g} -> {final:.4g}"
    after = list(model.parameters())
    assert len(after) == len(before)
    for i, (old, p) in enumerate(zip(before, after, strict=True)):
        assert not np.array_equal(old, p.data), f"{name}: parameter {i} never changed"


@pytest.mark.audit("7.1")
def test_hidden_layers_learn_what_a_linear_model_cannot():
    """Audit 7.1: on an XOR-like problem (class = sign of x1 * x2) a linear classifier stays
    near chance while ReLU and Tanh MLPs trained the same way reach 95 % accuracy: the Trainer
    trains the hidden layers, not just the last one."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(200, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.float32)
    accuracies = {}
    for name, model in {
        "linear": Linear(2, 2, seed=0),
        "relu": Sequential(Linear(2, 16, seed=0), ReLU(), Linear(16, 2, seed=1)),
        "tanh": Sequential(Linear(2, 16, seed=0), Tanh(), Linear(16, 2, seed=1)),
    }.items():
        trainer = Trainer(model, Adam(model.parameters(), lr=0.03), CrossEntropyLoss())
        data = loader(x, y, batch_size=20, shuffle=True, seed=0)
        for _ in range(60):
            trainer.train_epoch(data)
        logits = model.forward(Tensor(x)).data
        accuracies[name] = float(np.mean(logits.argmax(axis=1) == y))
    assert accuracies["linear"] < 0.8, accuracies
    assert accuracies["relu"] >= 0.95, accuracies
    assert accuracies["tanh"] >= 0.95, accuracies


# ------------------------------------------------------------------ 7.2: losses
def _binary_blobs():
    x, labels = blobs(n=80, classes=2, seed=5)
    return x, labels.reshape(-1, 1)


LOSSES = {
    # name: (loss, model factory, data factory, minimum accuracy or None for regression)
    "mse_regression": (
        MSELoss,
        lambda: Sequential(Linear(2, 8, seed=0), Tanh(), Linear(8, 1, seed=1)),
        _regression_data,
        None,
    ),
    "cross_entropy_classification": (
        CrossEntropyLoss,
        lambda: Sequential(Linear(2, 8, seed=0), ReLU(), Linear(8, 3, seed=1)),
        lambda: blobs(n=90, classes=3, seed=5),
        0.95,
    ),
    "binary_cross_entropy_with_sigmoid": (
        BinaryCrossEntropyLoss,
        lambda: Sequential(Linear(2, 8, seed=0), Tanh(), Linear(8, 1, seed=1), Sigmoid()),
        _binary_blobs,
        0.95,
    ),
}


@pytest.mark.audit("7.2")
@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_trains_and_its_gradient_reaches_every_parameter(name):
    """Audit 7.2: MSELoss (regression), CrossEntropyLoss (classification) and
    BinaryCrossEntropyLoss after a Sigmoid all train through the Trainer. The gradient the
    optimizer receives on the first (full-batch) step is non-zero and finite on every parameter
    and equals the numerical gradient of the loss; the loss then falls and classifiers become
    accurate (evaluate's accuracy is None for regression, as documented)."""
    loss_cls, make_model, make_data, min_accuracy = LOSSES[name]
    x, y = make_data()
    model, loss_fn = make_model(), loss_cls()
    params = model.parameters()
    expected = [
        numerical_grad(lambda: _full_loss(model, loss_fn, x, y), p.data) for p in params
    ]
    initial = _full_loss(model, loss_fn, x, y)

    optimizer = _recording(Adam)(params, lr=0.02)
    trainer = Trainer(model, optimizer, loss_fn)
    trainer.train_epoch(loader(x, y, batch_size=len(x)))
    first = optimizer.seen_grads[0]
    for i, (grad, p, numeric) in enumerate(zip(first, params, expected, strict=True)):
        assert grad is not None, f"parameter {i} received no gradient"
        assert grad.shape == p.data.shape
        assert np.all(np.isfinite(grad)) and np.any(grad != 0), f"parameter {i}: {grad}"
        np.testing.assert_allclose(grad, numeric, rtol=2e-2, atol=1e-3, err_msg=f"param {i}")

    data = loader(x, y, batch_size=16, shuffle=True, seed=0)
    for _ in range(30):
        trainer.train_epoch(data)
    loss, accuracy = trainer.evaluate(loader(x, y, batch_size=32))
    assert loss < 0.2 * initial
    if min_accuracy is None:
        assert accuracy is None
    else:
        labels = y.reshape(-1)
        outputs = model.forward(Tensor(x)).data
        predicted = outputs.argmax(axis=1) if outputs.shape[1] > 1 else outputs[:, 0] >= 0.5
        assert accuracy == pytest.approx(float(np.mean(predicted == labels)))
        assert accuracy >= min_accuracy


# ------------------------------------------------------------------ 7.3: optimizers
OPTIMIZERS = {
    "sgd": (SGD, {"lr": 0.1}),
    "sgd_momentum": (SGD, {"lr": 0.05, "momentum": 0.9}),
    "adam": (Adam, {"lr": 0.02}),
    "adamw": (AdamW, {"lr": 0.02, "weight_decay": 0.01}),
}
BUFFERS = {"sgd": (), "sgd_momentum": ("momentum_buffer",), "adam": ("exp_avg", "exp_avg_sq"),
           "adamw": ("exp_avg", "exp_avg_sq")}


def _mlp():
    return Sequential(Linear(2, 8, seed=0), Tanh(), Linear(8, 1, seed=1))


@pytest.mark.audit("7.3")
def test_every_optimizer_integrates_and_learns():
    """Audit 7.3: SGD, SGD with momentum, Adam and AdamW each train the same MLP through the
    same Trainer: the loss falls below 5 % of its initial value, the optimizer took one step per
    batch (4 batches x 40 epochs), built its own state (momentum buffer, Adam moments), and each
    optimizer ends at different weights (the Trainer really uses the one it was given)."""
    x, y = _regression_data()
    finals = {}
    for name, (cls, kwargs) in OPTIMIZERS.items():
        model = _mlp()
        initial = _full_loss(model, MSELoss(), x, y)
        optimizer = cls(model.parameters(), **kwargs)
        trainer = Trainer(model, optimizer, MSELoss())
        data = loader(x, y, batch_size=16, shuffle=True, seed=0)
        for _ in range(40):
            trainer.train_epoch(data)
        final = _full_loss(model, MSELoss(), x, y)
        assert final < 0.05 * initial, f"{name}: {initial:.4g} -> {final:.4g}"
        assert trainer.step == optimizer.step_count == 160
        for state in optimizer.state:
            assert set(BUFFERS[name]) <= set(state), f"{name}: state {sorted(state)}"
        finals[name] = np.concatenate([p.data.ravel() for p in model.parameters()])
    names = list(finals)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not np.array_equal(finals[a], finals[b]), f"{a} and {b} trained identically"


@pytest.mark.audit("7.3")
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_first_update_through_the_trainer_follows_the_optimizer_formula(name):
    """Audit 7.3: one full-batch epoch is one optimizer step on the mean-loss gradient g
    (numerical here): SGD and SGD with momentum move p by -lr g; Adam by -lr g / (|g| + eps)
    (its bias-corrected first step); AdamW also decays p by lr * weight_decay first."""
    x, y = _regression_data(32, seed=3)
    model = _mlp()
    cls, kwargs = OPTIMIZERS[name]
    lr = kwargs["lr"]
    before = [p.data.astype(np.float64) for p in model.parameters()]
    grads = [
        numerical_grad(lambda: _full_loss(model, MSELoss(), x, y), p.data)
        for p in model.parameters()
    ]
    trainer = Trainer(model, cls(model.parameters(), **kwargs), MSELoss())
    trainer.train_epoch(loader(x, y, batch_size=32))
    for i, (p, p0, g) in enumerate(zip(model.parameters(), before, grads, strict=True)):
        if cls is SGD:
            expected = p0 - lr * g
            np.testing.assert_allclose(p.data, expected, rtol=1e-4, atol=lr * 2e-4, err_msg=i)
        else:
            decayed = p0 * (1 - lr * kwargs.get("weight_decay", 0.0)) if cls is AdamW else p0
            expected = decayed - lr * g / (np.abs(g) + 1e-8)
            clear = np.abs(g) > 1e-2  # the sign of a tiny numerical gradient is noise
            assert clear.any()
            np.testing.assert_allclose(p.data[clear], expected[clear], rtol=1e-4,
                                       atol=lr * 1e-3, err_msg=i)


@pytest.mark.audit("7.3")
def test_a_model_whose_parameters_are_a_generator_trains_like_a_list_model(tmp_path):
    """Audit 7.3: parameters() returning a generator works everywhere the Trainer and the
    optimizer read it (optimizer construction, clearing, accumulation, clipping, checkpoints):
    training is bit for bit the same as with a list, and clipping saw every step."""
    x, y = _regression_data()
    runs = {}
    for cls in (GeneratorModel, ListModel):
        model = cls()
        optimizer = AdamW(model.parameters(), lr=0.05)  # a generator is consumed here
        schedule = CosineSchedule(max_lr=0.05, min_lr=0.005, total_epochs=10)
        trainer = Trainer(model, optimizer, MSELoss(), scheduler=schedule, grad_clip_norm=0.5)
        data = loader(x, y, batch_size=10, shuffle=True, seed=0)
        for _ in range(5):
            trainer.train_epoch(data, accumulation_steps=2)
        runs[cls.__name__] = (model, trainer)

    gen_model, gen_trainer = runs["GeneratorModel"]
    list_model, list_trainer = runs["ListModel"]
    assert len(list(gen_model.parameters())) == 4
    for p, q in zip(gen_model.parameters(), list_model.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)
    assert gen_trainer.history == list_trainer.history
    assert len(gen_trainer.history["grad_norm"]) == gen_trainer.step == 5 * 4
    assert gen_trainer.history["train_loss"][-1] < gen_trainer.history["train_loss"][0]

    gen_trainer.save_checkpoint(tmp_path / "gen.ckpt")
    fresh = GeneratorModel()
    fresh_trainer = Trainer(fresh, AdamW(fresh.parameters(), lr=0.05), MSELoss())
    fresh_trainer.load_checkpoint(tmp_path / "gen.ckpt")
    for p, q in zip(fresh.parameters(), gen_model.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)


@pytest.mark.audit("7.3")
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float32_parameters_stay_float32(name, tmp_path):
    """Audit 7.3: trained with a float64 learning rate (np.float64), a schedule, clipping and
    accumulation, and after a checkpoint round trip, parameters, gradients seen by the optimizer
    and optimizer buffers are all still float32."""
    cls, kwargs = OPTIMIZERS[name]
    x, y = _regression_data()
    model = _mlp()
    optimizer = _recording(cls)(model.parameters(), **{**kwargs, "lr": np.float64(kwargs["lr"])})
    trainer = Trainer(model, optimizer, MSELoss(), grad_clip_norm=0.3,
                      scheduler=CosineSchedule(max_lr=np.float64(0.05), min_lr=0.01,
                                               total_epochs=5))
    data = loader(x, y, batch_size=16, shuffle=True, seed=0)
    for _ in range(3):
        trainer.train_epoch(data, accumulation_steps=3)

    def dtypes() -> set:
        found = {p.data.dtype for p in model.parameters()}
        found |= {v.dtype for s in optimizer.state for v in s.values() if hasattr(v, "dtype")}
        return found

    assert dtypes() == {np.dtype(np.float32)}
    assert {g.dtype for step in optimizer.seen_grads for g in step} == {np.dtype(np.float32)}
    trainer.save_checkpoint(tmp_path / "ckpt")
    trainer.load_checkpoint(tmp_path / "ckpt")
    assert dtypes() == {np.dtype(np.float32)}
    trainer.train_epoch(data)
    assert dtypes() == {np.dtype(np.float32)}

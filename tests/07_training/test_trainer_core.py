"""Module 07, audit priority 1: the training loop itself (tests 1.1, 1.2, 1.3) and the spec's
edge cases of ``Trainer.train_epoch``.

Every expected value is computed here, independently, in float64 numpy (hand-written gradients
of MSE through a Linear layer, or central differences through the audit's SimpleModel); the code
under test is only ever observed. A spy optimizer records what ``optimizer.step()`` is handed
(gradients, parameters before the update, lr), and spy models record what ``forward`` sees.
"""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest
from support import SimpleModel, loader, numerical_grad

from tinytorch.core.layers import Linear
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CosineSchedule, Trainer, TrainingDivergedError


# ----------------------------------------------------------------------------- helpers
def _grad_of(p: Tensor) -> np.ndarray | None:
    """A copy of ``p.grad`` as an ndarray (``.grad`` may hold a Tensor or an ndarray)."""
    g = p.grad
    if g is None:
        return None
    return np.array(g.data if isinstance(g, Tensor) else g, copy=True)


class SpySGD(SGD):
    """SGD that records, at every ``step()``, the gradients it is handed, the parameters
    before the update and the learning rate it uses."""

    def __init__(self, params, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.seen: list[dict] = []

    def step(self) -> None:
        self.seen.append(
            {
                "lr": self.lr,
                "grads": [_grad_of(p) for p in self.params],
                "params": [p.data.copy() for p in self.params],
            }
        )
        super().step()


class LinearModel:
    """A duck-typed model around one Linear layer whose forward records what it is given and
    the optimizer's lr at that moment (set ``self.optimizer`` to watch it)."""

    def __init__(self, n_in: int = 3, n_out: int = 1, seed: int = 1) -> None:
        self.layer = Linear(n_in, n_out, seed=seed)
        self.training = True
        self.optimizer = None
        self.calls: list[dict] = []

    def forward(self, x: Tensor) -> Tensor:
        out = self.layer(x)
        lr = None if self.optimizer is None else self.optimizer.lr
        self.calls.append({"x": x.data.copy(), "lr": lr, "out": out})
        return out

    def parameters(self) -> list[Tensor]:
        return self.layer.parameters()


def _data(n: int = 8, n_in: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in)).astype(np.float32)
    y = (x @ np.arange(1, n_in + 1, dtype=np.float32)[:, None] - 0.5).astype(np.float32)
    y += rng.normal(scale=0.1, size=y.shape).astype(np.float32)
    return x, y


def _batches(x: np.ndarray, y: np.ndarray, sizes: list[int]) -> list[tuple[Tensor, Tensor]]:
    """Consecutive batches of the given sizes (their sum must be len(x))."""
    assert sum(sizes) == len(x)
    bounds = np.cumsum([0, *sizes])
    return [(Tensor(x[a:b]), Tensor(y[a:b])) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _mse_grads(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray):
    """d mean((x @ w + b - y)^2) / d(w, b), by hand, in float64."""
    w, b, x, y = (np.asarray(a, dtype=np.float64) for a in (w, b, x, y))
    r = x @ w + b - y
    return 2.0 / r.size * x.T @ r, 2.0 / r.size * r.sum(axis=0)


def _mse(w, b, x, y) -> float:
    w, b, x, y = (np.asarray(a, dtype=np.float64) for a in (w, b, x, y))
    return float(np.mean((x @ w + b - y) ** 2))


def _simulate_sgd(w, b, x, y, sizes, k, lr, epochs=1):
    """Plain-numpy SGD where each window of k consecutive batches is ONE big batch.

    Returns the final (w, b) and, per step, the expected gradient handed to the optimizer."""
    w, b = np.array(w, dtype=np.float64), np.array(b, dtype=np.float64)
    bounds = np.cumsum([0, *sizes])
    windows = [(bounds[i], bounds[min(i + k, len(sizes))]) for i in range(0, len(sizes), k)]
    grads = []
    for _ in range(epochs):
        for a, c in windows:
            gw, gb = _mse_grads(w, b, x[a:c], y[a:c])
            grads.append((gw, gb))
            w, b = w - lr * gw, b - lr * gb
    return w, b, grads


def _linear_trainer(lr=0.1, seed=1, n_in=3, **kwargs):
    model = LinearModel(n_in=n_in, seed=seed)
    opt = SpySGD(model.parameters(), lr=lr)
    model.optimizer = opt
    return Trainer(model, opt, MSELoss(), **kwargs), model, opt


def _assert_all_grads_cleared(params) -> None:
    for i, p in enumerate(params):
        g = _grad_of(p)
        assert g is None or not np.any(g), f"parameter {i} kept a stale gradient {g}"


def _np_simple_forward(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    h = np.maximum(x @ arrays["w1"] + arrays["b1"], 0.0)
    return h @ arrays["w2"] + arrays["b2"]


# ============================================================================ audit 1.1
class TestCompleteTrainingLoop:
    @pytest.mark.audit("1.1")
    def test_first_step_uses_the_true_gradient_and_sgd_update(self):
        """Audit 1.1: through Trainer, forward -> loss -> backward -> step on the audit's
        SimpleModel (Linear + ReLU + Linear, no base class): the gradient handed to the
        optimizer is the gradient of the batch's mean loss (checked by central differences in
        float64) for every parameter, and each parameter moves by exactly -lr * gradient."""
        rng = np.random.default_rng(7)
        x = rng.normal(size=(6, 2)).astype(np.float32)
        y = (x[:, :1] + x[:, 1:]).astype(np.float32)
        model = SimpleModel(seed=3)
        params = model.parameters()
        before = [p.data.copy() for p in params]
        opt = SpySGD(params, lr=0.05)
        trainer = Trainer(model, opt, MSELoss())

        loss = trainer.train_epoch([(Tensor(x), Tensor(y))])

        assert len(opt.seen) == 1 and trainer.step == 1
        names = ["w1", "b1", "w2", "b2"]
        arrays = {n: b.astype(np.float64) for n, b in zip(names, before, strict=True)}

        def batch_loss() -> float:
            return float(np.mean((_np_simple_forward(arrays, x.astype(np.float64)) - y) ** 2))

        assert loss == pytest.approx(batch_loss(), rel=1e-5)
        for name, p, b, got in zip(names, params, before, opt.seen[0]["grads"], strict=True):
            expected = numerical_grad(batch_loss, arrays[name])
            assert got is not None, f"{name} received no gradient"
            assert np.any(expected != 0), f"test precondition: {name} has a nonzero gradient"
            np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5, err_msg=name)
            np.testing.assert_allclose(p.data, b - 0.05 * got, rtol=1e-6, atol=1e-7)
            assert not np.array_equal(p.data, b), f"{name} was not updated"

    @pytest.mark.audit("1.1")
    def test_forward_and_loss_see_every_batch_and_loss_decreases(self):
        """Audit 1.1: under a fixed seed, a shuffled DataLoader of y = x1 + x2, SimpleModel and
        SGD: forward is called once per batch with the batch's inputs, the loss function gets
        forward's output, and over 30 epochs the epoch loss falls below 5 % of its first value;
        history and counters follow (30 entries, epoch 30, 8 steps per epoch)."""
        rng = np.random.default_rng(11)
        x = rng.normal(size=(64, 2)).astype(np.float32)
        y = (x[:, :1] + x[:, 1:]).astype(np.float32)
        model = SimpleModel(seed=5)
        outputs: list[Tensor] = []
        inputs: list[np.ndarray] = []
        original_forward = model.forward

        def forward(t: Tensor) -> Tensor:
            out = original_forward(t)
            inputs.append(t.data.copy())
            outputs.append(out)
            return out

        model.forward = forward
        received: list[Tensor] = []
        mse = MSELoss()

        def loss_fn(pred: Tensor, target: Tensor) -> Tensor:
            received.append(pred)
            return mse(pred, target)

        trainer = Trainer(model, SGD(model.parameters(), lr=0.05), loss_fn)
        data = loader(x, y, batch_size=8, shuffle=True, seed=2)
        losses = [trainer.train_epoch(data) for _ in range(30)]

        assert len(outputs) == 30 * 8
        assert all(a is b for a, b in zip(outputs, received, strict=True))
        first_epoch_inputs = np.sort(np.concatenate(inputs[:8]), axis=0)
        np.testing.assert_array_equal(first_epoch_inputs, np.sort(x, axis=0))
        assert all(math.isfinite(v) for v in losses)
        assert losses[-1] < 0.05 * losses[0], losses
        assert trainer.history["train_loss"] == losses
        assert trainer.epoch == 30 and trainer.step == 30 * 8


# ============================================================================ audit 1.2
class TestZeroGrad:
    @staticmethod
    def _manual_two_steps(clear: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        layer = Linear(1, 1, seed=4)
        opt = SGD(layer.parameters(), lr=0.1)
        loss_fn = MSELoss()
        x, y = Tensor([[1.0]]), Tensor([[2.0]])
        loss_fn(layer.forward(x), y).backward()
        gw1, gb1 = _grad_of(layer.weights), _grad_of(layer.bias)
        opt.step()
        if clear:
            opt.zero_grad()
        loss_fn(layer.forward(x), y).backward()
        return gw1, gb1, _grad_of(layer.weights), _grad_of(layer.bias)

    @pytest.mark.audit("1.2")
    def test_missing_zero_grad_accumulates_exactly_1_6x(self):
        """Audit 1.2: the template's manual loop without zero_grad(): Linear(1,1) with a bias,
        x=1, y=2, lr=0.1. With d = w + b - 2 the first gradient is 2d, the step shrinks d to 0.6d,
        so the second backward ADDS 1.2d: grad2 = 3.2d = 1.6 x grad1 for weight and bias alike.
        With zero_grad() in between, grad2 = 0.6 x grad1."""
        gw1, gb1, gw2, gb2 = self._manual_two_steps(clear=False)
        assert abs(gw1.item()) > 0.1, "test precondition: a nonzero first gradient"
        np.testing.assert_allclose(gw2, 1.6 * gw1, rtol=1e-5)
        np.testing.assert_allclose(gb2, 1.6 * gb1, rtol=1e-5)
        gw1, gb1, gw2, gb2 = self._manual_two_steps(clear=True)
        np.testing.assert_allclose(gw2, 0.6 * gw1, rtol=1e-5)
        np.testing.assert_allclose(gb2, 0.6 * gb1, rtol=1e-5)

    @pytest.mark.audit("1.2")
    def test_trainer_hands_fresh_gradients_to_each_step(self):
        """Audit 1.2: the same two-step setup driven by the Trainer (two identical one-sample
        batches, one step each): the optimizer's second gradient is 0.6 x the first (fresh), not
        1.6 x (accumulated); the first one equals the hand-computed 2(w + b - 2)."""
        trainer, model, opt = _linear_trainer(lr=0.1, n_in=1, seed=4)
        w0, b0 = model.layer.weight.data.item(), model.layer.bias.data.item()
        x, y = np.array([[1.0]], np.float32), np.array([[2.0]], np.float32)
        trainer.train_epoch([(Tensor(x), Tensor(y)), (Tensor(x), Tensor(y))])

        assert len(opt.seen) == 2
        (gw1, gb1), (gw2, gb2) = opt.seen[0]["grads"], opt.seen[1]["grads"]
        expected = 2.0 * (w0 + b0 - 2.0)
        np.testing.assert_allclose(gw1, [[expected]], rtol=1e-5)
        np.testing.assert_allclose(gb1, [expected], rtol=1e-5)
        np.testing.assert_allclose(gw2, 0.6 * gw1, rtol=1e-5)
        np.testing.assert_allclose(gb2, 0.6 * gb1, rtol=1e-5)

    @pytest.mark.audit("1.2")
    def test_identical_batches_give_identical_gradients_every_step_and_epoch(self):
        """Audit 1.2: with lr=0 nothing moves, so identical batches must hand the optimizer
        bit-identical gradients at every step of every epoch; any gradient left over from an
        earlier step or epoch would make later ones larger."""
        trainer, _, opt = _linear_trainer(lr=0.0)
        x, y = _data(4)
        batch = (Tensor(x), Tensor(y))
        for _ in range(3):
            trainer.train_epoch([batch, batch, batch])
        assert len(opt.seen) == 9
        first = opt.seen[0]["grads"]
        assert all(np.any(g) for g in first)
        for record in opt.seen[1:]:
            for got, ref in zip(record["grads"], first, strict=True):
                assert got.tobytes() == ref.tobytes()

    @pytest.mark.audit("1.2")
    def test_no_parameter_keeps_a_gradient_after_train_epoch(self):
        """Audit 1.2: after train_epoch (with accumulation and a partial last window too) no
        parameter of the model holds a stale gradient."""
        for k in (1, 2, 3):
            model = SimpleModel(n_in=3, seed=k)
            trainer = Trainer(model, SGD(model.parameters(), lr=0.01), MSELoss())
            x, y = _data(10)
            trainer.train_epoch(_batches(x, y, [3, 3, 2, 2]), accumulation_steps=k)
            _assert_all_grads_cleared(model.parameters())

    @pytest.mark.audit("1.2")
    def test_gradients_left_before_the_epoch_are_not_used(self):
        """Audit 1.2: train_epoch starts from cleared gradients: a huge stale gradient left on
        the parameters by earlier code does not reach the first step."""
        trainer, model, opt = _linear_trainer(lr=0.1)
        w0, b0 = model.layer.weight.data.copy(), model.layer.bias.data.copy()
        for p in model.parameters():
            p.grad = Tensor(np.full(p.data.shape, 1e3, np.float32))
        x, y = _data(4)
        trainer.train_epoch([(Tensor(x), Tensor(y))])
        gw, gb = _mse_grads(w0, b0, x, y)
        np.testing.assert_allclose(opt.seen[0]["grads"][0], gw, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(opt.seen[0]["grads"][1], gb, rtol=1e-4, atol=1e-6)


# ============================================================================ audit 1.3
WINDOW_CASES = [
    # (batch sizes, accumulation_steps): each window must act as one batch of its samples
    ([4, 4], 1),
    ([2, 2, 2, 2], 2),  # the audit's case: batch 2 x accumulation 2 == batch 4
    ([1, 3, 2, 2], 2),  # unequal batch sizes inside a window
    ([3, 1, 2, 2], 2),
    ([3, 1, 2], 2),  # partial last window
    ([1, 2, 5], 2),  # partial last window of a single batch
    ([5, 1, 1, 1], 4),
    ([2, 2, 2], 5),  # k larger than the number of batches: one (partial) window
    ([1, 1, 1, 1, 1, 1, 1], 3),
]


class TestGradientAccumulation:
    @pytest.mark.audit("1.3")
    def test_batch_4_equals_batch_2_with_accumulation_2(self):
        """Audit 1.3: 8 samples, batch 4 x accumulation 1 and batch 2 x accumulation 2 (same
        initial weights, 3 epochs): the gradients handed to every optimizer.step and the final
        parameters agree, the step counts are equal (2 per epoch), and both match plain numpy
        SGD on 4-sample batches."""
        x, y = _data(8)
        runs = []
        for size, k in ((4, 1), (2, 2)):
            trainer, model, opt = _linear_trainer(lr=0.1)
            w0, b0 = model.layer.weight.data.copy(), model.layer.bias.data.copy()
            data = loader(x, y, batch_size=size)
            for _ in range(3):
                trainer.train_epoch(data, accumulation_steps=k)
            runs.append((trainer, model, opt))
        (t1, m1, o1), (t2, m2, o2) = runs
        assert t1.step == t2.step == o1.step_count == o2.step_count == 6
        for s1, s2 in zip(o1.seen, o2.seen, strict=True):
            for g1, g2 in zip(s1["grads"], s2["grads"], strict=True):
                np.testing.assert_allclose(g2, g1, rtol=1e-5, atol=1e-7)
        w, b, grads = _simulate_sgd(w0, b0, x, y, [4, 4], 1, 0.1, epochs=3)
        for s2, (gw, gb) in zip(o2.seen, grads, strict=True):
            np.testing.assert_allclose(s2["grads"][0], gw, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(s2["grads"][1], gb, rtol=1e-4, atol=1e-6)
        for m in (m1, m2):
            np.testing.assert_allclose(m.layer.weight.data, w, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(m.layer.bias.data, b, rtol=1e-5, atol=1e-6)

    @pytest.mark.audit("1.3")
    @pytest.mark.parametrize(("sizes", "k"), WINDOW_CASES)
    def test_each_window_is_one_big_batch(self, sizes, k):
        """Audit 1.3: for equal and unequal batch sizes and a partial last window, every step's
        gradient is the mean-loss gradient over exactly the window's samples at the parameters
        before that step (so no gradient leaks into the next window or epoch), and the final
        parameters equal numpy SGD on one batch per window; over 2 epochs."""
        x, y = _data(sum(sizes))
        trainer, model, opt = _linear_trainer(lr=0.1)
        w0, b0 = model.layer.weight.data.copy(), model.layer.bias.data.copy()
        batches = _batches(x, y, sizes)
        for _ in range(2):
            trainer.train_epoch(batches, accumulation_steps=k)

        windows = math.ceil(len(sizes) / k)
        assert len(opt.seen) == 2 * windows
        bounds = np.cumsum([0, *sizes])
        for i, record in enumerate(opt.seen):
            j = i % windows
            a, c = bounds[j * k], bounds[min((j + 1) * k, len(sizes))]
            gw, gb = _mse_grads(*record["params"], x[a:c], y[a:c])
            np.testing.assert_allclose(record["grads"][0], gw, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(record["grads"][1], gb, rtol=1e-4, atol=1e-6)
        w, b, _ = _simulate_sgd(w0, b0, x, y, sizes, k, 0.1, epochs=2)
        np.testing.assert_allclose(model.layer.weight.data, w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.layer.bias.data, b, rtol=1e-5, atol=1e-6)

    @pytest.mark.audit("1.3")
    def test_unequal_batches_equal_the_big_batch_run_through_the_trainer(self):
        """Audit 1.3: batches [1, 3 | 2, 2 | 1] with accumulation 2 end at the same parameters
        as batches [4 | 4 | 1] without accumulation (a per-batch 1/k weighting would not)."""
        x, y = _data(9)
        results = []
        for sizes, k in (([1, 3, 2, 2, 1], 2), ([4, 4, 1], 1)):
            trainer, model, _ = _linear_trainer(lr=0.2)
            trainer.train_epoch(_batches(x, y, sizes), accumulation_steps=k)
            results.append([p.data.copy() for p in model.parameters()])
        for a, b in zip(*results, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    @pytest.mark.audit("1.3")
    @pytest.mark.parametrize("n_batches", [1, 2, 3, 4, 5, 7])
    @pytest.mark.parametrize("k", [1, 2, 3, 4])
    def test_optimizer_steps_are_ceil_batches_over_k(self, n_batches, k):
        """Audit 1.3: an epoch of B batches with accumulation k takes ceil(B / k) optimizer steps
        (the partial last window still steps); trainer.step and optimizer.step_count agree."""
        x, y = _data(2 * n_batches)
        trainer, _, opt = _linear_trainer(lr=0.01)
        batches = _batches(x, y, [2] * n_batches)
        trainer.train_epoch(batches, accumulation_steps=k)
        trainer.train_epoch(batches, accumulation_steps=k)
        expected = 2 * -(-n_batches // k)
        assert len(opt.seen) == expected
        assert trainer.step == expected
        assert opt.step_count == expected
        assert trainer.epoch == 2


# ============================================================================ spec edge cases
class TestTrainEpochContract:
    @pytest.mark.parametrize("bad", [0, -1, 1.5, True])
    def test_bad_accumulation_steps_raise_and_change_nothing(self, bad):
        """accumulation_steps that is not a positive integer raises ValueError before anything
        happens: parameters, optimizer lr and step count, epoch, step, history, the model's
        mode and the caller's batch generator are all as they were."""
        model = LinearModel()
        opt = SGD(model.parameters(), lr=0.05)
        trainer = Trainer(model, opt, MSELoss(), scheduler=CosineSchedule(0.3, 0.0, 4))
        x, y = _data(8)
        trainer.train_epoch(_batches(x, y, [4, 4]))
        trainer.evaluate(_batches(x, y, [8]))  # leaves the model in eval mode
        params = [p.data.copy() for p in model.parameters()]
        state = (
            trainer.epoch,
            trainer.step,
            opt.lr,
            opt.step_count,
            copy.deepcopy(trainer.history),
        )
        batches = iter(_batches(x, y, [4, 4]))

        with pytest.raises(ValueError):
            trainer.train_epoch(batches, accumulation_steps=bad)

        for p, before in zip(model.parameters(), params, strict=True):
            assert p.data.tobytes() == before.tobytes()
        assert (trainer.epoch, trainer.step, opt.lr, opt.step_count, trainer.history) == state
        assert model.training is False and model.layer.training is False
        assert len(list(batches)) == 2, "the batch generator was consumed"

    def test_any_iterable_of_batches_works_with_or_without_len(self):
        """Any iterable of (inputs, targets) trains identically: a list, a generator from a
        generator function (no __len__), an object with only __iter__, and a DataLoader; all
        equal numpy SGD with accumulation 2 over batches [3, 3, 2] (partial last window)."""
        x, y = _data(8)

        def generator():
            yield from _batches(x, y, [3, 3, 2])

        class IterOnly:
            def __iter__(self):
                return iter(_batches(x, y, [3, 3, 2]))

        sources = {
            "list": lambda: _batches(x, y, [3, 3, 2]),
            "generator": generator,
            "iter-only": IterOnly,
            "DataLoader": lambda: loader(x, y, batch_size=3),
        }
        finals = {}
        for name, make in sources.items():
            trainer, model, _ = _linear_trainer(lr=0.1)
            w0, b0 = model.layer.weight.data.copy(), model.layer.bias.data.copy()
            for _ in range(2):
                trainer.train_epoch(make(), accumulation_steps=2)
            assert trainer.step == 4, name
            finals[name] = [p.data.copy() for p in model.parameters()]
        w, b, _ = _simulate_sgd(w0, b0, x, y, [3, 3, 2], 2, 0.1, epochs=2)
        for name, (gw, gb) in finals.items():
            np.testing.assert_allclose(gw, w, rtol=1e-5, atol=1e-6, err_msg=name)
            np.testing.assert_allclose(gb, b, rtol=1e-5, atol=1e-6, err_msg=name)

    @pytest.mark.parametrize("sizes", [[12], [6, 6], [5, 7], [1, 11], [7, 2, 1, 2], [1] * 12])
    def test_epoch_loss_is_the_sample_weighted_mean_whatever_the_batching(self, sizes):
        """The returned (and recorded) epoch loss is the mean over all samples, so it does not
        depend on how the samples are split into batches (lr=0 keeps the model fixed)."""
        x, y = _data(12)
        trainer, model, _ = _linear_trainer(lr=0.0)
        expected = _mse(model.layer.weight.data, model.layer.bias.data, x, y)
        loss = trainer.train_epoch(_batches(x, y, sizes))
        assert isinstance(loss, float)
        assert loss == pytest.approx(expected, rel=1e-5)
        assert trainer.history["train_loss"] == [loss]

    def test_epoch_loss_weights_each_batch_loss_by_its_samples_while_learning(self):
        """With lr > 0 the epoch loss is the sample-weighted mean of the losses of the batches as
        they were computed (batch sizes 1 and 7: an unweighted mean would differ a lot)."""
        x, y = _data(8)
        trainer, model, _ = _linear_trainer(lr=0.1)
        trainer.train_epoch(_batches(x, y, [1, 7]))
        batch_losses = [
            float(np.mean((c["out"].data.astype(np.float64) - yb) ** 2))
            for c, yb in zip(model.calls, (y[:1], y[1:]), strict=True)
        ]
        expected = (1 * batch_losses[0] + 7 * batch_losses[1]) / 8
        assert abs(batch_losses[0] - batch_losses[1]) > 0.1 * expected, "test precondition"
        assert trainer.history["train_loss"][0] == pytest.approx(expected, rel=1e-5)

    @pytest.mark.parametrize("bad_value", [np.nan, np.inf])
    def test_non_finite_loss_stops_before_the_window_is_applied(self, bad_value):
        """A NaN or inf loss raises TrainingDivergedError (a FloatingPointError) naming the
        epoch and the batch index. With accumulation 2 and the bad target in batch 3 (epoch 1),
        window [2, 3] is never applied while window [0, 1] stands, and no gradient is left."""
        x, y = _data(8)
        trainer, model, opt = _linear_trainer(lr=0.1)
        trainer.train_epoch(_batches(x, y, [2, 2, 2, 2]), accumulation_steps=2)  # epoch 0
        w0, b0 = model.layer.weight.data.copy(), model.layer.bias.data.copy()
        bad_y = y.copy()
        bad_y[6, 0] = bad_value  # batch 3 of sizes [2, 2, 2, 2]
        assert issubclass(TrainingDivergedError, FloatingPointError)

        with pytest.raises(TrainingDivergedError) as info:
            trainer.train_epoch(_batches(x, bad_y, [2, 2, 2, 2]), accumulation_steps=2)

        message = str(info.value)
        assert re.search(r"epoch\D{0,3}1\b", message), message
        assert re.search(r"batch\D{0,3}3\b", message), message
        assert len(opt.seen) == 3 and trainer.step == 3 and opt.step_count == 3
        w, b, _ = _simulate_sgd(w0, b0, x[:4], y[:4], [2, 2], 2, 0.1)
        np.testing.assert_allclose(model.layer.weight.data, w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.layer.bias.data, b, rtol=1e-5, atol=1e-6)
        assert not np.allclose(w, w0), "test precondition: the first window moves the weights"
        _assert_all_grads_cleared(model.parameters())
        # The aborted epoch did not complete: it is not counted and leaves no history entry,
        # so a retry (say with a lower lr) trains epoch 1 again under epoch 1's schedule.
        assert trainer.epoch == 1
        assert len(trainer.history["train_loss"]) == len(trainer.history["learning_rates"]) == 1

    def test_non_finite_loss_in_the_first_batch_changes_no_parameter(self):
        """A NaN loss in batch 0 of epoch 0 raises before any update: parameters are bit for bit
        the initial ones, no step was counted, and no gradient is left."""
        x, y = _data(4)
        trainer, model, opt = _linear_trainer(lr=0.1)
        before = [p.data.copy() for p in model.parameters()]
        y[0, 0] = np.nan
        with pytest.raises(TrainingDivergedError, match=r"epoch\D{0,3}0\b") as info:
            trainer.train_epoch(_batches(x, y, [4]))
        assert re.search(r"batch\D{0,3}0\b", str(info.value))
        for p, b in zip(model.parameters(), before, strict=True):
            assert p.data.tobytes() == b.tobytes()
        assert trainer.step == 0 and opt.step_count == 0 and not opt.seen
        _assert_all_grads_cleared(model.parameters())

    def test_epoch_and_step_counters(self):
        """epoch counts completed epochs, step counts optimizer steps (5 batches, k=2: 3 a
        epoch), and neither moves during evaluate."""
        x, y = _data(10)
        trainer, _, opt = _linear_trainer(lr=0.01)
        assert (trainer.epoch, trainer.step) == (0, 0)
        batches = _batches(x, y, [2] * 5)
        for e in range(1, 4):
            trainer.train_epoch(batches, accumulation_steps=2)
            assert (trainer.epoch, trainer.step, opt.step_count) == (e, 3 * e, 3 * e)
        trainer.evaluate(batches)
        assert (trainer.epoch, trainer.step, opt.step_count) == (3, 9, 9)
        assert len(trainer.history["train_loss"]) == 3

    def test_scheduler_lr_is_set_before_the_first_batch(self):
        """With a scheduler, the optimizer's lr seen inside forward during epoch e, and the lr of
        each step, is already get_lr(e) from the first batch on (the optimizer was built with
        lr=1.0, which no batch may see); history['learning_rates'] records it."""
        x, y = _data(8)
        model = LinearModel()
        opt = SpySGD(model.parameters(), lr=1.0)
        model.optimizer = opt
        trainer = Trainer(model, opt, MSELoss(), scheduler=CosineSchedule(0.3, 0.0, 4))
        for _ in range(4):
            trainer.train_epoch(_batches(x, y, [2, 2, 2, 2]))
        expected = [0.15 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
        seen = [c["lr"] for c in model.calls]
        assert seen[0] == 0.3
        for e in range(4):
            assert seen[4 * e : 4 * e + 4] == pytest.approx([expected[e]] * 4, rel=1e-12)
            assert [s["lr"] for s in opt.seen[4 * e : 4 * e + 4]] == pytest.approx(
                [expected[e]] * 4, rel=1e-12
            )
        assert trainer.history["learning_rates"] == pytest.approx(expected, rel=1e-12)

    def test_callbacks_receive_the_loop_events_in_order(self):
        """Callbacks get on_epoch_begin(epoch, lr), on_batch_end(batch, loss, samples) for every
        batch, on_step(grad_norm) after the batch that completes a window, and
        on_epoch_end(loss) with the returned loss; 5 batches with k=2, two epochs."""
        events: list[tuple] = []

        class Recorder:
            def on_epoch_begin(self, trainer, epoch, lr):
                events.append(("epoch_begin", epoch, lr))

            def on_batch_end(self, trainer, batch, loss, samples):
                events.append(("batch_end", batch, samples))

            def on_step(self, trainer, grad_norm):
                events.append(("step",))

            def on_epoch_end(self, trainer, loss):
                events.append(("epoch_end", loss))

        x, y = _data(9)
        model = LinearModel()
        trainer = Trainer(
            model, SGD(model.parameters(), lr=0.02), MSELoss(), callbacks=[Recorder()]
        )
        losses = [
            trainer.train_epoch(_batches(x, y, [2, 2, 2, 2, 1]), accumulation_steps=2)
            for _ in range(2)
        ]
        expected: list[tuple] = []
        for e in range(2):
            expected += [("epoch_begin", e, 0.02)]
            expected += [("batch_end", 0, 2), ("batch_end", 1, 2), ("step",)]
            expected += [("batch_end", 2, 2), ("batch_end", 3, 2), ("step",)]
            expected += [("batch_end", 4, 1), ("step",), ("epoch_end", losses[e])]
        assert events == expected

"""Module 07, audit priority 2: train/eval mode switching (2.1) and gradient-free evaluation
(2.2), plus what ``Trainer.evaluate`` returns (sample-weighted loss, accuracy by loss type).

The mode is observed INSIDE forward (a model's ``training`` flag after the call proves nothing
about what the layers saw), and expected losses and accuracies are computed here with numpy.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from support import SimpleModel, blobs, loader

from tinytorch.core.activations import ReLU, Sigmoid
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Trainer


# ----------------------------------------------------------------------------- helpers
def _grad_of(p: Tensor) -> np.ndarray | None:
    g = p.grad
    if g is None:
        return None
    return np.array(g.data if isinstance(g, Tensor) else g, copy=True)


class ModeProbe:
    """A duck-typed layer (no base class) that records its own ``training`` flag when run."""

    def __init__(self) -> None:
        self.training = True
        self.seen: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(self.training)
        return x

    __call__ = forward

    def parameters(self) -> list[Tensor]:
        return []


class DuckModel:
    """A model without a base class holding layers directly and nested two levels deep in a
    Sequential; it records its own mode, its outputs and their requires_grad inside forward."""

    def __init__(self, p_drop: float = 0.5, seed: int = 0) -> None:
        self.inner_probe = ModeProbe()
        self.outer_probe = ModeProbe()
        self.dropout = Dropout(p_drop, seed=seed + 10)
        self.body = Sequential(
            Linear(3, 8, seed=seed),
            ReLU(),
            Sequential(self.inner_probe, self.dropout),
        )
        self.head = Linear(8, 1, seed=seed + 1)
        self.training = True
        self.seen: list[bool] = []
        self.outputs: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(self.training)
        out = self.head(self.outer_probe.forward(self.body(x)))
        self.outputs.append(out)
        return out

    def parameters(self) -> list[Tensor]:
        return self.body.parameters() + self.head.parameters()

    def layers(self) -> list:
        """Every sublayer whose mode the trainer must switch (list written out by hand)."""
        inner = self.body.layers[2]
        return [self.body, *self.body.layers, *inner.layers, self.head, self.outer_probe]


def _data(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x.sum(axis=1, keepdims=True) + 0.5).astype(np.float32)
    return x, y


def _batches(x, y, sizes):
    bounds = np.cumsum([0, *sizes])
    assert bounds[-1] == len(x)
    return [(Tensor(x[a:b]), Tensor(y[a:b])) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _modes(model: DuckModel) -> list[bool]:
    return [model.training] + [layer.training for layer in model.layers()]


def _np_linear(layer: Linear, x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) @ layer.weight.data.astype(np.float64) + layer.bias.data


def _snapshot(trainer: Trainer) -> dict:
    """Everything evaluate must leave alone, as bytes and plain values."""
    opt = trainer.optimizer
    state = opt.state_dict()
    return {
        "params": [p.data.tobytes() for p in trainer.model.parameters()],
        "grads": [
            None if _grad_of(p) is None else _grad_of(p).tobytes()
            for p in trainer.model.parameters()
        ],
        "opt_state": [
            {k: (v.tobytes() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for s in state["state"]
        ],
        "opt_hyper": state["hyperparameters"],
        "opt_step_count": opt.step_count,
        "lr": opt.lr,
        "epoch": trainer.epoch,
        "step": trainer.step,
        "train_loss": list(trainer.history["train_loss"]),
        "learning_rates": list(trainer.history["learning_rates"]),
    }


# ============================================================================ audit 2.1
class TestModeSwitching:
    @pytest.mark.audit("2.1")
    def test_mode_seen_inside_forward(self):
        """Audit 2.1: model.training observed DURING forward (by the model and by duck-typed
        probe layers at two nesting levels) is True in every train_epoch batch and False in every
        evaluate batch, across alternating calls."""
        model = DuckModel()
        trainer = Trainer(model, SGD(model.parameters(), lr=0.01), MSELoss())
        x, y = _data()
        for _ in range(2):
            trainer.train_epoch(_batches(x, y, [4, 4, 4]))
            trainer.evaluate(_batches(x, y, [6, 6]))
        expected = ([True] * 3 + [False] * 2) * 2
        assert model.seen == expected
        assert model.inner_probe.seen == expected
        assert model.outer_probe.seen == expected

    @pytest.mark.audit("2.1")
    def test_train_epoch_trains_a_model_that_was_put_in_eval_mode(self):
        """Audit 2.1: a model the user left in eval mode (model and layers) is switched to
        training mode by train_epoch before its first forward."""
        model = DuckModel()
        for m in [model, *model.layers()]:
            m.training = False
        trainer = Trainer(model, SGD(model.parameters(), lr=0.01), MSELoss())
        x, y = _data()
        trainer.train_epoch(_batches(x, y, [6, 6]))
        assert model.seen == [True, True]
        assert model.inner_probe.seen == [True, True]
        assert all(_modes(model))

    @pytest.mark.audit("2.1")
    def test_evaluate_leaves_eval_mode_and_train_epoch_switches_back(self):
        """Audit 2.1: after evaluate the model and every nested sublayer (duck-typed model, no
        base class) are in eval mode and trainer.training_mode is False; after the next
        train_epoch all of them are in training mode again and training_mode is True."""
        model = DuckModel()
        trainer = Trainer(model, SGD(model.parameters(), lr=0.01), MSELoss())
        x, y = _data()
        trainer.train_epoch(_batches(x, y, [12]))
        assert all(_modes(model)) and trainer.training_mode is True
        trainer.evaluate(_batches(x, y, [12]))
        assert not any(_modes(model)), _modes(model)
        assert trainer.training_mode is False
        trainer.train_epoch(_batches(x, y, [12]))
        assert all(_modes(model)), _modes(model)
        assert trainer.training_mode is True

    @pytest.mark.audit("2.1")
    def test_audit_simple_model_sublayers_are_switched(self):
        """Audit 2.1: the audit's SimpleModel (attributes layer1, relu, layer2; no base class):
        evaluate switches the model and its three layers to eval, train_epoch back."""
        model = SimpleModel(n_in=3)
        trainer = Trainer(model, SGD(model.parameters(), lr=0.01), MSELoss())
        x, y = _data()
        layers = [model, model.layer1, model.relu, model.layer2]
        trainer.evaluate(_batches(x, y, [12]))
        assert [m.training for m in layers] == [False] * 4
        trainer.train_epoch(_batches(x, y, [12]))
        assert [m.training for m in layers] == [True] * 4

    @pytest.mark.audit("2.1")
    def test_dropout_acts_in_training_and_not_in_evaluation(self):
        """Audit 2.1: with Dropout(0.5), forward outputs during train_epoch (lr=0, so weights
        stay fixed) differ from the dropout-free numpy outputs, while outputs during evaluate
        equal them, and the eval loss is the numpy MSE of those dropout-free outputs."""
        model = DuckModel(p_drop=0.5)
        trainer = Trainer(model, SGD(model.parameters(), lr=0.0), MSELoss())
        x, y = _data()
        hidden = np.maximum(_np_linear(model.body.layers[0], x), 0.0)
        expected = _np_linear(model.head, hidden)

        trainer.train_epoch(_batches(x, y, [12]))
        train_out = model.outputs[-1].data
        assert not np.allclose(train_out, expected, rtol=1e-3, atol=1e-3)

        loss, _ = trainer.evaluate(_batches(x, y, [12]))
        np.testing.assert_allclose(model.outputs[-1].data, expected, rtol=1e-5, atol=1e-6)
        assert loss == pytest.approx(float(np.mean((expected - y) ** 2)), rel=1e-5)


# ============================================================================ audit 2.2
class TestEvaluationIsInert:
    @pytest.mark.audit("2.2")
    def test_evaluate_records_no_graph(self):
        """Audit 2.2: outputs produced inside forward during evaluate, and the losses computed
        from them, do not require grad (no graph recorded), while the same model's outputs in
        train_epoch do; no parameter gets a .grad from evaluate."""
        model = DuckModel(p_drop=0.0)
        losses: list[Tensor] = []
        mse = MSELoss()

        def loss_fn(pred, target):
            out = mse(pred, target)
            losses.append(out)
            return out

        trainer = Trainer(model, SGD(model.parameters(), lr=0.01), loss_fn)
        x, y = _data()
        trainer.train_epoch(_batches(x, y, [6, 6]))
        assert all(o.requires_grad for o in model.outputs)
        assert all(v.requires_grad for v in losses)
        model.outputs.clear()
        losses.clear()

        trainer.evaluate(_batches(x, y, [5, 7]))
        assert len(model.outputs) == 2 and len(losses) == 2
        assert not any(o.requires_grad for o in model.outputs)
        assert not any(v.requires_grad for v in losses)
        assert all(p.grad is None for p in model.parameters())

    @pytest.mark.audit("2.2")
    def test_evaluate_changes_no_parameter_gradient_or_optimizer_state(self):
        """Audit 2.2: with Adam (moments and per-parameter step counts) after two epochs, and a
        gradient deliberately left on every parameter, evaluate leaves parameters, gradients,
        optimizer state_dict, lr, step counts, epoch and training history bit for bit as they
        were."""
        model = DuckModel(p_drop=0.3)
        opt = Adam(model.parameters(), lr=0.01)
        trainer = Trainer(model, opt, MSELoss())
        x, y = _data()
        for _ in range(2):
            trainer.train_epoch(_batches(x, y, [4, 4, 4]))
        rng = np.random.default_rng(3)
        for p in model.parameters():
            p.grad = Tensor(rng.normal(size=p.data.shape))
        before = copy.deepcopy(_snapshot(trainer))
        assert all(s["step"] == 6 for s in opt.state_dict()["state"]), "test precondition"

        trainer.evaluate(_batches(x, y, [5, 7]))
        trainer.evaluate(loader(x, y, batch_size=4, shuffle=True, seed=1))

        assert _snapshot(trainer) == before

    @pytest.mark.audit("2.2")
    def test_evaluate_consumes_no_randomness(self):
        """Audit 2.2: with Dropout and a shuffling DataLoader (also used for evaluation),
        train / evaluate / train ends bit for bit where train / train does; evaluate leaves the
        Dropout generator and numpy's global RNG state unchanged."""
        x, y = _data(16)
        finals = []
        for with_eval in (False, True):
            model = DuckModel(p_drop=0.5, seed=2)
            trainer = Trainer(model, SGD(model.parameters(), lr=0.05), MSELoss())
            data = loader(x, y, batch_size=4, shuffle=True, seed=9)
            trainer.train_epoch(data)
            if with_eval:
                rng_before = copy.deepcopy(model.dropout.rng.bit_generator.state)
                global_before = np.random.get_state()
                trainer.evaluate(data)
                assert model.dropout.rng.bit_generator.state == rng_before
                global_after = np.random.get_state()
                assert global_after[0] == global_before[0]
                np.testing.assert_array_equal(global_after[1], global_before[1])
                assert global_after[2:] == global_before[2:]
            trainer.train_epoch(data)
            finals.append([p.data.tobytes() for p in model.parameters()])
        assert finals[0] == finals[1]


# ============================================================================ evaluate's results
class TestEvaluateResults:
    @pytest.mark.parametrize("sizes", [[12], [6, 6], [1, 11], [5, 4, 3], [1] * 12])
    def test_loss_is_sample_weighted_whatever_the_batching(self, sizes):
        """evaluate's loss is the mean over all samples (numpy), whatever the batch sizes."""
        model = DuckModel(p_drop=0.5)
        trainer = Trainer(model, SGD(model.parameters(), lr=0.0), MSELoss())
        x, y = _data()
        hidden = np.maximum(_np_linear(model.body.layers[0], x), 0.0)
        expected = float(np.mean((_np_linear(model.head, hidden) - y) ** 2))
        loss, accuracy = trainer.evaluate(_batches(x, y, sizes))
        assert isinstance(loss, float)
        assert loss == pytest.approx(expected, rel=1e-5)
        assert accuracy is None  # MSELoss: accuracy is undefined for regression

    def test_cross_entropy_accuracy_is_argmax_over_all_samples(self):
        """CrossEntropyLoss: accuracy is the fraction of samples whose argmax logit is the label
        and loss the mean cross-entropy, both over all samples (batches 3 and 7 of 10)."""
        x, labels = blobs(n=10, classes=3, seed=4)
        model = Sequential(Linear(2, 3, seed=6))
        trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
        logits = _np_linear(model.layers[0], x)
        top2 = np.sort(logits, axis=1)[:, -2:]
        assert np.all(top2[:, 1] - top2[:, 0] > 1e-3), "test precondition: no near-ties"
        hits = logits.argmax(axis=1) == labels
        accuracy = hits.mean()
        assert 0 < accuracy < 1, "test precondition: accuracy neither 0 nor 1"
        assert (hits[:3].mean() + hits[3:].mean()) / 2 != pytest.approx(accuracy)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        expected_loss = -log_probs[np.arange(10), labels.astype(int)].mean()

        loss, acc = trainer.evaluate(_batches(x, labels, [3, 7]))
        assert acc == pytest.approx(accuracy, abs=1e-12)
        assert loss == pytest.approx(expected_loss, rel=1e-5)

    def test_binary_cross_entropy_accuracy_thresholds_at_one_half(self):
        """BinaryCrossEntropyLoss: accuracy is the fraction of probabilities on the label's side
        of 0.5, over all samples (batches 2 and 9 of 11)."""
        rng = np.random.default_rng(5)
        x = rng.normal(size=(11, 2)).astype(np.float32)
        t = (rng.random((11, 1)) < 0.5).astype(np.float32)
        model = Sequential(Linear(2, 1, seed=8), Sigmoid())
        trainer = Trainer(model, SGD(model.parameters(), lr=0.1), BinaryCrossEntropyLoss())
        p = 1.0 / (1.0 + np.exp(-_np_linear(model.layers[0], x)))
        assert np.all(np.abs(p - 0.5) > 1e-4), "test precondition: no probability near 0.5"
        hits = (p > 0.5) == (t > 0.5)
        accuracy = hits.mean()
        assert 0 < accuracy < 1, "test precondition: accuracy neither 0 nor 1"
        assert (hits[:2].mean() + hits[2:].mean()) / 2 != pytest.approx(accuracy)
        expected_loss = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))

        loss, acc = trainer.evaluate(_batches(x, t, [2, 9]))
        assert acc == pytest.approx(accuracy, abs=1e-12)
        assert loss == pytest.approx(expected_loss, rel=1e-5)

    def test_each_evaluate_call_appends_to_history(self):
        """Each evaluate call appends its loss to history['eval_loss'] (and its accuracy to
        history['eval_accuracy']); train_epoch appends nothing there."""
        x, labels = blobs(n=9, classes=3, seed=1)
        model = Sequential(Linear(2, 3, seed=2))
        trainer = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss())
        results = []
        for _ in range(3):
            trainer.train_epoch(_batches(x, labels, [4, 5]))
            results.append(trainer.evaluate(_batches(x, labels, [9])))
        assert trainer.history["eval_loss"] == [r[0] for r in results]
        assert trainer.history["eval_accuracy"] == [r[1] for r in results]
        assert results[2][0] < results[0][0]

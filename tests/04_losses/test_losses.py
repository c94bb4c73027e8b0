"""Module 04: MSELoss, CrossEntropyLoss and BinaryCrossEntropyLoss: values against numpy
formulas (and torch.nn.functional where installed), scalar outputs, gradients against central
differences, and the input checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from support import numerical_grad

from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor

RTOL, ATOL = 1e-2, 1e-3


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _regression(seed: int = 0, shape=(6, 2)):
    rng = _rng(seed)
    return (rng.normal(size=shape).astype(np.float32), rng.normal(size=shape).astype(np.float32))


def _classification(seed: int = 0, n: int = 6, classes: int = 4):
    rng = _rng(seed)
    logits = rng.normal(scale=2.0, size=(n, classes)).astype(np.float32)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    return logits, labels


def _binary(seed: int = 0, shape=(8, 1)):
    rng = _rng(seed)
    probs = rng.uniform(0.05, 0.95, size=shape).astype(np.float32)
    targets = (rng.uniform(size=shape) < 0.5).astype(np.float32)
    return probs, targets


def _np_log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _np_ce(logits: np.ndarray, labels: np.ndarray) -> float:
    labels = np.asarray(labels).reshape(-1).astype(int)
    return float(-_np_log_softmax(logits)[np.arange(len(labels)), labels].mean())


def _np_bce(p: np.ndarray, t: np.ndarray) -> float:
    p, t = p.astype(np.float64), t.astype(np.float64)
    return float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))


def _check_scalar(loss: Tensor) -> None:
    assert isinstance(loss, Tensor)
    assert loss.shape == ()
    assert loss.dtype == np.float32
    assert isinstance(float(loss.data), float)


def _check_grad(loss_fn, pred: np.ndarray, target) -> Tensor:
    """Backward of ``loss_fn(pred, target)`` against central differences; returns the Tensor."""
    p = Tensor(pred, requires_grad=True)
    loss_fn(p, target).backward()

    def f() -> float:
        return float(loss_fn(p, target).data)

    assert p.grad is not None and p.grad.shape == p.shape
    np.testing.assert_allclose(p.grad.data, numerical_grad(f, p.data), rtol=RTOL, atol=ATOL)
    return p


# ----------------------------------------------------------------------------- MSE
def test_mse_value_and_scalar_shape() -> None:
    """MSE is mean((pred - target)^2) over every element, returned as a shape () Tensor:
    catches a sum instead of a mean, a missing square, or a (1,) output (``float()`` of a 1-d
    array is deprecated in numpy 2, an error under this project's warning filter)."""
    pred, target = _regression()
    loss = MSELoss()(Tensor(pred), Tensor(target))
    _check_scalar(loss)
    expected = np.mean((pred.astype(np.float64) - target) ** 2)
    np.testing.assert_allclose(float(loss.data), expected, rtol=1e-5)
    np.testing.assert_array_equal(MSELoss().forward(Tensor(pred), Tensor(target)).data, loss.data)


def test_mse_gradient() -> None:
    """d MSE / d pred = 2 (pred - target) / N, checked numerically: catches a missing 1/N."""
    pred, target = _regression(1)
    _check_grad(MSELoss(), pred, Tensor(target))


@pytest.mark.parametrize(("pred_shape", "target_shape"), [((5, 1), (5,)), ((5,), (5, 1))])
def test_mse_shape_mismatch_raises(pred_shape, target_shape) -> None:
    """(N, 1) predictions against (N,) targets raise ValueError: catches the silent (N, N)
    broadcast that trains a regression model on the wrong loss."""
    with pytest.raises(ValueError):
        MSELoss()(Tensor(np.zeros(pred_shape)), Tensor(np.zeros(target_shape)))


def test_mse_matches_torch() -> None:
    """Value and gradient agree with torch.nn.functional.mse_loss."""
    torch = pytest.importorskip("torch")
    pred, target = _regression(2, shape=(7, 3))
    p = Tensor(pred, requires_grad=True)
    loss = MSELoss()(p, Tensor(target))
    loss.backward()
    tp = torch.tensor(pred, requires_grad=True)
    tl = torch.nn.functional.mse_loss(tp, torch.tensor(target))
    tl.backward()
    np.testing.assert_allclose(float(loss.data), tl.item(), rtol=1e-5)
    np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- cross-entropy
@pytest.mark.parametrize(
    "target_form",
    ["int_n", "float_n", "float_n1", "int_n1"],
)
def test_cross_entropy_value_for_target_forms(target_form) -> None:
    """Cross-entropy of logits equals -mean(log_softmax[label]) whether labels are (N,) or (N, 1),
    integers or integer-valued floats (as a float32 Tensor stores them): catches one-hot
    assumptions and a (N, 1) target that broadcasts."""
    logits, labels = _classification()
    targets = {
        "int_n": labels,
        "float_n": labels.astype(np.float32),
        "float_n1": labels.astype(np.float32).reshape(-1, 1),
        "int_n1": labels.reshape(-1, 1),
    }[target_form]
    loss = CrossEntropyLoss()(Tensor(logits), Tensor(targets))
    _check_scalar(loss)
    np.testing.assert_allclose(float(loss.data), _np_ce(logits, labels), rtol=1e-5)


def test_cross_entropy_gradient() -> None:
    """d CE / d logits = (softmax - one_hot) / N, checked numerically."""
    logits, labels = _classification(1)
    p = _check_grad(CrossEntropyLoss(), logits, Tensor(labels.astype(np.float32)))
    np.testing.assert_allclose(p.grad.data.sum(axis=1), 0.0, atol=1e-6)


def test_cross_entropy_is_stable_for_large_logits() -> None:
    """Logits in the thousands give a finite loss equal to the shifted logits' loss, with no
    warnings: catches log(softmax) computed without the log-sum-exp shift."""
    logits, labels = _classification(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = CrossEntropyLoss()(Tensor(logits * 100.0 + 1000.0), Tensor(labels))
    assert np.isfinite(float(big.data))
    np.testing.assert_allclose(float(big.data), _np_ce(logits * 100.0, labels), rtol=1e-4)


@pytest.mark.parametrize(
    "bad",
    [
        [0, 1, 2, 4, 0, 1],  # 4 == number of classes
        [0, 1, -1, 3, 0, 1],  # negative
        [0, 1.5, 2, 3, 0, 1],  # not an integer
        [0, 1, 2, 3, 0],  # wrong N
        [[0, 1], [2, 3], [0, 1], [2, 3], [0, 1], [2, 3]],  # (N, 2)
    ],
    ids=["label_eq_classes", "negative", "fractional", "wrong_n", "two_columns"],
)
def test_cross_entropy_bad_labels_raise(bad) -> None:
    """Labels out of range, fractional or of the wrong shape raise ValueError: catches numpy's
    negative indexing (label -1 silently means the last class) and truncation of 1.5 to 1."""
    logits, _ = _classification()
    with pytest.raises(ValueError):
        CrossEntropyLoss()(Tensor(logits), Tensor(np.array(bad, dtype=np.float32)))


def test_cross_entropy_matches_torch() -> None:
    """Value and gradient agree with torch.nn.functional.cross_entropy (mean reduction)."""
    torch = pytest.importorskip("torch")
    logits, labels = _classification(3, n=9, classes=5)
    p = Tensor(logits, requires_grad=True)
    loss = CrossEntropyLoss()(p, Tensor(labels.astype(np.float32)))
    loss.backward()
    tp = torch.tensor(logits, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tp, torch.tensor(labels, dtype=torch.long))
    tl.backward()
    np.testing.assert_allclose(float(loss.data), tl.item(), rtol=1e-5)
    np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-4, atol=1e-7)


# ----------------------------------------------------------------------------- binary CE
def test_bce_value_and_scalar_shape() -> None:
    """BCE equals -mean(t log p + (1-t) log(1-p)) as a shape () Tensor, for hard and soft
    targets: catches swapped terms and a sum instead of a mean."""
    probs, targets = _binary()
    soft = np.clip(targets * 0.8 + 0.1, 0, 1).astype(np.float32)
    for t in (targets, soft):
        loss = BinaryCrossEntropyLoss()(Tensor(probs), Tensor(t))
        _check_scalar(loss)
        np.testing.assert_allclose(float(loss.data), _np_bce(probs, t), rtol=1e-5)


def test_bce_gradient() -> None:
    """d BCE / d p = (p - t) / (p (1 - p)) / N inside (0, 1), checked numerically."""
    probs, targets = _binary(1, shape=(6,))
    _check_grad(BinaryCrossEntropyLoss(), probs, Tensor(targets))


def test_bce_clipped_at_zero_and_one_stays_finite() -> None:
    """Probabilities of exactly 0 and 1 (a saturated sigmoid) give a finite, positive loss and
    finite gradients without warnings; perfect predictions give a loss near 0: catches log(0) =
    -inf and 0/0 = NaN gradients."""
    p = Tensor(np.array([0.0, 1.0, 0.0, 1.0], dtype=np.float32), requires_grad=True)
    wrong = Tensor(np.array([1.0, 0.0, 1.0, 0.0], dtype=np.float32))
    right = Tensor(np.array([0.0, 1.0, 0.0, 1.0], dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bad = BinaryCrossEntropyLoss()(p, wrong)
        bad.backward()
        good = BinaryCrossEntropyLoss()(Tensor(p.data), right)
    assert np.isfinite(float(bad.data)) and float(bad.data) > 10.0
    assert np.all(np.isfinite(p.grad.data))
    assert 0.0 <= float(good.data) < 1e-5


@pytest.mark.parametrize(("pred_shape", "target_shape"), [((5, 1), (5,)), ((5,), (5, 1))])
def test_bce_shape_mismatch_raises(pred_shape, target_shape) -> None:
    """(N, 1) probabilities against (N,) targets raise ValueError instead of broadcasting."""
    with pytest.raises(ValueError):
        BinaryCrossEntropyLoss()(Tensor(np.full(pred_shape, 0.5)), Tensor(np.zeros(target_shape)))


def test_bce_matches_torch() -> None:
    """Value and gradient agree with torch.nn.functional.binary_cross_entropy away from the
    clipping region."""
    torch = pytest.importorskip("torch")
    probs, targets = _binary(4, shape=(10, 1))
    p = Tensor(probs, requires_grad=True)
    loss = BinaryCrossEntropyLoss()(p, Tensor(targets))
    loss.backward()
    tp = torch.tensor(probs, requires_grad=True)
    tl = torch.nn.functional.binary_cross_entropy(tp, torch.tensor(targets))
    tl.backward()
    np.testing.assert_allclose(float(loss.data), tl.item(), rtol=1e-5)
    np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("loss_cls", [MSELoss, CrossEntropyLoss, BinaryCrossEntropyLoss])
def test_loss_is_differentiable_end_to_end(loss_cls) -> None:
    """Each loss starts a backward pass that reaches a parameter through an earlier operation
    (the loss is part of the graph, not a detached number)."""
    w = Tensor(np.array([[0.5, -0.2], [0.1, 0.3]], dtype=np.float32), requires_grad=True)
    x = Tensor(np.array([[1.0, 2.0], [-1.0, 0.5], [0.3, 0.3]], dtype=np.float32))
    out = x @ w
    if loss_cls is CrossEntropyLoss:
        target = Tensor(np.array([0.0, 1.0, 1.0], dtype=np.float32))
    elif loss_cls is BinaryCrossEntropyLoss:
        out = out.sigmoid()
        target = Tensor(np.array([[0, 1], [1, 0], [1, 1]], dtype=np.float32))
    else:
        target = Tensor(np.zeros((3, 2), dtype=np.float32))
    loss_cls()(out, target).backward()
    assert w.grad is not None and np.any(w.grad.data != 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e30, -1.0, 1.5])
def test_cross_entropy_rejects_non_class_labels_with_a_value_error(bad: float) -> None:
    """NaN, inf, huge, negative and fractional labels are a ValueError naming the valid range,
    not a cast warning or an index error deep inside numpy."""
    logits = Tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"integers in \[0, 3\)"):
        CrossEntropyLoss()(logits, Tensor([0.0, bad]))

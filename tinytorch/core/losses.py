"""Module 04: losses, each a scalar Tensor (shape ``()``) that starts the backward pass.

Each loss is one fused operation with a hand-derived gradient: cheaper than a chain of small
operations, and numerically stable (log-softmax instead of log(softmax), clipped probabilities
in binary cross-entropy). All are means over the batch, so a batch's loss does not grow with its
size; that is why gradient accumulation must weight batches by their sample counts.
"""

from __future__ import annotations

import numpy as np

from tinytorch.core.tensor import DTYPE, Tensor, _as_array


class Loss:
    """``loss(pred, target)`` is ``loss.forward(pred, target)``."""

    def __call__(self, predictions: Tensor, targets: Tensor) -> Tensor:
        return self.forward(predictions, targets)

    def forward(self, predictions: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _same_shape(name: str, predictions: np.ndarray, targets: np.ndarray) -> None:
    if predictions.shape != targets.shape:
        raise ValueError(
            f"{name}: predictions have shape {predictions.shape} but targets have shape "
            f"{targets.shape}; they must match (a (N, 1) vs (N,) mismatch would silently "
            "broadcast to (N, N))"
        )


class MSELoss(Loss):
    """mean((predictions - targets)^2) over every element."""

    def forward(self, predictions: Tensor, targets: Tensor) -> Tensor:
        pred, target = predictions.data, _as_array(targets)
        _same_shape("MSELoss", pred, target)
        diff = pred - target
        scale = 2.0 / max(diff.size, 1)
        squared = diff * diff
        # sum / size is np.mean's float32 result bit for bit, without its Python-level wrappers,
        # which cost as much as the rest of a small model's loss (an empty batch keeps np.mean).
        mean = (np.add.reduce(squared, axis=None, dtype=DTYPE) / squared.size if squared.size
                else np.mean(squared, dtype=DTYPE))
        return Tensor._make(
            np.asarray(mean, dtype=DTYPE).reshape(()),
            (predictions,),
            lambda g: (g * scale * diff,),
        )


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy of logits (N, C) against integer class targets (N,).

    Targets may be stored as floats holding integers, or as (N, 1). The gradient with respect to
    the logits is (softmax - one_hot) / N.
    """

    def forward(self, predictions: Tensor, targets: Tensor) -> Tensor:
        logits = predictions.data
        if logits.ndim != 2:
            raise ValueError(f"CrossEntropyLoss expects logits of shape (N, C); got {logits.shape}")
        n, classes = logits.shape
        labels = _class_labels(_as_array(targets), n, classes)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(n)
        loss = -log_probs[rows, labels].sum() / max(n, 1)  # sum/n: np.mean costs 4x more here

        def backward(g: np.ndarray) -> tuple:
            grad = np.exp(log_probs)
            grad[rows, labels] -= 1.0
            return (grad * (g / n),)

        return Tensor._make(np.asarray(loss, dtype=DTYPE).reshape(()), (predictions,), backward)


def _class_labels(targets: np.ndarray, n: int, classes: int) -> np.ndarray:
    """Integer labels from targets of shape (N,) or (N, 1), checked against the logits."""
    flat = targets.reshape(-1) if targets.ndim == 2 and targets.shape[1] == 1 else targets
    if flat.shape != (n,):
        raise ValueError(
            f"CrossEntropyLoss expects integer class targets of shape ({n},); got {targets.shape}"
        )
    # Range first (NaN fails both comparisons), so the cast below never sees NaN or inf.
    in_range = n == 0 or (flat.min() >= 0 and flat.max() < classes)
    labels = flat.astype(np.int64) if in_range else None
    if labels is None or not (labels == flat).all():
        raise ValueError(
            f"CrossEntropyLoss targets must be integers in [0, {classes}); got values "
            f"{np.unique(flat)[:10]}"
        )
    return labels


class BinaryCrossEntropyLoss(Loss):
    """-mean(t log p + (1 - t) log(1 - p)) for probabilities p (the output of a Sigmoid).

    p is clipped to [eps, 1 - eps] so a saturated sigmoid gives a large but finite loss.
    """

    eps = 1e-7

    def forward(self, predictions: Tensor, targets: Tensor) -> Tensor:
        p_raw, t = predictions.data, _as_array(targets)
        _same_shape("BinaryCrossEntropyLoss", p_raw, t)
        p = np.clip(p_raw, self.eps, 1 - self.eps)
        loss = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p), dtype=DTYPE)
        inside = (p_raw > self.eps) & (p_raw < 1 - self.eps)  # clipping stops the gradient
        n = max(p.size, 1)
        return Tensor._make(
            np.asarray(loss, dtype=DTYPE).reshape(()),
            (predictions,),
            lambda g: (g * inside * (p - t) / (p * (1 - p)) / n,),
        )

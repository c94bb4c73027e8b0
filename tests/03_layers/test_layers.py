"""Module 03: Linear, Dropout, Sequential and the train()/eval() switch."""

from __future__ import annotations

import re

import numpy as np
import pytest
from support import SimpleModel, numerical_grad

from tinytorch.core import layers
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.tensor import Tensor

RTOL, ATOL = 1e-2, 1e-3


def _x(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)


# ----------------------------------------------------------------------------- Linear
def test_linear_shapes_alias_and_parameters() -> None:
    """``weight`` is (in, out), ``weights`` is the very same Tensor, ``bias`` is (out,), and
    ``parameters()`` is the list [weight, bias]: catches a transposed weight, an alias that is a
    copy (updates through it would be lost) and missing parameters."""
    lin = Linear(3, 5, seed=0)
    assert lin.weight.shape == (3, 5)
    assert lin.weights is lin.weight
    assert lin.bias is not None and lin.bias.shape == (5,)
    assert lin.weight.requires_grad and lin.bias.requires_grad
    assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32
    params = lin.parameters()
    assert isinstance(params, list)
    assert [id(p) for p in params] == [id(lin.weight), id(lin.bias)]


def test_linear_forward_value() -> None:
    """``lin(x) == lin.forward(x) == x @ W + b``: catches a missing bias or a wrong product."""
    lin = Linear(3, 2, seed=1)
    x = _x((4, 3))
    expected = x.astype(np.float64) @ lin.weight.data + lin.bias.data
    out = lin(Tensor(x))
    assert out.shape == (4, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(lin.forward(Tensor(x)).data, out.data)


def test_linear_without_bias() -> None:
    """``bias=False`` has no bias parameter and computes x @ W only."""
    lin = Linear(3, 2, bias=False, seed=2)
    assert lin.bias is None
    assert [id(p) for p in lin.parameters()] == [id(lin.weight)]
    x = _x((4, 3))
    np.testing.assert_allclose(
        lin(Tensor(x)).data, x.astype(np.float64) @ lin.weight.data, rtol=1e-5, atol=1e-6
    )


def test_linear_init_bound() -> None:
    """Weights and bias are uniform in +-1/sqrt(in_features) (PyTorch's default) and actually
    fill that range: catches unscaled N(0, 1) init, a bound from out_features, or zeros."""
    fan_in = 64
    lin = Linear(fan_in, 200, seed=3)
    bound = 1.0 / np.sqrt(fan_in)
    for p in (lin.weight.data, lin.bias.data):
        assert np.all(np.abs(p) <= bound + 1e-7)
        assert np.abs(p).max() > 0.9 * bound
    w = lin.weight.data
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3.0), rtol=0.05)
    assert abs(float(w.mean())) < 0.05 * bound


def test_linear_seed_reproducibility() -> None:
    """The same ``seed`` gives the same parameters, another seed different ones: catches a
    seed that is ignored."""
    a, b, c = Linear(4, 3, seed=7), Linear(4, 3, seed=7), Linear(4, 3, seed=8)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, c.weight.data)


def test_linear_np_random_seed_reproducibility() -> None:
    """Without ``seed``, ``np.random.seed(n)`` makes initialisation reproducible (students rely on
    it): catches an init drawn from a private, unseeded generator."""
    np.random.seed(123)
    a = Linear(4, 3)
    np.random.seed(123)
    b = Linear(4, 3)
    c = Linear(4, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(b.weight.data, c.weight.data)


def test_linear_wrong_input_width_names_shapes() -> None:
    """An input with the wrong number of features raises ValueError naming the expected width and
    the given shape: catches an obscure numpy matmul error (or a silent broadcast)."""
    lin = Linear(3, 2, seed=0)
    with pytest.raises(ValueError, match=re.escape("(5, 4)")) as info:
        lin(Tensor(_x((5, 4))))
    assert "3" in str(info.value)


@pytest.mark.parametrize(
    ("in_features", "out_features", "name"),
    [(0, 2, "in_features"), (-3, 2, "in_features"), (2.5, 2, "in_features"),
     (None, 2, "in_features"), (3, 0, "out_features"), (3, -1, "out_features"),
     (3, 1.5, "out_features")],
)  # fmt: skip
def test_linear_bad_features_raise(in_features, out_features, name) -> None:
    """Non-positive or non-integer sizes raise ValueError naming the argument: catches layers
    built with zero width (or a float) that fail much later with an unrelated error."""
    with pytest.raises(ValueError, match=name):
        Linear(in_features, out_features)


def test_linear_gradients_match_numerical() -> None:
    """Gradients of weight, bias (summed over the batch) and input equal central differences:
    catches a transposed weight gradient, a bias gradient not reduced over the batch, or an input
    gradient that is missing (breaking deeper networks)."""
    lin = Linear(3, 2, seed=4)
    x = Tensor(_x((5, 3), seed=1), requires_grad=True)
    upstream = np.random.default_rng(5).normal(size=(5, 2))
    lin(x).backward(upstream)

    def f() -> float:
        return float(np.sum(lin(x).data.astype(np.float64) * upstream))

    for name, t in (("weight", lin.weight), ("bias", lin.bias), ("input", x)):
        assert t.grad is not None and t.grad.shape == t.shape, name
        np.testing.assert_allclose(
            t.grad.data, numerical_grad(f, t.data), rtol=RTOL, atol=ATOL, err_msg=name
        )


# ----------------------------------------------------------------------------- Dropout
def test_dropout_is_identity_in_eval() -> None:
    """In eval mode Dropout returns its input unchanged: catches dropping (or scaling) at
    evaluation time, which makes test accuracy random and too low."""
    drop = Dropout(0.5, seed=0)
    drop.eval()
    x = _x((20, 30))
    np.testing.assert_array_equal(drop(Tensor(x)).data, x)


def test_dropout_p_zero_is_identity_in_train() -> None:
    """p=0 keeps every value unscaled while training."""
    x = _x((10, 10))
    np.testing.assert_array_equal(Dropout(0.0, seed=0)(Tensor(x)).data, x)


def test_dropout_inverted_scaling_in_train() -> None:
    """While training, a fraction ~p of values is zeroed and the rest are scaled by 1/(1-p), so
    the mean is preserved: catches non-inverted dropout (mean shrinks by 1-p), dropping with
    probability 1-p, and a mask shared by all elements."""
    p = 0.3
    drop = Dropout(p, seed=1)
    assert drop.training is True
    x = np.ones((400, 500), dtype=np.float32)
    y = drop(Tensor(x)).data
    zeros = float(np.mean(y == 0.0))
    assert abs(zeros - p) < 0.01
    np.testing.assert_allclose(y[y != 0], 1.0 / (1.0 - p), rtol=1e-6)
    assert abs(float(y.mean()) - 1.0) < 0.01


def test_dropout_gradient_uses_the_same_mask() -> None:
    """The gradient is the forward's mask times 1/(1-p): catches a backward that draws a new mask
    or forgets the scale."""
    p = 0.5
    drop = Dropout(p, seed=2)
    x = Tensor(_x((8, 9), seed=3) + 2.0, requires_grad=True)  # no zeros in x
    y = drop(x)
    y.backward(np.ones(x.shape, dtype=np.float32))
    kept = y.data != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(x.grad.data, np.where(kept, 1.0 / (1.0 - p), 0.0), rtol=1e-6)


def test_dropout_is_seedable() -> None:
    """Two Dropouts with the same seed drop the same elements, another seed others: catches an
    ignored seed (unreproducible training)."""
    x = Tensor(np.ones((50, 50), dtype=np.float32))
    a, b, c = Dropout(0.5, seed=9), Dropout(0.5, seed=9), Dropout(0.5, seed=10)
    ya, yb, yc = a(x).data, b(x).data, c(x).data
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(ya, yc)
    assert not np.array_equal(a(x).data, ya), "successive calls must draw new masks"


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_p_out_of_range_raises(p) -> None:
    """p outside [0, 1) raises ValueError: catches p=1 (division by zero in the scale) and
    negative probabilities."""
    with pytest.raises(ValueError):
        Dropout(p)


# ----------------------------------------------------------------------------- Sequential
class _Record:
    """A duck-typed layer that appends its name to a shared log and applies an affine map."""

    def __init__(self, name: str, log: list[str], scale: float, shift: float) -> None:
        self.name, self.log, self.scale, self.shift = name, log, scale, shift

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def forward(self, x: Tensor) -> Tensor:
        self.log.append(self.name)
        return x * self.scale + self.shift


def test_sequential_applies_layers_in_order() -> None:
    """Layers run first to last: catches reversed order (visible here since the maps do not
    commute) and skipped layers."""
    log: list[str] = []
    seq = Sequential(_Record("a", log, 2.0, 1.0), _Record("b", log, 3.0, -1.0))
    x = np.array([1.0, -2.0], dtype=np.float32)
    out = seq(Tensor(x))
    assert log == ["a", "b"]
    np.testing.assert_allclose(out.data, (x * 2.0 + 1.0) * 3.0 - 1.0)


def test_sequential_matches_manual_composition() -> None:
    """Sequential(Linear, ReLU, Linear) equals applying the three by hand, and is differentiable
    end to end."""
    l1, l2 = Linear(3, 4, seed=0), Linear(4, 2, seed=1)
    seq = Sequential(l1, ReLU(), l2)
    x = Tensor(_x((5, 3)))
    np.testing.assert_array_equal(seq(x).data, l2(ReLU()(l1(x))).data)
    seq(x).sum().backward()
    assert all(p.grad is not None for p in seq.parameters())


def test_sequential_parameters_in_order_without_duplicates() -> None:
    """parameters() lists every parameter of every sub-layer in definition order, nested
    Sequentials included, a shared layer once: catches a shared layer updated twice per step and
    an order that breaks optimizer state and checkpoints."""
    l1, l2, l3 = Linear(2, 3, seed=0), Linear(3, 3, seed=1), Linear(3, 1, seed=2)
    seq = Sequential(l1, ReLU(), Sequential(l2, ReLU()), l2, l3)
    expected = [l1.weight, l1.bias, l2.weight, l2.bias, l3.weight, l3.bias]
    params = seq.parameters()
    assert isinstance(params, list)
    assert [id(p) for p in params] == [id(p) for p in expected]


def test_shared_layer_counted_once() -> None:
    """A layer used twice contributes its parameters once."""
    shared = Linear(3, 3, seed=0)
    seq = Sequential(shared, ReLU(), shared)
    assert [id(p) for p in seq.parameters()] == [id(shared.weight), id(shared.bias)]


# ----------------------------------------------------------------------------- train / eval
class _Net(Module):
    """A Module subclass holding layers in an attribute, a list, a dict and a nested Sequential."""

    def __init__(self) -> None:
        self.first = Linear(4, 4, seed=0)
        self.blocks = [Dropout(0.5, seed=1), Sequential(Linear(4, 4, seed=2), Dropout(0.2))]
        self.heads = {"out": Sequential(Sequential(Dropout(0.1)), Linear(4, 1, seed=3))}

    def forward(self, x: Tensor) -> Tensor:
        x = self.first(x)
        for block in self.blocks:
            x = block(x)
        return self.heads["out"](x)


def _all_layers(net: _Net) -> list:
    inner = net.blocks[1]
    head = net.heads["out"]
    return [net, net.first, net.blocks[0], inner, inner[0], inner[1], head, head[0],
            head[0][0], head[1]]  # fmt: skip


def test_train_eval_set_training_on_every_sublayer() -> None:
    """eval() sets ``training=False`` on the module and every sub-layer however deeply nested
    (lists, dicts, nested Sequential), train() sets it back: catches a Dropout deep inside a
    model that keeps dropping during evaluation."""
    net = _Net()
    assert net.eval() is net
    assert [m.training for m in _all_layers(net)] == [False] * 10
    assert net.train() is net
    assert [m.training for m in _all_layers(net)] == [True] * 10
    net.train(False)
    assert [m.training for m in _all_layers(net)] == [False] * 10


def test_eval_makes_a_model_deterministic() -> None:
    """After eval() the nested Dropouts are inactive, so two forward passes agree; after
    train() they differ again."""
    net = _Net()
    x = Tensor(_x((6, 4)) + 2.0)
    net.eval()
    np.testing.assert_array_equal(net(x).data, net(x).data)
    net.train()
    assert not np.array_equal(net(x).data, net(x).data)


def test_set_training_on_duck_typed_model() -> None:
    """``layers.set_training`` walks any object that holds layers (no base class), as the audit's
    SimpleModel: catches a switch that only works for Module subclasses."""
    model = SimpleModel(seed=0)
    model.dropouts = [Dropout(0.5, seed=0)]
    layers.set_training(model, False)
    found = [model, model.layer1, model.relu, model.layer2, model.dropouts[0]]
    assert [m.training for m in found] == [False] * 5
    layers.set_training(model, True)
    assert [m.training for m in found] == [True] * 5


def test_linear_without_bias_backpropagates_to_weight_and_input() -> None:
    """bias=False makes a node with two parents; its backward must return exactly two
    gradients, and they must match central differences."""
    layer = Linear(3, 2, bias=False, seed=0)
    x = Tensor(np.random.default_rng(1).normal(size=(4, 3)), requires_grad=True)
    (layer(x) * layer(x)).sum().backward()

    def loss() -> float:
        y = x.data.astype(np.float64) @ layer.weight.data.astype(np.float64)
        return float((y * y).sum())

    np.testing.assert_allclose(layer.weight.grad.data, numerical_grad(loss, layer.weight.data),
                               rtol=1e-2, atol=1e-3)
    np.testing.assert_allclose(x.grad.data, numerical_grad(loss, x.data), rtol=1e-2, atol=1e-3)
    assert layer.parameters() == [layer.weight]

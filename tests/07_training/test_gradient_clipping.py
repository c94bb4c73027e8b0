"""Module 07, audit priority 4: gradient clipping in the Trainer (4.1, 4.2) and
``clip_grad_norm`` on its own.

The reference semantics (spec, and torch.nn.utils.clip_grad_norm_): one global L2 norm over all
gradients present; if it exceeds max_norm every gradient is scaled in place by
max_norm / (norm + 1e-6); the norm BEFORE clipping is returned as a Python float. Expected norms
are computed here in float64 numpy; what the optimizer receives is recorded by a spy optimizer.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from support import SimpleModel, numerical_grad

import tinytorch.core.training as training
from tinytorch.core.layers import Linear
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Trainer, TrainingDivergedError, clip_grad_norm

NAMES = ("w1", "b1", "w2", "b2")  # SimpleModel's parameters, in order
EPS = 1e-6  # PyTorch's: clip factor max_norm / (norm + EPS), allowed by the spec


# ----------------------------------------------------------------------------- helpers
def _grad_of(p: Tensor) -> np.ndarray | None:
    g = p.grad
    if g is None:
        return None
    return np.array(g.data if isinstance(g, Tensor) else g, copy=True)


def _norm64(arrays) -> float:
    return math.sqrt(sum(float(np.sum(np.asarray(a, dtype=np.float64) ** 2)) for a in arrays))


class SpySGD(SGD):
    """SGD recording the gradients handed to each step and the parameters before it."""

    def __init__(self, params, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.seen: list[dict] = []

    def step(self) -> None:
        self.seen.append(
            {
                "grads": [_grad_of(p) for p in self.params],
                "params": [p.data.copy() for p in self.params],
            }
        )
        super().step()


class LinearModel:
    """Duck-typed Linear(n_in, 1) model; ``parameters()`` is a list, or a generator."""

    def __init__(self, n_in: int = 2, seed: int = 0, generator: bool = False) -> None:
        self.layer = Linear(n_in, 1, seed=seed)
        self.training = True
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)

    def parameters(self):
        if self.generator:
            return (p for p in self.layer.parameters())
        return self.layer.parameters()


def _mse_grads(w, b, x, y):
    w, b, x, y = (np.asarray(a, dtype=np.float64) for a in (w, b, x, y))
    r = x @ w + b - y
    return [2.0 / r.size * x.T @ r, 2.0 / r.size * r.sum(axis=0)]


def _batches(x, y, sizes):
    bounds = np.cumsum([0, *sizes])
    assert bounds[-1] == len(x)
    return [(Tensor(x[a:b]), Tensor(y[a:b])) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _big_data(n: int = 8, seed: int = 0):
    """Inputs of scale 100 and targets of 1000: MSE gradients of norm ~1e4 to 1e5."""
    rng = np.random.default_rng(seed)
    x = (100 * rng.normal(size=(n, 2))).astype(np.float32)
    y = np.full((n, 1), 1000.0, np.float32)
    return x, y


def _param(grad, shape=None) -> Tensor:
    """A parameter whose .grad is ``grad`` (stored as given: Tensor or ndarray) or None."""
    if shape is None:
        shape = np.shape(grad.data if isinstance(grad, Tensor) else grad)
    p = Tensor(np.zeros(shape, np.float32), requires_grad=True)
    p.grad = grad
    return p


# ============================================================================ audit 4.1
class TestClippingInTheTrainer:
    @pytest.mark.audit("4.1")
    def test_large_gradients_reach_the_optimizer_clipped_to_norm_1(self):
        """Audit 4.1: grad_clip_norm=1.0 with gradients of norm ~1e5 (inputs of scale 100,
        targets 1000): at every step the gradient handed to the optimizer has global norm
        <= 1 + 1e-5 (and >= 1 - 1e-5), points exactly along the true gradient (numpy at the
        parameters before the step), each parameter moves by at most lr * 1, and
        history['grad_norm'] holds the pre-clip norm."""
        x, y = _big_data()
        model = LinearModel()
        opt = SpySGD(model.parameters(), lr=0.01)
        trainer = Trainer(model, opt, MSELoss(), grad_clip_norm=1.0)
        for _ in range(2):
            trainer.train_epoch(_batches(x, y, [4, 4]))

        assert len(opt.seen) == 4
        after = [r["params"] for r in opt.seen[1:]] + [[p.data for p in model.parameters()]]
        for i, (record, new) in enumerate(zip(opt.seen, after, strict=True)):
            a = 4 * (i % 2)
            true = _mse_grads(*record["params"], x[a : a + 4], y[a : a + 4])
            true_norm = _norm64(true)
            assert true_norm > 1e3, "test precondition: a large gradient"
            got_norm = _norm64(record["grads"])
            assert 1 - 1e-5 <= got_norm <= 1 + 1e-5, got_norm
            for g, t in zip(record["grads"], true, strict=True):
                np.testing.assert_allclose(g, t / true_norm, rtol=1e-4, atol=1e-8)
            moved = _norm64(
                [n.astype(np.float64) - b for n, b in zip(new, record["params"], strict=True)]
            )
            assert moved <= 0.01 * (1 + 1e-4), moved
            assert trainer.history["grad_norm"][i] == pytest.approx(true_norm, rel=1e-4)

    @pytest.mark.audit("4.1")
    def test_clipping_is_global_across_all_parameters(self):
        """Audit 4.1: the audit's SimpleModel (4 parameters) with a loss scaled by 1e4: the
        clipped gradient is the whole true gradient (central differences, float64) divided by
        its single global norm; clipping each parameter separately would give a global norm of
        up to 2 and a different direction."""
        rng = np.random.default_rng(3)
        x = rng.normal(size=(6, 2)).astype(np.float32)
        y = (3 * x[:, :1] - x[:, 1:] + 2).astype(np.float32)
        model = SimpleModel(seed=2)
        params = model.parameters()
        before = {n: p.data.astype(np.float64) for n, p in zip(NAMES, params, strict=True)}
        mse = MSELoss()
        opt = SpySGD(params, lr=0.1)
        trainer = Trainer(model, opt, lambda p, t: mse(p, t) * 1e4, grad_clip_norm=1.0)
        trainer.train_epoch([(Tensor(x), Tensor(y))])

        def loss() -> float:
            h = np.maximum(x @ before["w1"] + before["b1"], 0.0)
            return 1e4 * float(np.mean((h @ before["w2"] + before["b2"] - y) ** 2))

        true = [numerical_grad(loss, before[n], eps=1e-4) for n in NAMES]
        norm = _norm64(true)
        assert all(_norm64([t]) > 1.0 for t in true), "test precondition: every part is large"
        got = opt.seen[0]["grads"]
        assert _norm64(got) == pytest.approx(1.0, abs=1e-5)
        for g, t in zip(got, true, strict=True):
            np.testing.assert_allclose(g, t / norm, rtol=2e-3, atol=1e-6)

    @pytest.mark.audit("4.1")
    def test_non_finite_gradient_raises_and_leaves_parameters_alone(self):
        """Audit 4.1: a finite loss whose gradient is NaN (sqrt at 0: 0 * inf) with clipping on:
        clip_grad_norm reports a non-finite norm, the Trainer raises TrainingDivergedError (a
        FloatingPointError) without updating any parameter, and clears the gradients."""
        model = LinearModel(n_in=1, seed=4)
        before = [p.data.copy() for p in model.parameters()]
        opt = SGD(model.parameters(), lr=0.1)

        def sqrt_loss(pred: Tensor, target: Tensor) -> Tensor:
            return ((pred - target) * 0.0).sum() ** 0.5  # value 0, gradient 0 * inf = NaN

        trainer = Trainer(model, opt, sqrt_loss, grad_clip_norm=1.0)
        batch = (Tensor([[1.0], [2.0]]), Tensor([[0.0], [1.0]]))
        with np.errstate(divide="ignore", invalid="ignore"):
            with pytest.raises(FloatingPointError) as info:
                trainer.train_epoch([batch])
        assert isinstance(info.value, TrainingDivergedError)
        for p, b in zip(model.parameters(), before, strict=True):
            assert p.data.tobytes() == b.tobytes()
            assert p.grad is None or not np.any(_grad_of(p))
        assert trainer.step == 0 and opt.step_count == 0

    @pytest.mark.audit("4.1")
    def test_clipping_runs_once_per_step_on_the_accumulated_gradient(self, monkeypatch):
        """Audit 4.1: with accumulation_steps=2 over batches [1, 3 | 2, 2 | 1] (partial last
        window), clip_grad_norm is called once per optimizer step (3 per epoch, not 5), the
        gradient the optimizer gets is the window's averaged gradient scaled to norm 1, and
        history['grad_norm'] holds that window gradient's pre-clip norm, one entry per step."""
        calls: list[int] = []
        original = training.clip_grad_norm

        def counting(parameters, max_norm=1.0):
            calls.append(1)
            return original(parameters, max_norm)

        monkeypatch.setattr(training, "clip_grad_norm", counting)
        x, y = _big_data(n=9, seed=5)
        model = LinearModel(seed=1)
        opt = SpySGD(model.parameters(), lr=0.01)
        trainer = Trainer(model, opt, MSELoss(), grad_clip_norm=1.0)
        sizes = [1, 3, 2, 2, 1]
        for _ in range(2):
            trainer.train_epoch(_batches(x, y, sizes), accumulation_steps=2)

        assert len(calls) == 6 and len(opt.seen) == 6
        assert len(trainer.history["grad_norm"]) == 6
        windows = [(0, 4), (4, 8), (8, 9)] * 2
        for (a, c), record, logged in zip(
            windows, opt.seen, trainer.history["grad_norm"], strict=True
        ):
            true = _mse_grads(*record["params"], x[a:c], y[a:c])
            norm = _norm64(true)
            assert norm > 10, "test precondition: every window is clipped"
            assert logged == pytest.approx(norm, rel=1e-4)
            for g, t in zip(record["grads"], true, strict=True):
                np.testing.assert_allclose(g, t / norm, rtol=1e-4, atol=1e-8)

    @pytest.mark.audit("4.1")
    def test_model_parameters_as_a_generator(self):
        """Audit 4.1: a model whose parameters() returns a generator is clipped and accumulated
        like one returning a list (numpy: each window's gradient scaled to norm 1)."""
        x, y = _big_data(n=6, seed=2)
        model = LinearModel(seed=3, generator=True)
        opt = SpySGD(model.parameters(), lr=0.01)
        trainer = Trainer(model, opt, MSELoss(), grad_clip_norm=1.0)
        trainer.train_epoch(_batches(x, y, [2, 1, 3]), accumulation_steps=2)
        assert len(opt.seen) == 2 and len(trainer.history["grad_norm"]) == 2
        for (a, c), record in zip([(0, 3), (3, 6)], opt.seen, strict=True):
            true = _mse_grads(*record["params"], x[a:c], y[a:c])
            norm = _norm64(true)
            for g, t in zip(record["grads"], true, strict=True):
                np.testing.assert_allclose(g, t / norm, rtol=1e-4, atol=1e-8)
        assert all(p.grad is None for p in model.parameters())

    @pytest.mark.audit("4.1")
    def test_grad_norm_history_has_one_entry_per_optimizer_step(self):
        """Audit 4.1: history['grad_norm'] gets one entry per optimizer step (7 batches, k=3:
        3 steps per epoch, 2 epochs) and none when clipping is off."""
        x, y = _big_data(n=7)
        for clip, expected in ((1.0, 6), (None, 0)):
            model = LinearModel()
            trainer = Trainer(
                model, SGD(model.parameters(), lr=0.001), MSELoss(), grad_clip_norm=clip
            )
            for _ in range(2):
                trainer.train_epoch(_batches(x, y, [1] * 7), accumulation_steps=3)
            assert trainer.step == 6
            assert len(trainer.history["grad_norm"]) == expected


# ============================================================================ audit 4.2
class TestSmallGradientsUntouched:
    @pytest.mark.audit("4.2")
    def test_below_threshold_the_optimizer_gets_the_unclipped_gradient_bit_for_bit(self):
        """Audit 4.2: grad_clip_norm=10 with gradients of norm < 10: over 3 epochs with
        accumulation, every gradient handed to optimizer.step, and the final parameters, are
        bit for bit those of the same run without clipping."""
        rng = np.random.default_rng(0)
        x = rng.normal(size=(10, 2)).astype(np.float32)
        y = (x @ np.array([[0.5], [-1.0]], np.float32) + 0.2).astype(np.float32)
        runs = []
        for clip in (None, 10.0):
            model = LinearModel(seed=6)
            opt = SpySGD(model.parameters(), lr=0.1)
            trainer = Trainer(model, opt, MSELoss(), grad_clip_norm=clip)
            for _ in range(3):
                trainer.train_epoch(_batches(x, y, [3, 3, 2, 2]), accumulation_steps=2)
            runs.append((model, opt))
        (m_plain, o_plain), (m_clip, o_clip) = runs
        assert len(o_plain.seen) == len(o_clip.seen) == 6
        for r_plain, r_clip in zip(o_plain.seen, o_clip.seen, strict=True):
            assert 1e-3 < _norm64(r_plain["grads"]) < 10, "test precondition: small gradients"
            for g_plain, g_clip in zip(r_plain["grads"], r_clip["grads"], strict=True):
                assert g_clip.dtype == g_plain.dtype
                assert g_clip.tobytes() == g_plain.tobytes()
        for a, b in zip(m_plain.parameters(), m_clip.parameters(), strict=True):
            assert a.data.tobytes() == b.data.tobytes()

    @pytest.mark.audit("4.2")
    def test_small_gradients_are_unchanged_by_clip_grad_norm(self):
        """Audit 4.2: clip_grad_norm with max_norm=10 on gradients of norm ~1 returns their
        norm and changes no bit of them (Tensor and ndarray gradients)."""
        rng = np.random.default_rng(1)
        grads = [rng.normal(size=(3, 4)).astype(np.float32) * 0.3, rng.normal(size=4) * 0.3]
        params = [_param(Tensor(grads[0])), _param(grads[1].copy())]
        before = [_grad_of(p).tobytes() for p in params]
        norm = clip_grad_norm(params, max_norm=10.0)
        assert norm == pytest.approx(_norm64(grads), rel=1e-6)
        assert [_grad_of(p).tobytes() for p in params] == before


# ============================================================================ clip_grad_norm
class TestClipGradNorm:
    def test_returns_the_pre_clip_norm_as_a_python_float(self):
        """The returned value is the norm before clipping, of type float (not np.float32/64)."""
        cases = [
            (np.array([3.0, 4.0], np.float32), 5.0),
            (Tensor([3.0, 4.0]), 5.0),
            (np.array([0.3, 0.4]), 0.5),
            (np.array([0.3, 0.4], np.float32), 0.5),
        ]
        for grad, expected in cases:
            result = clip_grad_norm([_param(grad)], max_norm=1.0)
            assert isinstance(result, float)
            assert result == pytest.approx(expected, rel=1e-7)

    def test_global_norm_not_per_parameter(self):
        """Gradients [3, 0] and [0, 4] have global norm 5: with max_norm=1 both are scaled by
        the same factor 1/5, to [0.6, 0] and [0, 0.8] (per-parameter clipping gives [1, 0] and
        [0, 1])."""
        a, b = _param(np.array([3.0, 0.0], np.float32)), _param(np.array([0.0, 4.0], np.float32))
        assert clip_grad_norm([a, b], max_norm=1.0) == pytest.approx(5.0, rel=1e-7)
        factor = 1.0 / (5.0 + EPS)
        np.testing.assert_allclose(a.grad, [3 * factor, 0.0], rtol=1e-6)
        np.testing.assert_allclose(b.grad, [0.0, 4 * factor], rtol=1e-6)

    def test_parameters_without_gradient_are_skipped(self):
        """A parameter whose grad is None does not count and keeps grad None."""
        none = _param(None, shape=(3,))
        some = _param(np.array([6.0, 8.0], np.float32))
        assert clip_grad_norm([none, some, none], max_norm=5.0) == pytest.approx(10.0, rel=1e-7)
        assert none.grad is None
        np.testing.assert_allclose(some.grad, [3.0, 4.0], rtol=1e-6)

    def test_a_generator_is_accepted(self):
        """A generator of parameters (readable once) is measured and clipped like a list."""
        params = [_param(np.array([3.0, 4.0], np.float32)), _param(Tensor([[12.0]]))]
        norm = clip_grad_norm((p for p in params), max_norm=1.0)
        assert norm == pytest.approx(13.0, rel=1e-7)
        assert _norm64([_grad_of(p) for p in params]) == pytest.approx(1.0, rel=1e-5)
        np.testing.assert_allclose(_grad_of(params[0]), [3 / 13, 4 / 13], rtol=1e-5)

    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda a: a.astype(np.float32), id="ndarray-float32"),
            pytest.param(lambda a: a.astype(np.float64), id="ndarray-float64"),
            pytest.param(lambda a: Tensor(a), id="Tensor-float32"),
        ],
    )
    def test_container_and_dtype_kept_and_scaled_in_place(self, make):
        """Gradients stored as ndarray (float32, float64) or Tensor are clipped in place: the
        same .grad object, same container type and dtype, values scaled by max_norm/norm."""
        rng = np.random.default_rng(2)
        raw = [rng.normal(size=(4, 3)) * 10, rng.normal(size=5) * 10]
        grads = [make(r) for r in raw]
        params = [_param(g) for g in grads]
        dtypes = [np.asarray(g.data if isinstance(g, Tensor) else g).dtype for g in grads]
        expected_norm = _norm64([_grad_of(p) for p in params])
        originals = [_grad_of(p) for p in params]

        norm = clip_grad_norm(params, max_norm=2.0)

        assert norm == pytest.approx(expected_norm, rel=1e-6)
        factor = 2.0 / (expected_norm + EPS)
        for p, g, dtype, original in zip(params, grads, dtypes, originals, strict=True):
            assert p.grad is g, "the gradient was replaced instead of scaled in place"
            assert type(p.grad) is type(g)
            arr = _grad_of(p)
            assert arr.dtype == dtype
            np.testing.assert_allclose(arr, original * factor, rtol=2e-6)
        assert _norm64([_grad_of(p) for p in params]) == pytest.approx(2.0, rel=1e-5)

    def test_mixed_containers_and_dtypes_share_one_factor(self):
        """A Tensor gradient, a float32 and a float64 ndarray together: one global norm and one
        factor for all three; each keeps its container and dtype."""
        t, f32, f64 = Tensor([[1.0, 2.0]]), np.array([2.0], np.float32), np.array([4.0, 0.0])
        params = [_param(t), _param(f32), _param(f64)]
        assert clip_grad_norm(params, max_norm=1.0) == pytest.approx(5.0, rel=1e-7)
        assert params[0].grad is t and params[1].grad is f32 and params[2].grad is f64
        assert f32.dtype == np.float32 and f64.dtype == np.float64
        factor = 1.0 / (5.0 + EPS)
        np.testing.assert_allclose(t.data, [[factor, 2 * factor]], rtol=1e-6)
        np.testing.assert_allclose(f32, [2 * factor], rtol=1e-6)
        np.testing.assert_allclose(f64, [4 * factor, 0.0], rtol=1e-12)

    @pytest.mark.parametrize("max_norm", [5.0001, 10.0, 1e6])
    def test_below_threshold_unchanged_bit_for_bit(self, max_norm):
        """Below max_norm every gradient keeps every bit (compared with .tobytes())."""
        rng = np.random.default_rng(4)
        g1 = (rng.normal(size=(3, 3)) * 0.7).astype(np.float32)
        g2 = rng.normal(size=2) * 0.7
        scale = 5.0 / _norm64([g1, g2])  # norm exactly ~5 (below 5.0001 after rounding)
        g1, g2 = (g1 * np.float32(scale * 0.99999)).astype(np.float32), g2 * scale * 0.99999
        params = [_param(Tensor(g1)), _param(g2.copy())]
        before = [_grad_of(p).tobytes() for p in params]
        clip_grad_norm(params, max_norm=max_norm)
        assert [_grad_of(p).tobytes() for p in params] == before

    def test_exactly_at_threshold_unchanged(self):
        """A gradient whose norm equals max_norm exactly ([3, 4] with max_norm 5) is left as is."""
        g = np.array([3.0, 4.0], np.float32)
        p = _param(g)
        assert clip_grad_norm([p], max_norm=5.0) == 5.0
        assert p.grad.tobytes() == np.array([3.0, 4.0], np.float32).tobytes()

    def test_huge_float32_gradients_norm_and_clip(self):
        """3e20-sized float32 gradients (squares overflow float32): the returned norm is the
        true one (finite, float64), and the gradients are clipped to max_norm, finite and in
        float32. Numerics only: the overflow warning is tested separately below."""
        grads = [np.full((4, 5), 3e20, np.float32), np.full(3, -3e20, np.float32)]
        params = [_param(Tensor(grads[0])), _param(grads[1].copy())]
        expected = _norm64(grads)
        with np.errstate(over="ignore"):
            norm = clip_grad_norm(params, max_norm=1.0)
        assert math.isfinite(norm)
        assert norm == pytest.approx(expected, rel=1e-6)
        clipped = [_grad_of(p) for p in params]
        assert all(c.dtype == np.float32 and np.all(np.isfinite(c)) for c in clipped)
        assert _norm64(clipped) == pytest.approx(1.0, rel=1e-5)
        np.testing.assert_allclose(clipped[1], -np.ones(3) / expected * 3e20, rtol=1e-5)

    def test_huge_float32_gradients_raise_no_overflow_warning(self):
        """The spec: 'No overflow for huge finite gradients (3e20)'. Clipping them must not
        overflow on the way, not even in an intermediate that numpy warns about (the project
        turns warnings into errors)."""
        params = [_param(np.full(8, 3e20, np.float32))]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(over="warn", invalid="warn", divide="warn"):
                norm = clip_grad_norm(params, max_norm=1.0)
        assert norm == pytest.approx(math.sqrt(8) * 3e20, rel=1e-6)

    @pytest.mark.parametrize("max_norm", [-1.0, -1e-12, math.nan, math.inf, -math.inf])
    def test_bad_max_norm_raises_value_error_and_changes_nothing(self, max_norm):
        """max_norm negative, NaN or inf raises ValueError; the gradient is untouched."""
        p = _param(np.array([30.0, 40.0], np.float32))
        with pytest.raises(ValueError, match="max_norm"):
            clip_grad_norm([p], max_norm=max_norm)
        assert p.grad.tobytes() == np.array([30.0, 40.0], np.float32).tobytes()

    def test_empty_returns_zero(self):
        """No parameters, or only parameters without gradients: the norm is 0.0 (a float)."""
        for params in ([], (), [_param(None, shape=(2,))], iter([])):
            result = clip_grad_norm(params, max_norm=1.0)
            assert result == 0.0 and isinstance(result, float)

    @pytest.mark.parametrize(
        ("bad", "check"),
        [(math.nan, math.isnan), (math.inf, math.isinf), (-math.inf, math.isinf)],
    )
    def test_non_finite_gradient_reported_and_left_unchanged(self, bad, check):
        """Documented behaviour: a NaN or inf in some gradient makes the returned norm NaN or
        inf (it is not hidden), and no gradient is changed, the finite ones included."""
        finite = np.array([300.0, 400.0], np.float32)
        broken = np.array([1.0, bad, 2.0], np.float32)
        params = [_param(finite.copy()), _param(Tensor(broken))]
        before = [_grad_of(p).tobytes() for p in params]
        norm = clip_grad_norm(params, max_norm=1.0)
        assert isinstance(norm, float) and check(norm)
        assert [_grad_of(p).tobytes() for p in params] == before

    def test_matches_torch_clip_grad_norm(self):
        """On random gradients of several shapes and scales (some clipped, some not), the
        returned norm and the clipped gradients match torch.nn.utils.clip_grad_norm_."""
        torch = pytest.importorskip("torch")
        rng = np.random.default_rng(12)
        for trial in range(20):
            shapes = [(3, 4), (4,), (2, 3, 2), (1,)][: 1 + trial % 4]
            scale = 10.0 ** rng.uniform(-3, 3)
            grads = [(rng.normal(size=s) * scale).astype(np.float32) for s in shapes]
            max_norm = float(10.0 ** rng.uniform(-2, 2))
            ours = [_param(g.copy()) for g in grads]
            theirs = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
            for t, g in zip(theirs, grads, strict=True):
                t.grad = torch.from_numpy(g.copy())
            norm = clip_grad_norm(ours, max_norm)
            torch_norm = float(torch.nn.utils.clip_grad_norm_(theirs, max_norm))
            assert norm == pytest.approx(torch_norm, rel=1e-5), trial
            for p, t in zip(ours, theirs, strict=True):
                np.testing.assert_allclose(_grad_of(p), t.grad.numpy(), rtol=1e-5, atol=1e-12)


def test_tiny_float32_gradients_do_not_underflow_to_a_zero_norm() -> None:
    """Squares of 1e-25 underflow float32 to 0; the norm must still be 1e-25 * sqrt(n), not 0
    (a zero norm would hide a vanishing-gradient problem from the log)."""
    p = Tensor(np.zeros(16, dtype=np.float32), requires_grad=True)
    p.grad = np.full(16, 1e-25, dtype=np.float32)
    norm = clip_grad_norm([p], max_norm=1.0)
    assert norm == pytest.approx(4e-25, rel=1e-6)

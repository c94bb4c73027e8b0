"""Module 07, audit priority 3: the learning-rate schedule inside the training loop (3.1, 3.2)
and ``CosineSchedule`` on its own.

Expected rates come from the spec's formula written out here with ``math``:

    lr(e) = min_lr + (max_lr - min_lr) * (1 + cos(pi * e / total_epochs)) / 2

and ``min_lr`` for every e >= total_epochs. The rate an epoch trains with is observed inside the
model's forward (what the batches really see) and inside optimizer.step (what the update uses).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from support import line_data, loader

from tinytorch.core.layers import Linear
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CosineSchedule, Trainer


def cosine(epoch: float, max_lr: float, min_lr: float, total: int) -> float:
    if epoch >= total:
        return min_lr
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * epoch / total)) / 2


class LrSpyModel:
    """Linear(1, 1) that records the optimizer's lr each time forward runs."""

    def __init__(self, seed: int = 0) -> None:
        self.layer = Linear(1, 1, seed=seed)
        self.training = True
        self.optimizer = None
        self.lrs: list[float] = []

    def forward(self, x: Tensor) -> Tensor:
        self.lrs.append(self.optimizer.lr)
        return self.layer(x)

    def parameters(self) -> list[Tensor]:
        return self.layer.parameters()


class StepSpySGD(SGD):
    """SGD recording the lr, gradients and parameters it sees at each step."""

    def __init__(self, params, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.seen: list[tuple[float, list[np.ndarray], list[np.ndarray]]] = []

    def step(self) -> None:
        grads = [
            np.array(p.grad.data if isinstance(p.grad, Tensor) else p.grad) for p in self.params
        ]
        self.seen.append((self.lr, grads, [p.data.copy() for p in self.params]))
        super().step()


def _setup(initial_lr: float, scheduler=None, batches: int = 4):
    model = LrSpyModel()
    opt = StepSpySGD(model.parameters(), lr=initial_lr)
    model.optimizer = opt
    trainer = Trainer(model, opt, MSELoss(), scheduler=scheduler)
    x, y = line_data(n=8 * batches, seed=1)
    return trainer, model, opt, loader(x, y, batch_size=8)


# ============================================================================ audit 3.1
class TestSchedulerDrivesTheTrainer:
    @pytest.mark.audit("3.1")
    def test_each_epoch_trains_with_get_lr_of_that_epoch(self):
        """Audit 3.1: CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=10) over 10 epochs:
        every forward of epoch e sees lr(e), from the first batch on (the optimizer was built
        with lr=0.5, which no batch may see); history['learning_rates'] is [lr(0) .. lr(9)];
        epoch 0 uses exactly max_lr; the rate changes and decreases every epoch and ends within
        3 % of the range above min_lr."""
        schedule = CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=10)
        trainer, model, _, data = _setup(0.5, schedule)
        for _ in range(10):
            trainer.train_epoch(data)
        expected = [cosine(e, 0.1, 0.01, 10) for e in range(10)]
        per_epoch = [model.lrs[4 * e : 4 * e + 4] for e in range(10)]
        assert per_epoch[0] == [0.1] * 4
        for e, seen in enumerate(per_epoch):
            assert seen == pytest.approx([expected[e]] * 4, rel=1e-12, abs=0), e
        rates = trainer.history["learning_rates"]
        assert rates == pytest.approx(expected, rel=1e-12, abs=0)
        assert all(b < a for a, b in zip(rates, rates[1:], strict=False)), rates
        assert rates[-1] - 0.01 < 0.03 * (0.1 - 0.01)
        assert rates[-1] >= 0.01

    @pytest.mark.audit("3.1")
    def test_updates_use_the_scheduled_lr(self):
        """Audit 3.1: every SGD step of epoch e moves each parameter by exactly -lr(e) * grad
        (the lr the update used, not only the one recorded)."""
        schedule = CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=10)
        trainer, model, opt, data = _setup(0.5, schedule)
        for _ in range(3):
            trainer.train_epoch(data)
        records = opt.seen
        assert len(records) == 12
        after = [r[2] for r in records[1:]] + [[p.data.copy() for p in model.parameters()]]
        for i, ((lr, grads, before), new) in enumerate(zip(records, after, strict=True)):
            expected_lr = cosine(i // 4, 0.1, 0.01, 10)
            assert lr == pytest.approx(expected_lr, rel=1e-12)
            for g, b, n in zip(grads, before, new, strict=True):
                np.testing.assert_allclose(n, b - expected_lr * g, rtol=1e-6, atol=1e-8)

    @pytest.mark.audit("3.1")
    def test_training_past_total_epochs_stays_at_min_lr(self):
        """Audit 3.1: epochs 3, 4 and 7 of a 3-epoch schedule train with exactly min_lr (clamped;
        PyTorch's CosineAnnealingLR would rise again)."""
        schedule = CosineSchedule(max_lr=0.2, min_lr=0.02, total_epochs=3)
        trainer, model, _, data = _setup(0.5, schedule, batches=2)
        for _ in range(8):
            trainer.train_epoch(data)
        rates = trainer.history["learning_rates"]
        assert rates[:3] == pytest.approx([cosine(e, 0.2, 0.02, 3) for e in range(3)], rel=1e-12)
        assert rates[3:] == [0.02] * 5
        assert model.lrs[6:] == [0.02] * 10

    @pytest.mark.audit("3.1")
    def test_warmup_schedule_in_the_trainer(self):
        """Audit 3.1: with warmup_epochs=2 the trainer's epochs follow the documented ramp
        max_lr * (e + 1) / (w + 1), then the cosine over the remaining epochs."""
        schedule = CosineSchedule(max_lr=0.3, min_lr=0.0, total_epochs=6, warmup_epochs=2)
        trainer, _, _, data = _setup(0.5, schedule, batches=1)
        for _ in range(7):
            trainer.train_epoch(data)
        expected = [0.1, 0.2] + [0.15 * (1 + math.cos(math.pi * j / 4)) for j in range(4)] + [0.0]
        assert trainer.history["learning_rates"] == pytest.approx(expected, rel=1e-12, abs=1e-15)


# ============================================================================ audit 3.2
class TestWithoutScheduler:
    @pytest.mark.audit("3.2")
    def test_lr_stays_constant_and_training_works(self):
        """Audit 3.2: scheduler=None: every forward and every step sees the optimizer's own lr
        (0.05) in every epoch, history['learning_rates'] records it, and the loss on y = 2x + 1
        still falls (below 10 % of the first epoch's within 15 epochs)."""
        trainer, model, opt, data = _setup(0.05, None)
        losses = [trainer.train_epoch(data) for _ in range(15)]
        assert opt.lr == 0.05
        assert model.lrs == [0.05] * 60
        assert [r[0] for r in opt.seen] == [0.05] * 60
        assert trainer.history["learning_rates"] == [0.05] * 15
        assert losses[-1] < 0.1 * losses[0], losses

    @pytest.mark.audit("3.2")
    def test_without_scheduler_the_users_lr_is_respected(self):
        """Audit 3.2: without a scheduler the trainer never overrides the lr: a rate the user
        sets between epochs is the one the next epoch trains with and records."""
        trainer, model, opt, data = _setup(0.05, None, batches=2)
        trainer.train_epoch(data)
        opt.lr = 0.01
        trainer.train_epoch(data)
        assert model.lrs == [0.05, 0.05, 0.01, 0.01]
        assert trainer.history["learning_rates"] == [0.05, 0.01]


# ============================================================================ CosineSchedule
class TestCosineSchedule:
    @pytest.mark.parametrize(
        ("max_lr", "min_lr", "total"),
        [(0.1, 0.01, 10), (0.1, 0.01, 100), (1.0, 0.0, 7), (3e-4, 1e-6, 50), (0.5, 0.5, 4)],
    )
    def test_formula_values(self, max_lr, min_lr, total):
        """get_lr follows the cosine formula at every integer epoch and at fractional ones."""
        schedule = CosineSchedule(max_lr=max_lr, min_lr=min_lr, total_epochs=total)
        epochs = [*range(total), 0.5, total / 3, total - 0.25]
        for e in epochs:
            assert schedule.get_lr(e) == pytest.approx(
                cosine(e, max_lr, min_lr, total), rel=1e-12, abs=1e-15
            ), e

    def test_known_values(self):
        """Hand-checked values for (0.1, 0.01, 10): halfway is the midpoint 0.055, a quarter is
        0.01 + 0.09 * (1 + sqrt(1/2)) / 2."""
        schedule = CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=10)
        assert schedule.get_lr(5) == pytest.approx(0.055, rel=1e-12)
        assert schedule.get_lr(2.5) == pytest.approx(0.01 + 0.045 * (1 + 0.5**0.5), rel=1e-12)

    def test_defaults(self):
        """The documented defaults are max_lr=0.1, min_lr=0.01, total_epochs=100."""
        schedule = CosineSchedule()
        assert schedule.get_lr(0) == 0.1
        assert schedule.get_lr(50) == pytest.approx(0.055, rel=1e-12)
        assert schedule.get_lr(100) == 0.01
        assert schedule.get_lr(99) > 0.01

    @pytest.mark.parametrize(
        ("max_lr", "min_lr"),
        [(0.1, 0.01), (0.3, 0.0), (1e-3, 1e-5), (0.7, 0.7), (0.1, 0.0999), (0.9, 0.2)],
    )
    def test_epoch_zero_is_exactly_max_lr(self, max_lr, min_lr):
        """get_lr(0) == max_lr exactly (not just approximately); with (0.9, 0.2) the formula
        evaluated literally, min_lr + (max_lr - min_lr) * 1, rounds to 0.9000000000000001."""
        for total in (1, 3, 10, 1000):
            assert CosineSchedule(max_lr, min_lr, total).get_lr(0) == max_lr

    @pytest.mark.parametrize("total", [1, 2, 10, 37])
    def test_clamped_to_min_lr_from_total_epochs_on(self, total):
        """get_lr(e) == min_lr exactly for every e >= total_epochs, fractional ones too."""
        schedule = CosineSchedule(max_lr=0.1, min_lr=0.003, total_epochs=total)
        for e in (total, total + 0.5, total + 1, 2 * total, 10 * total + 3):
            assert schedule.get_lr(e) == 0.003, e

    @pytest.mark.parametrize(
        ("max_lr", "min_lr", "total", "epoch"),
        [
            (0.3296030015297249, 0.06809789698333397, 280, 279.99999999458464),
            (0.0001236843270330994, 3.9826571779085695e-05, 320, 319.99999995648034),
            (1.1730976918916957e-05, 6.076468746151064e-07, 913, 912.9999999999408),
        ],
    )
    def test_never_below_min_lr_just_before_the_end(self, max_lr, min_lr, total, epoch):
        """Fractional epochs a hair before total_epochs stay >= min_lr (for these values the
        rounded formula lands one ulp below min_lr unless the result is clamped)."""
        lr = CosineSchedule(max_lr, min_lr, total).get_lr(epoch)
        assert min_lr <= lr <= max_lr
        assert lr == pytest.approx(min_lr, rel=1e-9)

    def test_returns_python_float(self):
        """get_lr returns a Python float (type float, not np.float64), for int, numpy int and
        float epochs, before and after total_epochs, and with numpy-typed arguments."""
        schedules = [
            CosineSchedule(0.1, 0.01, 10),
            CosineSchedule(np.float64(0.1), np.float32(0.01), np.int64(10)),
        ]
        for schedule in schedules:
            for e in (0, 3, np.int64(4), 2.5, np.float64(7.0), 10, 12):
                assert isinstance(schedule.get_lr(e), float), (schedule, e)

    def test_is_pure(self):
        """get_lr has no hidden counter: calling it in any order gives the same values."""
        schedule = CosineSchedule(0.1, 0.01, 10)
        forward = [schedule.get_lr(e) for e in range(12)]
        backward = [schedule.get_lr(e) for e in reversed(range(12))][::-1]
        assert forward == backward == [schedule.get_lr(e) for e in range(12)]

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"max_lr": 0.01, "min_lr": 0.1}, "min_lr"),
            ({"max_lr": -0.1, "min_lr": 0.0}, "max_lr"),
            ({"max_lr": 0.1, "min_lr": -0.01}, "min_lr"),
            ({"max_lr": math.nan}, "max_lr"),
            ({"max_lr": math.inf}, "max_lr"),
            ({"max_lr": -math.inf, "min_lr": -math.inf}, "max_lr"),
            ({"min_lr": math.nan}, "min_lr"),
            ({"min_lr": math.inf}, "min_lr"),
            ({"total_epochs": 0}, "total_epochs"),
            ({"total_epochs": -1}, "total_epochs"),
            ({"total_epochs": 2.5}, "total_epochs"),
            ({"total_epochs": True}, "total_epochs"),
        ],
    )
    def test_bad_arguments_raise_value_error_naming_them(self, kwargs, name):
        """Bad constructor arguments raise ValueError whose message names the argument."""
        with pytest.raises(ValueError, match=name):
            CosineSchedule(**kwargs)

    @pytest.mark.parametrize("epoch", [-1, -0.5, -1e-9, math.nan])
    def test_bad_epoch_raises_value_error_naming_it(self, epoch):
        """get_lr of a negative (or NaN) epoch raises ValueError naming 'epoch'."""
        with pytest.raises(ValueError, match="epoch"):
            CosineSchedule(0.1, 0.01, 10).get_lr(epoch)


class TestWarmup:
    def test_ramp_then_cosine_then_min(self):
        """warmup_epochs=w (as the docstring documents): epochs e < w give
        max_lr * (e + 1) / (w + 1); from w the cosine runs over the remaining total - w epochs
        (epoch w is exactly max_lr); from total_epochs on min_lr."""
        w, total, max_lr, min_lr = 3, 10, 0.2, 0.01
        schedule = CosineSchedule(max_lr=max_lr, min_lr=min_lr, total_epochs=total, warmup_epochs=w)
        for e in range(w):
            assert schedule.get_lr(e) == pytest.approx(max_lr * (e + 1) / (w + 1), rel=1e-12)
        assert schedule.get_lr(w) == max_lr
        for e in range(w, total):
            expected = cosine(e - w, max_lr, min_lr, total - w)
            assert schedule.get_lr(e) == pytest.approx(expected, rel=1e-12), e
        assert schedule.get_lr(total) == min_lr
        rates = [schedule.get_lr(e) for e in range(total + 2)]
        assert all(b > a for a, b in zip(rates[:w], rates[1 : w + 1], strict=True))
        assert max(rates) == max_lr and min(rates) == min_lr
        assert all(isinstance(r, float) for r in rates)

    def test_zero_warmup_is_the_plain_cosine(self):
        """warmup_epochs=0 (the default) is the plain schedule, value for value."""
        plain = CosineSchedule(0.1, 0.01, 10)
        zero = CosineSchedule(0.1, 0.01, 10, warmup_epochs=0)
        assert [plain.get_lr(e) for e in range(12)] == [zero.get_lr(e) for e in range(12)]

    @pytest.mark.parametrize("warmup", [-1, 1.5, True, 10, 11])
    def test_bad_warmup_raises_value_error_naming_it(self, warmup):
        """warmup_epochs must be an integer in [0, total_epochs): others raise ValueError."""
        with pytest.raises(ValueError, match="warmup_epochs"):
            CosineSchedule(0.1, 0.01, total_epochs=10, warmup_epochs=warmup)

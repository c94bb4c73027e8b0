"""The audit's two appendix templates, copied verbatim, plus what it takes to run them honestly.

The two test methods below are the code of the appendix of
``shared/audit/module-07-training-test-audit.md`` character for character (the second template is
a method written at top level there, so it is indented into a class here; nothing else changed).
Only the module-level imports they need were added.

Template 1.1 draws its data (and, through ``Linear`` without a seed, its initial weights) from
numpy's global RNG, unseeded, and asks for a 20 % loss drop after 5 epochs at lr=0.01: that fails
for some seeds even for PyTorch (24 % of 1,000 seeds, says the spec). So every test here runs under
a fixed global seed (``_fixed_global_seed``), and ``TestTemplateSeedSensitivity`` measures the
template over many seeds and compares its pass rate with PyTorch's.

Measured with this library (``np.random.seed(s)`` before each run): seeds 0-99 pass 74/100,
seeds 0-999 pass 752/1000 (75.2 %, PyTorch 76 %: within one standard error, 1.4 %); seeds 0-19
pass 15/20 (seeds 1, 13, 15, 17 and 19 fail), seed 0 passes.
"""

# ruff: noqa: I001, B007
# (I001: the templates' own imports are not isort-ordered; B007: template 1.1 loops over an
# unused ``epoch``. Both are in the verbatim code, which must stay as the audit wrote it.)

from __future__ import annotations

import math

import numpy as np
import pytest

TEMPLATE_SEED = 0  # a seed for which template 1.1 passes (see the module docstring)
PYTORCH_PASS_RATE = 0.76  # the spec: template 1.1 fails for 24 % of 1,000 seeds with PyTorch
RATE_SEEDS = range(100)


@pytest.fixture(autouse=True)
def _fixed_global_seed():
    """Seed numpy's global RNG for every test here, and give the previous state back after."""
    state = np.random.get_state()
    np.random.seed(TEMPLATE_SEED)
    yield
    np.random.set_state(state)


# ------------------------------------------------------------------ template 1.1, verbatim
class TestTrainerCoreIntegration:
    """Test Trainer class integrates all modules correctly."""

    def test_complete_training_loop(self):
        """Test end-to-end training with all components."""
        from tinytorch.core.tensor import Tensor
        from tinytorch.core.layers import Linear
        from tinytorch.core.activations import ReLU
        from tinytorch.core.losses import MSELoss
        from tinytorch.core.optimizers import SGD
        from tinytorch.core.training import Trainer

        # Create simple model
        class SimpleModel:
            def __init__(self):
                self.layer1 = Linear(2, 4)
                self.relu = ReLU()
                self.layer2 = Linear(4, 1)
                self.training = True

            def forward(self, x):
                x = self.layer1(x)
                x = self.relu(x)
                x = self.layer2(x)
                return x

            def parameters(self):
                return self.layer1.parameters() + self.layer2.parameters()

        # Create components
        model = SimpleModel()
        optimizer = SGD(model.parameters(), lr=0.01)
        loss_fn = MSELoss()
        trainer = Trainer(model, optimizer, loss_fn)

        # Create simple dataset: y = x1 + x2
        class SimpleDataset:
            def __iter__(self):
                for _ in range(10):  # 10 batches
                    x = Tensor(np.random.randn(4, 2))
                    y = Tensor(x.data[:, 0:1] + x.data[:, 1:2])
                    yield x, y

        # Train for 5 epochs
        initial_loss = None
        for epoch in range(5):
            loss = trainer.train_epoch(SimpleDataset())
            if initial_loss is None:
                initial_loss = loss

        # Verify training worked
        assert loss < initial_loss * 0.8, "Loss should decrease significantly"
        assert len(trainer.history['train_loss']) == 5
        assert trainer.epoch == 5


# ------------------------------------------------------------------ template 1.2, verbatim
class TestMissingZeroGradTemplate:
    """The audit's missing-zero_grad() template (written there as a bare method)."""

    def test_missing_zero_grad_breaks_training(self):
        """Test that forgetting zero_grad() causes gradient accumulation."""
        from tinytorch.core.tensor import Tensor
        from tinytorch.core.layers import Linear
        from tinytorch.core.losses import MSELoss
        from tinytorch.core.optimizers import SGD

        # Create model and optimizer
        layer = Linear(1, 1)
        optimizer = SGD(layer.parameters(), lr=0.1)
        loss_fn = MSELoss()

        # Manual training loop WITHOUT zero_grad()
        x = Tensor([[1.0]])
        y = Tensor([[2.0]])

        # First step
        out1 = layer.forward(x)
        loss1 = loss_fn.forward(out1, y)
        loss1.backward()
        grad1 = layer.weights.grad.data.copy()
        optimizer.step()
        # FORGOT: optimizer.zero_grad()  ❌ BUG

        # Second step
        out2 = layer.forward(x)
        loss2 = loss_fn.forward(out2, y)
        loss2.backward()
        grad2 = layer.weights.grad.data.copy()

        # Verify gradients accumulated incorrectly
        # grad2 should be ~2x grad1 because gradients accumulated
        assert np.abs(grad2) > np.abs(grad1) * 1.5, \
            "Gradients should accumulate when zero_grad() is missing"


# ------------------------------------------------------------------ seed sensitivity of 1.1
def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


class TestTemplateSeedSensitivity:
    def test_template_1_1_pass_rate_matches_pytorch(self):
        """Template 1.1 over 100 seeds passes about as often as it does for PyTorch (76 %).

        A correct library cannot be asked for a rate >= 0.76 on a finite sample: its own rate is
        about 0.75 (752/1000 seeds), the same as PyTorch's within sampling error, and 20 seeds
        give 15/20. So this is a one-sided binomial test at the 1 % level: it fails when the pass
        count is significantly below PyTorch's rate (at most 65 of 100; measured: 74). A library
        that does not learn passes 0 seeds; one that learns too slowly passes few.
        """
        template = TestTrainerCoreIntegration()
        failed_seeds = []
        for seed in RATE_SEEDS:
            np.random.seed(seed)
            try:
                template.test_complete_training_loop()
            except AssertionError:  # the template's own criteria; any other error propagates
                failed_seeds.append(seed)
        n = len(RATE_SEEDS)
        passes = n - len(failed_seeds)
        p_value = _binomial_cdf(passes, n, PYTORCH_PASS_RATE)
        assert p_value >= 0.01, (
            f"template 1.1 passed {passes}/{n} seeds, significantly below PyTorch's "
            f"{PYTORCH_PASS_RATE:.0%} (p = {p_value:.2g}); failing seeds: {failed_seeds}"
        )

    def test_template_1_1_fixed_seed_is_deterministic(self, monkeypatch):
        """Under the fixed seed template 1.1 is deterministic: two runs give identical losses."""
        from tinytorch.core.training import Trainer

        original = Trainer.train_epoch
        losses = []

        def recording(self, *args, **kwargs):
            loss = original(self, *args, **kwargs)
            losses.append(loss)
            return loss

        monkeypatch.setattr(Trainer, "train_epoch", recording)
        for _ in range(2):
            np.random.seed(TEMPLATE_SEED)
            TestTrainerCoreIntegration().test_complete_training_loop()
        assert len(losses) == 10
        assert losses[:5] == losses[5:]
        assert losses[4] < losses[0]

"""Mutants of the training loop and of train/eval modes: the bugs checks/loop.py and
checks/modes.py name (audit tests 1.1, 1.2, 1.3, 2.1, 2.2, the NaN guard and argument checks).

The clipping checks 4.1/4.2 also fail for the accumulation bugs: they judge the gradient handed
to optimizer.step() with accumulation_steps=2, so that is a consequence, not a misfire."""

from __future__ import annotations

from variants import Mutant, mutant

_m = mutant


STEP_IN_WINDOW = (
    "            if window_batches == steps:\n"
    "                self._optimizer_step(params, window_samples)\n"
)
PARTIAL_STEP = (
    "        if window_batches:  # the partial last window still counts\n"
    "            self._optimizer_step(params, window_samples)\n"
)
BACKWARD = "            loss.backward(float(n))\n"
AVERAGE = "                g *= 1.0 / window_samples\n"
NAN_GUARD = (
    "            if not math.isfinite(value):\n"
    "                self._clear_grads(params)\n"
)

MUTANTS: list[Mutant] = [
    _m(
        "no-zero-grad-between-steps",
        [("        self.optimizer.step()\n        self._clear_grads(params)\n",
          "        self.optimizer.step()\n")],
        {"1.2", "1.3", "4.2", "5.2"}, {"1.2", "1.3", "4.2", "5.2"},
        r"gradients are not cleared between optimizer steps",
    ),
    _m(
        "stale-grads-at-epoch-start",
        [("        self._clear_grads(params)\n        self._emit(\"on_epoch_begin\"",
          "        self._emit(\"on_epoch_begin\"")],
        {"1.2"}, {"1.2"}, r"does not start from cleared gradients",
    ),
    _m(
        "accumulation-summed-not-averaged",
        [(BACKWARD, "            loss.backward()\n"), (AVERAGE, "                g *= 1.0\n")],
        {"1.3", "4.1", "4.2"}, {"1.3"},
        r"summed, not averaged \(\d+\.\d\dx the window.s mean-loss gradient here, the sum over "
        r"its 2 batches",
    ),
    _m(
        "accumulation-divided-by-k",
        [(BACKWARD, "            loss.backward()\n"),
         (PARTIAL_STEP, PARTIAL_STEP.replace("window_samples)", "steps)")),
         (STEP_IN_WINDOW, STEP_IN_WINDOW.replace("window_samples)", "steps)"))],
        {"1.3", "4.1"}, {"1.3"}, r"divided by k instead of by samples \(unequal batches\)",
    ),
    _m(
        "partial-last-window-dropped",
        [(PARTIAL_STEP, PARTIAL_STEP.replace("if window_batches:", "if False:"))],
        {"1.1", "1.3", "4.1"}, {"1.3"}, r"partial last window was dropped",
    ),
    _m(
        "epoch-loss-unweighted-batch-mean",
        [("            loss_sum += value * n\n            samples += n\n",
          "            loss_sum += value\n            samples += 1\n")],
        {"1.1"}, {"1.1"}, r"averaged as equals.*weight each batch's loss by its number of samples",
    ),
    _m(
        "nan-loss-not-checked",
        [(NAN_GUARD, "            if False:\n                self._clear_grads(params)\n")],
        {"nan-loss"}, {"nan-loss"}, r"loss was not checked.*math\.isfinite",
    ),
    _m(
        "nan-window-applied",
        [(NAN_GUARD, "            if not math.isfinite(value):\n"
                     "                if window_samples:\n"
                     "                    self._optimizer_step(params, window_samples)\n")],
        {"nan-loss"}, {"nan-loss"}, r"window holding the bad batch was \(partly\) applied",
    ),
    _m(
        "nan-error-without-location",
        [("f\"loss is {value} at epoch {self.epoch}, batch {batch}: the update of the \"",
          "f\"loss is {value}: the update of the \"")],
        {"nan-loss"}, {"nan-loss"}, r"names epoch \d+ and batch \d+",
    ),
    _m(
        "accumulation-steps-not-validated",
        [("        steps = _check_count(\"accumulation_steps\", accumulation_steps, 1)\n",
          "        steps = accumulation_steps\n")],
        {"accumulation-args"}, {"accumulation-args"}, r"accumulation_steps is not validated",
    ),
    _m(
        "evaluate-without-no-grad",
        [("        with no_grad():\n            for inputs, targets in dataloader:\n",
          "        if True:\n            for inputs, targets in dataloader:\n")],
        {"2.2"}, {"2.2"}, r"graph was recorded during evaluate: wrap the loop in no_grad\(\)",
        ungraded={"2.2"},
    ),
    _m(
        "evaluate-without-eval-mode",
        [("        self._set_mode(False)\n        loss_sum, samples, correct, judged",
          "        loss_sum, samples, correct, judged")],
        {"2.1", "2.2"}, {"2.1"},
        r"Dropout's random draws during evaluate.*model was in training mode: call "
        r"self\._set_mode\(False\)",
    ),
    _m(
        "train-epoch-not-switching-back",
        [("        self._set_mode(True)\n        if self.scheduler is not None:\n"
          "            self.optimizer.lr",
          "        if self.scheduler is not None:\n            self.optimizer.lr")],
        {"2.1"}, {"2.1"}, r"model was in eval mode: train_epoch must switch back",
    ),
    _m(
        "mode-set-on-top-level-only",
        [("        set_training(self.model, training)\n",
          "        self.model.training = training\n")],
        {"2.1", "2.2"}, {"2.1"}, r"model's own flag was True but its Dropout's was not",
    ),
    _m(  # an outside implementation's slip: the loss divided by the accuracy's count
        "evaluate-loss-divided-by-classified-samples",
        [("        loss = loss_sum / samples\n",
          "        loss = loss_sum / judged if judged else 0.0\n")],
        {"2.2"}, {"2.2"},
        r"\A(?!.*Dropout active).*loss of 0\.0 for a regression loss \(MSELoss\): the sum of "
        r"each batch's loss times its samples was divided by the number of classification "
        r"samples.*divide by the number of samples evaluated",
    ),
    _m(  # the same count as a guard: a regression loss is never divided
        "evaluate-loss-undivided-for-regression",
        [("        loss = loss_sum / samples\n",
          "        loss = loss_sum / judged if judged else loss_sum\n")],
        {"2.2"}, {"2.2"},
        r"\A(?!.*Dropout active).*sum of each batch's loss times its samples, not divided: the "
        r"division was skipped where no sample is classified",
    ),
    _m(
        "evaluate-loss-unweighted-batch-mean",
        [("                loss_sum += _scalar(self.loss_fn(outputs, targets)) * n\n"
          "                samples += n\n",
          "                loss_sum += _scalar(self.loss_fn(outputs, targets))\n"
          "                samples += 1\n")],
        {"2.2"}, {"2.2"}, r"batch losses were averaged as equals",
    ),
]

"""More mutants of the training loop and of what it records: bugs that checks/loop.py (1.1,
1.3, the NaN guard, the argument check) and checks/outcomes.py (5.2, 7.x) name in branches the
other mutants do not reach: the epoch's returned loss, a missing backward or return, steps per
batch or per epoch, the epoch counter, a NaN loss's aftermath, history that disagrees with the
returned values, and the loop's events.

A bug in the loop also fails the checks that train through it (a loop without backward learns
nothing anywhere); those failures are consequences, in ``caught_by`` only. Some of them name
another bug: 1.2 reads the missing backward as stale gradients and a window divided by the
epoch's sample count as gradients never cleared; 1.1's generator part reads a loop that ignores
accumulation_steps as a dropped partial window."""

from __future__ import annotations

from variants import Mutant, mutant

_m = mutant


MEAN_LOSS = "        mean_loss = loss_sum / samples\n"
SUM_AND_COUNT = "            loss_sum += value * n\n            samples += n\n"
BACKWARD = "            loss.backward(float(n))\n"
AVERAGE = "                g *= 1.0 / window_samples\n"
BATCH_LOOP = "        for batch, (inputs, targets) in enumerate(dataloader):\n"
BATCH_END = "            self._emit(\"on_batch_end\", batch=batch, loss=value, samples=n)\n"
TRAIN_HISTORY = "        self.history[\"train_loss\"].append(mean_loss)\n"
STEP_IN_WINDOW = (
    "            if window_batches == steps:\n"
    "                self._optimizer_step(params, window_samples)\n"
    "                window_batches, window_samples = 0, 0\n"
)
PARTIAL_STEP = (
    "        if window_batches:  # the partial last window still counts\n"
    "            self._optimizer_step(params, window_samples)\n"
)
NAN_GUARD = (
    "            if not math.isfinite(value):\n"
    "                self._clear_grads(params)\n"
)
NAN_BLOCK = NAN_GUARD + (
    "                raise TrainingDivergedError(\n"
    "                    f\"loss is {value} at epoch {self.epoch}, batch {batch}: the update "
    "of the \"\n"
    "                    f\"window holding this batch was not applied (the {self.step} earlier "
    "steps \"\n"
    "                    \"stand) and gradients were cleared. Lower the learning rate, set \"\n"
    "                    \"grad_clip_norm, or look for NaN/inf in the data.\"\n"
    "                )\n"
)
LATE_RAISE = (
    "                raise TrainingDivergedError(f\"loss is {value} at epoch {self.epoch}, \"\n"
    "                                            f\"batch {batch}\")\n"
)

MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------------ the returned loss
    _m(
        "epoch-loss-last-batch",
        [(MEAN_LOSS, "        mean_loss = value\n")],
        {"1.1", "1.3"}, {"1.1"},
        r"the last batch's loss was returned instead of the epoch's mean",
    ),
    _m(
        "epoch-loss-summed-not-divided",
        [(SUM_AND_COUNT, "            loss_sum += value\n            samples += n\n"),
         (MEAN_LOSS, "        mean_loss = loss_sum\n")],
        {"1.1", "1.3"}, {"1.1"}, r"batch losses were summed but never divided",
    ),
    _m(  # the sample-weighted sum divided by the number of batches
        "epoch-loss-weighted-sum-over-batches",
        [(SUM_AND_COUNT, "            loss_sum += value * n\n            samples += 1\n")],
        {"1.1", "1.3"}, {"1.1"},
        r"returned loss is not the mean over every sample of the epoch",
    ),
    _m(  # 1.3 and 3.2 call float() on the None returned: reported as a crash
        "train-epoch-returns-nothing",
        [("        return mean_loss\n", "")],
        {"1.1", "1.3", "3.2", "5.1", "5.2", "7.1", "7.2", "7.3"}, {"1.1"},
        r"train_epoch must return the epoch's sample-weighted mean loss",
    ),
    # ------------------------------------------------------------------ backward and steps
    _m(
        "backward-never-called",
        [(BACKWARD, "")],
        {"1.1", "1.2", "1.3", "3.2", "4.1", "4.2", "5.1", "5.2", "7.1", "7.2", "7.3",
         "accumulation-args"}, {"1.1"},
        r"loss\.backward\(\) is not called before optimizer\.step\(\)",
    ),
    _m(  # the step dedented out of the batch loop: one full-batch step per epoch
        "step-once-per-epoch",
        [(STEP_IN_WINDOW, "")],
        {"1.1", "1.2", "1.3", "3.1", "4.1", "4.2", "5.2", "7.2", "7.3", "accumulation-args",
         "nan-loss"}, {"1.1"},
        r"with accumulation_steps=1 the optimizer must step once after every batch",
        # one step an epoch leaves 5.1's line short of its tolerance at some learning rates
        at_some_seeds={"5.1"},
    ),
    _m(
        "accumulation-steps-ignored",
        [(STEP_IN_WINDOW, STEP_IN_WINDOW.replace("window_batches == steps", "window_batches"))],
        {"1.1", "1.2", "1.3", "4.1", "4.2", "nan-loss"}, {"1.3"},
        r"accumulation_steps is ignored: the optimizer steps after every batch",
    ),
    _m(  # PyTorch's per-batch zero_grad() kept, with mean-loss backward and no averaging
        "zero-grad-every-batch-with-accumulation",
        [(BATCH_LOOP, BATCH_LOOP + "            self._clear_grads(params)\n"),
         (BACKWARD, "            loss.backward()\n"), (AVERAGE, "                g *= 1.0\n")],
        {"1.3", "4.1", "4.2"}, {"1.3"}, r"only the window's last batch reached the step",
    ),
    _m(
        "window-divided-by-epoch-samples",
        [(STEP_IN_WINDOW, STEP_IN_WINDOW.replace("(params, window_samples)", "(params, samples)")),
         (PARTIAL_STEP, PARTIAL_STEP.replace("(params, window_samples)", "(params, samples)"))],
        {"1.2", "1.3", "4.2", "5.2"}, {"1.3"},
        r"accumulated gradient is not that of one batch holding the window",
    ),
    _m(  # the schedule then stays at get_lr(0) and the NaN error names epoch 0
        "epoch-not-incremented",
        [("        self.epoch += 1\n", "")],
        {"1.1", "3.1", "5.2", "nan-loss"}, {"1.1"},
        r"increment self\.epoch by one at the end of every train_epoch",
    ),
    # ------------------------------------------------------------------ NaN losses
    _m(
        "nan-raised-without-clearing",
        [(NAN_GUARD, "            if not math.isfinite(value):\n")],
        {"nan-loss"}, {"nan-loss"}, r"clear the gradients before raising",
    ),
    _m(
        "nan-checked-after-step",
        [(NAN_BLOCK, ""), (STEP_IN_WINDOW, STEP_IN_WINDOW + NAN_GUARD + LATE_RAISE)],
        {"nan-loss"}, {"nan-loss"},
        r"window holding the bad batch was applied: check the loss before",
    ),
    _m(  # restores the weights the epoch started with
        "nan-rolls-back-the-epoch",
        [("        self._clear_grads(params)\n        self._emit(\"on_epoch_begin\"",
          "        start = [p.data.copy() for p in params]\n"
          "        self._clear_grads(params)\n        self._emit(\"on_epoch_begin\""),
         (NAN_GUARD, NAN_GUARD + "                for p, w in zip(params, start):\n"
                                 "                    p.data[...] = w\n")],
        {"nan-loss"}, {"nan-loss"}, r"earlier windows of the epoch were undone",
    ),
    _m(
        "accumulation-steps-asserted",
        [("        steps = _check_count(\"accumulation_steps\", accumulation_steps, 1)\n",
          "        assert accumulation_steps >= 1, \"accumulation_steps must be >= 1\"\n"
          "        steps = accumulation_steps\n")],
        {"accumulation-args"}, {"accumulation-args"}, r"validate accumulation_steps first",
    ),
    # ------------------------------------------------------------------ history
    _m(
        "train-history-records-last-batch",
        [(TRAIN_HISTORY, "        self.history[\"train_loss\"].append(value)\n")],
        {"1.1", "5.2"}, {"1.1", "5.2"},
        r"(?:record|append) the same (?:epoch mean loss|value) (?:that )?train_epoch returns",
    ),
    _m(
        "train-history-overwritten-each-epoch",
        [(TRAIN_HISTORY, "        self.history[\"train_loss\"] = [mean_loss]\n")],
        {"1.1", "5.2"}, {"1.1"}, r"append exactly one entry per epoch",
    ),
    _m(
        "eval-history-records-sum",
        [("        self.history[\"eval_loss\"].append(loss)\n",
          "        self.history[\"eval_loss\"].append(loss_sum)\n")],
        {"2.2", "5.2"}, {"5.2"}, r"append the same loss that evaluate returns",
    ),
    # ------------------------------------------------------------------ events
    _m(
        "on-epoch-end-never-fired",
        [("        self._emit(\"on_epoch_end\", loss=mean_loss)\n", "")],
        {"5.2"}, {"5.2"}, r"on_epoch_end never fired: call self\._emit",
    ),
    _m(
        "on-batch-end-after-step",
        [(BATCH_END + STEP_IN_WINDOW, STEP_IN_WINDOW + BATCH_END)],
        {"5.2"}, {"5.2"}, r"each event fires once per occurrence, in this order",
    ),
    _m(
        "on-batch-end-running-loss",
        [(BATCH_END, BATCH_END.replace("loss=value", "loss=loss_sum / samples"))],
        {"5.2"}, {"5.2"},
        r"call self\._emit\('on_batch_end'.*its own loss \(not a running mean\)",
    ),
]

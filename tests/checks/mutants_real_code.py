"""Mutants for bugs found in implementations written outside the project, each confirmed alone
in a copy of the reference: step counting, partial windows, batches without ``len()``, binary
accuracy, the trainer's mode flag, state a resume needs, and clipping the weights.

Crashes are mutants too: a check must report them as its own failure, naming the student's
call and line, never let them escape ``run_all``."""

from __future__ import annotations

from variants import Mutant, mutant

_m = mutant


STEP_COUNT = "        self.step += 1\n        self._emit(\"on_step\", grad_norm=norm)\n"
IN_LOOP_STEP = (
    "            if window_batches == steps:\n"
    "                self._optimizer_step(params, window_samples)\n"
)

MUTANTS: list[Mutant] = [
    _m("step_counts_batches",
       [(STEP_COUNT, "        self._emit(\"on_step\", grad_norm=norm)\n"),
        ("            self._emit(\"on_batch_end\", batch=batch, loss=value, samples=n)\n",
         "            self._emit(\"on_batch_end\", batch=batch, loss=value, samples=n)\n"
         "            self.step += 1\n")],
       {"1.3"}, {"1.3"}, r"trainer\.step.*counts? batches|one per optimizer step"),
    _m("step_not_counted_for_partial_window",
       [(STEP_COUNT, "        self._emit(\"on_step\", grad_norm=norm)\n"),
        (IN_LOOP_STEP, IN_LOOP_STEP + "                self.step += 1\n")],
       {"1.3"}, {"1.3"}, r"trainer\.step.*partial"),
    _m("train_epoch_needs_len",
       [(IN_LOOP_STEP,
         "            if window_batches == steps or batch == len(dataloader) - 1:\n"
         "                self._optimizer_step(params, window_samples)\n"),
        ("        if window_batches:  # the partial last window still counts\n"
         "            self._optimizer_step(params, window_samples)\n", "")],
       {"1.1"}, {"1.1"}, r"generator.*len\(\)"),
    _m("evaluate_needs_len",
       [("        self._set_mode(False)\n        loss_sum, samples, correct, judged",
         "        if len(dataloader) == 0:\n            raise ValueError('no batches')\n"
         "        self._set_mode(False)\n        loss_sum, samples, correct, judged")],
       {"2.2"}, {"2.2"}, r"generator.*len\(\)"),
    _m("binary_accuracy_without_threshold",
       [("return int(np.sum((outputs >= 0.5) == (targets >= 0.5))), targets.size",
         "return int(np.sum(outputs == targets)), targets.size")],
       {"2.2"}, {"2.2"}, r"BinaryCrossEntropyLoss.*0\.5"),
    _m("evaluate_leaves_training_mode_flag",
       [("        self._set_mode(False)\n        loss_sum, samples, correct, judged",
         "        set_training(self.model, False)\n        loss_sum, samples, correct, judged")],
       {"2.1"}, {"2.1"}, r"training_mode"),
    _m("load_keeps_dropout_rng",
       [("            for owner, state in zip(owners, rng_states, strict=True):\n"
         "                owner.rng.bit_generator.state = state\n", "")],
       {"6.1", "6.2"}, {"6.1", "6.2"}, r"Dropout.*random state"),
    _m("load_keeps_training_mode",
       [("            self._set_mode(training_mode)\n", "")],
       {"6.1", "6.2"}, {"6.1", "6.2"}, r"training mode was not restored"),
    _m("train_epoch_skips_data_order",
       [("        self._start_data_order(dataloader)\n        params = list(",
         "        params = list(")],
       {"6.1", "6.2"}, {"6.1", "6.2"}, r"_start_data_order"),
    _m("evaluate_sets_data_order",
       [("        self._set_mode(False)\n        loss_sum, samples, correct, judged",
         "        self._start_data_order(dataloader)\n"
         "        self._set_mode(False)\n        loss_sum, samples, correct, judged")],
       {"6.1", "6.2"}, {"6.1", "6.2"}, r"evaluate chose its loader's epoch"),
    _m("clip_scales_weights",
       [("    grads = [g for g in (grad_array(p) for p in parameters) if g is not None]\n",
         "    parameters = list(parameters)\n"
         "    grads = [g for g in (grad_array(p) for p in parameters) if g is not None]\n"),
        ("            for g in grads:\n                g *= scale\n",
         "            for p in parameters:\n                p.data *= scale\n")],
       {"clip", "4.1"}, {"clip"}, r"parameters' values|p\.data"),
    # crashes: reported by the check, with the student's line, never raised out of run_all
    _m("cosine_keyword_slip",
       [("        total_epochs: int = 100,\n        warmup_epochs: int = 0,\n    ) -> None:",
         "        total_epoch: int = 100,\n        warmup_epochs: int = 0,\n    ) -> None:\n"
         "        total_epochs = total_epoch"),],
       {"cosine", "3.1", "5.2", "6.1", "6.2", "checkpoint-safety"}, {"cosine", "3.1"},
       r"CosineSchedule.*unexpected keyword argument 'total_epochs'.*signature"),
    _m("history_key_misspelled",
       [('            "train_loss": [],\n', '            "train_losses": [],\n'),
        ('        self.history["train_loss"].append(mean_loss)\n',
         '        self.history["train_losses"].append(mean_loss)\n')],
       {"1.1", "5.2", "accumulation-args"}, {"1.1", "5.2", "accumulation-args"},
       r"'train_loss'"),
]

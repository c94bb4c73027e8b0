"""Every rule the graded checks hold a student to, the checks that judge it, and the lesson's
words that state it where the student writes that code.

``RULES`` is the one list of them. ``python -m course.authoring.build`` renders it as ``RULES.md``
beside the notebook (rule -> checks -> the lesson's words), and ``tests/course/test_rules.py`` fails
when a rule's words are missing from the student's notebook right before the answer cell the
rule belongs to (or from that cell's docstrings, outside the solution), when a graded check
judges no rule of the list, or when ``RULES.md`` is out of date. So a new judgment in a check
needs a rule here and a sentence in the lesson before it can pass its tests.

A rule lists the checks that judge it, first the one whose subject it is. Breaking a rule can
fail other checks too (a crash fails every check that runs the code); those are not listed.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The answer cells (their nbgrader ``grade_id``) and the code a student writes in each.
GET_LR = "answer_CosineSchedule"
CLIP = "answer_clip_grad_norm"
EPOCH = "answer_Trainer_train_epoch"
STEP = "answer_Trainer__optimizer_step"
EVALUATE = "answer_Trainer_evaluate"
SAVE = "answer_Trainer_save_checkpoint"
LOAD = "answer_Trainer_load_checkpoint"
MEMORY = "answer_training_memory"
CELLS: dict[str, str] = {
    GET_LR: "CosineSchedule.get_lr",
    CLIP: "clip_grad_norm",
    EPOCH: "Trainer.train_epoch",
    STEP: "Trainer._optimizer_step",
    EVALUATE: "Trainer.evaluate",
    SAVE: "Trainer.save_checkpoint",
    LOAD: "Trainer.load_checkpoint",
    MEMORY: "training_memory",
}


@dataclass(frozen=True)
class Rule:
    """One thing a correct implementation must do.

    ``says`` is quoted from the lesson, word for word (line breaks aside): the sentence, or a
    distinctive part of it, that tells the student the rule before ``cell``."""

    id: str
    cell: str
    checks: tuple[str, ...]
    says: str


def _rule(rule_id: str, cell: str, checks: str, says: str) -> Rule:
    """A rule, its checks given as one space-separated string."""
    return Rule(rule_id, cell, tuple(checks.split()), says)


RULES: list[Rule] = [
    # ------------------------------------------------------------------ CosineSchedule.get_lr
    _rule("cosine-formula", GET_LR, "cosine 3.1",
          "without warmup, `get_lr(e)` follows the formula above for every "
          "`0 <= e < total_epochs`"),
    _rule("cosine-starts-at-max", GET_LR, "cosine", "and `get_lr(0)` is `max_lr`"),
    _rule("cosine-clamped", GET_LR, "cosine",
          "for every `e >= total_epochs` it returns `min_lr`"),
    _rule("cosine-returns-float", GET_LR, "cosine",
          "it returns a Python `float` (`np.float64` is one; an `np.float32`, a 0-d array or a "
          "Tensor is not, so wrap the result in `float(...)`)"),
    _rule("cosine-validates", GET_LR, "cosine",
          "keep the given argument checks: the constructor raises `ValueError` for bad "
          "settings, and the first lines of `get_lr` raise it for a negative epoch"),
    # ------------------------------------------------------------------ clip_grad_norm
    _rule("clip-returns-norm-before", CLIP, "clip",
          "return $g$, the global norm over **all** gradients **before** clipping, as a Python "
          "`float`"),
    _rule("clip-one-factor", CLIP, "clip 4.1",
          "above `max_norm`, multiply every gradient by the one factor above, so that their "
          "global norm becomes `max_norm`"),
    _rule("clip-below-untouched", CLIP, "clip 4.2",
          "below the threshold, leave every gradient untouched, bit for bit"),
    _rule("clip-in-place", CLIP, "clip 4.1",
          "scale the gradient arrays **in place** (`g *= factor`)"),
    _rule("clip-keeps-dtype-and-container", CLIP, "clip",
          "in place each gradient keeps its dtype and its container (a Tensor stays a Tensor, "
          "an ndarray an ndarray)"),
    _rule("clip-never-weights", CLIP, "clip 4.1",
          "scale the gradients, never the weights (`p.data`)"),
    _rule("clip-skips-none", CLIP, "clip",
          "parameters whose `.grad` is `None` are skipped and keep `None`"),
    _rule("clip-reads-generator-once", CLIP, "clip",
          "`parameters` may be a generator, which can be read only once: make a list first"),
    _rule("clip-float64-no-warning", CLIP, "clip",
          "no overflow and no warning (a warning fails the check): squares of huge gradients "
          "(3e20) overflow float32"),
    _rule("clip-validates", CLIP, "clip",
          "keep the given first lines: a negative, NaN or infinite `max_norm` raises "
          "`ValueError`"),
    # ------------------------------------------------------------------ Trainer.train_epoch
    _rule("epoch-training-mode", EPOCH, "2.1",
          "`self._set_mode(True)`: training mode for the model and every layer inside it"),
    _rule("epoch-lr-before-first-batch", EPOCH, "3.1 5.2",
          "with a scheduler, set `self.optimizer.lr` to `self.scheduler.get_lr(self.epoch)` "
          "(called with the epoch, never a step or batch count)"),
    _rule("epoch-no-scheduler-keeps-lr", EPOCH, "3.2 1.1 1.2 1.3",
          "without one (`self.scheduler is None`), leave `self.optimizer.lr` as the user set it"),
    _rule("epoch-data-order", EPOCH, "6.1 6.2",
          "call `self._start_data_order(dataloader)`"),
    _rule("epoch-clear-before-first-batch", EPOCH, "1.2",
          "clear the gradients (`self._clear_grads(params)`): stale ones must never reach the "
          "first step"),
    _rule("epoch-forward-and-loss", EPOCH, "7.1 7.2 5.1",
          "`outputs = self.model.forward(inputs)` (a model need not be callable: `forward` and "
          "`parameters` are all it is sure to have), then `self.loss_fn(outputs, targets)`"),
    _rule("epoch-nonfinite-loss-raises", EPOCH, "nan-loss",
          "a loss that is not finite: clear the gradients and raise `TrainingDivergedError` "
          "with a message naming `self.epoch` and the batch's index"),
    _rule("epoch-nonfinite-window-dropped", EPOCH, "nan-loss",
          "before `backward`, so that no batch of its window reaches the optimizer"),
    _rule("epoch-earlier-windows-stand", EPOCH, "nan-loss",
          "The window holding the bad batch is dropped; updates of earlier windows stand."),
    _rule("epoch-backward-by-samples", EPOCH, "1.3 4.1 4.2",
          "otherwise `loss.backward(n)`, with `n` the batch's number of samples, so that each "
          "batch counts by its samples"),
    _rule("epoch-step-every-k-and-partial", EPOCH, "1.3 1.1 4.1",
          "after every `accumulation_steps` batches, and once more after the loop when a "
          "partial window is left"),
    _rule("epoch-any-iterable", EPOCH, "1.1",
          "any iterable of batches works, a generator too: count batches with `enumerate`, "
          "never with `len(dataloader)`"),
    _rule("epoch-events", EPOCH, "5.2",
          "each once per occurrence, in this order"),
    _rule("epoch-mean-loss-history", EPOCH, "1.1 5.2",
          "append the epoch's mean loss over all its samples (weight each batch's loss by its "
          "size) to `history[\"train_loss\"]`"),
    _rule("epoch-lr-history", EPOCH, "3.1 3.2 5.2",
          "and the rate the epoch trained with to `history[\"learning_rates\"]`: one entry each "
          "per epoch, scheduler or not"),
    _rule("epoch-history-plain-numbers", EPOCH, "6.1 6.2 checkpoint-safety",
          "history holds plain Python numbers (`_scalar(loss)` reads a loss as a `float`), "
          "because it goes into the checkpoint's JSON"),
    _rule("epoch-count-and-return", EPOCH, "1.1 5.1",
          "add one to `self.epoch`, and return the epoch's mean loss"),
    _rule("epoch-validates-accumulation", EPOCH, "accumulation-args",
          "The given first line validates `accumulation_steps`: keep it first, so that a bad "
          "value raises `ValueError` before anything changes."),
    # ------------------------------------------------------------------ Trainer._optimizer_step
    _rule("step-average-by-samples", STEP, "1.3 4.1 4.2",
          "first divide every accumulated gradient by `window_samples`, in place "
          "(`grad_array(p)`), so that the step gets the gradient of the window's mean loss"),
    _rule("step-clip-once-before-step", STEP, "4.1 4.2",
          "if `self.grad_clip_norm` is set, clip once with `clip_grad_norm`, passing "
          "`max_norm=self.grad_clip_norm` (not the default), on the averaged gradient right "
          "before the step (never on single batches)"),
    _rule("step-clip-below-threshold-exact", STEP, "4.2",
          "below `grad_clip_norm`, the optimizer gets the very gradient it would get without "
          "clipping, bit for bit"),
    _rule("step-once", STEP, "7.3 5.1 7.1 7.2 1.1",
          "call `self.optimizer.step()` exactly once"),
    _rule("step-clear-after", STEP, "1.2 1.3 4.2",
          "then clear the gradients (`self._clear_grads(params)`), so that none leak into the "
          "next window or epoch"),
    _rule("step-counts-optimizer-steps", STEP, "1.3 7.3 1.1",
          "add one to `self.step`: it counts optimizer steps, not batches (5 batches with "
          "`accumulation_steps=2` make 3 steps, the partial window's included)"),
    _rule("step-grad-norm-history", STEP, "5.2",
          "with clipping, append the norm `clip_grad_norm` returned (before clipping) to "
          "`history[\"grad_norm\"]`, once per optimizer step"),
    _rule("step-event", STEP, "5.2",
          'after the step, `self._emit("on_step", grad_norm=norm)`: the norm before clipping, '
          "`None` without clipping"),
    # ------------------------------------------------------------------ Trainer.evaluate
    _rule("evaluate-eval-mode", EVALUATE, "2.1 2.2",
          "`self._set_mode(False)` before the first forward pass: eval mode for the model and "
          "every layer inside it, and `self.training_mode` set to `False`"),
    _rule("evaluate-stays-in-eval-mode", EVALUATE, "2.1",
          "leave the model in eval mode when you return (`train_epoch` switches back)"),
    _rule("evaluate-no-graph", EVALUATE, "2.2",
          "run the forward passes under `with no_grad():`, so that no graph is recorded"),
    _rule("evaluate-changes-nothing", EVALUATE, "2.2",
          "gradients, parameters and the optimizer (its state and its `lr`) are exactly as "
          "before: no `backward`, no `zero_grad`, no `step` here"),
    _rule("evaluate-no-randomness", EVALUATE, "2.2",
          "no random numbers drawn: every layer is in eval mode during the forward passes"),
    _rule("evaluate-no-data-order", EVALUATE, "6.1 6.2",
          "never choose the loader's order: no `_start_data_order` and no `set_epoch` in "
          "`evaluate`"),
    _rule("evaluate-any-iterable", EVALUATE, "2.2",
          "count samples as they come, never with `len(dataloader)`"),
    _rule("evaluate-mean-loss", EVALUATE, "2.2",
          "return `(loss, accuracy)`: the loss is the mean over all samples (weight each "
          "batch's loss by its size)"),
    _rule("evaluate-accuracy-over-samples", EVALUATE, "2.2",
          "the accuracy is the fraction of all samples predicted right, in [0, 1]: add up the "
          "counts of `_count_correct` over the batches, never average the batches' accuracies"),
    _rule("evaluate-accuracy-rules", EVALUATE, "2.2",
          "The accuracy is counted by `_count_correct`, given: argmax for CrossEntropyLoss, a "
          "0.5 threshold for BinaryCrossEntropyLoss"),
    _rule("evaluate-event", EVALUATE, "5.2",
          'at the end, `self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)`'),
    _rule("evaluate-loss-history", EVALUATE, "2.2 5.2",
          "append the loss to `history[\"eval_loss\"]`, once per call"),
    # ------------------------------------------------------------------ Trainer.save_checkpoint
    _rule("save-every-entry", SAVE, "6.1 6.2 checkpoint-safety",
          "the record holds every entry listed above, under exactly those names"),
    _rule("save-parameters", SAVE, "6.1 6.2",
          "`model/{i}`: the values (`p.data`) of parameter `i`, numbering the parameters in the "
          "order of `self.model.parameters()`"),
    _rule("save-optimizer-buffers", SAVE, "6.1 6.2",
          "`optimizer/{i}/{name}`: every ndarray in parameter `i`'s optimizer state"),
    _rule("save-shapes", SAVE, "checkpoint-safety",
          "`model.shapes`: each parameter's shape as a list (`[3, 6]`), in the same order, so "
          "that a file made for another model is refused before anything changes"),
    _rule("save-rng-states", SAVE, "6.1 6.2",
          "`model.rng_state`: for every layer in `rng_owners(self.model)` (the layers that draw "
          "random numbers, such as Dropout), in that order, `layer.rng.bit_generator.state`"),
    _rule("save-optimizer-settings", SAVE, "6.2",
          "`optimizer.kind` and `optimizer.hyperparameters`: as `self.optimizer.state_dict()` "
          "gives them (the file's settings win over the new trainer's)"),
    _rule("save-optimizer-step-count", SAVE, "6.2",
          "`optimizer.step_count`: the optimizer's count of steps"),
    _rule("save-parameter-steps", SAVE, "6.1 6.2",
          "`optimizer.param_steps`: a list with each parameter's own step count, the `\"step\"` "
          "entry of its optimizer state, or `None` where it has none"),
    _rule("save-schedule", SAVE, "6.2",
          "`scheduler`: `_scheduler_settings(self.scheduler)`, the schedule's settings"),
    _rule("save-clip-norm", SAVE, "6.2", "`grad_clip_norm`: `self.grad_clip_norm`"),
    _rule("save-epoch-and-step", SAVE, "6.1 6.2",
          "`epoch` and `step`: `self.epoch` and `self.step`, so the schedule and the counts go "
          "on where they stopped"),
    _rule("save-training-mode", SAVE, "6.1 6.2",
          "`training_mode`: `self.training_mode`, the mode loading puts the model back in"),
    _rule("save-history", SAVE, "6.1 6.2", "`history`: `self.history`, every list of it"),
    _rule("save-data-seed", SAVE, "6.1 6.2",
          "`data_order.seed`: `self._data_seed`, the seed of the shuffling loader last trained "
          "on, so that the resumed run replays its order"),
    _rule("save-exact-path", SAVE, "checkpoint-safety",
          "write it with `write_checkpoint(path, arrays, meta)` to exactly the `path` given (a "
          "`str` or a `Path`, any suffix): no `.npz` is added, and missing folders are created"),
    _rule("save-no-pickle", SAVE, "checkpoint-safety",
          "never pickle: a file that unpickles can run code"),
    _rule("save-atomic", SAVE, "checkpoint-safety",
          "save atomically: `write_checkpoint` writes a temporary file and renames it over the "
          "old checkpoint, never rewriting the old file in place"),
    # ------------------------------------------------------------------ Trainer.load_checkpoint
    _rule("load-read-without-pickle", LOAD, "checkpoint-safety",
          "read with `read_checkpoint(path)` (a `str` or a `Path`), never with `pickle` or "
          "`allow_pickle=True`: it refuses a missing, truncated or corrupted file"),
    _rule("load-validate-first", LOAD, "checkpoint-safety",
          "call `self._plan_restore(arrays, meta)` before changing anything, and only then the "
          "function it returns: a file that does not fit (a model of other shapes) raises and "
          "leaves the trainer exactly as it was"),
    _rule("load-restores-everything", LOAD, "6.1 6.2",
          "that function puts back everything the file holds, and the file's settings "
          "(optimizer hyper-parameters, schedule, clip norm) win over the ones this trainer was "
          "built with"),
    # ------------------------------------------------------------------ training_memory
    _rule("memory-dict-of-bytes", MEMORY, "memory",
          "return a dict with exactly the keys `parameters`, `gradients`, `optimizer_state`, "
          "`activations` and `total`, each a whole number of bytes (an `int`)"),
    _rule("memory-parameters", MEMORY, "memory",
          "`parameters`: `p.data.nbytes` summed over `model.parameters()` (biases included)"),
    _rule("memory-gradients", MEMORY, "memory",
          "`gradients`: backward gives every parameter a gradient of its own shape and dtype, "
          "so as many bytes as the parameters"),
    _rule("memory-optimizer-buffers", MEMORY, "memory",
          "`optimizer_state`: none for plain SGD (`momentum == 0`), one buffer per parameter "
          "for SGD with momentum, two for Adam and AdamW, each the size of its parameter; step "
          "counters count as 0 bytes"),
    _rule("memory-predicted-before-the-step", MEMORY, "memory",
          "Predict it from the optimizer's kind and settings: `optimizer.state` is empty until "
          "the first step"),
    _rule("memory-layer-order", MEMORY, "memory",
          "layer by layer, in the order `modules(model)` yields them, with `width` the "
          "`out_features` of the last Linear before the layer"),
    _rule("memory-activation-table", MEMORY, "memory",
          "Linear `4 * batch_size * out_features`; ReLU `5 * batch_size * width` (its output "
          "and its mask); Sigmoid and Tanh `4 * batch_size * width`; Dropout with `p > 0` "
          "`8 * batch_size * width` (its mask and its output: a step runs in training mode)"),
    _rule("memory-dropout-zero", MEMORY, "memory",
          "a Dropout with `p = 0` returns its input unchanged: it keeps nothing"),
    _rule("memory-input-not-counted", MEMORY, "memory",
          "the input batch and the loss are not counted"),
    _rule("memory-total", MEMORY, "memory",
          "`total`: parameters + gradients + optimizer_state + activations"),
]

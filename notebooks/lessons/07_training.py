# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Module 07: Training
#
# Modules 01-06 gave you tensors, autograd, layers, losses and optimizers. A model learns when
# they run together in a loop:
#
# ```python
# for inputs, targets in data:
#     loss = loss_fn(model.forward(inputs), targets)   # forward
#     loss.backward()                                  # gradients ADD into p.grad
#     optimizer.step()                                 # p -= lr * p.grad (or Adam's version)
#     optimizer.zero_grad()                            # clear them for the next step
# ```
#
# Five lines. Every one of them has a classic bug that does not crash: it trains a slightly
# different model, and the loss curve looks almost right. In this module you build the pieces
# around those lines that real training needs, and the checks tell you which bug you wrote:
#
# 1. **`CosineSchedule`**: a learning rate that starts large and settles small.
# 2. **`clip_grad_norm`**: one bad batch must not throw the weights across the loss surface.
# 3. **`Trainer`**: epochs with gradient accumulation, clipping and the schedule; evaluation that
#    learns nothing; checkpoints you can resume from bit for bit.
# 4. **A real run**: handwritten digits, to above 95% test accuracy.
#
# **How to work.** Run the cells from the top. A cell that says `# YOUR CODE HERE` is yours;
# the cell after it runs a check. When your code is right, a check prints one line: a tick, the
# check and what it verified (`✓ 1.2: gradients are cleared before the epoch, between steps and
# across epochs`). When it is not, the check fails with what it expected, what it observed, and
# the likely bug, with a code: `likely bug [TT103]: ...`. For the longer story of a code (what
# the bug is, what it does to training, a wrong and a right line), run `tinytorch explain TT103`
# in a terminal, or `!python -m checks.explain TT103` in a cell. Graded cells run the same check
# again on data you do not see, so code that only fits the visible case loses the points.
#
# "Run All" runs every cell, even while parts are left to write or a cell of yours raises an
# error, so one run lists every check: a check of a part still to write fails with "not written
# yet: ..." (the demos and pictures say the same), and when a cell of yours raised (a
# SyntaxError, a NameError), every check that needs its code names that cell first: "the answer
# cell for Trainer.train_epoch raised SyntaxError at line 12: fix it first".
#
# Right before each cell you write, a short list, **What the checks hold you to**, says what
# the checks judge in that code. `GRADING.md` lists the points of every check, and `RULES.md`
# maps each item of those lists to the checks that judge it.

# %% include="imports"

# %% [markdown]
# The checks; `tinytorch.viz`, the pictures of this module (they take your classes as
# arguments); and `add_to_class`, which attaches a function to a class as a method, so
# `Trainer` can grow one cell at a time (d2l does the same). `watch_cells()` notes which of
# your cells raised an error, so that a check names that cell rather than what it left
# undefined (until you fix it, a class or function it never defined is tinytorch's unwritten
# version, so the cells after it still run). A demo of your code runs inside
# `with viz.demo():`, which says "not written yet" (and which part) instead of failing while
# that part is still to write, or names your cell that raised; any other error shows as usual.

# %%
from checks import run_check, watch_cells
from tinytorch import viz

watch_cells()


def mine() -> dict:
    """Your implementations defined so far, as the checks receive them (read when a check
    runs, so the latest version of each cell counts)."""
    names = ("CosineSchedule", "clip_grad_norm", "Trainer", "training_memory")
    return {name: globals()[name] for name in names if name in globals()}


def add_to_class(cls):
    """Decorator: attach the function to ``cls`` under its own name."""
    def attach(function):
        setattr(cls, function.__name__, function)
        return function
    return attach


# %% [markdown]
# Small helpers the given code uses to validate arguments, and the error a diverging run raises.

# %% include="TrainingDivergedError Model _is_number _check_rate _check_count"

# %% [markdown]
# ## 1. A learning-rate schedule
#
# A large learning rate crosses the loss surface quickly but cannot settle into a narrow
# minimum; a small one settles but crawls. Cosine annealing uses both: it starts at `max_lr`
# and glides down to `min_lr` along half a cosine wave,
#
# $$\text{lr}(e) = \text{min\_lr} + (\text{max\_lr} - \text{min\_lr})\,
#   \frac{1 + \cos(\pi e / E)}{2}, \qquad E = \text{total\_epochs}.$$
#
# At $e = 0$ the cosine is 1 and the rate is `max_lr`; at $e = E$ it is $-1$ and the rate is
# `min_lr`. The curve is flat at both ends: it leaves `max_lr` slowly and lands on `min_lr`
# gently.
#
# Two properties make a schedule easy to trust:
#
# * **A pure function of the epoch.** `get_lr(e)` depends on `e` and the settings, never on how
#   often it was called. A run resumed from a checkpoint at epoch 7 gets the same rate as one
#   that never stopped.
# * **Clamped at the end.** For every `e >= total_epochs` the rate stays `min_lr`. PyTorch's
#   `CosineAnnealingLR` would climb back up instead; here training past the schedule is safe.
#
# The constructor validates its arguments for you. An optional warmup is included:
# with `warmup_epochs = w > 0`, the first `w` epochs ramp up linearly as
# `max_lr * (e + 1) / (w + 1)`, and the cosine runs over the remaining `E - w` epochs.
#
# **Write `get_lr`.** Hints: `math.cos`, `math.pi`; floating-point rounding can put the last
# value a hair below `min_lr`, which `max(...)` fixes.
#
# **What the checks hold you to** (check `cosine`):
#
# * without warmup, `get_lr(e)` follows the formula above for every `0 <= e < total_epochs`,
#   and `get_lr(0)` is `max_lr`;
# * for every `e >= total_epochs` it returns `min_lr`;
# * it returns a Python `float` (`np.float64` is one; an `np.float32`, a 0-d array or a Tensor
#   is not, so wrap the result in `float(...)`);
# * keep the given argument checks: the constructor raises `ValueError` for bad settings, and
#   the first lines of `get_lr` raise it for a negative epoch.

# %% include="CosineSchedule"

# %% [markdown]
# Ten epochs from 0.1 to 0.01: the first value is exactly 0.1, the last ones exactly 0.01.

# %%
with viz.demo():
    schedule = CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=10)
    print([round(schedule.get_lr(e), 4) for e in range(12)])

# %% [markdown]
# Explore it: move a slider and your schedule (solid) is redrawn over the spec's (dashed); the
# title says where they differ. Try a warmup, and look past `total_epochs`: the rate must stay
# flat.

# %%
viz.schedule_explorer(CosineSchedule)

# %% grade_id="cosine_schedule" points=6
run_check("cosine", mine())
### BEGIN HIDDEN TESTS
run_check("cosine", mine(), seed=3)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Gradient clipping
#
# Now and then a batch lands on a cliff of the loss surface and its gradient is a thousand
# times larger than usual. One step with it undoes hours of training. Clipping by the *global*
# norm shortens such a step without turning it:
#
# $$g = \sqrt{\sum_{p} \sum_i \big(\nabla p\big)_i^2}, \qquad
#   \text{if } g > \text{max\_norm}: \quad \nabla p \leftarrow \nabla p \cdot
#   \frac{\text{max\_norm}}{g + 10^{-6}} \text{ for every } p.$$
#
# One factor for all parameters keeps the direction of the update; clipping each gradient on
# its own would bend it. The function returns $g$, the norm **before** clipping: logged every
# step, a norm that keeps growing is the earliest warning of a run about to diverge.
#
# A NaN or infinite norm cannot be repaired by any factor: return it and leave the gradients
# as they are (the Trainer will stop the run).
#
# **What the checks hold you to** (check `clip`; the Trainer's clipping, checks 4.1 and 4.2,
# runs your function too):
#
# * return $g$, the global norm over **all** gradients **before** clipping, as a Python
#   `float`;
# * above `max_norm`, multiply every gradient by the one factor above, so that their global
#   norm becomes `max_norm`;
# * below the threshold, leave every gradient untouched, bit for bit;
# * scale the gradient arrays **in place** (`g *= factor`): a new array assigned to a local
#   name changes nothing the optimizer sees, and in place each gradient keeps its dtype and its
#   container (a Tensor stays a Tensor, an ndarray an ndarray). `grad_array(p)` gives you
#   `p.grad` as an ndarray, whether it holds a Tensor or an array;
# * scale the gradients, never the weights (`p.data`);
# * parameters whose `.grad` is `None` are skipped and keep `None`;
# * `parameters` may be a generator, which can be read only once: make a list first;
# * no overflow and no warning (a warning fails the check): squares of huge gradients (3e20)
#   overflow float32, and of tiny ones (1e-25) underflow to 0, so compute those in float64;
# * keep the given first lines: a negative, NaN or infinite `max_norm` raises `ValueError`.

# %% include="clip_grad_norm"

# %% [markdown]
# Two gradients, of norms 3 and 4, make a global norm of 5. Clipped to 1, both shrink by 5.

# %%
a, b = Tensor(np.zeros(2), requires_grad=True), Tensor(np.zeros(1), requires_grad=True)
a.grad, b.grad = Tensor(np.array([3.0, 0.0])), Tensor(np.array([4.0]))
with viz.demo():
    norm = clip_grad_norm([a, b], max_norm=1.0)
    print("norm before:", norm, "after:", a.grad.data, b.grad.data)

# %% [markdown]
# A regression with inputs in the hundreds makes gradients thousands of times `max_norm`. Your
# `clip_grad_norm`, step by step: the norm before (what it returns) and after (what the
# optimizer gets).

# %%
viz.plot_clipping(clip_grad_norm)

# %% grade_id="clip_grad_norm" points=6
run_check("clip", mine())
### BEGIN HIDDEN TESTS
run_check("clip", mine(), seed=5)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The Trainer
#
# The class below is given: the constructor validates its arguments and sets up the state,
# `history` holds what a run produced, and four helpers do the bookkeeping you will call:
#
# * `self._set_mode(training)` puts the model and every layer inside it into training or eval
#   mode (Dropout reads it) and records it in `self.training_mode`;
# * `self._clear_grads(params)` sets every gradient to `None`;
# * `self._start_data_order(dataloader)` makes a shuffling DataLoader replay the order of
#   epoch `self.epoch` (so a resumed run sees the same batches; `train_epoch` calls it);
# * `self._emit(event, ...)` tells callbacks what happened (live plots use these events).
#
# The methods that make it a trainer come next, one cell each.

# %% include="Trainer"

# %% [markdown]
# Three small helpers for the loop: make a Tensor of a batch, read a loss as a float, and count
# right answers for the accuracy.

# %% include="_tensor _scalar _count_correct"

# %% [markdown]
# ### 3.1 One epoch
#
# `train_epoch` runs the five lines over every batch, with a few additions.
#
# **Before the first batch.** The epoch sets itself up. `evaluate` (section 3.3) leaves the
# model in eval mode, so training mode must be switched back on. The schedule's rate must be in
# place before the first batch: set after the loop, every epoch would train with the previous
# epoch's rate. A shuffling DataLoader must be told which epoch it plays, or a run resumed from
# a checkpoint sees other batches than the run that never stopped. And gradients someone left
# on the parameters must not leak into the first step.
#
# **Gradient accumulation.** A big batch may not fit in memory; `accumulation_steps = k` sums
# the gradients of k small batches and steps once. For the step to equal the step of one big
# batch, each sample must count the same:
#
# $$\nabla \frac{1}{N}\sum_{j=1}^{N} \ell_j \;=\; \frac{1}{N} \sum_{b \in \text{window}}
#   n_b \, \nabla \bar\ell_b, \qquad N = \sum_b n_b,$$
#
# where $\bar\ell_b$ is the mean loss of batch $b$ with $n_b$ samples. Dividing each batch by
# $k$ instead is right only when every batch has the same size, and the last batch of an epoch
# usually does not. One way: call `loss.backward(n)` (the gradient of the *sum* of the batch's
# losses) and divide the accumulated gradients by $N$ when the window steps (in
# `_optimizer_step`, next). The last window of an epoch may hold fewer than k batches: it still
# steps.
#
# **Divergence.** A loss of NaN or inf must never reach the weights, so every batch's loss is
# checked before its backward. The window holding the bad batch is dropped; updates of earlier
# windows stand.
#
# **What the checks hold you to** (almost every check of the Trainer runs this method;
# `RULES.md` says which one judges what).
#
# *Before the first batch:*
#
# * `self._set_mode(True)`: training mode for the model and every layer inside it;
# * with a scheduler, set `self.optimizer.lr` to `self.scheduler.get_lr(self.epoch)` (called
#   with the epoch, never a step or batch count); without one (`self.scheduler is None`), leave
#   `self.optimizer.lr` as the user set it;
# * call `self._start_data_order(dataloader)`;
# * clear the gradients (`self._clear_grads(params)`): stale ones must never reach the first
#   step. Make `params = list(self.model.parameters())` once per epoch: a model may hand out
#   its parameters as a generator, which can be read only once.
#
# *Every batch:*
#
# * `outputs = self.model.forward(inputs)` (a model need not be callable: `forward` and
#   `parameters` are all it is sure to have), then `self.loss_fn(outputs, targets)`;
# * a loss that is not finite: clear the gradients and raise `TrainingDivergedError` with a
#   message naming `self.epoch` and the batch's index, before `backward`, so that no batch of
#   its window reaches the optimizer;
# * otherwise `loss.backward(n)`, with `n` the batch's number of samples, so that each batch
#   counts by its samples;
# * step (`self._optimizer_step(params, window_samples)`) after every `accumulation_steps`
#   batches, and once more after the loop when a partial window is left;
# * any iterable of batches works, a generator too: count batches with `enumerate`, never with
#   `len(dataloader)`.
#
# *After the last batch:*
#
# * append the epoch's mean loss over all its samples (weight each batch's loss by its size) to
#   `history["train_loss"]`, and the rate the epoch trained with to
#   `history["learning_rates"]`: one entry each per epoch, scheduler or not;
# * history holds plain Python numbers (`_scalar(loss)` reads a loss as a `float`), because
#   it goes into the checkpoint's JSON;
# * add one to `self.epoch`, and return the epoch's mean loss.
#
# *Events, for callbacks and the live view:* `self._emit("on_epoch_begin", epoch=self.epoch,
# lr=lr)` once the epoch's rate is set, `self._emit("on_batch_end", batch=batch, loss=value,
# samples=n)` after each batch's backward (its index from 0, its own loss), and
# `self._emit("on_epoch_end", loss=mean_loss)` after the last batch: each once per occurrence,
# in this order.
#
# The given first line validates `accumulation_steps`: keep it first, so that a bad value
# raises `ValueError` before anything changes.

# %% include="Trainer.train_epoch"

# %% [markdown]
# ### 3.2 One optimizer step
#
# `train_epoch` calls this with the window's accumulated gradients on `params` and the window's
# number of samples, $N$. Four moves: average, clip, step, clear. Clipping belongs here because
# it must see the gradient the optimizer will use: the whole window's, averaged. Clearing here
# is what keeps one window's gradients out of the next.
#
# Record the norm `clip_grad_norm` returns in `history["grad_norm"]`, and stop the run on a
# non-finite norm as on a non-finite loss: clear the gradients and raise
# `TrainingDivergedError` instead of stepping.
#
# **What the checks hold you to** (checks 1.1 to 1.3, 4.1, 4.2, 5.1 and 7.1 to 7.3):
#
# * first divide every accumulated gradient by `window_samples`, in place (`grad_array(p)`), so
#   that the step gets the gradient of the window's mean loss;
# * then, if `self.grad_clip_norm` is set, clip once with `clip_grad_norm`, passing
#   `max_norm=self.grad_clip_norm` (not the default), on the averaged gradient right before
#   the step (never on single batches);
# * below `grad_clip_norm`, the optimizer gets the very gradient it would get without clipping,
#   bit for bit;
# * call `self.optimizer.step()` exactly once, then clear the gradients
#   (`self._clear_grads(params)`), so that none leak into the next window or epoch;
# * add one to `self.step`: it counts optimizer steps, not batches (5 batches with
#   `accumulation_steps=2` make 3 steps, the partial window's included);
# * with clipping, append the norm `clip_grad_norm` returned (before clipping) to
#   `history["grad_norm"]`, once per optimizer step;
# * after the step, `self._emit("on_step", grad_norm=norm)`: the norm before clipping, `None`
#   without clipping.

# %% include="Trainer._optimizer_step"

# %% [markdown]
# Why clearing matters: the same batch, step after step. Cleared, the gradient is the same at
# every step; never cleared, step k uses the sum of k gradients and the steps grow without bound.

# %%
viz.plot_missing_zero_grad()

# %% [markdown]
# The audit's checks of the loop. 1.1 runs a complete epoch; 1.2 is the missing `zero_grad`
# bug (the same batch must give the same gradient at every step); 1.3 compares accumulation
# with one big batch, for unequal batches and a partial last window.

# %% grade_id="audit_1_1_complete_loop" points=6
run_check("1.1", mine())
### BEGIN HIDDEN TESTS
run_check("1.1", mine(), seed=7)
### END HIDDEN TESTS

# %% grade_id="audit_1_2_gradients_cleared" points=6
run_check("1.2", mine())
### BEGIN HIDDEN TESTS
run_check("1.2", mine(), seed=11)
### END HIDDEN TESTS

# %% grade_id="audit_1_3_accumulation" points=6
run_check("1.3", mine())
### BEGIN HIDDEN TESTS
run_check("1.3", mine(), seed=13)
### END HIDDEN TESTS

# %% [markdown]
# Accumulation, drawn: 22 samples in batches of 4 with `accumulation_steps=4` make two windows
# per epoch, 4 + 4 + 4 + 4 = 16 samples and then a partial 4 + 2 = 6. Your Trainer's path is
# drawn against one batch per window (16, then 6), epoch after epoch: the two must coincide, a
# distance of 0 at every epoch. Gradients not cleared between steps, a window divided by its
# batches instead of its samples, a dropped partial window: each leaves the path, as the
# dashed bug does.

# %%
viz.plot_accumulation(Trainer)

# %% [markdown]
# What the contract adds: a bad `accumulation_steps` is refused before anything changes, and a
# NaN loss stops the run before its window is applied.

# %% grade_id="accumulation_arguments" points=2
run_check("accumulation-args", mine())
### BEGIN HIDDEN TESTS
run_check("accumulation-args", mine(), seed=17)
### END HIDDEN TESTS

# %% grade_id="nan_loss_stops_training" points=5
run_check("nan-loss", mine())
### BEGIN HIDDEN TESTS
run_check("nan-loss", mine(), seed=19)
### END HIDDEN TESTS

# %% [markdown]
# The schedule and clipping inside the loop (audit 3 and 4): every batch of an epoch trains
# with that epoch's rate; without a scheduler the optimizer's rate is left alone; clipping
# tames exploding gradients and leaves small ones exactly as they were.

# %% grade_id="audit_3_1_scheduler_updates_lr" points=5
run_check("3.1", mine())
### BEGIN HIDDEN TESTS
run_check("3.1", mine(), seed=23)
### END HIDDEN TESTS

# %% grade_id="audit_3_2_no_scheduler" points=3
run_check("3.2", mine())
### BEGIN HIDDEN TESTS
run_check("3.2", mine(), seed=29)
### END HIDDEN TESTS

# %% grade_id="audit_4_1_clipping_prevents_explosion" points=5
run_check("4.1", mine())
### BEGIN HIDDEN TESTS
run_check("4.1", mine(), seed=31)
### END HIDDEN TESTS

# %% grade_id="audit_4_2_small_gradients_unchanged" points=4
run_check("4.2", mine())
### BEGIN HIDDEN TESTS
run_check("4.2", mine(), seed=37)
### END HIDDEN TESTS

# %% [markdown]
# Does it learn? 5.1 fits $y = 2x + 1$; 7.1 to 7.3 train with the layers, losses and
# optimizers of modules 03, 04 and 06.

# %% grade_id="audit_5_1_loss_decreases" points=4
run_check("5.1", mine())
### BEGIN HIDDEN TESTS
run_check("5.1", mine(), seed=41)
### END HIDDEN TESTS

# %% grade_id="audit_7_1_layer_types" points=2
run_check("7.1", mine())
### BEGIN HIDDEN TESTS
run_check("7.1", mine(), seed=43)
### END HIDDEN TESTS

# %% grade_id="audit_7_2_loss_functions" points=3
run_check("7.2", mine())
### BEGIN HIDDEN TESTS
run_check("7.2", mine(), seed=47)
### END HIDDEN TESTS

# %% grade_id="audit_7_3_optimizers" points=2
run_check("7.3", mine())
### BEGIN HIDDEN TESTS
run_check("7.3", mine(), seed=53)
### END HIDDEN TESTS

# %% [markdown]
# ### 3.3 Evaluation
#
# Evaluation measures the model; it must not change it. Five things can leak:
#
# * **Mode.** With Dropout on, the measurement is noisy, and it draws random numbers.
# * **Graph.** A recorded graph holds memory for a backward that never comes.
# * **Gradients, parameters, optimizer state.** A `backward` or a `step` here would learn
#   from the data being measured.
# * **Randomness.** In eval mode Dropout draws no random numbers, so the training run's random
#   stream is untouched: the next epoch drops the same units as if you had not evaluated.
# * **The data order.** Only training chooses which epoch's order a loader plays.
#
# The accuracy is counted by `_count_correct`, given: argmax for CrossEntropyLoss, a 0.5
# threshold for BinaryCrossEntropyLoss, and `None` for other losses (for regression it is
# undefined). Append it to `history["eval_accuracy"]`.

# %% [markdown]
# What eval mode changes: a Dropout layer called six times on the same input. Training draws a
# new mask each call; evaluation is the identity.

# %%
viz.plot_dropout_modes()

# %% [markdown]
# **What the checks hold you to** (checks 2.1, 2.2, 5.2, 6.1, 6.2):
#
# * `self._set_mode(False)` before the first forward pass: eval mode for the model and every
#   layer inside it, and `self.training_mode` set to `False`;
# * leave the model in eval mode when you return (`train_epoch` switches back);
# * run the forward passes under `with no_grad():`, so that no graph is recorded;
# * gradients, parameters and the optimizer (its state and its `lr`) are exactly as before:
#   no `backward`, no `zero_grad`, no `step` here;
# * no random numbers drawn: every layer is in eval mode during the forward passes;
# * never choose the loader's order: no `_start_data_order` and no `set_epoch` in `evaluate`;
# * any iterable of batches works, a generator too: count samples as they come, never with
#   `len(dataloader)`;
# * return `(loss, accuracy)`: the loss is the mean over all samples (weight each batch's
#   loss by its size);
# * the accuracy is the fraction of all samples predicted right, in [0, 1]: add up the counts
#   of `_count_correct` over the batches, never average the batches' accuracies;
# * append the loss to `history["eval_loss"]`, once per call;
# * at the end, `self._emit("on_evaluate_end", loss=loss, accuracy=accuracy)`.

# %% include="Trainer.evaluate"

# %% grade_id="audit_2_1_mode_switching" points=5
run_check("2.1", mine())
### BEGIN HIDDEN TESTS
run_check("2.1", mine(), seed=59)
### END HIDDEN TESTS

# %% grade_id="audit_2_2_evaluate_is_pure" points=5
run_check("2.2", mine())
### BEGIN HIDDEN TESTS
run_check("2.2", mine(), seed=61)
### END HIDDEN TESTS

# %% grade_id="audit_5_2_history" points=4
run_check("5.2", mine())
### BEGIN HIDDEN TESTS
run_check("5.2", mine(), seed=67)
### END HIDDEN TESTS

# %% [markdown]
# ### 3.4 Checkpoints
#
# A checkpoint must hold *everything* the next step depends on. Forget Adam's moments and the
# resumed run restarts them at zero: its first steps are several times too large, and it trains
# a different model without a single error. The test is simple and strict: train N epochs,
# save, load into fresh objects, train M more, and compare with N + M epochs in one go, bit for
# bit.
#
# How it is written matters too. `pickle` runs code when it loads, so a checkpoint someone sends
# you could do anything: use `write_checkpoint(path, arrays, meta)` from
# `tinytorch.core.checkpoint` (arrays in an `.npz` read with `allow_pickle=False`, the rest as
# JSON, a SHA-256 digest, written to a temporary file and renamed, so a crash mid-save leaves
# the old checkpoint whole). `read_checkpoint(path)` gives `(arrays, meta)` back and raises
# `CheckpointError` for a missing, truncated or tampered file.
#
# **The record.** `arrays` maps names to ndarrays; `meta` holds everything else as JSON values
# (numbers, strings, lists, dicts, `None`). Loading is given: `_plan_restore(arrays, meta)`
# (the next cell) checks the whole record against this trainer before anything changes, and
# returns a function that applies it. It reads these names, so `save_checkpoint` must write
# exactly them. In `arrays`:
#
# * `model/{i}`: the values (`p.data`) of parameter `i`, numbering the parameters in the order
#   of `self.model.parameters()`;
# * `optimizer/{i}/{name}`: every ndarray in parameter `i`'s optimizer state,
#   `self.optimizer.state_dict()["state"][i]`, under its own name (`momentum_buffer` for SGD,
#   `exp_avg` and `exp_avg_sq` for Adam).
#
# In `meta`, where a dotted name is nested (`model.shapes` is `meta["model"]["shapes"]`):
#
# * `model.shapes`: each parameter's shape as a list (`[3, 6]`), in the same order, so that a
#   file made for another model is refused before anything changes;
# * `model.rng_state`: for every layer in `rng_owners(self.model)` (the layers that draw random
#   numbers, such as Dropout), in that order, `layer.rng.bit_generator.state`; without it the
#   resumed run drops other units;
# * `optimizer.kind` and `optimizer.hyperparameters`: as `self.optimizer.state_dict()` gives
#   them (the file's settings win over the new trainer's);
# * `optimizer.step_count`: the optimizer's count of steps, from `state_dict()` too;
# * `optimizer.param_steps`: a list with each parameter's own step count, the `"step"` entry of
#   its optimizer state, or `None` where it has none (Adam's bias correction reads it);
# * `scheduler`: `_scheduler_settings(self.scheduler)`, the schedule's settings (`None`
#   without a schedule);
# * `grad_clip_norm`: `self.grad_clip_norm`;
# * `epoch` and `step`: `self.epoch` and `self.step`, so the schedule and the counts go on
#   where they stopped;
# * `training_mode`: `self.training_mode`, the mode loading puts the model back in;
# * `history`: `self.history`, every list of it;
# * `data_order.seed`: `self._data_seed`, the seed of the shuffling loader last trained on, so
#   that the resumed run replays its order.

# %% [markdown]
# Given: the reader of the record, and the schedule's settings in and out of a file.

# %% include="Trainer._plan_restore _scheduler_settings _restore_scheduler"

# %% [markdown]
# **What the checks hold you to** in `save_checkpoint` (checks 6.1, 6.2, checkpoint-safety):
#
# * the record holds every entry listed above, under exactly those names;
# * write it with `write_checkpoint(path, arrays, meta)` to exactly the `path` given (a `str`
#   or a `Path`, any suffix): no `.npz` is added, and missing folders are created;
# * never pickle: a file that unpickles can run code, while `write_checkpoint` stores plain
#   arrays and JSON;
# * save atomically: `write_checkpoint` writes a temporary file and renames it over the old
#   checkpoint, never rewriting the old file in place.

# %% include="Trainer.save_checkpoint"

# %% [markdown]
# Loading reads the file, lets `_plan_restore` check all of it, and only then applies it. If
# `_plan_restore` raises, wrap the error in a `CheckpointError` naming the file.
#
# **What the checks hold you to** in `load_checkpoint` (checks 6.1, 6.2, checkpoint-safety):
#
# * read with `read_checkpoint(path)` (a `str` or a `Path`), never with `pickle` or
#   `allow_pickle=True`: it refuses a missing, truncated or corrupted file with
#   `CheckpointError`;
# * call `self._plan_restore(arrays, meta)` before changing anything, and only then the
#   function it returns: a file that does not fit (a model of other shapes) raises and leaves
#   the trainer exactly as it was;
# * that function puts back everything the file holds, and the file's settings (optimizer
#   hyper-parameters, schedule, clip norm) win over the ones this trainer was built with.

# %% include="Trainer.load_checkpoint"

# %% grade_id="audit_6_1_resume_is_exact" points=6
run_check("6.1", mine())
### BEGIN HIDDEN TESTS
run_check("6.1", mine(), seed=71)
### END HIDDEN TESTS

# %% grade_id="audit_6_2_checkpoint_is_complete" points=5
run_check("6.2", mine())
### BEGIN HIDDEN TESTS
run_check("6.2", mine(), seed=73)
### END HIDDEN TESTS

# %% grade_id="checkpoint_safety" points=4
run_check("checkpoint-safety", mine())
### BEGIN HIDDEN TESTS
run_check("checkpoint-safety", mine(), seed=79)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. A real run: handwritten digits
#
# 1,797 digits scanned as 8x8 grey images (the UCI "Optical Recognition of Handwritten Digits"
# data, shipped with tinytorch). A quarter of them are held out; an MLP learns from the rest
# with everything you built: a cosine schedule over 20 epochs, clipping at a global norm of 1,
# and accumulation of two batches of 32 per step.

# %%
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.optimizers import SGD
from tinytorch.data import DataLoader, TensorDataset
from tinytorch.datasets import load_digits, split

images, labels = load_digits()
x_train, y_train, x_test, y_test = split(images, labels, test_fraction=0.25, seed=0)
train_data = DataLoader(TensorDataset(Tensor(x_train), Tensor(y_train)), batch_size=32,
                        shuffle=True, seed=0)
test_data = DataLoader(TensorDataset(Tensor(x_test), Tensor(y_test)), batch_size=256)
print(f"{len(x_train)} training images, {len(x_test)} test images")

model = Sequential(Linear(64, 64, seed=1), ReLU(), Dropout(0.1, seed=2), Linear(64, 10, seed=3))
trainer = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss(),
                  scheduler=CosineSchedule(max_lr=0.1, min_lr=0.001, total_epochs=20),
                  grad_clip_norm=1.0)

# %% [markdown]
# Train it. The view updates while it trains: the loss on training and held-out digits, the
# learning rate each epoch used, and the gradient norm of every step before and after clipping.
# Below it, the same run as numbers, from `trainer.history`, and the stated target: above 95%
# of the held-out digits right after 20 epochs.

# %%
with viz.demo():
    history = viz.train_live(trainer, train_data, test_data, epochs=20, accumulation_steps=2)
    steps = len(history["grad_norm"]) // 20
    for epoch in range(20):
        norms = history["grad_norm"][epoch * steps : (epoch + 1) * steps]
        print(f"epoch {epoch:2d}  lr {history['learning_rates'][epoch]:.4f}  "
              f"train {history['train_loss'][epoch]:.3f}  "
              f"test {history['eval_loss'][epoch]:.3f}  "
              f"accuracy {history['eval_accuracy'][epoch]:.1%}  "
              f"clipped {sum(n > 1.0 for n in norms)} of {len(norms)} steps")
    accuracy = history["eval_accuracy"][-1]
    assert accuracy > 0.95, f"test accuracy {accuracy:.1%} is below the 95% target"
    print(f"test accuracy {accuracy:.1%}")

# %% [markdown]
# What 95% proves, and what it does not. It proves the pieces run together: the schedule
# lowers the rate, clipping bounds the steps, the loss falls and the model generalises to
# digits it never saw. It does not prove the loop is right. Digits forgive a great deal: a
# Trainer that forgets to clear its gradients between windows, or that weighs a small last
# batch as much as a full one, still passes 95% here (97.1% and 96.9% on this very run): a
# step slightly off in size or direction does not stop a small network learning an easy task.
# That is why the checks above compare your loop with the exact arithmetic, step by step: the
# bugs this module is about train a slightly different model, and the loss curve looks almost
# right.

# %% [markdown]
# ## 5. What training costs
#
# A training step holds four things in memory at once: the parameters, a gradient for each of
# them, the optimizer's buffers, and the activations the forward pass keeps for backward. The
# first three are set by the model and the optimizer; the activations grow with the batch.
# Predicting them before a run is how you choose a batch size that fits, and how you know what
# accumulation buys.
#
# Where this library's bytes go. Every number is a float32, 4 bytes. Backward fills one
# gradient per parameter, of the same shape. SGD with momentum keeps a `momentum_buffer` per
# parameter, Adam and AdamW keep two moments (`exp_avg`, `exp_avg_sq`), plain SGD keeps
# nothing, and each buffer appears at the first `step()`. During the forward pass every
# operation makes a new output array, and the graph keeps it until backward ends, together
# with what each backward function holds on to: `Tensor.relu` keeps the boolean mask `x > 0`
# (1 byte per number) to route the gradient, `sigmoid` and `tanh` reuse their own output, and
# `Dropout` multiplies by a float32 mask it keeps as a tensor. A `Linear` keeps its input,
# which is the previous layer's output: already counted once.
#
# **Write `training_memory(model, optimizer, batch_size)`**, a prediction made before the step
# runs, from the model's layers and the optimizer's settings.
#
# **What the checks hold you to** (check `memory`, which runs one real step on a twin of each
# model and counts the arrays the step held, for models, optimizers and batch sizes drawn at
# grading time):
#
# * return a dict with exactly the keys `parameters`, `gradients`, `optimizer_state`,
#   `activations` and `total`, each a whole number of bytes (an `int`);
# * `parameters`: `p.data.nbytes` summed over `model.parameters()` (biases included);
# * `gradients`: backward gives every parameter a gradient of its own shape and dtype, so as
#   many bytes as the parameters;
# * `optimizer_state`: none for plain SGD (`momentum == 0`), one buffer per parameter for SGD
#   with momentum, two for Adam and AdamW, each the size of its parameter; step counters count
#   as 0 bytes. Predict it from the optimizer's kind and settings: `optimizer.state` is empty
#   until the first step;
# * `activations`: layer by layer, in the order `modules(model)` yields them, with `width` the
#   `out_features` of the last Linear before the layer: Linear `4 * batch_size *
#   out_features`; ReLU `5 * batch_size * width` (its output and its mask); Sigmoid and Tanh
#   `4 * batch_size * width`; Dropout with `p > 0` `8 * batch_size * width` (its mask and its
#   output: a step runs in training mode);
# * a Dropout with `p = 0` returns its input unchanged: it keeps nothing;
# * the input batch and the loss are not counted;
# * `total`: parameters + gradients + optimizer_state + activations.

# %% include="training_memory"

# %% [markdown]
# Your prediction for the digits model and a batch of 32, with each optimizer.

# %%
from tinytorch.core.optimizers import Adam

with viz.demo():
    for name, optimizer in (("SGD", SGD(model.parameters(), lr=0.1)),
                            ("SGD, momentum 0.9", SGD(model.parameters(), lr=0.1, momentum=0.9)),
                            ("Adam", Adam(model.parameters()))):
        memory = training_memory(model, optimizer, batch_size=32)
        print(f"{name:18}" + "  ".join(f"{key} {value:,}" for key, value in memory.items()))

# %% grade_id="training_memory" points=6
run_check("memory", mine())
### BEGIN HIDDEN TESTS
run_check("memory", mine(), seed=83)
### END HIDDEN TESTS

# %% [markdown]
# ### Measured, on this machine
#
# A prediction is worth what a measurement confirms. The cells below train fresh copies of the
# digits model in this kernel and measure them: memory with `tracemalloc` (numpy reports every
# array it allocates to it), time with `time.thread_time`. The numbers are this machine's and
# this run's; they are never written into the text.
#
# Memory is counted in bytes and comes out the same in every run. Time does not. An epoch here
# lasts a few milliseconds, and whatever else runs on the machine (your browser, the other
# students of a hub) can stretch one reading several times over. So every time below is taken
# the same way, and read the same way:
#
# * numpy's matrix library (BLAS) runs on **one thread**. Left free, it starts a thread per
#   core and then waits for the cores other programs hold: that would time the machine, not the
#   training;
# * the clock is **CPU time**: the seconds a core spent running your epoch. A wall clock also
#   counts the moments the machine gave that core to another program; on a busy hub that can
#   double a reading, and it says nothing about your code;
# * each epoch runs **twice untimed** first (the first runs allocate and load what later runs
#   reuse), then **7 times**, taking turns with the settings it is compared with, so a slow
#   moment of the machine falls on all of them;
# * what you see is the **median** of the 7 runs, and as its spread the **middle half** of
#   them (from the first to the third quartile): the error bars of the pictures, the brackets
#   of the printed lines.
#
# Read a difference against the spreads. When two spreads overlap, another run could put the
# two in the other order: the difference is **within the noise of this machine**, and the
# pictures and printed lines say so instead of naming a winner. Only a difference whose spreads
# do not overlap is a finding. And compare times within one picture only: its points took
# turns, so they met the same machine. Run the cell again a minute later and every time may be
# higher or lower together, as the machine gets busier or quieter. A large gap stays outside
# the spread from run to run; a gap close to the spread can land on either side of it, and
# then the honest reading is "small, and this machine cannot say more".
#
# One epoch with Adam and batches of 32: your prediction of the step, and what the epoch held
# at its peak. The peak also holds what the prediction leaves out, drawn as bars of their own:
# the batch's copy of the data and targets (known exactly), and the loss's arrays, Dropout's
# random draws and backward's temporary arrays (the rest of the gap).

# %%
with viz.demo():
    measured = viz.measure_epoch(Trainer, x_train, y_train, batch_size=32)
    digits = viz.digits_mlp()
    predicted = training_memory(digits, Adam(digits.parameters()), batch_size=32)["total"]
    print(f"predicted total {predicted:,} bytes; measured peak {measured.peak:,.0f} bytes")
    print(f"one epoch of {measured.steps} steps: {measured.time}")

# %%
viz.plot_memory_budget(Trainer, training_memory, x_train, y_train)

# %% [markdown]
# Memory and time against the batch size, two ways to reach the same update: one batch of that
# size per step, or `accumulation_steps = k` batches of 32. The trade-off of accumulation, as
# your Trainer runs it: its memory stays at the small batch's however large the effective
# batch, and it usually pays in time, k small forward and backward passes instead of one large
# one. The dashed lines are your `training_memory`.
#
# At k = 1 the two ways are one computation (one batch of 32, accumulated once): it is measured
# once, and both lines start from that point. At each larger batch, the label compares the two
# medians and says whether the gap is outside the spread; the lines printed above the picture
# give the same numbers. A gap within the noise says the two ways cost about the same here, not
# that one of them is faster.

# %%
viz.plot_memory_and_time(Trainer, training_memory, x_train, y_train)

# %% [markdown]
# A checkpoint holds the parameters and the optimizer's state, so its size on disk is
# predicted by `parameters + optimizer_state`: Adam's file is about three times plain SGD's.
# What is left over is the format's own: array names and headers, and the JSON record with the
# history.

# %%
viz.plot_checkpoint_sizes(Trainer, training_memory, x_train, y_train)

# %% [markdown]
# And clipping: one more pass over every gradient per optimizer step, to measure the global
# norm and scale. Its cost grows with the number of parameters, not with the batch, so it is
# small next to the forward and backward passes: a few percent, which is about what this
# machine's noise does to a time. So read each pair of bars by its spreads. Where they overlap,
# the label says "within the noise": this run shows that clipping is cheap, not what it costs.
# Where they do not, the percentage is the cost of clipping on this machine.

# %%
viz.plot_clipping_cost(Trainer, x_train, y_train)

# %% [markdown]
# ## What you built
#
# A schedule that is a pure function of the epoch; clipping that shortens a step without
# turning it; a loop whose accumulation equals a big batch, whose evaluation learns nothing,
# and whose checkpoints resume bit for bit. Each is a few lines, and each replaces a bug that
# trains the wrong model without a word. The same pieces, under the same names, drive
# `torch.optim.lr_scheduler`, `torch.nn.utils.clip_grad_norm_` and the training loops of
# PyTorch Lightning and fastai.

# %% [markdown]
# ## Your code becomes your library
#
# So far your classes live in this notebook only. One command makes them Module 07 of your own
# tinytorch, so that `from tinytorch.core.training import Trainer` gives your Trainer in any
# script or notebook. When every check above passes, save the notebook, open a terminal in its
# folder (**+** above the file browser, then **Terminal**) and run:
#
# ```
# tinytorch complete 07_training.ipynb
# ```
#
# It reads your answer cells from the saved file and puts them together into
# `tinytorch/core/training.py`, each method back in its class. Then it runs every check again,
# on that module in a fresh process: what passed here may lean on something no cell holds any
# more, such as a cell you ran and then changed or deleted. Only if every check passes does it
# write the module, beside this notebook and into your environment's tinytorch if it has one,
# keeping the file it replaces as `training.py.before-complete`. If a check fails, it names
# the check and your line, and writes nothing: fix the cell, save, and run it again. Restart
# a running kernel before you import your Trainer.
#
# In the course's repository, `make complete` runs the same command on your working copy.
# With this folder alone (no `tinytorch` command: see `README.md`), run
# `python -m tinytorch.complete 07_training.ipynb` in it instead.

# %% [markdown]
# ## Reflection
#
# The checks judged your code; these questions ask why it has to be that way. Answer each in
# the markdown cell under it, in a few sentences of your own, and reason from what you built
# and what this notebook showed you: the clipping demo, the accumulation plot, the digits run,
# and the measurements of section 5. Numbers you worked out or measured make an answer
# stronger than adjectives. A person reads
# and grades these answers by hand (the points are in `GRADING.md`, on top of the 100 the
# checks give); an answer left as it is earns nothing. Double-click a cell to write in it.

# %% [markdown]
# ### R1. One norm for all gradients (3 points)
#
# `clip_grad_norm` scales every gradient by the same factor, computed from the global norm.
# Suppose it clipped each parameter's gradient to `max_norm` on its own instead. Take the
# demo of section 2 (gradients of norms 3 and 4, clipped to 1): what update does each rule
# hand the optimizer, and which one still points where the gradient pointed? What happens to
# the per-tensor rule's total step as a model gets more parameter tensors?

# %% [markdown] grade_id="reflection_clipping" points=3 manual
# **R1, your answer** (one norm for all gradients):
#
# ### BEGIN SOLUTION
# Global clipping divides both gradients by 5, the norm of (3, 4): they become 0.6 and 0.8,
# the same direction as before with total length 1. Clipping each tensor to 1 on its own gives
# 1 and 1: the parts change their ratio from 3:4 to 1:1, so the step turns towards the
# parameter whose gradient was small, and it is no longer the steepest-descent direction.
# With k tensors the per-tensor rule lets the total step grow up to sqrt(k) times max_norm,
# so the bound depends on how the model is split into tensors. When every tensor is below
# max_norm both rules do nothing at all.
# ### END SOLUTION

# %% [markdown]
# ### R2. What a resume needs (3 points)
#
# Check 6.1 trains N epochs, saves, loads into fresh objects, trains M more, and wants the
# very weights of N + M epochs in one go. Your checkpoint carries the optimizer's state
# (momentum, or Adam's moments and step counts), the random state of Dropout, the data order's
# seed, and the epoch and step counters. For each of the four, say what the resumed run would
# do differently if the file left it out, and whether you would notice it in the loss curve.

# %% [markdown] grade_id="reflection_resume" points=3 manual
# **R2, your answer** (what a resume needs):
#
# ### BEGIN SOLUTION
# Without Adam's moments the resumed run restarts them at zero with a step count of 1: bias
# correction then makes the first updates close to lr times the sign of the gradient, much
# larger than the converged run's, a bump in the loss right after the resume (for SGD with
# momentum the velocity is lost and the first steps are smaller). Without Dropout's random
# state the resumed run drops other units than the uninterrupted one: the same model in
# distribution, but not the same weights, and no curve shows it. Without the data seed the
# loader replays other batches in another order: again a different run that looks normal.
# Without the epoch the schedule starts from max_lr again, a jump of the learning rate and a
# visible rise of the loss; without the step count the counts and logs restart.
# ### END SOLUTION

# %% [markdown]
# ### R3. When accumulation is the right trade (2 points)
#
# `accumulation_steps = k` gives the step of a batch k times larger. Section 5 measured both
# ways to that step, memory and time against the batch size. What does accumulation save, and
# what does it cost, compared with running that large batch at once, and compared with taking
# a step after every small batch? Argue from the medians and their spreads: which differences
# did your run show outside the spread, and which were within the noise of the machine? Say
# when you would choose accumulation.

# %% [markdown] grade_id="reflection_accumulation" points=2 manual
# **R3, your answer** (when accumulation is the right trade):
#
# ### BEGIN SOLUTION
# Accumulation saves memory: only one small batch's activations are alive at a time, while
# the gradient buffer has the size of the parameters whatever k is. Memory is counted, not
# timed, so its gap needs no spread: at 512 the peak was about 1,080 KiB in one batch and about
# 190 KiB accumulated, flat in k. It costs time: k forward and backward passes run one after
# another, on smaller arrays that use the hardware less well, to produce the one step that a
# big batch would give in a single pass. In my run the median epoch at 512 took about 2 ms in
# one batch and about 5 ms as 16 accumulated batches (+120%), with spreads far apart, and the
# gap was outside the spread at every k from 4 on: a real cost. At k = 2 it was +24%, just
# outside the spread; a gap that close I would not claim from one run. Against a step after
# every small batch it makes k times fewer and less noisy steps per epoch, and fewer optimizer
# updates: the accumulated epoch even took a little less than the 43 steps of batch 32 (about
# 5 against 7 ms in my run). It is the right trade when the batch size you want (for stable
# steps, or to match a recipe) does not fit in memory; if it fits, the big batch is faster,
# and if small noisy steps are fine, stepping every batch is simpler.
# ### END SOLUTION

# %% [markdown]
# ### R4. The memory of Adam and SGD (2 points)
#
# The digits MLP has 4,810 float32 parameters. From your `training_memory` in section 5,
# give the bytes held for the parameters, their gradients, and the optimizer's state, with
# plain SGD, SGD with momentum, and Adam, and explain the ratios. What do they mean for the
# size of a checkpoint, and for a model with a billion parameters?

# %% [markdown] grade_id="reflection_optimizer_memory" points=2 manual
# **R4, your answer** (the memory of Adam and SGD):
#
# ### BEGIN SOLUTION
# One copy of the parameters is 4,810 x 4 bytes, about 19 KB. Plain SGD keeps no state: the
# weights and the gradients, 2 copies (38 KB). Momentum adds one buffer per parameter: 3
# copies (58 KB). Adam keeps two moments, exp_avg and exp_avg_sq, and a step count: 4 copies
# (77 KB). A checkpoint stores the weights and the optimizer state, so an Adam checkpoint is
# about three times the weights alone. For a billion parameters Adam's state is 8 GB on top of
# 4 GB of weights and 4 GB of gradients, which is why large models shard or compress it.
# ### END SOLUTION

# %% [markdown]
# ### R5. Why a cosine, and where its minimum goes (2 points)
#
# The digits run anneals from 0.1 to 0.001 over 20 epochs. Why not train at 0.1 throughout,
# or at 0.001 throughout? Where should the schedule reach `min_lr`, and what happens to a run
# that goes on past `total_epochs` with your schedule and with one that climbs back up?

# %% [markdown] grade_id="reflection_schedule" points=2 manual
# **R5, your answer** (why a cosine, and where its minimum goes):
#
# ### BEGIN SOLUTION
# A rate of 0.1 throughout makes fast progress early but keeps bouncing around the minimum at
# the end; 0.001 throughout would settle but needs far more epochs to get anywhere. The cosine
# spends the first epochs near the high rate, lowers it smoothly, and flattens out at the
# bottom, so the last epochs take small careful steps. The minimum belongs at the last planned
# epoch: reached too early, the rest of the run crawls at min_lr; never reached, the run ends
# while its steps are still large. Past total_epochs my schedule stays at min_lr, so extra
# epochs only fine-tune; a schedule that climbs back up raises the rate again and can undo
# the settling.
# ### END SOLUTION

# %% [markdown]
# ### R6. How often to checkpoint (2 points)
#
# Saving costs time and disk; not saving costs the work since the last save when a run dies.
# Using what a checkpoint of this Trainer holds and the sizes section 5 measured, say how you
# would choose the interval, for the digits run and for a run of several days on a machine
# that fails now and then.

# %% [markdown] grade_id="reflection_checkpoint_interval" points=2 manual
# **R6, your answer** (how often to checkpoint):
#
# ### BEGIN SOLUTION
# A crash loses on average half an interval of training, while each save costs writing the
# weights, the optimizer state and the history. For the digits run a save is under a hundred
# kilobytes and takes milliseconds, so once per epoch costs nothing and loses at most one
# short epoch. For a long run, balance the two: if a save takes C seconds and failures come
# every F seconds on average, the total waste is about C/T + T/(2F) per second for an interval
# T, smallest near T = sqrt(2 C F), so slow saves or rare failures call for longer intervals.
# Keep the previous checkpoint too (the atomic rename makes that cheap) and save at the end.
# ### END SOLUTION

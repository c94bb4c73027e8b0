"""Every cause a check can name, with a stable code: ``likely bug [TT112]: ...``.

A compiler names each diagnosis with a code and keeps a longer explanation beside it (``rustc
--explain E0382``); so do the checks. Each ``Cause`` here is one bug a student writes: its code,
a short title (what ``make report`` counts and ranks), a pattern that recognises the checks'
"likely bug" words for it, and an explanation: what the bug is, what it does to training, and
a minimal wrong and right pair of lines. ``tinytorch explain TT112`` prints it
(``checks.explain``).

The checks keep writing their likely bug in their own words, with the numbers of the run at
hand; ``code_for`` finds the one cause whose pattern matches those words, and
``checks.diagnose`` puts the code in front of them. A test runs every mutant of the checks'
catalog, the corpus of student code and the alternative solutions, at the visible seed and a
hidden one, and proves that each likely bug they produce matches exactly one cause and that
each cause is produced by some mutant.

Codes never change meaning once released: a cause that is no longer emitted keeps its code
(and its entry, marked ``retired``), a new cause takes a new number. The hundreds follow the
part of the assignment: TT0xx the schedule and clipping (and the spec's signatures), TT1xx
the training loop and accumulation, TT2xx train/eval modes and evaluate, TT3xx history and the
learning rate, TT4xx checkpoints, TT5xx training_memory, TT9xx crashes, missing names, exits.

The standard library only: the checks import it in every sandbox, and the student's
``tinytorch explain`` reads it.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import cache

#: A code as messages and reports write it.
CODE = re.compile(r"TT\d{3}")


@dataclass(frozen=True)
class Cause:
    """One bug a check can name."""

    code: str
    #: A few words, for a report's ranking: "gradients not cleared between optimizer steps".
    title: str
    #: A regular expression ``re.search``-ed in a check's likely-bug words.
    pattern: str
    #: What the bug is, in two or three sentences.
    what: str
    #: What it does to training (or to a resumed run, or to the numbers a student reads).
    effect: str
    #: A minimal wrong line or two, and the right ones.
    wrong: str
    right: str
    #: No check emits it any more; the code keeps its meaning and is never reused.
    retired: bool = False

    def explanation(self) -> str:
        """The text ``tinytorch explain`` prints."""
        return "\n".join([
            f"{self.code}: {self.title}",
            "",
            textwrap.fill(self.what, 88),
            "",
            textwrap.fill(f"What it does: {self.effect}", 88),
            "",
            "Wrong:",
            textwrap.indent(self.wrong.strip("\n"), "    "),
            "",
            "Right:",
            textwrap.indent(self.right.strip("\n"), "    "),
        ])


CAUSES: tuple[Cause, ...] = (
    # ------------------------------------------------------------------ CosineSchedule
    Cause(
        code="TT001",
        title="a parameter named differently from the spec",
        pattern=r"^your [\w.]+ (?:has no parameter|takes other arguments)",
        what="Your constructor or method does not have the signature the spec gives: a "
             "parameter is spelled differently (total_epoch for total_epochs, lr for max_lr) "
             "or the arguments are in another order or number. Callers pass the spec's "
             "keywords, so the call itself fails.",
        effect="Every use of the class with the spec's keywords raises TypeError: the schedule, "
               "the trainer that uses it and the checkpoints that rebuild it cannot run.",
        wrong="def __init__(self, max_lr=0.1, min_lr=0.01, total_epoch=100, warmup_epochs=0):",
        right="def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100, warmup_epochs=0):",
    ),
    Cause(
        code="TT002",
        title="cosine not clamped after total_epochs",
        pattern=r"cosine is not clamped after total_epochs",
        what="get_lr applies the cosine formula to every epoch, also to epochs at or past "
             "total_epochs. There cos(pi * epoch / total_epochs) turns up again, so the rate "
             "climbs back towards max_lr instead of staying at min_lr.",
        effect="A run longer than total_epochs (or a resumed one) suddenly trains with large "
               "rates again and can undo what the schedule's low rates had settled.",
        wrong="progress = epoch / self.total_epochs\n"
              "decay = (self.max_lr - self.min_lr) * (1.0 - math.cos(math.pi * progress)) / 2.0",
        right="if epoch >= self.total_epochs:\n"
              "    return self.min_lr\n"
              "progress = epoch / self.total_epochs",
    ),
    Cause(
        code="TT003",
        title="factor 1/2 missing from the cosine",
        pattern=r"the factor 1/2 is missing",
        what="The formula lacks its division by 2: (1 + cos) and (1 - cos) run between 0 and "
             "2, so without the 1/2 the schedule spans twice the distance between max_lr and "
             "min_lr.",
        effect="The rate starts at or ends beyond the wrong value (below min_lr, even "
               "negative, or above max_lr); a negative rate makes the update climb the loss.",
        wrong="decay = (self.max_lr - self.min_lr) * (1.0 - math.cos(math.pi * progress))",
        right="decay = (self.max_lr - self.min_lr) * (1.0 - math.cos(math.pi * progress)) / 2.0",
    ),
    Cause(
        code="TT004",
        title="get_lr returns a numpy scalar, not a float",
        pattern=r"convert the result with float\(\.\.\.\)",
        what="get_lr returns an np.float32, a 0-d array or a Tensor instead of a Python float. "
             "Such values print and compare like numbers but are not float instances, and "
             "np.float32 rounds the rate.",
        effect="The optimizer's lr and history['learning_rates'] hold numpy objects: the rate is "
               "rounded to float32, and saving the history as JSON fails.",
        wrong="return np.float32(max(self.min_lr, self.max_lr - decay))",
        right="return max(self.min_lr, float(self.max_lr - decay))",
    ),
    Cause(
        code="TT005",
        title="schedule arguments not validated",
        pattern=r"validate every argument in __init__",
        what="CosineSchedule's constructor accepts settings the spec refuses: a negative or NaN "
             "rate, min_lr above max_lr, total_epochs of 0 or below. A test such as "
             "`max_lr < 0` lets NaN through, because NaN fails every comparison.",
        effect="A bad setting is accepted silently and surfaces later as NaN rates, a rising "
               "schedule or a ZeroDivisionError deep inside training.",
        wrong="if max_lr < 0 or min_lr < 0:\n"
              "    raise ValueError(\"rates must be >= 0\")",
        right="if not math.isfinite(max_lr) or max_lr < 0:\n"
              "    raise ValueError(f\"max_lr must be a finite number >= 0, got {max_lr!r}\")\n"
              "if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) "
              "or total_epochs < 1:\n"
              "    raise ValueError(f\"total_epochs must be a positive integer, got "
              "{total_epochs!r}\")",
    ),
    # ------------------------------------------------------------------ clip_grad_norm
    Cause(
        code="TT006",
        title="clip_grad_norm fails on None or ndarray gradients",
        pattern=r"clip_grad_norm raised on valid input",
        what="clip_grad_norm assumes every parameter has a Tensor gradient. A parameter may have "
             "no gradient (p.grad is None, to be skipped) or a plain ndarray one, and reading "
             "p.grad.data then raises.",
        effect="Clipping crashes as soon as a model has a parameter without a gradient (a frozen "
               "or unused layer) or an optimizer that stores ndarray gradients.",
        wrong="squares = sum(float(np.sum(p.grad.data ** 2)) for p in parameters)",
        right="grads = [g for g in (grad_array(p) for p in parameters) if g is not None]\n"
              "squares = sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads)",
    ),
    Cause(
        code="TT007",
        title="norm returned after clipping instead of before",
        pattern=r"returned the norm after clipping",
        what="clip_grad_norm returns the norm of the gradients after scaling them, which is "
             "max_norm whenever clipping acted. The spec asks for the norm computed BEFORE "
             "scaling.",
        effect="history['grad_norm'] shows max_norm at every clipped step, hiding the growing "
               "norms that warn of divergence.",
        wrong="for g in grads:\n"
              "    g *= scale\n"
              "return math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))",
        right="total_norm = math.sqrt(squares)  # before any scaling\n"
              "...\n"
              "return total_norm",
    ),
    Cause(
        code="TT008",
        title="squares of the norm overflow float32",
        pattern=r"the squares overflow|compute the squares in float64",
        what="The squares of float32 gradients are summed in float32. Entries near 3e20 square "
             "to about 1e41, beyond float32's 3.4e38, so the sum is inf (and tiny entries "
             "underflow to 0).",
        effect="Exactly when clipping matters, on exploding gradients, the norm is inf: the "
               "scale factor is 0 or NaN and the step is wiped out or poisoned.",
        wrong="squares += float(np.sum(g ** 2))  # float32 squares: (3e20) ** 2 is inf",
        right="squares += float(np.sum(g.astype(np.float64) ** 2))",
    ),
    Cause(
        code="TT009",
        title="parameters generator read twice",
        pattern=r"generator can be read only once: turn parameters into a list"
                r"|generator was used up computing the norm",
        what="clip_grad_norm iterates over `parameters` twice, once for the norm and once to "
             "scale. model.parameters() may be a generator, which is empty the second time.",
        effect="With a generator nothing is scaled (or the norm is computed from nothing): "
               "clipping silently does not happen.",
        wrong="norm = math.sqrt(sum(float(np.sum(grad_array(p) ** 2)) for p in parameters))\n"
              "for p in parameters:  # already used up\n"
              "    grad_array(p)[...] *= scale",
        right="grads = [g for g in (grad_array(p) for p in parameters) if g is not None]\n"
              "...\n"
              "for g in grads:\n"
              "    g *= scale",
    ),
    Cause(
        code="TT010",
        title="each parameter clipped separately",
        pattern=r"each parameter was clipped to max_norm separately",
        what="Each gradient is clipped by its own norm instead of all of them by the global "
             "norm. The spec's clip_grad_norm uses one factor, max_norm / total_norm, for every "
             "gradient.",
        effect="The global norm stays above max_norm (up to sqrt(number of parameters) times "
               "it) and the update's direction changes, since parameters are shortened by "
               "different factors.",
        wrong="for g in grads:\n"
              "    own = math.sqrt(float(np.sum(g.astype(np.float64) ** 2)))\n"
              "    if own > max_norm:\n"
              "        g *= max_norm / (own + 1e-6)",
        right="if total_norm > max_norm:\n"
              "    scale = max_norm / (total_norm + 1e-6)\n"
              "    for g in grads:\n"
              "        g *= scale",
    ),
    Cause(
        code="TT011",
        title="scaled gradients not written back",
        pattern=r"scaled gradients were not written back",
        what="The scaled gradient is computed as a new array (g = g * scale), which rebinds the "
             "loop variable and leaves p.grad as it was. Scaling must happen in place.",
        effect="clip_grad_norm returns the right norm but clips nothing: exploding gradients "
               "reach the optimizer unchanged.",
        wrong="for g in grads:\n"
              "    g = g * scale",
        right="for g in grads:\n"
              "    g *= scale",
    ),
    Cause(
        code="TT012",
        title="tensor gradients not scaled in place",
        pattern=r"Tensor gradient was left unscaled",
        what="You scale `g *= scale` where g is p.grad itself. For an ndarray gradient that works "
             "in place, but for a Tensor gradient it makes a new Tensor and p.grad keeps the "
             "old values. Scale the Tensor's array: p.grad.data.",
        effect="Gradients stored as Tensors, the ones autograd gives, are never clipped; only "
               "ndarray gradients are.",
        wrong="for p in parameters:\n"
              "    g = p.grad\n"
              "    g *= scale  # a new Tensor; p.grad is unchanged",
        right="for p in parameters:\n"
              "    g = p.grad.data if isinstance(p.grad, Tensor) else p.grad\n"
              "    g *= scale",
    ),
    Cause(
        code="TT013",
        title="weights scaled instead of gradients",
        pattern=r"scaled the parameters' values \(p\.data\)",
        what="clip_grad_norm multiplies the parameters' values (p.data) by the clip factor "
             "instead of their gradients (p.grad). Clipping must never touch the weights.",
        effect="Every clipped step shrinks the model's weights towards zero while the gradient "
               "that reaches the optimizer stays unclipped.",
        wrong="for p in parameters:\n"
              "    p.data *= scale",
        right="for g in grads:  # the gradients, grad_array(p)\n"
              "    g *= scale",
    ),
    Cause(
        code="TT014",
        title="gradients below the threshold scaled",
        pattern=r"gradients below the threshold were scaled|was scaled UP to",
        what="clip_grad_norm scales the gradients even when their norm is below max_norm. Then "
             "max_norm / total_norm is above 1 and the gradients grow to norm max_norm.",
        effect="Every step is taken with a gradient of norm exactly max_norm: small gradients "
               "are inflated, so training near a minimum overshoots instead of settling.",
        wrong="scale = max_norm / (total_norm + 1e-6)\n"
              "for g in grads:\n"
              "    g *= scale",
        right="if total_norm > max_norm:\n"
              "    scale = max_norm / (total_norm + 1e-6)\n"
              "    for g in grads:\n"
              "        g *= scale",
    ),
    Cause(
        code="TT015",
        title="trainer's clipping fails through a broken clip_grad_norm",
        pattern=r"your clip_grad_norm does not clip these gradients",
        what="The trainer hands optimizer.step() a gradient that is not of norm grad_clip_norm, "
             "and your own clip_grad_norm, run alone on the same gradients, does not clip them "
             "either. The bug is in clip_grad_norm (the 'clip' check names it), not in how the "
             "trainer calls it.",
        effect="Clipping in the trainer is ineffective or wrong: exploding gradients reach the "
               "optimizer.",
        wrong="for g in grads:\n"
              "    g = g * scale  # one of the clip_grad_norm bugs the 'clip' check names",
        right="for g in grads:\n"
              "    g *= scale  # fix clip_grad_norm first; the trainer's call can stay",
    ),
    # ------------------------------------------------------------------ Trainer: clipping
    Cause(
        code="TT016",
        title="trainer never clips",
        pattern=r"gradient reaching optimizer\.step\(\) is not clipped",
        what="With grad_clip_norm set, the trainer computes or logs the norm but never calls "
             "clip_grad_norm on the gradients the optimizer reads, so the step uses them "
             "unclipped.",
        effect="grad_clip_norm has no effect: an exploding gradient makes a huge step and the "
               "run diverges.",
        wrong="norm = math.sqrt(sum(float(np.sum(grad_array(p) ** 2)) for p in params))\n"
              "self.optimizer.step()",
        right="norm = clip_grad_norm(params, self.grad_clip_norm)\n"
              "self.optimizer.step()",
    ),
    Cause(
        code="TT017",
        title="clip_grad_norm called with its default max_norm",
        pattern=r"calls clip_grad_norm with its default max_norm",
        what="The trainer calls clip_grad_norm(params) without passing self.grad_clip_norm, so "
             "every gradient is clipped to the default max_norm of 1 whatever the user set.",
        effect="Steps are shortened to norm 1 even when the threshold is far above the "
               "gradients: training is slowed, and the threshold the user chose is ignored.",
        wrong="norm = clip_grad_norm(params)",
        right="norm = clip_grad_norm(params, self.grad_clip_norm)",
    ),
    Cause(
        code="TT018",
        title="clipped before the gradient was complete",
        pattern=r"clipping ran (?:before the gradient was complete"
                r"|on the window's summed gradient)",
        what="Clipping runs on a partial gradient: after each batch's backward, or on the "
             "window's summed gradient before it is divided by the window's samples. It must run "
             "once per optimizer step, on the accumulated and averaged gradient, right before "
             "optimizer.step().",
        effect="The step gets a gradient shorter than grad_clip_norm (divided again after "
               "clipping) or of the wrong direction, so clipping distorts updates it should only "
               "cap.",
        wrong="loss.backward(float(n))\n"
              "clip_grad_norm(params, self.grad_clip_norm)  # one batch's, unaveraged gradient",
        right="# in _optimizer_step, after dividing every gradient by window_samples:\n"
              "norm = clip_grad_norm(params, self.grad_clip_norm)\n"
              "self.optimizer.step()",
    ),
    Cause(
        code="TT019",
        title="trainer changes gradients below the clip threshold",
        pattern=r"must reach optimizer\.step\(\) unchanged, bit for bit",
        what="With grad_clip_norm set above every gradient's norm, the gradients reaching "
             "optimizer.step() still differ from those of the same run without clipping. "
             "Something on the clipping path changes them (clipping each batch, rescaling, or "
             "recomputing them), though clipping must only act above the threshold.",
        effect="Turning clipping on changes training even when no gradient is large: runs with "
               "and without clipping no longer agree.",
        wrong="loss.backward(float(n))\n"
              "clip_grad_norm(params, self.grad_clip_norm * n)  # after every batch",
        right="if self.grad_clip_norm is not None:  # once per step, before optimizer.step()\n"
              "    norm = clip_grad_norm(params, self.grad_clip_norm)",
    ),
    Cause(
        code="TT020",
        title="clipping changes the number of optimizer steps",
        pattern=r"turning clipping on must not change how many steps",
        what="With grad_clip_norm set, train_epoch takes a different number of optimizer steps "
             "than without it (for instance it skips the step when the norm is large, or takes "
             "none at all). Clipping must shorten a step, never remove or add one.",
        effect="A clipped run trains for fewer (or more) updates than the unclipped one, and "
               "large gradients, when clipping matters most, are ignored instead of capped.",
        wrong="norm = clip_grad_norm(params, self.grad_clip_norm)\n"
              "if norm > self.grad_clip_norm:\n"
              "    return  # the window's step is skipped\n"
              "self.optimizer.step()",
        right="norm = clip_grad_norm(params, self.grad_clip_norm)\n"
              "self.optimizer.step()",
    ),
    # ------------------------------------------------------------------ Trainer: the loop
    Cause(
        code="TT101",
        title="optimizer.step() never called",
        pattern=r"(?:optimizer\.step\(\) is never called in train_epoch"
                r"|train_epoch never calls optimizer\.step\(\))"
                r"|(?:train_epoch (?:must take one optimizer step per batch"
                r"|must train: forward, loss, backward|never called optimizer\.step\(\)))",
        what="train_epoch computes the loss and its gradients but never calls "
             "self.optimizer.step() (or clears the gradients before it), so no weight is ever "
             "updated.",
        effect="The model does not learn at all: the loss stays where it started, epoch after "
               "epoch.",
        wrong="loss.backward(float(n))\n"
              "self._clear_grads(params)",
        right="loss.backward(float(n))\n"
              "self.optimizer.step()\n"
              "self._clear_grads(params)",
    ),
    Cause(
        code="TT102",
        title="optimizer steps not once per window",
        pattern=r"step once every accumulation_steps batches"
                r"|step once per batch when accumulation_steps=1"
                r"|train_epoch must step once per window"
                r"|train_epoch must train:? \(?one optimizer step per",
        what="train_epoch takes the wrong number of optimizer steps: it must step once per "
             "window of accumulation_steps batches (once per batch when accumulation_steps=1), "
             "plus once for a partial last window. Here it took fewer or more (possibly none).",
        effect="The model gets the wrong number of updates per epoch, each from the wrong "
               "batches: too few and it learns slowly or not at all.",
        wrong="if batch % accumulation_steps == 0:\n"
              "    self._optimizer_step(params, window_samples)",
        right="window_batches += 1\n"
              "if window_batches == steps:\n"
              "    self._optimizer_step(params, window_samples)\n"
              "    window_batches, window_samples = 0, 0",
    ),
    Cause(
        code="TT103",
        title="gradients not cleared between optimizer steps",
        pattern=r"gradients are not cleared between optimizer steps",
        what="Gradients add into .grad, and nothing clears them after optimizer.step(). The next "
             "window's backward adds its gradient to the previous one's, so each step uses the "
             "sum of all gradients so far.",
        effect="Each step also carries every earlier gradient, like a momentum nobody asked "
               "for: updates overshoot, and with a larger rate the loss diverges. On the "
               "notebook's digits the run still reached 97 %, so the accuracy alone hides it.",
        wrong="self.optimizer.step()\n"
              "self.step += 1",
        right="self.optimizer.step()\n"
              "self._clear_grads(params)\n"
              "self.step += 1",
    ),
    Cause(
        code="TT104",
        title="gradients not cleared at the start of the epoch",
        pattern=r"does not start from cleared gradients",
        what="train_epoch does not clear the gradients before its first batch, so whatever was "
             "left in .grad (from a manual backward, an interrupted epoch or evaluation code) "
             "is added to the first window's gradient.",
        effect="The first step of the epoch uses a wrong gradient, which can be a large jump "
               "in a random direction.",
        wrong="params = list(self.model.parameters())\n"
              "loss_sum, samples = 0.0, 0",
        right="params = list(self.model.parameters())\n"
              "self._clear_grads(params)  # nothing from before reaches the first step\n"
              "loss_sum, samples = 0.0, 0",
    ),
    # ------------------------------------------------------------------ accumulation
    Cause(
        code="TT105",
        title="accumulated gradients summed, not averaged",
        pattern=r"gradients were summed, not averaged"
                r"|accumulated gradients are not averaged over the window's samples",
        what="Each batch's mean-loss gradient is added into .grad and the window's sum goes to "
             "optimizer.step() undivided. The window's gradient must be that of its mean loss: "
             "weight each batch by its samples and divide by the window's total samples.",
        effect="Each step is about accumulation_steps times too large, as if the learning rate "
               "were multiplied by it; clipping then acts on the inflated gradient.",
        wrong="loss.backward()  # each batch's mean gradient, summed over the window\n"
              "...\n"
              "self.optimizer.step()",
        right="loss.backward(float(n))  # the batch's gradient times its samples\n"
              "...\n"
              "g *= 1.0 / window_samples  # in _optimizer_step, then step",
    ),
    Cause(
        code="TT106",
        title="window divided by k instead of by its samples",
        pattern=r"divided by k instead of by samples",
        what="The window's summed gradient is divided by accumulation_steps (or the number of "
             "batches), which treats every batch as an equal. With unequal batches each one "
             "must count in proportion to its samples.",
        effect="Samples in small batches weigh more than those in large ones, so accumulating "
               "does not give the update of one big batch (notably for a short last batch).",
        wrong="loss.backward()\n"
              "...\n"
              "g *= 1.0 / accumulation_steps",
        right="loss.backward(float(n))\n"
              "...\n"
              "g *= 1.0 / window_samples",
    ),
    Cause(
        code="TT107",
        title="wrong accumulated gradient reaches clipping",
        pattern=r"even with clipping off the gradient reaching step\(\) is wrong"
                r"|the gradient at the step is not that of the window's mean loss, with or "
                r"without clipping",
        what="The clipping check failed, but even with clipping off the gradient handed to "
             "optimizer.step() is not that of the window's sample-weighted mean loss. The "
             "accumulation is wrong (see check 1.3), so clipping acts on a wrong gradient.",
        effect="Clipped or not, every step with accumulation uses a mis-weighted gradient; fix "
               "the accumulation first and the clipping may well be right.",
        wrong="loss.backward()  # batches weighted as equals\n"
              "...\n"
              "g *= 1.0 / accumulation_steps",
        right="loss.backward(float(n))\n"
              "...\n"
              "g *= 1.0 / window_samples",
    ),
    Cause(
        code="TT108",
        title="partial last window dropped",
        pattern=r"partial last window was dropped|the partial last window steps too",
        what="When the number of batches is not a multiple of accumulation_steps, the last "
             "batches form a partial window. Your loop only steps on full windows, so their "
             "gradients are computed and then thrown away.",
        effect="The last batches of every epoch never train the model (and their gradient may "
               "leak into the next epoch if nothing clears it).",
        wrong="for batch, (inputs, targets) in enumerate(dataloader):\n"
              "    ...\n"
              "return loss_sum / samples",
        right="if window_batches:  # after the loop: the partial last window still counts\n"
              "    self._optimizer_step(params, window_samples)",
    ),
    Cause(
        code="TT109",
        title="train_epoch needs len() of the batches",
        pattern=r"(?:must work with any iterable of batches, a generator too: do not call len)"
                r"|(?:calls len\(\) on the batches"
                r"|do not call len\(dataloader\) \(a generator has no len\(\)\))",
        what="train_epoch calls len(dataloader) or indexes it (to find the last batch or the "
             "number of windows). A data loader may be any iterable, a generator too, which "
             "has no len(); count batches as they come.",
        effect="Training on a generator or a streaming loader raises TypeError.",
        wrong="if window_batches == steps or batch == len(dataloader) - 1:\n"
              "    self._optimizer_step(params, window_samples)",
        right="if window_batches == steps:\n"
              "    self._optimizer_step(params, window_samples)\n"
              "...\n"
              "if window_batches:  # after the loop",
    ),
    # ------------------------------------------------------------------ the step counter
    Cause(
        code="TT110",
        title="trainer.step not incremented per optimizer step",
        pattern=r"count one step per optimizer\.step\(\) in self\.step"
                r"|increment trainer\.step once per optimizer\.step\(\)"
                r"|trainer\.step must count optimizer steps, one per",
        what="self.step, the number of optimizer steps taken, is never incremented (or not at "
             "every optimizer.step()).",
        effect="trainer.step stays at 0 or lags: step-based logging is wrong and a checkpoint "
               "saves the wrong step, so a resumed run counts from the wrong place.",
        wrong="self.optimizer.step()\n"
              "self._clear_grads(params)",
        right="self.optimizer.step()\n"
              "self._clear_grads(params)\n"
              "self.step += 1",
    ),
    Cause(
        code="TT111",
        title="trainer.step counts batches",
        pattern=r"trainer\.step counts batches",
        what="self.step is incremented for every batch instead of for every optimizer step. "
             "With accumulation_steps > 1 a step covers several batches: 5 batches with "
             "accumulation_steps=2 make 3 steps.",
        effect="With accumulation, trainer.step overcounts the updates, and logging or resuming "
               "by step is off.",
        wrong="self._emit(\"on_batch_end\", batch=batch, loss=value, samples=n)\n"
              "self.step += 1",
        right="self.optimizer.step()  # in _optimizer_step\n"
              "self.step += 1",
    ),
    Cause(
        code="TT112",
        title="trainer.step misses the partial window's step",
        pattern=r"trainer\.step does not count the partial last window",
        what="self.step is incremented in the loop for full windows only; the step taken for "
             "the partial last window after the loop is not counted. Every optimizer.step() "
             "counts.",
        effect="trainer.step falls behind the optimizer by one step per epoch whenever the "
               "batches do not divide into full windows.",
        wrong="if window_batches == steps:\n"
              "    self._optimizer_step(params, window_samples)\n"
              "    self.step += 1",
        right="self.optimizer.step()  # in _optimizer_step, used by every window\n"
              "self._clear_grads(params)\n"
              "self.step += 1",
    ),
    # ------------------------------------------------------------------ loss and history
    Cause(
        code="TT113",
        title="epoch loss averages batches as equals",
        pattern=r"batch losses were averaged as equals; weight each batch's loss",
        what="train_epoch returns the mean of the batch losses, each batch counting once. The "
             "epoch's loss is the mean over samples: weight each batch's loss by its number of "
             "samples and divide by the total.",
        effect="With unequal batches (a short last batch) the reported epoch loss is biased "
               "towards the small batches and differs from the loss on the whole data.",
        wrong="loss_sum += value\n"
              "samples += 1",
        right="loss_sum += value * n\n"
              "samples += n",
    ),
    Cause(
        code="TT114",
        title="accumulation_steps not validated",
        pattern=r"accumulation_steps is not validated",
        what="train_epoch accepts accumulation_steps of 0, a negative number, a float or True. "
             "It must be an int >= 1 and not a bool (isinstance(True, int) is True); raise "
             "ValueError otherwise, before any batch.",
        effect="A bad value trains silently with no step, a step per batch or a crash midway, "
               "instead of an error naming the argument.",
        wrong="steps = accumulation_steps",
        right="bad = isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, "
              "int)\n"
              "if bad or accumulation_steps < 1:\n"
              "    raise ValueError(f\"accumulation_steps must be an int >= 1, got \"\n"
              "                     f\"{accumulation_steps!r}\")",
    ),
    # ------------------------------------------------------------------ NaN losses
    Cause(
        code="TT115",
        title="non-finite loss not checked",
        pattern=r"loss was not checked: test math\.isfinite",
        what="train_epoch does not test each batch's loss for NaN or inf, so a diverged batch "
             "goes on through backward() and optimizer.step() without an error.",
        effect="One bad batch writes NaN into every weight and training carries on, producing "
               "NaN losses from then on.",
        wrong="value = _scalar(loss)\n"
              "loss.backward(float(n))",
        right="value = _scalar(loss)\n"
              "if not math.isfinite(value):\n"
              "    self._clear_grads(params)\n"
              "    raise TrainingDivergedError(f\"loss is {value} at epoch {self.epoch}, batch "
              "{batch}\")",
    ),
    Cause(
        code="TT116",
        title="window holding the bad batch applied",
        pattern=r"window holding the bad batch was \(partly\) applied",
        what="On a NaN or inf loss you step with what the window has accumulated so far before "
             "raising. The batches already accumulated in the bad window must not reach "
             "optimizer.step(): clear the gradients and raise.",
        effect="A diverging window still moves the weights, so the state after the error is "
               "not that of the last good step.",
        wrong="if not math.isfinite(value):\n"
              "    if window_samples:\n"
              "        self._optimizer_step(params, window_samples)\n"
              "    raise TrainingDivergedError(...)",
        right="if not math.isfinite(value):\n"
              "    self._clear_grads(params)\n"
              "    raise TrainingDivergedError(...)",
    ),
    Cause(
        code="TT117",
        title="divergence error does not say where",
        pattern=r"say where training diverged",
        what="The error raised for a NaN or inf loss does not name the epoch and the batch "
             "where it happened.",
        effect="The user learns that training diverged but not where, so the bad batch or the "
               "epoch whose learning rate was too high cannot be found.",
        wrong="raise TrainingDivergedError(f\"loss is {value}\")",
        right="raise TrainingDivergedError(f\"loss is {value} at epoch {self.epoch}, "
              "batch {batch}\")",
    ),
    # ------------------------------------------------------------------ learning on tasks
    Cause(
        code="TT118",
        title="the loop does not learn",
        pattern=r"the loop does not learn: check the order",
        what="Training runs but the loss does not fall enough on an easy task. Something in the "
             "loop is off: the order forward -> loss -> backward -> step -> zero_grad, "
             "gradients not cleared every step, a wrong learning rate, or a step that goes "
             "uphill.",
        effect="Models of every kind fail to fit data they should fit easily.",
        wrong="self.optimizer.step()\n"
              "loss.backward(float(n))  # the step uses the previous batch's gradient",
        right="loss.backward(float(n))\n"
              "self.optimizer.step()\n"
              "self._clear_grads(params)",
    ),
    Cause(
        code="TT119",
        title="training converges to the wrong line",
        pattern=r"the loop converges to the wrong line",
        what="On y = 2x + 1 the trained Linear does not end near w = 2, b = 1. The gradients "
             "are scaled wrongly (a wrong rate or averaging), or some batches are skipped or "
             "counted twice.",
        effect="The model settles on a biased fit or converges far too slowly, even on the "
               "simplest regression.",
        wrong="else:\n"
              "    self.optimizer.lr = 0.01  # overrides the user's rate without a scheduler",
        right="if self.scheduler is not None:  # otherwise optimizer.lr is left as given\n"
              "    self.optimizer.lr = self.scheduler.get_lr(self.epoch)",
    ),
    Cause(
        code="TT201",
        title="model left in training mode during evaluate",
        pattern=r"the model was in training mode: call self\._set_mode\(False\)|"
                r"evaluate ran Dropout in training mode|loss was computed with Dropout active",
        what="evaluate runs its forward passes with the model still in training mode: you never "
             "call self._set_mode(False) before the loop. Every Dropout then keeps drawing "
             "random masks while you evaluate.",
        effect="The eval loss and accuracy are those of a randomly thinned network (noisy, too "
               "pessimistic), and each evaluate consumes random numbers, so the training after "
               "it drops other units.",
        wrong="with no_grad():\n"
              "    for inputs, targets in dataloader:",
        right="self._set_mode(False)\n"
              "with no_grad():\n"
              "    for inputs, targets in dataloader:",
    ),
    Cause(
        code="TT202",
        title="mode set on the top-level model only",
        pattern=r"the model's own flag was \w+ but its Dropout's was not",
        what="You switch modes by setting self.model.training yourself, which changes the "
             "model's own flag but not those of the layers inside it (a Dropout held by the "
             "model, layers in a list). set_training, which self._set_mode calls, sets the flag "
             "on every sublayer.",
        effect="Nested Dropouts keep the mode they had: active during evaluate, or switched off "
               "for the rest of training after the first evaluate.",
        wrong="self.model.training = training\n"
              "self.training_mode = training",
        right="set_training(self.model, training)\n"
              "self.training_mode = training",
    ),
    Cause(
        code="TT203",
        title="train_epoch does not switch back to training mode",
        pattern=r"the model was in eval mode: train_epoch must switch back",
        what="train_epoch never puts the model in training mode at its start. evaluate leaves "
             "the model in eval mode, so after the first evaluate every epoch trains with "
             "Dropout switched off.",
        effect="Training after an evaluate silently loses its regularisation: a run that "
               "evaluates trains a different model from one that does not.",
        wrong="if self.scheduler is not None:\n"
              "    self.optimizer.lr = self.scheduler.get_lr(self.epoch)",
        right="self._set_mode(True)\n"
              "if self.scheduler is not None:\n"
              "    self.optimizer.lr = self.scheduler.get_lr(self.epoch)",
    ),
    Cause(
        code="TT204",
        title="evaluate restores training mode at its end",
        pattern=r"evaluate must leave the model in eval mode",
        what="evaluate switches to eval mode for its loop but puts the model back in training "
             "mode before it returns. The spec has evaluate leave the model in eval mode; "
             "train_epoch is the one that switches back.",
        effect="trainer.training_mode and the model's flags contradict the spec after evaluate: "
               "a checkpoint saved then records the wrong mode, and predictions made after "
               "evaluate run with Dropout active.",
        wrong="self._set_mode(False)\n"
              "...\n"
              "self._set_mode(True)\n"
              "return loss, accuracy",
        right="self._set_mode(False)\n"
              "...\n"
              "return loss, accuracy",
    ),
    Cause(
        code="TT205",
        title="trainer.training_mode not updated",
        pattern=r"must set self\.training_mode = ",
        what="You switch the model with set_training(self.model, ...) directly, so "
             "trainer.training_mode keeps its old value. self._set_mode sets both the model's "
             "flags and the trainer's attribute.",
        effect="The trainer believes (and saves) a mode its model is not in, so a checkpoint "
               "records the wrong mode and a resumed run restores it.",
        wrong="set_training(self.model, False)",
        right="self._set_mode(False)",
    ),
    Cause(
        code="TT206",
        title="evaluate records an autograd graph",
        pattern=r"a graph was recorded during evaluate",
        what="evaluate's forward passes run outside no_grad(), so every operation records the "
             "graph a backward pass would need, though nothing ever calls backward on it.",
        effect="The numbers are the same, but evaluation keeps every activation alive and runs "
               "slower; a large eval set can run out of memory. Checked in the notebook, not "
               "graded.",
        wrong="for inputs, targets in dataloader:\n"
              "    outputs = self.model.forward(inputs)",
        right="with no_grad():\n"
              "    for inputs, targets in dataloader:\n"
              "        outputs = self.model.forward(inputs)",
    ),
    Cause(
        code="TT207",
        title="evaluate changes what training does next",
        pattern=r"evaluate changed what training does next",
        what="Calling evaluate between two epochs changes the weights the next epoch reaches: "
             "evaluate consumed random numbers (a Dropout left in training mode) or touched "
             "gradients, weights or optimizer state (backward, step, zero_grad, an lr change).",
        effect="A run that evaluates differs from one that does not, and a resumed run no longer "
               "matches the uninterrupted one.",
        wrong="loss = self.loss_fn(self.model.forward(inputs), targets)\n"
              "loss.backward()",
        right="self._set_mode(False)\n"
              "with no_grad():\n"
              "    loss = self.loss_fn(self.model.forward(inputs), targets)",
    ),
    Cause(
        code="TT208",
        title="evaluate averages batch losses as equals",
        pattern=r"batch losses were averaged as equals: weight each by|"
                r"^weight each batch's loss by its number of samples$",
        what="evaluate averages the batches' mean losses with each batch counting once, instead "
             "of weighting each by its number of samples. A small last batch then counts as much "
             "as a full one.",
        effect="The eval loss is not the mean over the evaluated samples and changes with the "
               "batch size.",
        wrong="loss_sum += _scalar(self.loss_fn(outputs, targets))\n"
              "samples += 1",
        right="loss_sum += _scalar(self.loss_fn(outputs, targets)) * n\n"
              "samples += n",
    ),
    Cause(
        code="TT209",
        title="eval loss divided by the classified-sample count",
        pattern=r"a regression loss",
        what="evaluate divides the summed loss by the count of samples judged for accuracy, or "
             "uses that count to decide whether to divide. For a regression loss such as MSELoss "
             "no sample is classified, so that count is 0.",
        effect="For regression evaluate returns 0.0, the undivided sum, inf or nan as its loss, "
               "or crashes with ZeroDivisionError.",
        wrong="loss = loss_sum / judged if judged else 0.0",
        right="loss = loss_sum / samples\n"
              "accuracy = correct / judged if judged else None",
    ),
    Cause(
        code="TT210",
        title="accuracy averaged over batches as equals",
        pattern=r"batch accuracies were averaged as equals",
        what="You compute each batch's accuracy and average those, so a batch of 7 samples "
             "counts as much as one of 33. Accuracy is the correct samples of all batches over "
             "all samples judged.",
        effect="The reported accuracy is off whenever the batches differ in size (the last one "
               "usually does).",
        wrong="accuracies.append(right / total)\n"
              "accuracy = sum(accuracies) / len(accuracies)",
        right="correct += right\n"
              "judged += total\n"
              "accuracy = correct / judged if judged else None",
    ),
    Cause(
        code="TT211",
        title="argmax over the wrong axis",
        pattern=r"take the argmax over the classes, logits\.argmax\(axis=1\)",
        what="For CrossEntropyLoss you take outputs.argmax(axis=0), one index per class, instead "
             "of axis=1, one prediction per sample, and compare that with the labels.",
        effect="evaluate crashes on arrays of different lengths, or, when the lengths happen to "
               "agree, returns a meaningless accuracy.",
        wrong="int(np.sum(outputs.argmax(axis=0) == labels))",
        right="int(np.sum(outputs.argmax(axis=1) == labels))",
    ),
    Cause(
        code="TT212",
        title="binary accuracy without the 0.5 threshold",
        pattern=r"single probability column|right side of 0\.5",
        what="With BinaryCrossEntropyLoss the model outputs one probability per sample. You "
             "compare those probabilities with the targets as they are, or take an argmax over "
             "the single column (always 0), instead of predicting class 1 where the probability "
             "is >= 0.5.",
        effect="The accuracy does not depend on the model: 0, the share of class 0, or 1.0 every "
               "time.",
        wrong="int(np.sum(outputs.argmax(axis=1) == targets.argmax(axis=1)))",
        right="int(np.sum((outputs >= 0.5) == (targets >= 0.5)))",
    ),
    Cause(
        code="TT301",
        title="schedule computed but not applied",
        pattern=r"the schedule is computed but not applied",
        what="train_epoch calls self.scheduler.get_lr(self.epoch) but never assigns the result "
             "to the optimizer, so every step uses the lr the optimizer was created with.",
        effect="The schedule has no effect: training runs at a constant learning rate.",
        wrong="lr = self.scheduler.get_lr(self.epoch)",
        right="self.optimizer.lr = self.scheduler.get_lr(self.epoch)",
    ),
    Cause(
        code="TT302",
        title="epoch's lr set after the epoch, not before",
        pattern=r"the lr is set after (?:each epoch for the next one|the epoch instead of before)",
        what="The learning rate of an epoch is set at the wrong moment: at the end of the "
             "previous epoch, from get_lr(self.epoch + 1), or after the epoch counter was "
             "advanced. Epoch e must train with get_lr(e), set at the start of train_epoch "
             "before its first batch.",
        effect="Every epoch trains with a neighbouring epoch's rate: epoch 0 never gets max_lr "
               "(or keeps the optimizer's initial lr) and the whole schedule is shifted by one.",
        wrong="self.epoch += 1\n"
              "if self.scheduler is not None:\n"
              "    self.optimizer.lr = self.scheduler.get_lr(self.epoch)",
        right="self._set_mode(True)  # start of train_epoch\n"
              "if self.scheduler is not None:\n"
              "    self.optimizer.lr = self.scheduler.get_lr(self.epoch)",
    ),
    Cause(
        code="TT303",
        title="scheduler used without a None check",
        pattern=r"uses the scheduler although it is None",
        what="train_epoch calls self.scheduler.get_lr(...) unconditionally, but the scheduler is "
             "optional and defaults to None.",
        effect="Every trainer built without a scheduler crashes with AttributeError in its first "
               "epoch.",
        wrong="self.optimizer.lr = self.scheduler.get_lr(self.epoch)",
        right="if self.scheduler is not None:\n"
              "    self.optimizer.lr = self.scheduler.get_lr(self.epoch)",
    ),
    Cause(
        code="TT304",
        title="lr overwritten when there is no scheduler",
        pattern=r"(?:must leave optimizer\.lr alone)"
                r"|(?:changed optimizer\.lr although there is no scheduler)",
        what="Without a scheduler your train_epoch still sets optimizer.lr, to a default or a "
             "value of its own. The lr the user gave the optimizer is then lost.",
        effect="Training runs with a learning rate nobody chose: it may barely learn, or diverge.",
        wrong="if self.scheduler is not None:\n"
              "    self.optimizer.lr = self.scheduler.get_lr(self.epoch)\n"
              "else:\n"
              "    self.optimizer.lr = 0.01",
        right="if self.scheduler is not None:\n"
              "    self.optimizer.lr = self.scheduler.get_lr(self.epoch)",
    ),
    Cause(
        code="TT305",
        title="cosine schedule does not decrease to min_lr",
        pattern=r"CosineSchedule\.get_lr does not decrease from max_lr to min_lr",
        what="The trainer applies your CosineSchedule, but get_lr itself does not run from "
             "max_lr down to min_lr (a missing factor 1/2, for instance). The 'cosine' check "
             "names the slip.",
        effect="Every epoch trains with a wrong rate, which may fall below min_lr or rise again.",
        wrong="decay = (self.max_lr - self.min_lr) * (1.0 - math.cos(math.pi * progress))",
        right="decay = (self.max_lr - self.min_lr) * (1.0 - math.cos(math.pi * progress)) / 2.0",
    ),
    Cause(
        code="TT306",
        title="learning rates not recorded",
        pattern=r"learning_rates is not recorded|record the lr each epoch",
        what="train_epoch never appends the epoch's learning rate to "
             "self.history['learning_rates'], with a scheduler or without one.",
        effect="The history keeps no record of the rates, so plots and a resumed run cannot tell "
               "which rate each epoch trained with.",
        wrong="self.history[\"train_loss\"].append(mean_loss)",
        right="self.history[\"train_loss\"].append(mean_loss)\n"
              "self.history[\"learning_rates\"].append(lr)",
    ),
    Cause(
        code="TT307",
        title="recorded lr is not the one the epoch used",
        pattern=r"record the learning rate the epoch trained with",
        what="history['learning_rates'] gets one entry per epoch, but not the rate that epoch's "
             "batches used: it was read before the scheduler set it, or the schedule was applied "
             "late or not at all. Read lr = self.optimizer.lr right after setting it, before the "
             "first batch.",
        effect="The history disagrees with what the optimizer did, so it hides schedule bugs or "
               "shows rates that were never used.",
        wrong="lr = float(self.optimizer.lr)\n"
              "if self.scheduler is not None:\n"
              "    self.optimizer.lr = self.scheduler.get_lr(self.epoch)",
        right="if self.scheduler is not None:\n"
              "    self.optimizer.lr = self.scheduler.get_lr(self.epoch)\n"
              "lr = float(self.optimizer.lr)",
    ),
    Cause(
        code="TT308",
        title="loss never appended to history",
        pattern=r"(?:history\['(?:train|eval)_loss'\] is never appended to)"
                r"|(?:append the epoch's mean loss to history\['train_loss'\] once per epoch)",
        what="train_epoch (or evaluate) returns its mean loss but never appends it to "
             "self.history['train_loss'] (or 'eval_loss').",
        effect="The history stays empty: no loss curve, and checkpoints carry no record of "
               "training.",
        wrong="self.epoch += 1\n"
              "return mean_loss",
        right="self.history[\"train_loss\"].append(mean_loss)\n"
              "self.epoch += 1\n"
              "return mean_loss",
    ),
    Cause(
        code="TT309",
        title="history appended more than once per epoch or call",
        pattern=r"history\['\w+'\] is appended (?:more|less) than once per|"
                r"append evaluate's loss to history\['eval_loss'\] once per call",
        what="A history list does not get exactly one entry per epoch (train_loss, "
             "learning_rates) or per evaluate call (eval_loss): the append sits inside the batch "
             "loop, or is written twice.",
        effect="The history's lengths no longer match the epochs, so plots misalign and reading "
               "an epoch's entry by index gives another epoch's value.",
        wrong="self.history[\"eval_loss\"].append(loss)\n"
              "self.history[\"eval_loss\"].append(loss)",
        right="self.history[\"eval_loss\"].append(loss)",
    ),
    Cause(
        code="TT310",
        title="gradient norms not recorded",
        pattern=r"history\['grad_norm'\] is never appended to",
        what="With grad_clip_norm set, the norm clip_grad_norm returns is never appended to "
             "self.history['grad_norm'].",
        effect="You lose the early warning of divergence that a growing gradient norm gives.",
        wrong="norm = clip_grad_norm(params, self.grad_clip_norm)",
        right="norm = clip_grad_norm(params, self.grad_clip_norm)\n"
              "self.history[\"grad_norm\"].append(norm)",
    ),
    Cause(
        code="TT311",
        title="wrong gradient norm recorded for a step",
        pattern=r"history\['grad_norm'\] must hold|"
                r"the norm clip_grad_norm returned for this step, before clipping",
        what="The norm recorded in history['grad_norm'] and passed to the on_step event is not "
             "the global norm of the step's averaged gradient before clipping: it was measured "
             "after clipping, per batch, or on the window's summed gradient before it was "
             "averaged.",
        effect="The logged norms do not describe the updates taken, so they hide exploding "
               "gradients or show spikes that never happened.",
        wrong="clip_grad_norm(params, self.grad_clip_norm)\n"
              "norm = math.sqrt(sum(float(np.sum(grad_array(p) ** 2)) for p in params))",
        right="norm = clip_grad_norm(params, self.grad_clip_norm)  # the norm before clipping\n"
              "self.history[\"grad_norm\"].append(norm)",
    ),
    Cause(
        code="TT312",
        title="loop event never emitted",
        pattern=r"never fired: call self\._emit",
        what="One of the loop's callback events (on_epoch_begin, on_batch_end, on_step, "
             "on_epoch_end, on_evaluate_end) is never fired: its self._emit(...) call is missing.",
        effect="Callbacks attached to the trainer (live plots, logging) never hear of that event.",
        wrong="loss.backward(float(n))\n"
              "loss_sum += value * n",
        right="loss.backward(float(n))\n"
              "loss_sum += value * n\n"
              "self._emit(\"on_batch_end\", batch=batch, loss=value, samples=n)",
    ),
    Cause(
        code="TT401",
        title="parameters not restored on load",
        pattern=r"the parameters were not restored",
        what="load_checkpoint reads the saved parameter values but never copies them into the "
             "model. Copy them in place, p.data[...] = value, so every holder of those arrays "
             "(the optimizer too) sees them.",
        effect="The resumed run starts from the fresh model's random weights: all training "
               "before the checkpoint is lost.",
        wrong="values = [arrays[f\"model/{i}\"] for i in range(len(params))]",
        right="for p, value in zip(params, values, strict=True):\n"
              "    p.data[...] = value",
    ),
    Cause(
        code="TT402",
        title="optimizer buffers not checkpointed",
        pattern=r"Adam's moments \(exp_avg, exp_avg_sq\) are not in the checkpoint|"
                r"SGD's momentum buffers are not in the checkpoint",
        what="save_checkpoint does not write the optimizer's arrays (Adam's exp_avg and "
             "exp_avg_sq, SGD's momentum_buffer), or load_checkpoint does not give them back. "
             "Save every ndarray of optimizer.state_dict()['state'] and restore it with "
             "load_state_dict.",
        effect="The resumed optimizer starts with zero moments, so its first step already "
               "differs from the uninterrupted run's and the two runs diverge.",
        wrong="arrays = {f\"model/{i}\": p.data for i, p in enumerate(params)}",
        right="for i, state in enumerate(optimizer_state[\"state\"]):\n"
              "    for name, value in state.items():\n"
              "        if isinstance(value, np.ndarray):\n"
              "            arrays[f\"optimizer/{i}/{name}\"] = value",
    ),
    Cause(
        code="TT403",
        title="per-parameter step counts not restored",
        pattern=r"\A(?!.*are not in the checkpoint).*optimizer step count \(state\['step'\]",
        what="The checkpoint does not keep each parameter's optimizer step count, state['step'], "
             "or load does not put it back. This library's Adam reads it for its bias correction.",
        effect="After loading, Adam's bias correction starts again from step 1, so the first "
               "resumed updates are too large and the run leaves the uninterrupted one.",
        wrong="\"param_steps\": [None for s in optimizer_state[\"state\"]],",
        right="\"param_steps\": [s.get(\"step\") for s in optimizer_state[\"state\"]],",
    ),
    Cause(
        code="TT404",
        title="optimizer.step_count not restored",
        pattern=r"optimizer\.step_count was not restored",
        what="The checkpoint does not save the optimizer's own step_count, or load does not "
             "restore it. The updates read the per-parameter counts, so training may still "
             "resume exactly, but the optimizer's state_dict is not given back whole.",
        effect="optimizer.step_count starts again after a load, so whatever reads it (logging, a "
               "schedule by step) is wrong.",
        wrong="\"step_count\": 0,",
        right="\"step_count\": optimizer_state[\"step_count\"],",
    ),
    Cause(
        code="TT405",
        title="saved optimizer hyper-parameters not restored",
        pattern=r"saved optimizer hyper-parameters did not win",
        what="load_checkpoint keeps the hyper-parameters the new optimizer was built with "
             "(betas, eps, momentum, weight_decay) instead of the saved ones. Settings saved in "
             "the file must win.",
        effect="The resumed run continues with other optimizer settings than the run it "
               "continues, so it trains a different model.",
        wrong="\"hyperparameters\": self.optimizer.hyperparameters(),",
        right="\"hyperparameters\": saved[\"hyperparameters\"],",
    ),
    Cause(
        code="TT406",
        title="saved schedule not restored",
        pattern=r"the saved schedule was not restored",
        what="load_checkpoint does not replace the trainer's scheduler with the one the "
             "checkpoint describes, so the new trainer's own schedule (other max_lr, min_lr or "
             "total_epochs) runs.",
        effect="The resumed epochs train with learning rates the original run would never have "
               "used.",
        wrong="self.grad_clip_norm = None if clip is None else float(clip)",
        right="self.scheduler = scheduler\n"
              "self.grad_clip_norm = None if clip is None else float(clip)",
    ),
    Cause(
        code="TT407",
        title="grad_clip_norm not restored",
        pattern=r"grad_clip_norm was not restored",
        what="load_checkpoint ignores the saved grad_clip_norm and keeps the one the new trainer "
             "was built with.",
        effect="The resumed run clips at another threshold, so its updates differ from the "
               "uninterrupted run's.",
        wrong="self.scheduler = scheduler",
        right="self.scheduler = scheduler\n"
              "self.grad_clip_norm = None if clip is None else float(clip)",
    ),
    Cause(
        code="TT408",
        title="epoch counter not restored",
        pattern=r"the scheduler/epoch was not restored",
        what="load_checkpoint does not set trainer.epoch from the file, so it stays 0 on the "
             "fresh trainer.",
        effect="The schedule restarts from max_lr and the loader replays epoch 0's order: the "
               "resumed run repeats the start of training instead of continuing it.",
        wrong="self.step = step",
        right="self.epoch, self.step = epoch, step",
    ),
    Cause(
        code="TT409",
        title="history not restored",
        pattern=r"history was not restored",
        what="The checkpoint does not hold the whole history (train_loss, eval_loss, "
             "learning_rates, grad_norm), or load_checkpoint does not put it back.",
        effect="After resuming the history is empty or partial: the curves show only the resumed "
               "epochs.",
        wrong="self.epoch, self.step = epoch, step",
        right="self.epoch, self.step = epoch, step\n"
              "self.history = copy.deepcopy(history)",
    ),
    Cause(
        code="TT410",
        title="training mode not restored",
        pattern=r"the training mode was not restored",
        what="The checkpoint does not record trainer.training_mode, or load_checkpoint does not "
             "put the model and every layer back into that mode.",
        effect="The resumed trainer is in another mode than the saved one, so its Dropouts "
               "behave differently from the uninterrupted run's.",
        wrong="self.history = copy.deepcopy(history)\n"
              "self._clear_grads()",
        right="self.history = copy.deepcopy(history)\n"
              "self._set_mode(training_mode)\n"
              "self._clear_grads()",
    ),
    Cause(
        code="TT411",
        title="Dropout random state not checkpointed",
        pattern=r"Dropout layers' random states were not saved|"
                r"no usable random state for a Dropout",
        what="save_checkpoint does not write each Dropout's rng.bit_generator.state (or writes "
             "something incomplete, such as {}), or load_checkpoint does not set it back. Store "
             "the dict the generator gives, whole, and restore that same dict.",
        effect="The resumed run draws other dropout masks than the uninterrupted one, or loading "
               "fails on the saved state.",
        wrong="\"rng_state\": [{} for m in rng_owners(self.model)],",
        right="\"rng_state\": [m.rng.bit_generator.state for m in rng_owners(self.model)],",
    ),
    Cause(
        code="TT412",
        title="data order not restored",
        pattern=r"the data order was not restored",
        what="load_checkpoint does not hand the saved shuffling seed to the next epoch: the "
             "trainer must keep it (self._restored_data_seed) so that _start_data_order replays "
             "epoch e's order with the loader's load_state_dict.",
        effect="The resumed run sees its batches in another order than the uninterrupted run.",
        wrong="self._data_seed = data_seed",
        right="self._data_seed = self._restored_data_seed = data_seed",
    ),
    Cause(
        code="TT413",
        title="train_epoch does not set the loader's epoch",
        pattern=r"train_epoch never tells the loader which epoch",
        what="train_epoch never tells a shuffling loader which epoch it trains (set_epoch, or "
             "load_state_dict after a load). The notebook's helper "
             "self._start_data_order(dataloader) does both.",
        effect="A resumed run gets the new loader's own order whatever the checkpoint holds, so "
               "it trains on other batches.",
        wrong="params = list(self.model.parameters())",
        right="self._start_data_order(dataloader)\n"
              "params = list(self.model.parameters())",
    ),
    Cause(
        code="TT414",
        title="evaluate sets the loader's epoch",
        pattern=r"evaluate chose its loader's epoch",
        what="evaluate calls self._start_data_order (or set_epoch / load_state_dict) on its own "
             "loader. Only train_epoch may choose the order; otherwise the trainer records the "
             "evaluation loader's seed instead of the training loader's.",
        effect="The checkpoint holds the wrong seed, or evaluate uses up the restored one, so "
               "the resumed training epochs see another order.",
        wrong="self._start_data_order(dataloader)\n"
              "self._set_mode(False)",
        right="self._set_mode(False)",
    ),
    Cause(
        code="TT415",
        title="pickle used for checkpoints",
        pattern=r"the file is a pickle: loading it can run arbitrary code",
        what="save_checkpoint writes a pickle (pickle.dump, object arrays) or load_checkpoint "
             "reads one (pickle.load, np.load(allow_pickle=True)). Unpickling a file runs "
             "whatever code it holds.",
        effect="Loading a checkpoint someone else made can run arbitrary code on your machine.",
        wrong="with open(path, \"rb\") as f:\n"
              "    arrays, meta = pickle.load(f)",
        right="arrays, meta = read_checkpoint(path)  # np.load(allow_pickle=False) and JSON",
    ),
    Cause(
        code="TT416",
        title="checkpoint not written atomically",
        pattern=r"the save is not atomic",
        what="save_checkpoint rewrites the existing file in place. A crash or a full disk in the "
             "middle leaves a truncated checkpoint, and the previous good one is already gone.",
        effect="An interrupted save can destroy the only checkpoint of a long run.",
        wrong="path.write_bytes(data)",
        right="staged = path.with_name(path.name + \".tmp\")\n"
              "staged.write_bytes(data)\n"
              "os.replace(staged, path)",
    ),
    Cause(
        code="TT417",
        title="load changes the trainer before validating",
        pattern=r"copied the first layer before noticing the shapes differ",
        what="load_checkpoint copies values into the model while it is still checking the file, "
             "so a problem found later (another shape, a missing key) raises after part of the "
             "state was overwritten. Validate everything first, then change anything.",
        effect="A failed load leaves a half-restored trainer that goes on with a mix of old and "
               "loaded weights.",
        wrong="values.append(value)\n"
              "p.data[...] = value",
        right="values.append(value)  # copied by restore(), once every check has passed",
    ),
    Cause(
        code="TT501",
        title="counted numbers, not bytes",
        pattern=r"counted numbers, not bytes",
        what="You count elements (p.data.size) instead of bytes. A float32 takes 4 bytes and a "
             "mask's bool 1 byte; p.data.nbytes gives the bytes directly.",
        effect="The predicted memory is about 4 times too small.",
        wrong="parameters = sum(p.data.size for p in model.parameters())",
        right="parameters = sum(p.data.nbytes for p in model.parameters())",
    ),
    Cause(
        code="TT502",
        title="8 bytes per number (float64)",
        pattern=r"8 bytes per number",
        what="You count 8 bytes per number, as for float64. tinytorch keeps every number as "
             "float32, 4 bytes.",
        effect="Parameters, and everything counted like them, come out twice too large.",
        wrong="parameters = sum(8 * p.data.size for p in model.parameters())",
        right="parameters = sum(p.data.nbytes for p in model.parameters())",
    ),
    Cause(
        code="TT503",
        title="biases not counted",
        pattern=r"the biases are missing",
        what="You count only the weight matrices (the 2-D parameters, say) and skip the biases. "
             "Every tensor model.parameters() yields counts.",
        effect="Parameters, gradients and optimizer state all come out too small.",
        wrong="parameters = sum(p.data.nbytes for p in model.parameters() if p.data.ndim == 2)",
        right="parameters = sum(p.data.nbytes for p in model.parameters())",
    ),
    Cause(
        code="TT504",
        title="gradients not counted like the parameters",
        pattern=r"gradients take as many bytes as the parameters",
        what="backward gives every parameter a gradient of its own shape and dtype, so gradients "
             "take exactly as many bytes as the parameters. You return 0 or another amount.",
        effect="The total misses, or misstates, a whole copy of the model.",
        wrong="memory = {\"parameters\": parameters, \"gradients\": 0,",
        right="memory = {\"parameters\": parameters, \"gradients\": parameters,",
    ),
    Cause(
        code="TT505",
        title="optimizer state read before the first step",
        pattern=r"optimizer\.state is empty until the first step",
        what="You add up the arrays in optimizer.state, but training_memory predicts before any "
             "step and that state is empty until the first one. Predict from the optimizer's "
             "kind and settings.",
        effect="optimizer_state comes out 0 for Adam, AdamW and SGD with momentum.",
        wrong="optimizer_state = sum(v.nbytes for s in optimizer.state for v in s.values()\n"
              "                      if isinstance(v, np.ndarray))",
        right="optimizer_state = buffers * sum(p.data.nbytes for p in optimizer.params)",
    ),
    Cause(
        code="TT506",
        title="plain SGD counted with a buffer",
        pattern=r"\A(?!.*empty until the first step).*plain SGD keeps no buffer",
        what="SGD with momentum == 0 keeps no buffer, but you count one (or two) per parameter.",
        effect="optimizer_state comes out one or two copies of the model where it is 0.",
        wrong="elif isinstance(optimizer, optim.SGD):\n"
              "    buffers = 1",
        right="elif isinstance(optimizer, optim.SGD):\n"
              "    buffers = 1 if optimizer.momentum > 0 else 0",
    ),
    Cause(
        code="TT507",
        title="SGD momentum counted with two buffers",
        pattern=r"\A(?!.*empty until the first step).*SGD with momentum keeps one buffer per "
                r"parameter",
        what="SGD with momentum keeps one buffer per parameter (momentum_buffer); you count two, "
             "as for Adam, or some other number.",
        effect="optimizer_state for SGD with momentum comes out a whole copy of the model too "
               "large.",
        wrong="elif isinstance(optimizer, optim.SGD):\n"
              "    buffers = 2",
        right="elif isinstance(optimizer, optim.SGD):\n"
              "    buffers = 1 if optimizer.momentum > 0 else 0",
    ),
    Cause(
        code="TT508",
        title="Adam counted with one buffer",
        pattern=r"\A(?!.*empty until the first step).*AdamW? keeps two buffers per parameter",
        what="Adam and AdamW keep two buffers per parameter, exp_avg and exp_avg_sq; you count "
             "one (or another number). An AdamW is an Adam, so isinstance(optimizer, optim.Adam) "
             "covers both.",
        effect="optimizer_state for Adam comes out a whole copy of the model too small.",
        wrong="if isinstance(optimizer, optim.Adam):\n"
              "    buffers = 1",
        right="if isinstance(optimizer, optim.Adam):  # AdamW too\n"
              "    buffers = 2",
    ),
    Cause(
        code="TT509",
        title="ReLU's mask not counted",
        pattern=r"ReLU's mask is missing",
        what="A ReLU keeps its output (4 bytes per number) and the boolean mask x > 0 its "
             "backward needs (1 byte per number); you count only the output.",
        effect="activations come out batch_size * width bytes too small for every ReLU.",
        wrong="elif isinstance(layer, act.ReLU):\n"
              "    activations += 4 * batch_size * width",
        right="elif isinstance(layer, act.ReLU):\n"
              "    activations += 5 * batch_size * width",
    ),
    Cause(
        code="TT510",
        title="Dropout's mask not counted",
        pattern=r"Dropout's mask is missing",
        what="A Dropout with p > 0 runs in training mode during a step and keeps its float32 "
             "mask and its output, 8 bytes per number; you count only one of them.",
        effect="activations come out 4 * batch_size * width bytes too small for every Dropout.",
        wrong="elif isinstance(layer, nn.Dropout) and layer.p > 0:\n"
              "    activations += 4 * batch_size * width",
        right="elif isinstance(layer, nn.Dropout) and layer.p > 0:\n"
              "    activations += 8 * batch_size * width",
    ),
    Cause(
        code="TT511",
        title="Dropout with p = 0 counted",
        pattern=r"a Dropout with p = 0 returns its input unchanged",
        what="A Dropout with p == 0 returns its input unchanged and keeps nothing; you count it "
             "like any other Dropout.",
        effect="activations come out too large for models holding a Dropout(0.0).",
        wrong="elif isinstance(layer, nn.Dropout):",
        right="elif isinstance(layer, nn.Dropout) and layer.p > 0:",
    ),
    Cause(
        code="TT512",
        title="batch_size left out of activations",
        pattern=r"batch_size is missing: every kept array has one row per sample",
        what="Every array a forward pass keeps has one row per sample, so each layer's bytes "
             "grow with batch_size; you count them for a single sample.",
        effect="activations come out batch_size times too small, hiding the part of memory that "
               "grows with the batch.",
        wrong="width = layer.out_features\n"
              "activations += 4 * width",
        right="width = layer.out_features\n"
              "activations += 4 * batch_size * width",
    ),
    Cause(
        code="TT513",
        title="activations not counted layer by layer",
        pattern=r"compare layer by layer with the table",
        what="Your activations do not follow the per-layer table over the layers modules(model) "
             "yields, in order. A common cause: walking only the top-level layers "
             "(model.layers), which misses nested Sequentials and models without a base class.",
        effect="activations are wrong for any model with nested or duck-typed layers.",
        wrong="for layer in getattr(model, \"layers\", []):",
        right="for layer in modules(model):",
    ),
    Cause(
        code="TT514",
        title="total is not the sum of the four parts",
        pattern=r"total must be parameters \+ gradients \+ optimizer_state \+ activations",
        what="total must be parameters + gradients + optimizer_state + activations, the four "
             "values you return; yours leaves one out or adds something else.",
        effect="The headline number disagrees with its own parts.",
        wrong="memory[\"total\"] = parameters + optimizer_state + activations",
        right="memory[\"total\"] = sum(memory.values())",
    ),
    Cause(
        code="TT901",
        title="crash on valid input",
        pattern=r"(?:crashed on valid batches|raised this error on valid input)"
                r"|(?:train_epoch crashed on a plain list|train_epoch crashes on this setup)",
        what="Your code raised an exception on input the spec allows; the last line of your code "
             "in the traceback shows where. Nothing else about the function can be judged until "
             "it runs.",
        effect="Everything that calls the function fails; in a real run, training stops at that "
               "line.",
        wrong="n = targets.shape[1]  # fails for 1-D class labels",
        right="n = len(targets) if targets.ndim else 1",
    ),
    Cause(
        code="TT902",
        title="attribute the spec requires is missing",
        pattern=r"your object lacks what the spec requires",
        what="Your object lacks a method or attribute the spec names (evaluate, history, epoch, "
             "training_mode, ...): it was renamed, never written, or defined outside the class.",
        effect="Any code that uses it, the checks included, crashes with AttributeError.",
        wrong="def eval(self, dataloader):",
        right="def evaluate(self, dataloader):",
    ),
    Cause(
        code="TT903",
        title="history key missing or misspelled",
        pattern=r"(?:create history\['\w+'\] = \[\] in __init__)"
                r"|(?:the check read the key .+ from your object and it is not there)",
        what="self.history lacks one of the spec's keys ('train_loss', 'eval_loss', "
             "'learning_rates', 'grad_norm'), usually because __init__ creates it under another "
             "name.",
        effect="Reading the history (plots, checkpoints, the checks) fails with KeyError or "
               "finds nothing.",
        wrong="self.history = {\"train_losses\": [], \"eval_loss\": [], \"learning_rates\": []}",
        right="self.history = {\"train_loss\": [], \"eval_loss\": [], \"eval_accuracy\": [],\n"
              "                \"learning_rates\": [], \"grad_norm\": []}",
    ),
    Cause(
        code="TT904",
        title="exit() called",
        pattern=r"your code called exit\(\) or sys\.exit\(\)",
        what="Your code calls exit() or sys.exit(), on an error or at the end of a cell. A "
             "function must return or raise an exception; exit stops the whole Python process.",
        effect="The kernel or the grading run stops on the spot, and nothing after it runs.",
        wrong="if not math.isfinite(value):\n"
              "    sys.exit(\"training diverged\")",
        right="if not math.isfinite(value):\n"
              "    raise TrainingDivergedError(f\"loss is {value} at epoch {self.epoch}, batch "
              "{batch}\")",
    ),
    Cause(
        code="TT905",
        title="run stopped or checks interfered with",
        pattern=r"your code stopped the run",
        what="The graded run of a check did not finish: your code exited Python, crashed the "
             "interpreter, ran past the time or memory limit, or changed the checks' own objects.",
        effect="The check cannot be judged at all, so it earns nothing.",
        wrong="for inputs, targets in itertools.cycle(dataloader):  # never ends",
        right="for batch, (inputs, targets) in enumerate(dataloader):",
    ),
    Cause(
        code="TT906",
        title="a graded name the notebook never defines",
        pattern=r"is graded but the notebook never defines it",
        what="A name the checks grade (CosineSchedule, clip_grad_norm, Trainer, "
             "training_memory) is defined by no cell of the notebook: its answer cell was "
             "deleted, renamed, or its definition given another name.",
        effect="Every check that needs it fails, whatever the rest of the code does; the part "
               "scores nothing even if it was written, under another name.",
        wrong="def memory_of_training(model, optimizer, batch_size):  # renamed",
        right="def training_memory(model, optimizer, batch_size):  # the spec's name",
    ),
)


@cache
def by_code() -> dict[str, Cause]:
    """Every cause by its code."""
    return {cause.code: cause for cause in CAUSES}


@cache
def _compiled() -> tuple[tuple[re.Pattern[str], Cause], ...]:
    return tuple((re.compile(cause.pattern, re.S), cause) for cause in CAUSES
                 if not cause.retired)


def matching(likely_bug: str) -> list[Cause]:
    """Every cause whose pattern matches ``likely_bug`` (one, when the catalog is right)."""
    return [cause for pattern, cause in _compiled() if pattern.search(likely_bug)]


def code_for(likely_bug: str) -> str | None:
    """The code of the cause a check's likely-bug words name, or None."""
    found = matching(likely_bug)
    return found[0].code if found else None


def explain(code: str) -> str:
    """The explanation of ``code`` (``TT112``, any case), or a ValueError naming it."""
    cause = by_code().get(code.strip().upper())
    if cause is None:
        raise ValueError(f"no cause has the code {code!r}: codes run from {min(by_code())} to "
                         f"{max(by_code())} (`tinytorch explain --list` lists them)")
    return cause.explanation()


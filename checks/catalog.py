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
        wrong="t = epoch / total_epochs  # grows past 1: the cosine climbs back up\n"
              "lr = lo + (hi - lo) * (1 + math.cos(math.pi * t)) / 2",
        right="t = min(epoch / total_epochs, 1.0)  # past the end the rate stays at lo\n"
              "lr = lo + (hi - lo) * (1 + math.cos(math.pi * t)) / 2",
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
        wrong="lr = lo + (hi - lo) * (1 + math.cos(math.pi * t))  # spans 2 * (hi - lo)",
        right="lr = lo + (hi - lo) * (1 + math.cos(math.pi * t)) / 2  # from hi down to lo",
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
        wrong="return np.float32(lr)  # prints like a number, is not a float",
        right="return float(lr)",
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
        wrong="sq = sum(float((p.grad.data ** 2).sum()) for p in params)  # None has no .data",
        right="for p in params:\n"
              "    if p.grad is None:  # no gradient: skip the parameter\n"
              "        continue\n"
              "    g = p.grad.data if isinstance(p.grad, Tensor) else p.grad  # or an ndarray",
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
              "    g *= c\n"
              "return math.sqrt(sum(float((g * g).sum()) for g in grads))  # after scaling",
        right="norm = math.sqrt(sum(float((g * g).sum()) for g in grads))  # before scaling\n"
              "...  # scale the gradients\n"
              "return norm",
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
        wrong="norm = math.sqrt(sum(float((grad_array(p) ** 2).sum()) for p in parameters))\n"
              "for p in parameters:  # a generator is empty by now: nothing is scaled\n"
              "    grad_array(p)[...] *= c",
        right="parameters = list(parameters)  # a generator can be read only once\n"
              "norm = math.sqrt(sum(float((grad_array(p) ** 2).sum()) for p in parameters))\n"
              "for p in parameters:\n"
              "    grad_array(p)[...] *= c",
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
              "    own = math.sqrt(float((g * g).sum()))  # each gradient's own norm\n"
              "    if own > max_norm:\n"
              "        g *= max_norm / own",
        right="norm = math.sqrt(sum(float((g * g).sum()) for g in grads))  # one global norm\n"
              "if norm > max_norm:\n"
              "    for g in grads:\n"
              "        g *= max_norm / (norm + 1e-6)  # the same factor for every gradient",
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
        wrong="c = max_norm / (norm + 1e-6)  # above 1 when norm < max_norm\n"
              "for g in grads:\n"
              "    g *= c  # small gradients are blown up to max_norm",
        right="if norm > max_norm:  # below the threshold, leave the gradients alone\n"
              "    for g in grads:\n"
              "        g *= max_norm / (norm + 1e-6)  # the norm becomes max_norm",
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
        wrong="norm = grad_norm(params)  # measured and logged, never clipped\n"
              "opt.step()",
        right="norm = clip_grad_norm(params, max_norm)  # measures AND scales in place\n"
              "opt.step()",
    ),
    Cause(
        code="TT017",
        title="clip_grad_norm called with its default max_norm",
        pattern=r"calls clip_grad_norm with its default max_norm",
        what="The trainer calls clip_grad_norm(params) without passing self.grad_clip_norm, so "
             "every gradient is clipped to the default max_norm of 1 whatever the user set.",
        effect="Steps are shortened to norm 1 even when the threshold is far above the "
               "gradients: training is slowed, and the threshold the user chose is ignored.",
        wrong="clip_grad_norm(params)  # max_norm defaults to 1.0, whatever the user set",
        right="clip_grad_norm(params, max_norm)  # the threshold the trainer was given",
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
        wrong="loss.backward()\n"
              "clip_grad_norm(params, max_norm)  # after each batch: a partial gradient",
        right="# once per step: after the window's last backward and after averaging\n"
              "clip_grad_norm(params, max_norm)\n"
              "opt.step()",
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
        wrong="loss.backward()\n"
              "clip_grad_norm(params, max_norm * len(y))  # every batch, threshold rescaled",
        right="if max_norm is not None:  # once per step, right before opt.step()\n"
              "    clip_grad_norm(params, max_norm)",
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
        wrong="total = clip_grad_norm(params, max_norm)  # clips, returns the norm\n"
              "if total > max_norm:\n"
              "    continue  # the step is skipped\n"
              "opt.step()",
        right="clip_grad_norm(params, max_norm)  # shortens the step, never skips it\n"
              "opt.step()",
    ),
    Cause(
        code="TT021",
        title="cosine off by one: epochs counted from 1",
        pattern=r"off by one: get_lr\(e\) returns the rate of epoch e \+ 1",
        what="get_lr counts epochs from 1: progress uses epoch + 1, so get_lr(e) returns the rate "
             "of epoch e + 1. Epochs are 0-based: get_lr(0) must be max_lr, and the cosine "
             "reaches min_lr at epoch total_epochs.",
        effect="The first epoch never trains at max_lr and min_lr is reached one epoch early: "
               "the whole schedule runs one epoch ahead.",
        wrong="t = (epoch + 1) / total  # counted from 1: get_lr(0) gives epoch 1's rate",
        right="t = epoch / total  # 0-based: get_lr(0) is hi, get_lr(total) is lo",
    ),
    Cause(
        code="TT022",
        title="cosine divided by total_epochs - 1",
        pattern=r"the cosine runs over total_epochs - 1 epochs",
        what="progress divides by total_epochs - 1, often so that the last epoch before "
             "total_epochs ends exactly at min_lr. The spec's cosine runs over total_epochs "
             "epochs: lr(e) uses pi * e / total_epochs.",
        effect="The schedule decays too fast: every rate is a little low, the epoch before "
               "total_epochs already trains at min_lr, and total_epochs=1 divides by zero.",
        wrong="t = epoch / (total - 1)  # lo one epoch early; total == 1 divides by 0",
        right="t = epoch / total  # the cosine runs over total epochs: pi * e / total",
    ),
    Cause(
        code="TT023",
        title="cosine schedule upside down",
        pattern=r"the schedule is upside down",
        what="The cosine is flipped: (1 + cos) where the formula has (1 - cos), or the reverse, "
             "or max_lr and min_lr swapped. The rate then starts at min_lr and climbs to max_lr "
             "by total_epochs.",
        effect="Training starts with its smallest steps and ends with its largest, the opposite "
               "of annealing: the run cannot settle into a minimum near the end.",
        wrong="lr = lo + (hi - lo) * (1 - math.cos(math.pi * t)) / 2  # climbs from lo up to hi",
        right="lr = lo + (hi - lo) * (1 + math.cos(math.pi * t)) / 2  # falls from hi down to lo",
    ),
    Cause(
        code="TT024",
        title="cosine angle without pi",
        pattern=r"the angle lacks pi",
        what="math.cos takes radians: cos(epoch / total_epochs) only sweeps angles from 0 to 1 "
             "radian instead of 0 to pi, so the cosine never gets near -1.",
        effect="The rate barely decays (still about 80 % of the way up at the last epoch) and "
               "then drops abruptly to min_lr at total_epochs.",
        wrong="lr = lo + (hi - lo) * (1 + math.cos(t)) / 2  # 0 to 1 radian: cos never nears -1",
        right="lr = lo + (hi - lo) * (1 + math.cos(math.pi * t)) / 2  # 0 to pi",
    ),
    Cause(
        code="TT025",
        title="min_lr not added to the cosine",
        pattern=r"min_lr is not added",
        what="The rate is computed as (max_lr - min_lr) * (1 + cos) / 2 without adding min_lr: "
             "it starts at max_lr - min_lr and heads for 0 instead of min_lr.",
        effect="Every rate is min_lr too low, epoch 0 included; near the end it falls to 0 "
               "unless a max(min_lr, ...) props it up, so the last epochs learn next to nothing.",
        wrong="lr = (hi - lo) * (1 + math.cos(math.pi * t)) / 2  # from hi - lo down to 0",
        right="lr = lo + (hi - lo) * (1 + math.cos(math.pi * t)) / 2  # from hi down to lo",
    ),
    Cause(
        code="TT026",
        title="cosine decays to 0 instead of min_lr",
        pattern=r"the schedule decays to 0 instead of min_lr",
        what="The decay spans max_lr instead of max_lr - min_lr: the rate follows "
             "max_lr * (1 + cos) / 2, which ignores min_lr and ends at 0.",
        effect="Rates are too low through the middle of the schedule and hit 0 (or a clamp at "
               "min_lr) before total_epochs; a schedule with min_lr == max_lr is not constant.",
        wrong="lr = hi * (1 + math.cos(math.pi * t)) / 2  # ignores lo: ends at 0",
        right="lr = lo + (hi - lo) * (1 + math.cos(math.pi * t)) / 2  # ends at lo",
    ),
    Cause(
        code="TT027",
        title="get_lr rejects epochs past total_epochs",
        pattern=r"get_lr must accept every epoch >= 0",
        what="get_lr raises for some epoch the spec allows, typically every epoch >= "
             "total_epochs. A run may train longer than its schedule or resume past its end: "
             "from total_epochs on, get_lr returns min_lr.",
        effect="Training crashes in the first epoch at or after total_epochs instead of going on "
               "at min_lr.",
        wrong="if epoch >= total:  # yet a run may train past its schedule\n"
              "    raise ValueError(f\"epoch {epoch} is past the schedule\")",
        right="if epoch >= total:  # past the end the rate stays at the floor\n"
              "    return lo",
    ),
    Cause(
        code="TT028",
        title="get_lr accepts a negative epoch",
        pattern=r"get_lr accepts a negative epoch",
        what="get_lr computes a rate for a negative epoch instead of raising ValueError: the "
             "formula returns some number (the warmup ramp gives 0 or less, the cosine, being "
             "even, the rate of epoch 1).",
        effect="A broken epoch counter (a wrong resume, a decrement) goes unnoticed: training "
               "runs on with a plausible rate instead of stopping at the error.",
        wrong="if epoch >= self.total_epochs:  # no check of epoch < 0 before it\n"
              "    return self.min_lr",
        right="if not _is_number(epoch) or not math.isfinite(epoch) or epoch < 0:\n"
              "    raise ValueError(f\"epoch must be a finite number >= 0, got {epoch!r}\")",
    ),
    Cause(
        code="TT029",
        title="sum of squares returned instead of the norm",
        pattern=r"returned the sum of squares",
        what="clip_grad_norm returns the sum of the squared gradient entries and forgets the "
             "square root: the global L2 norm is sqrt(sum over parameters of sum(grad ** 2)).",
        effect="The logged norm (history['grad_norm']) is the squared norm: large norms look far "
               "larger and small ones smaller, misleading any threshold chosen from it.",
        wrong="return sq  # the sum of squares: the norm squared",
        right="return math.sqrt(sq)  # the L2 norm is the root of the sum of squares",
    ),
    Cause(
        code="TT030",
        title="norm of one parameter instead of all",
        pattern=r"returned one parameter's norm",
        what="The norm covers a single parameter's gradient: the norm, the clipping and the "
             "return sit inside the loop over the gradients, so the function returns after the "
             "first one.",
        effect="Clipping uses the wrong factor: the global norm is underestimated, so "
               "gradients above max_norm pass or are shortened too little, and the logged norm "
               "is too small.",
        wrong="for g in grads:\n"
              "    sq += float((g * g).sum())\n"
              "    return math.sqrt(sq)  # inside the loop: the first gradient only",
        right="for g in grads:\n"
              "    sq += float((g * g).sum())\n"
              "norm = math.sqrt(sq)  # after the loop: every gradient counted",
    ),
    Cause(
        code="TT031",
        title="returned norm is not the global L2 norm",
        pattern=r"the returned norm is not sqrt\(sum over parameters"
                r"|return the global L2 norm of all gradients, even when nothing is clipped",
        what="The value returned is not sqrt(sum over parameters of sum(grad ** 2)), the global "
             "norm before clipping. A common cause: the running sum is overwritten (=) instead "
             "of accumulated (+=), so only the last gradient counts.",
        effect="The logged norm is wrong, and when the same number sets the clip factor, "
               "gradients are clipped too much, too little or not at all.",
        wrong="squares = square  # overwritten: only the last gradient counts",
        right="squares += square",
    ),
    Cause(
        code="TT032",
        title="missing gradients filled in instead of skipped",
        pattern=r"parameters without a gradient must be skipped",
        what="clip_grad_norm gives a parameter whose p.grad is None a gradient (zeros) instead of "
             "skipping it. None means the parameter took no part in the loss; it must stay None.",
        effect="Frozen or unused parameters get zero gradients, so an optimizer with weight "
               "decay, momentum or Adam's moments moves them, and each costs a gradient's memory.",
        wrong="if p.grad is None:\n"
              "    p.grad = np.zeros_like(p.data)",
        right="for p in params:\n"
              "    if p.grad is None:  # took no part in the loss: skip it, leave it None\n"
              "        continue",
    ),
    Cause(
        code="TT033",
        title="p.grad replaced instead of scaled in place",
        pattern=r"instead of replacing p\.grad with another kind of object",
        what="clip_grad_norm assigns p.grad a new object of another kind (p.grad = "
             "grad_array(p) * scale turns a Tensor gradient into an ndarray) instead of scaling "
             "the gradient's array in place.",
        effect="After a clipped step, code reading p.grad.data fails with AttributeError, and "
               "any reference to the old gradient array still holds the unclipped values.",
        wrong="p.grad = grad_array(p) * scale",
        right="for g in grads:  # grad_array(p): p.grad.data or p.grad itself\n"
              "    g *= scale",
    ),
    Cause(
        code="TT034",
        title="clipping changes the gradients' dtype",
        pattern=r"scaling changed the dtype",
        what="Scaling builds a new array of another dtype and assigns it back. With NumPy 2 a "
             "float32 array times an np.float64 scalar (np.sqrt returns one) is float64, so "
             "p.grad.data = p.grad.data * scale turns float32 gradients into float64.",
        effect="Clipped gradients take twice the memory and no longer match the float32 weights; "
               "an optimizer writing p.data = p.data - lr * g turns the weights float64 too.",
        wrong="total_norm = np.sqrt(squares)  # np.float64\n"
              "p.grad.data = p.grad.data * scale  # float32 * np.float64 -> float64",
        right="for g in grads:\n"
              "    g *= scale  # in place: the dtype stays",
    ),
    Cause(
        code="TT035",
        title="clip factor applied twice or squared",
        pattern=r"the gradients were scaled twice",
        what="The gradients end up multiplied by (max_norm / total_norm) squared: they were "
             "scaled twice, or the factor was computed from squared norms "
             "(max_norm ** 2 / squares) without the square root.",
        effect="Clipped gradients come out far below max_norm (max_norm ** 2 / total_norm), so "
               "the large steps clipping should only cap nearly vanish.",
        wrong="c = max_norm ** 2 / sq  # from squared norms: the factor squared",
        right="for g in grads:\n"
              "    g *= max_norm / (norm + 1e-6)  # once, from the norm (the root of sq)",
    ),
    Cause(
        code="TT036",
        title="gradients clipped with a wrong factor",
        pattern=r"scale every gradient by max_norm / total_norm \(the same factor for all\)",
        what="Above the threshold the gradients are scaled by a factor other than "
             "max_norm / total_norm, such as 1 / total_norm (normalised to norm 1, ignoring "
             "max_norm). Clipping must bring the global norm to exactly max_norm.",
        effect="Clipped steps have the wrong length: with g /= total_norm every clipped step has "
               "norm 1 whatever max_norm the user set.",
        wrong="for g in grads:\n"
              "    g /= norm  # every clipped step gets norm 1, whatever max_norm is",
        right="for g in grads:\n"
              "    g *= max_norm / (norm + 1e-6)  # the global norm becomes max_norm",
    ),
    Cause(
        code="TT037",
        title="max_norm not validated",
        pattern=r"a negative, NaN or infinite max_norm is accepted",
        what="clip_grad_norm accepts a max_norm that is negative, NaN or infinite instead of "
             "raising ValueError. NaN fails every comparison, so a test like max_norm < 0 alone "
             "lets it through.",
        effect="A bad threshold is used silently: a negative max_norm flips every clipped "
               "gradient (the step climbs the loss), and NaN or inf turns clipping off.",
        wrong="if max_norm < 0:\n"
              "    raise ValueError(f\"max_norm must be >= 0, got {max_norm!r}\")",
        right="if not _is_number(max_norm) or not math.isfinite(max_norm) or max_norm < 0:\n"
              "    raise ValueError(f\"max_norm must be a finite number >= 0, got {max_norm!r}\")",
    ),
    Cause(
        code="TT038",
        title="lr set from the step count at every step",
        pattern=r"the lr changes at every batch",
        what="The trainer sets the rate from the scheduler at every batch or optimizer step, "
             "passing the step or batch count as the epoch (get_lr(self.step)). CosineSchedule "
             "counts epochs: get_lr(self.epoch), once, before the epoch's first batch.",
        effect="The rate changes within each epoch and the schedule is used up after "
               "total_epochs steps instead of epochs, so most of training runs at min_lr.",
        wrong="for x, y in batches:\n"
              "    ...\n"
              "    opt.lr = sched.get_lr(n_steps)  # a step count, at every step",
        right="opt.lr = sched.get_lr(epoch)  # once, before the epoch's first batch\n"
              "for x, y in batches:\n"
              "    ...",
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
        wrong="loss.backward()\n"
              "opt.zero_grad()  # the gradient is thrown away unused",
        right="loss.backward()\n"
              "opt.step()\n"
              "opt.zero_grad()",
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
        wrong="for i, (x, y) in enumerate(batches):\n"
              "    loss_fn(model.forward(x), y).backward()\n"
              "    if i % k == 0:  # steps after batch 0, k, 2k...: not once per window\n"
              "        opt.step(); opt.zero_grad()",
        right="count += 1  # batches in the current window\n"
              "if count == k:\n"
              "    opt.step(); opt.zero_grad()\n"
              "    count = 0",
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
        wrong="loss.backward()\n"
              "opt.step()  # .grad keeps this gradient: the next backward adds to it",
        right="loss.backward()\n"
              "opt.step()\n"
              "opt.zero_grad()  # or p.grad = None for every parameter",
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
        wrong="def train_epoch(self, batches):\n"
              "    for x, y in batches:  # .grad may still hold an old gradient",
        right="def train_epoch(self, batches):\n"
              "    self.optimizer.zero_grad()  # nothing from before reaches the first step\n"
              "    for x, y in batches:",
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
        wrong="for x, y in window:\n"
              "    loss_fn(model.forward(x), y).backward()  # k mean gradients add up\n"
              "opt.step()  # about k times too large",
        right="for x, y in window:\n"
              "    loss_fn(model.forward(x), y).backward(float(len(y)))  # times its samples\n"
              "    n_seen += len(y)\n"
              "g /= n_seen  # for every gradient, then opt.step()",
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
        wrong="loss.backward()  # every batch counts the same\n"
              "...\n"
              "g /= k",
        right="loss.backward(float(len(y)))  # each batch weighted by its samples\n"
              "...\n"
              "g /= n_seen  # the window's samples, not its batches",
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
              "g /= k",
        right="loss.backward(float(len(y)))\n"
              "...\n"
              "g /= n_seen  # the samples of the window",
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
        wrong="for i, (x, y) in enumerate(batches, start=1):\n"
              "    loss_fn(model.forward(x), y).backward()\n"
              "    if i % k == 0:\n"
              "        opt.step(); opt.zero_grad()  # and the last i % k batches?",
        right="if count:  # after the loop: leftover batches make one more step\n"
              "    opt.step(); opt.zero_grad()",
    ),
    Cause(
        code="TT109",
        title="len() called on the batches (a generator has none)",
        pattern=r"(?:must work with any iterable of batches, a generator too: do not call len)"
                r"|(?:calls len\(\) on the batches"
                r"|do not call len\(dataloader\) \(a generator has no len\(\)\))",
        what="train_epoch calls len(dataloader) or indexes it (to find the last batch or the "
             "number of windows). A data loader may be any iterable, a generator too, which "
             "has no len(); count batches as they come.",
        effect="Training on a generator or a streaming loader raises TypeError.",
        wrong="if count == k or i == len(batches) - 1:  # a generator has no len()\n"
              "    opt.step(); opt.zero_grad()",
        right="if count == k:\n"
              "    opt.step(); opt.zero_grad()\n"
              "...\n"
              "if count:  # after the loop: the last window, found without len()",
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
        wrong="opt.step()\n"
              "opt.zero_grad()",
        right="opt.step()\n"
              "opt.zero_grad()\n"
              "self.step += 1  # one per optimizer step",
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
        wrong="for x, y in batches:\n"
              "    loss_fn(model.forward(x), y).backward()\n"
              "    self.step += 1  # one per batch",
        right="if count == k:\n"
              "    opt.step()\n"
              "    self.step += 1  # one per optimizer step",
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
        wrong="if count == k:\n"
              "    opt.step(); self.step += 1\n"
              "if count:  # after the loop\n"
              "    opt.step()  # a step that is not counted",
        right="if count:  # after the loop\n"
              "    opt.step()\n"
              "    self.step += 1  # the partial window's step counts too",
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
        wrong="total += v\n"
              "count += 1  # a batch of 7 counts like one of 64",
        right="total += v * len(y)\n"
              "count += len(y)",
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
        wrong="loss = loss_fn(model.forward(x), y)\n"
              "loss.backward()  # a NaN loss goes on into every weight",
        right="v = float(loss.data)\n"
              "if math.isnan(v) or math.isinf(v):\n"
              "    opt.zero_grad()\n"
              "    raise TrainingDivergedError(f\"loss is {v} at epoch {epoch}, batch {i}\")",
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
        wrong="if math.isnan(v) or math.isinf(v):\n"
              "    opt.step()  # the window's earlier batches still move the weights\n"
              "    raise TrainingDivergedError(...)  # raised after the step, not instead of it",
        right="if math.isnan(v) or math.isinf(v):\n"
              "    opt.zero_grad()  # drop the whole window, then raise\n"
              "    raise TrainingDivergedError(...)  # weights as after the last good step",
    ),
    Cause(
        code="TT117",
        title="divergence error does not say where",
        pattern=r"say where training diverged",
        what="The error raised for a NaN or inf loss does not name the epoch and the batch "
             "where it happened.",
        effect="The user learns that training diverged but not where, so the bad batch or the "
               "epoch whose learning rate was too high cannot be found.",
        wrong="raise TrainingDivergedError(f\"loss is {v}\")  # which epoch, which batch?",
        right="raise TrainingDivergedError(f\"loss is {v} at epoch {epoch}, batch {i}\")",
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
        wrong="opt.step()  # steps with the previous batch's gradient\n"
              "loss.backward()",
        right="loss = loss_fn(model.forward(x), y)\n"
              "loss.backward()\n"
              "opt.step()\n"
              "opt.zero_grad()",
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
              "    opt.lr = 0.01  # replaces the rate the user gave",
        right="if sched is not None:  # without one, opt.lr stays as the user set it\n"
              "    opt.lr = sched.get_lr(epoch)",
    ),
    Cause(
        code="TT120",
        title="loss.backward() not called before the step",
        pattern=r"loss\.backward\(\) is not called before optimizer\.step\(\)"
                r"|backward was not called on this loss before step\(\)",
        what="train_epoch computes each batch's loss but never calls loss.backward() (or clears "
             "the gradients between backward and step), so optimizer.step() finds no gradient "
             "on the parameters.",
        effect="The optimizer has nothing to apply: the weights never move and the loss stays "
               "where it started.",
        wrong="pred = self.model.forward(xb)\n"
              "batch_loss = self.loss_fn(pred, yb)\n"
              "total += float(batch_loss.data) * len(yb)  # no gradient is ever computed",
        right="pred = self.model.forward(xb)\n"
              "batch_loss = self.loss_fn(pred, yb)\n"
              "batch_loss.backward(float(len(yb)))  # the gradient the step applies",
    ),
    Cause(
        code="TT121",
        title="optimizer not stepped once per batch",
        pattern=r"the optimizer must step once after every batch"
                r"|optimizer\.step\(\) must run once per batch"
                r"|call optimizer\.step\(\) exactly once per batch",
        what="With accumulation_steps=1 every batch must end with one optimizer step. Your "
             "train_epoch steps a different number of times per batch: typically the step sits "
             "after the batch loop instead of inside it, so the whole epoch makes one update.",
        effect="The model gets a fraction of its updates (one per epoch instead of one per "
               "batch) and learns far more slowly, or takes extra steps with the same gradient.",
        wrong="for xb, yb in dataloader:\n"
              "    ...\n"
              "self._optimizer_step(params, seen)  # after the loop: once per epoch",
        right="for xb, yb in dataloader:\n"
              "    ...\n"
              "    self._optimizer_step(params, len(yb))  # inside: once per batch",
    ),
    Cause(
        code="TT122",
        title="accumulation_steps ignored",
        pattern=r"accumulation_steps is ignored",
        what="train_epoch takes accumulation_steps but steps the optimizer after every batch "
             "anyway: the window never holds more than one batch.",
        effect="Accumulation has no effect: each step uses one small batch's gradient, so the "
               "large effective batch it was meant to simulate never happens.",
        wrong="in_window += 1\n"
              "self._optimizer_step(params, count)  # after every batch",
        right="in_window += 1\n"
              "if in_window == accumulation_steps:\n"
              "    self._optimizer_step(params, count)  # a full window",
    ),
    Cause(
        code="TT123",
        title="gradients cleared per batch inside a window",
        pattern=r"only the window's last batch reached the step",
        what="The gradients are cleared at every batch (zero_grad() at the top of the batch "
             "loop, as in a loop without accumulation), so when the window steps only its last "
             "batch's gradient is left. The earlier batches of the window are computed and "
             "thrown away.",
        effect="With accumulation_steps=k only one batch in k trains the model, and the update "
               "is that of a small batch, not of the window.",
        wrong="for xb, yb in dataloader:\n"
              "    self.optimizer.zero_grad()  # drops the window's earlier batches",
        right="self.optimizer.zero_grad()  # once before the first batch (and after each step)\n"
              "for xb, yb in dataloader:",
    ),
    Cause(
        code="TT124",
        title="window gradient not its samples' mean gradient",
        pattern=r"accumulated gradient is not that of one batch holding",
        what="The gradient handed to optimizer.step() for a window is not that of the mean loss "
             "over the window's samples, and not one of the recognisable slips (summed, divided "
             "by k, the last batch only). A common cause: dividing by the epoch's running "
             "sample count instead of the window's, or a missing backward.",
        effect="Every step with accumulation uses a mis-scaled or wrong gradient, so the run "
               "does not match training on one big batch.",
        wrong="self._optimizer_step(params, seen_so_far)  # the epoch's count",
        right="self._optimizer_step(params, in_window)  # the window's own samples",
    ),
    Cause(
        code="TT125",
        title="self.epoch not incremented once per epoch",
        pattern=r"increment self\.epoch by one",
        what="train_epoch does not advance self.epoch by exactly one at its end: it never "
             "increments it, or increments it more than once.",
        effect="The scheduler gets the wrong epoch (a stuck or skipping learning rate), a "
               "divergence error names the wrong epoch, and checkpoints save the wrong epoch.",
        wrong="self.history['train_loss'].append(epoch_loss)  # one entry per epoch\n"
              "return epoch_loss",
        right="self.history['train_loss'].append(epoch_loss)  # one entry per epoch\n"
              "self.epoch += 1  # once, as the epoch completes\n"
              "return epoch_loss",
    ),
    Cause(
        code="TT126",
        title="epoch loss is the last batch's loss",
        pattern=r"the last batch's loss was returned",
        what="train_epoch returns the loss of the last batch it saw instead of the mean over "
             "all the epoch's samples.",
        effect="The reported loss jumps with whichever batch came last (a short last batch "
               "especially), so the curve is noisy and says little about the epoch.",
        wrong="epoch_loss = float(batch_loss.data)  # overwritten by every batch",
        right="total += float(batch_loss.data) * len(yb)\n"
              "count += len(yb)\n"
              "epoch_loss = total / count",
    ),
    Cause(
        code="TT127",
        title="epoch loss summed, never divided",
        pattern=r"batch losses were summed but never divided",
        what="train_epoch adds up the batch losses and returns the sum, without dividing by the "
             "number of samples.",
        effect="The reported loss grows with the number of batches, so it cannot be compared "
               "across data sets or batch sizes, nor with evaluate's mean loss.",
        wrong="total += float(batch_loss.data)\n"
              "return total",
        right="total += float(batch_loss.data) * len(yb)\n"
              "count += len(yb)\n"
              "return total / count",
    ),
    Cause(
        code="TT128",
        title="epoch loss not the mean over its samples",
        pattern=r"returned loss is not the mean over every sample"
                r"|the epoch's loss must be the sample-weighted mean, however batched",
        what="The loss train_epoch returns is not the sum of each batch's loss times its "
             "samples, divided by the epoch's samples: for instance the sample-weighted sum is "
             "divided by the number of batches.",
        effect="The reported loss is off by a factor that depends on the batch size, so runs "
               "batched differently report different losses for the same model.",
        wrong="total += float(batch_loss.data) * len(yb)\n"
              "n_batches += 1\n"
              "return total / n_batches",
        right="total += float(batch_loss.data) * len(yb)\n"
              "count += len(yb)\n"
              "return total / count",
    ),
    Cause(
        code="TT129",
        title="train_epoch returns no loss",
        pattern=r"train_epoch must return the epoch's sample-weighted mean loss",
        what="train_epoch does not return a finite number: the return statement is missing (it "
             "returns None), or what it returns is not a float. A NaN returned means the "
             "updates diverged.",
        effect="Code that logs or plots the returned loss gets None; loops that compare epochs "
               "crash on it.",
        wrong="self.history['train_loss'].append(epoch_loss)  # one entry per epoch\n"
              "# no return: the caller gets None",
        right="self.history['train_loss'].append(epoch_loss)  # one entry per epoch\n"
              "return epoch_loss",
    ),
    Cause(
        code="TT130",
        title="loss does not fall at a fixed learning rate",
        pattern=r"the loop does not descend the gradient"
                r"|training without a scheduler does not learn",
        what="At a constant learning rate the epoch losses do not fall as they must on an easy "
             "regression: the step does not follow the gradient of the batch's mean loss (no "
             "backward, a gradient cleared before the step, or steps in the wrong order).",
        effect="Training runs without error but the model barely changes, or gets worse.",
        wrong="self.optimizer.step()  # before backward: no gradient to apply yet\n"
              "batch_loss.backward()",
        right="batch_loss.backward()\n"
              "self.optimizer.step()  # after backward, then clear\n"
              "self.optimizer.zero_grad()",
    ),
    Cause(
        code="TT131",
        title="bad loss checked after the step",
        pattern=r"the bad batch was applied: check the loss before",
        what="The test for a NaN or inf loss comes after the window's optimizer step (at the end "
             "of the batch, or of the epoch), so the bad gradient has already been applied when "
             "the error is raised.",
        effect="The error arrives too late: the weights already hold NaN or inf, and the model "
               "cannot continue from them.",
        wrong="self._optimizer_step(params, count)  # the window is applied first\n"
              "if math.isnan(v) or math.isinf(v):  # too late\n"
              "    raise TrainingDivergedError(f'loss {v} at epoch {self.epoch}, batch {i}')",
        right="if math.isnan(v) or math.isinf(v):  # before backward and the step\n"
              "    self.optimizer.zero_grad()\n"
              "    raise TrainingDivergedError(f'loss {v} at epoch {self.epoch}, batch {i}')",
    ),
    Cause(
        code="TT132",
        title="earlier windows undone on a bad loss",
        pattern=r"earlier windows of the epoch were undone",
        what="On a NaN or inf loss you restore the weights the epoch started with. Only the "
             "window holding the bad batch must be skipped: the steps of the epoch's earlier "
             "windows were valid and stand.",
        effect="Good updates are thrown away, and the weights no longer match trainer.step and "
               "the optimizer's state, which did count those steps.",
        wrong="if math.isnan(v) or math.isinf(v):\n"
              "    for p, w in zip(params, start_weights):\n"
              "        p.data[...] = w  # undoes the good windows too",
        right="if math.isnan(v) or math.isinf(v):\n"
              "    self.optimizer.zero_grad()  # skip this window only\n"
              "    raise TrainingDivergedError(f'loss {v} at epoch {self.epoch}, batch {i}')",
    ),
    Cause(
        code="TT133",
        title="gradients left behind by a bad loss",
        pattern=r"clear the gradients before raising",
        what="On a NaN or inf loss you raise the error but leave the gradients the bad window "
             "accumulated in .grad.",
        effect="A caller who catches the error, lowers the learning rate and steps again "
               "applies the bad window's gradients after all.",
        wrong="if math.isnan(v) or math.isinf(v):\n"
              "    raise TrainingDivergedError(f'loss {v} at epoch {self.epoch}, batch {i}')",
        right="if math.isnan(v) or math.isinf(v):\n"
              "    self.optimizer.zero_grad()  # the bad window's gradients go too\n"
              "    raise TrainingDivergedError(f'loss {v} at epoch {self.epoch}, batch {i}')",
    ),
    Cause(
        code="TT134",
        title="bad accumulation_steps refused without ValueError",
        pattern=r"validate accumulation_steps first",
        what="A bad accumulation_steps is refused with another exception than ValueError: an "
             "assert (AssertionError), a TypeError, or a ZeroDivisionError from the loop's "
             "arithmetic. The spec asks for ValueError before anything runs.",
        effect="Callers that catch ValueError for bad arguments miss it, and an assert vanishes "
               "entirely under python -O.",
        wrong="assert accumulation_steps >= 1",
        right="k = accumulation_steps\n"
              "if isinstance(k, bool) or not isinstance(k, int) or k < 1:\n"
              "    raise ValueError(f\"accumulation_steps must be an int >= 1, got {k!r}\")",
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
              "    for x, y in batches:  # Dropout still active",
        right="self._set_mode(False)  # eval mode, on every layer\n"
              "with no_grad():\n"
              "    for x, y in batches:",
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
        wrong="def train_epoch(self, batches):\n"
              "    for x, y in batches:  # still in eval mode after an evaluate",
        right="def train_epoch(self, batches):\n"
              "    self._set_mode(True)  # evaluate left the model in eval mode\n"
              "    for x, y in batches:",
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
        wrong="for x, y in batches:\n"
              "    out = model.forward(x)  # records a graph nobody will use",
        right="with no_grad():\n"
              "    for x, y in batches:\n"
              "        out = model.forward(x)",
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
        wrong="loss = loss_fn(model.forward(x), y)\n"
              "loss.backward()  # evaluate touches the gradients",
        right="self._set_mode(False)\n"
              "with no_grad():  # no graph, no backward, no Dropout draws\n"
              "    loss = loss_fn(model.forward(x), y)",
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
        wrong="total += float(loss_fn(out, y).data)\n"
              "count += 1  # a batch of 7 counts like one of 64",
        right="total += float(loss_fn(out, y).data) * len(y)\n"
              "count += len(y)",
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
        wrong="mean_loss = total / n_judged if n_judged else 0.0  # none judged for MSE",
        right="mean_loss = total / n_seen  # every sample has a loss\n"
              "acc = None if n_judged == 0 else n_correct / n_judged",
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
        wrong="accs.append(right / judged)\n"
              "acc = sum(accs) / len(accs)  # a batch of 7 counts like one of 33",
        right="n_correct += right\n"
              "n_judged += judged\n"
              "acc = None if n_judged == 0 else n_correct / n_judged",
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
        code="TT213",
        title="accuracy returned as a percentage",
        pattern=r"accuracy must be a fraction in \[0, 1\], not a percentage",
        what="evaluate multiplies the accuracy by 100 and returns, say, 46.7 instead of 0.467. "
             "The spec's accuracy is a fraction: the correct samples over the samples judged.",
        effect="history['eval_accuracy'] and every plot or comparison built on it are 100 "
               "times too large: a test such as accuracy > 0.9 passes for a model that is "
               "right on 1 % of the samples.",
        wrong="acc = None if n_judged == 0 else 100 * n_correct / n_judged  # 46.7, a percentage",
        right="acc = None if n_judged == 0 else n_correct / n_judged  # 0.467, a fraction",
    ),
    Cause(
        code="TT214",
        title="prediction is not the argmax over the classes",
        pattern=r"for CrossEntropyLoss accuracy is the fraction of samples whose argmax",
        what="For CrossEntropyLoss the predicted class of a sample is the index of its largest "
             "logit, outputs.argmax(axis=1). You compare something else with the labels: the "
             "largest logit itself (max instead of argmax), an argmax over the flattened array, "
             "or rounded outputs.",
        effect="The accuracy does not measure the model's predictions: it stays near 0, or "
               "at some value unrelated to how well the model classifies.",
        wrong="int(np.sum(outputs.max(axis=1) == labels))",
        right="int(np.sum(outputs.argmax(axis=1) == labels))",
    ),
    Cause(
        code="TT215",
        title="evaluate clears or changes the gradients",
        pattern=r"evaluate touched the gradients",
        what="evaluate changes the parameters' .grad: it calls self._clear_grads() or "
             "optimizer.zero_grad() before evaluating, or backward() on its loss. evaluate "
             "must leave every gradient exactly as it found it.",
        effect="A gradient a caller was accumulating is wiped or changed by an evaluation in "
               "between, so the next optimizer step uses another gradient.",
        wrong="opt.zero_grad()  # wipes a gradient the caller was accumulating\n"
              "self._set_mode(False)",
        right="self._set_mode(False)  # no zero_grad, no backward in evaluate",
    ),
    Cause(
        code="TT216",
        title="evaluate calls optimizer.step()",
        pattern=r"evaluate updated the weights",
        what="evaluate calls self.optimizer.step() (a line of the training loop, copied), so the "
             "weights move with whatever gradient is pending. Evaluation measures the model; it "
             "never updates it.",
        effect="Every evaluate takes an extra, unplanned optimizer step: the model evaluated "
               "and trained afterwards is not the one training produced, and trainer.step no "
               "longer counts the optimizer's steps.",
        wrong="self.optimizer.step()\n"
              "self._set_mode(False)",
        right="self._set_mode(False)  # evaluate never steps the optimizer",
    ),
    Cause(
        code="TT217",
        title="evaluate changes the optimizer's state or lr",
        pattern=r"evaluate must not touch the optimizer",
        what="After evaluate the optimizer's state_dict differs: its moments, step counts or "
             "learning rate were changed, by a call to optimizer.step() or by setting "
             "optimizer.lr inside evaluate.",
        effect="The next training step starts from another optimizer state than it would have "
               "without the evaluation, so runs that evaluate train differently.",
        wrong="self.optimizer.step()\n"
              "self._set_mode(False)",
        right="self._set_mode(False)  # the optimizer is left alone",
    ),
    Cause(
        code="TT218",
        title="evaluate does not return (loss, accuracy)",
        pattern=r"evaluate must return a \(loss, accuracy\) tuple",
        what="evaluate returns only the loss (or a dict, or nothing) instead of the tuple "
             "(loss, accuracy) the spec gives, with accuracy None where it is undefined.",
        effect="Every caller that unpacks loss, accuracy = trainer.evaluate(...) crashes or "
               "reads the wrong value.",
        wrong="return loss",
        right="return loss, accuracy",
    ),
    Cause(
        code="TT219",
        title="evaluate iterates over the batches twice",
        pattern=r"^evaluate must work with any iterable of batches, a generator too$",
        what="evaluate goes over the dataloader more than once (the outputs in one pass, the "
             "targets or the accuracy in another). A generator yields its batches once, so the "
             "second pass sees none. Do everything for a batch in one loop.",
        effect="Evaluating on a generator or a streaming loader crashes or counts no samples, "
               "though a list of the same batches works.",
        wrong="outs = [model.forward(x) for x, _ in batches]\n"
              "for out, (_, y) in zip(outs, batches):  # a generator is empty by now",
        right="for x, y in batches:  # one pass: a generator yields its batches once\n"
              "    out = model.forward(x)\n"
              "    ...  # loss and accuracy of this batch",
    ),
    Cause(
        code="TT220",
        title="eval loss not averaged over all samples",
        pattern=r"the loss is not the mean over every sample",
        what="evaluate's loss is not the sample-weighted mean over every batch: a common "
             "cause is returning the loss of the loop's last batch, or a sum never divided. "
             "Add each batch's loss times its samples and divide by all samples.",
        effect="The eval loss describes one batch (or none exactly), so it jumps with the "
               "data's order and batch size and cannot be compared between runs.",
        wrong="mean_loss = float(loss_fn(out, y).data)  # after the loop: the last batch only",
        right="total += float(loss_fn(out, y).data) * len(y)  # in the loop\n"
              "n_seen += len(y)\n"
              "mean_loss = total / n_seen  # after it: every sample counted",
    ),
    Cause(
        code="TT221",
        title="mode switched on some layers only",
        pattern=r"only some flags were switched",
        what="You switch the training flag only on some layers (the Dropouts, say) and not on "
             "the model itself and every other layer. set_training, which self._set_mode "
             "calls, sets it on the model and every sublayer.",
        effect="The model and its other layers report a mode they are not in: a layer that "
               "reads its flag (a custom layer, a BatchNorm) runs as in the other phase, and "
               "model.training disagrees with trainer.training_mode.",
        wrong="for d in dropouts:  # the Dropouts only: the model and other layers keep theirs\n"
              "    d.training = training",
        right="set_training(self.model, training)",
    ),
    Cause(
        code="TT301",
        title="schedule computed but not applied",
        pattern=r"the schedule is computed but not applied",
        what="train_epoch calls self.scheduler.get_lr(self.epoch) but never assigns the result "
             "to the optimizer, so every step uses the lr the optimizer was created with.",
        effect="The schedule has no effect: training runs at a constant learning rate.",
        wrong="lr = sched.get_lr(epoch)  # computed, never given to the optimizer",
        right="opt.lr = sched.get_lr(epoch)",
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
        wrong="for x, y in batches:\n"
              "    ...\n"
              "opt.lr = sched.get_lr(epoch + 1)  # set after the epoch, for the next one",
        right="opt.lr = sched.get_lr(epoch)  # first, before the epoch's first batch\n"
              "for x, y in batches:\n"
              "    ...",
    ),
    Cause(
        code="TT303",
        title="scheduler used without a None check",
        pattern=r"uses the scheduler although it is None",
        what="train_epoch calls self.scheduler.get_lr(...) unconditionally, but the scheduler is "
             "optional and defaults to None.",
        effect="Every trainer built without a scheduler crashes with AttributeError in its first "
               "epoch.",
        wrong="opt.lr = sched.get_lr(epoch)  # sched may be None",
        right="if sched is not None:  # the scheduler is optional\n"
              "    opt.lr = sched.get_lr(epoch)",
    ),
    Cause(
        code="TT304",
        title="lr overwritten when there is no scheduler",
        pattern=r"(?:must leave optimizer\.lr alone)"
                r"|(?:changed optimizer\.lr although there is no scheduler)",
        what="Without a scheduler your train_epoch still sets optimizer.lr, to a default or a "
             "value of its own. The lr the user gave the optimizer is then lost.",
        effect="Training runs with a learning rate nobody chose: it may barely learn, or diverge.",
        wrong="opt.lr = sched.get_lr(epoch) if sched else 0.01  # 0.01: a rate nobody chose",
        right="if sched is not None:  # no scheduler: leave opt.lr alone\n"
              "    opt.lr = sched.get_lr(epoch)",
    ),
    Cause(
        code="TT305",
        title="cosine schedule does not decrease to min_lr",
        pattern=r"CosineSchedule\.get_lr does not decrease from max_lr to min_lr",
        what="The trainer applies your CosineSchedule, but get_lr itself does not run from "
             "max_lr down to min_lr (a missing factor 1/2, for instance). The 'cosine' check "
             "names the slip.",
        effect="Every epoch trains with a wrong rate, which may fall below min_lr or rise again.",
        wrong="lr = lo + (hi - lo) * (1 + math.cos(math.pi * t))  # the / 2 is missing",
        right="lr = lo + (hi - lo) * (1 + math.cos(math.pi * t)) / 2",
    ),
    Cause(
        code="TT306",
        title="learning rates not recorded",
        pattern=r"learning_rates is not recorded|record the lr each epoch",
        what="train_epoch never appends the epoch's learning rate to "
             "self.history['learning_rates'], with a scheduler or without one.",
        effect="The history keeps no record of the rates, so plots and a resumed run cannot tell "
               "which rate each epoch trained with.",
        wrong="hist[\"train_loss\"].append(epoch_loss)  # and no entry for the rate",
        right="hist[\"train_loss\"].append(epoch_loss)  # one entry per epoch\n"
              "hist[\"learning_rates\"].append(lr)  # and the rate it trained with",
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
        wrong="lr = opt.lr  # read too early: still the previous epoch's rate\n"
              "opt.lr = sched.get_lr(epoch)",
        right="opt.lr = sched.get_lr(epoch)  # first set this epoch's rate\n"
              "lr = opt.lr  # then read the one its batches use",
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
              "return epoch_loss  # the history never grows",
        right="hist[\"train_loss\"].append(epoch_loss)  # once per epoch\n"
              "self.epoch += 1\n"
              "return epoch_loss",
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
        wrong="for x, y in batches:\n"
              "    ...\n"
              "    hist[\"eval_loss\"].append(mean_loss)  # in the loop: one entry per batch",
        right="for x, y in batches:\n"
              "    ...\n"
              "hist[\"eval_loss\"].append(mean_loss)  # after the loop: one per call",
    ),
    Cause(
        code="TT310",
        title="gradient norms not recorded",
        pattern=r"history\['grad_norm'\] is never appended to",
        what="With grad_clip_norm set, the norm clip_grad_norm returns is never appended to "
             "self.history['grad_norm'].",
        effect="You lose the early warning of divergence that a growing gradient norm gives.",
        wrong="total = clip_grad_norm(params, max_norm)  # returned, then dropped\n"
              "opt.step()",
        right="total = clip_grad_norm(params, max_norm)  # the norm before clipping\n"
              "hist[\"grad_norm\"].append(total)  # one entry per optimizer step\n"
              "opt.step()",
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
        wrong="clip_grad_norm(params, max_norm)\n"
              "hist[\"grad_norm\"].append(grad_norm(params))  # after clipping: <= max_norm",
        right="total = clip_grad_norm(params, max_norm)  # it returns the norm before clipping\n"
              "hist[\"grad_norm\"].append(total)  # what the step's gradient measured",
    ),
    Cause(
        code="TT312",
        title="loop event never emitted",
        pattern=r"never fired: call self\._emit",
        what="One of the loop's callback events (on_epoch_begin, on_batch_end, on_step, "
             "on_epoch_end, on_evaluate_end) is never fired: its self._emit(...) call is missing.",
        effect="Callbacks attached to the trainer (live plots, logging) never hear of that event.",
        wrong="loss.backward()\n"
              "total += v * len(y)  # the callbacks never hear of the batch",
        right="loss.backward()\n"
              "total += v * len(y)\n"
              "self._emit(\"on_batch_end\", batch=i, loss=v, samples=len(y))  # after each batch",
    ),
    Cause(
        code="TT313",
        title="history loss differs from the returned loss",
        pattern=r"record the same value train_epoch returns"
                r"|append the same (?:epoch mean )?loss that (?:train_epoch|evaluate) returns",
        what="history['train_loss'] (or 'eval_loss') gets one entry per call, but not the loss "
             "the call returns: the last batch's loss, a running sum, or a value computed "
             "before the division.",
        effect="The loss curve in the history disagrees with the numbers train_epoch and "
               "evaluate print, so plots and checkpoints tell another story than the run.",
        wrong="self.history['train_loss'].append(float(batch_loss.data))  # the last batch's",
        right="self.history['train_loss'].append(epoch_loss)  # what train_epoch returns\n"
              "return epoch_loss",
    ),
    Cause(
        code="TT314",
        title="train_loss history not kept across epochs",
        pattern=r"append exactly one entry per epoch",
        what="history['train_loss'] is right after the first epoch but does not grow by one "
             "entry per epoch after that: the list is replaced instead of appended to, or the "
             "history is reset in train_epoch.",
        effect="Only the last epoch's loss survives, so there is no loss curve and a "
               "checkpoint saves a truncated history.",
        wrong="self.history['train_loss'] = [epoch_loss]  # replaces the curve",
        right="self.history['train_loss'].append(epoch_loss)  # one more entry",
    ),
    Cause(
        code="TT315",
        title="loop events out of order or repeated",
        pattern=r"each event fires once per occurrence",
        what="Every event fires, but not once per occurrence in the loop's order: on_batch_end "
             "is emitted after the window's step instead of before it, or an event is emitted "
             "twice (in train_epoch and in _optimizer_step).",
        effect="A callback that draws or logs from the events sees batches and steps "
               "interleaved wrongly, or counted twice.",
        wrong="if in_window == accumulation_steps:\n"
              "    self._optimizer_step(params, count)  # on_step fires here\n"
              "self._emit('on_batch_end', loss=v, samples=len(yb), batch=i)  # after the step",
        right="self._emit('on_batch_end', loss=v, samples=len(yb), batch=i)  # before the step\n"
              "if in_window == accumulation_steps:\n"
              "    self._optimizer_step(params, count)  # on_step fires here",
    ),
    Cause(
        code="TT316",
        title="loop event fired with wrong fields",
        pattern=r"^call self\._emit\('on_(?:epoch_begin|batch_end|epoch_end|evaluate_end)'",
        what="An event (on_epoch_begin, on_batch_end, on_epoch_end, on_evaluate_end) fires in "
             "the right place but with wrong values: a running mean instead of the batch's own "
             "loss, a cumulative sample count, the next epoch's number, or a loss that is not "
             "the one returned.",
        effect="Callbacks (live plots, loggers) show numbers that do not match the run.",
        wrong="self._emit('on_batch_end', loss=total / count, samples=len(yb), batch=i)",
        right="self._emit('on_batch_end', loss=v, samples=len(yb), batch=i)  # the batch's own",
    ),
    Cause(
        code="TT317",
        title="epoch not trained with get_lr(epoch)",
        pattern=r"each epoch must train with scheduler\.get_lr\(epoch\), set on the optimizer",
        what="With a scheduler, epoch e does not train with scheduler.get_lr(e), and the "
             "rates match none of the recognised slips (set after the epoch, shifted by one, "
             "changed per batch). A common cause: self.epoch does not advance by one per "
             "epoch, so the schedule is asked for the wrong epoch.",
        effect="The schedule runs stuck or out of step: epochs train with rates meant for "
               "others.",
        wrong="return epoch_loss  # self.epoch stays 0: get_lr(0) every epoch",
        right="self.epoch += 1  # the next epoch reads the next rate\n"
              "return epoch_loss",
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
        wrong="for i, p in enumerate(params):\n"
              "    arrays[f\"model/{i}\"] = p.data  # the weights, and nothing else",
        right="# Adam's exp_avg and exp_avg_sq, SGD's momentum_buffer, beside the weights:\n"
              "for i, buffers in enumerate(opt.state_dict()[\"state\"]):\n"
              "    arrays.update({f\"optimizer/{i}/{k}\": v for k, v in buffers.items()\n"
              "                   if isinstance(v, np.ndarray)})  # not the int step count",
    ),
    Cause(
        code="TT403",
        title="per-parameter step counts not restored",
        pattern=r"\A(?!.*are not in the checkpoint).*optimizer step count \(state\['step'\]",
        what="The checkpoint does not keep each parameter's optimizer step count, state['step'], "
             "or load does not put it back. This library's Adam reads it for its bias correction.",
        effect="After loading, Adam's bias correction starts again from step 1, so the first "
               "resumed updates are too large and the run leaves the uninterrupted one.",
        wrong="meta[\"param_steps\"] = []  # each parameter's state[\"step\"] is lost",
        right="state = opt.state_dict()[\"state\"]\n"
              "meta[\"param_steps\"] = [buf.get(\"step\") for buf in state]  # bias correction",
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
        wrong="meta[\"step_count\"] = 0  # the optimizer's own counter is not kept",
        right="meta[\"step_count\"] = opt.state_dict()[\"step_count\"]",
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
        wrong="state[\"hyperparameters\"] = opt.hyperparameters()  # the new optimizer's",
        right="state[\"hyperparameters\"] = saved[\"hyperparameters\"]  # the file's settings win",
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
              "self.epoch, self.step = epoch, step  # the model keeps the mode it had",
        right="self.history = copy.deepcopy(history)\n"
              "self._set_mode(training_mode)  # the saved mode, on every layer",
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
        wrong="meta[\"rng_state\"] = [{} for d in dropouts]  # an empty, unusable state",
        right="meta[\"rng_state\"] = [d.rng.bit_generator.state for d in dropouts]  # whole dicts",
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
        wrong="def train_epoch(self, loader):\n"
              "    for x, y in loader:  # the loader picks its own order",
        right="def train_epoch(self, loader):\n"
              "    loader.set_epoch(self.epoch)  # or load_state_dict after a load\n"
              "    for x, y in loader:",
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
        wrong="def evaluate(self, loader):\n"
              "    loader.set_epoch(self.epoch)  # only train_epoch may choose the order",
        right="def evaluate(self, loader):\n"
              "    self._set_mode(False)  # and the loader's order is left alone",
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
        code="TT418",
        title="trainer.step not restored",
        pattern=r"trainer\.step was not saved or not restored",
        what="save_checkpoint does not write trainer.step, or load_checkpoint does not set it "
             "back, so the loaded trainer counts its optimizer steps from 0 again.",
        effect="After resuming, trainer.step no longer counts the steps taken: logs and "
               "anything keyed on the step number restart.",
        wrong="self.epoch = epoch",
        right="self.epoch, self.step = epoch, step",
    ),
    Cause(
        code="TT419",
        title="state restored as the wrong type",
        pattern=r"training crashed after load_checkpoint",
        what="load_checkpoint puts back what the file holds in the form JSON gives it, not as "
             "the object the trainer uses: the scheduler's settings dict instead of a "
             "CosineSchedule, lists instead of arrays. Rebuild each object from what was "
             "saved.",
        effect="Loading succeeds, then the first train_epoch after it crashes (a dict has no "
               "get_lr), so a run can never be resumed.",
        wrong="self.scheduler = meta[\"scheduler\"]",
        right="self.scheduler = _restore_scheduler(meta[\"scheduler\"], self.scheduler)",
    ),
    Cause(
        code="TT420",
        title="save_checkpoint crashes (array in the JSON part)",
        pattern=r"^save_checkpoint crashes$",
        what="save_checkpoint raises on a trained trainer. The usual cause: a numpy array or "
             "numpy number put into the JSON part (the optimizer's state_dict as it is, "
             "moments included), which JSON cannot encode. Arrays go into the arrays; only "
             "plain numbers, strings, lists and dicts into the JSON.",
        effect="No checkpoint can be written, so a long run cannot be saved or resumed.",
        wrong="\"optimizer\": optimizer_state,  # holds ndarrays",
        right="arrays[f\"optimizer/{i}/{name}\"] = value  # each ndarray of the state",
    ),
    Cause(
        code="TT421",
        title="save and load use different names",
        pattern=r"save_checkpoint and load_checkpoint do not agree",
        what="load_checkpoint raises on the file save_checkpoint has just written: the two "
             "do not agree on the file's layout, for instance an array saved as param_0 and "
             "read as model/0, or a value saved in another form than load expects.",
        effect="Every checkpoint written is unusable: loading fails on it.",
        wrong="arrays[f\"param_{i}\"] = p.data  # saved as param_0, param_1...\n"
              "value = arrays[f\"model/{i}\"]  # ...read as model/0: KeyError",
        right="arrays[f\"model/{i}\"] = p.data  # saved under the name load reads\n"
              "value = arrays[f\"model/{i}\"]",
    ),
    Cause(
        code="TT422",
        title="checkpoint written under another name",
        pattern=r"save_checkpoint must write exactly the path given",
        what="save_checkpoint writes to a path other than the one given: it adds '.npz' "
             "itself, or np.savez(path) adds it to a name without that suffix, or a temporary "
             "file is left beside the path.",
        effect="The file is not where the caller said: loading the path it gave fails, or "
               "finds an older checkpoint.",
        wrong="path = Path(path).with_suffix(\".npz\")  # \"run.ckpt\" is written as \"run.npz\"",
        right="path = Path(path)  # as given: \"run.ckpt\" stays \"run.ckpt\", no temporary left",
    ),
    Cause(
        code="TT423",
        title="load swallows a bad checkpoint",
        pattern=r"load_checkpoint must check the file .*and refuse it",
        what="load_checkpoint does not raise on a missing, damaged or mismatched file: it "
             "catches the error, prints it and returns, or never checks. A load that "
             "cannot restore the state must raise a CheckpointError.",
        effect="The caller believes the run was resumed and goes on training the fresh model "
               "from epoch 0.",
        wrong="except Exception as error:\n"
              "    print(f\"could not load {path}: {error}\")\n"
              "    return",
        right="except (KeyError, ValueError) as err:  # the file does not fit\n"
              "    raise CheckpointError(f\"cannot load {path}: {err}\") from err",
    ),
    Cause(
        code="TT424",
        title="counters restored before the file is validated",
        pattern=r"a failed load left the trainer half restored",
        what="load_checkpoint sets epoch, step, history or the optimizer's state from the file "
             "before it has checked that the whole file fits the trainer. When a later check "
             "fails, those changes stay.",
        effect="After a refused load the trainer is a mix: the old weights with the file's "
               "counters, so its schedule and history no longer match its model.",
        wrong="self.epoch, self.step = meta[\"epoch\"], meta[\"step\"]\n"
              "if len(shapes) != len(params):  # raises after the counters changed\n"
              "    raise ValueError(\"the file does not fit the model\")",
        right="if len(shapes) != len(params):  # every check first\n"
              "    raise ValueError(\"the file does not fit the model\")\n"
              "self.epoch, self.step = meta[\"epoch\"], meta[\"step\"]  # then every change",
    ),
    Cause(
        code="TT425",
        title="weights copied while the file is still being read",
        pattern=r"a failed load changed the trainer",
        what="load_checkpoint copies each array into the model as it reads it from the file. "
             "When a later member is damaged (or the file is truncated), reading fails after "
             "some weights were overwritten. Read and verify the whole file first "
             "(read_checkpoint checks its digest).",
        effect="A damaged checkpoint leaves the model with part of its weights replaced, and "
               "training goes on from that mix.",
        wrong="for i, p in enumerate(self.model.parameters()):\n"
              "    p.data[...] = npz[f\"model/{i}\"]",
        right="saved = read_checkpoint(path)  # reads and verifies every member first\n"
              "...  # check that it fits, then copy into the model",
    ),
    Cause(
        code="TT501",
        title="counted numbers, not bytes",
        pattern=r"counted numbers, not bytes",
        what="You count elements (p.data.size) instead of bytes. A float32 takes 4 bytes and a "
             "mask's bool 1 byte; p.data.nbytes gives the bytes directly.",
        effect="The predicted memory is about 4 times too small.",
        wrong="n_bytes = sum(p.data.size for p in params)  # numbers, not bytes",
        right="n_bytes = sum(p.data.nbytes for p in params)  # 4 bytes per float32",
    ),
    Cause(
        code="TT502",
        title="8 bytes per number (float64)",
        pattern=r"^8 bytes per number",
        what="You count 8 bytes per number, as for float64. tinytorch keeps every number as "
             "float32, 4 bytes.",
        effect="Parameters, and everything counted like them, come out twice too large.",
        wrong="n_bytes = sum(8 * p.data.size for p in params)  # float64's size",
        right="n_bytes = sum(4 * p.data.size for p in params)  # float32: 4 bytes each",
    ),
    Cause(
        code="TT503",
        title="biases not counted",
        pattern=r"the biases are missing",
        what="You count only the weight matrices (the 2-D parameters, say) and skip the biases. "
             "Every tensor model.parameters() yields counts.",
        effect="Parameters, gradients and optimizer state all come out too small.",
        wrong="n_bytes = sum(p.data.nbytes for p in params if p.data.ndim == 2)  # weights only",
        right="n_bytes = sum(p.data.nbytes for p in params)  # biases too: every parameter",
    ),
    Cause(
        code="TT504",
        title="gradients not counted like the parameters",
        pattern=r"gradients take as many bytes as the parameters",
        what="backward gives every parameter a gradient of its own shape and dtype, so gradients "
             "take exactly as many bytes as the parameters. You return 0 or another amount.",
        effect="The total misses, or misstates, a whole copy of the model.",
        wrong="memory[\"gradients\"] = 0  # yet backward gives every parameter a gradient",
        right="memory[\"gradients\"] = memory[\"parameters\"]  # same shapes, same dtype",
    ),
    Cause(
        code="TT505",
        title="optimizer state read before the first step",
        pattern=r"optimizer\.state is empty until the first step",
        what="You add up the arrays in optimizer.state, but training_memory predicts before any "
             "step and that state is empty until the first one. Predict from the optimizer's "
             "kind and settings.",
        effect="optimizer_state comes out 0 for Adam, AdamW and SGD with momentum.",
        wrong="# opt.state is empty until the first step, so this adds up nothing:\n"
              "kept = [v for s in opt.state for v in s.values() if isinstance(v, np.ndarray)]\n"
              "state_bytes = sum(a.nbytes for a in kept)",
        right="state_bytes = n_buffers * n_bytes  # n_buffers from opt's kind and settings",
    ),
    Cause(
        code="TT506",
        title="plain SGD counted with a buffer",
        pattern=r"\A(?!.*empty until the first step).*plain SGD keeps no buffer",
        what="SGD with momentum == 0 keeps no buffer, but you count one (or two) per parameter.",
        effect="optimizer_state comes out one or two copies of the model where it is 0.",
        wrong="n_buffers = 1  # for SGD, also when momentum == 0",
        right="n_buffers = int(opt.momentum > 0)  # SGD: a momentum_buffer only with momentum",
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
        wrong="n_buffers = 2  # for SGD with momentum, as if it were Adam",
        right="n_buffers = int(opt.momentum > 0)  # SGD: one momentum_buffer at most",
    ),
    Cause(
        code="TT508",
        title="Adam counted with one buffer",
        pattern=r"\A(?!.*empty until the first step).*AdamW? keeps two buffers per parameter",
        what="Adam and AdamW keep two buffers per parameter, exp_avg and exp_avg_sq; you count "
             "one (or another number). An AdamW is an Adam, so isinstance(optimizer, optim.Adam) "
             "covers both.",
        effect="optimizer_state for Adam comes out a whole copy of the model too small.",
        wrong="n_buffers = 1  # for Adam",
        right="n_buffers = 2  # Adam and AdamW (an AdamW is an Adam): exp_avg, exp_avg_sq",
    ),
    Cause(
        code="TT509",
        title="ReLU's mask not counted",
        pattern=r"ReLU's mask is missing",
        what="A ReLU keeps its output (4 bytes per number) and the boolean mask x > 0 its "
             "backward needs (1 byte per number); you count only the output.",
        effect="activations come out batch_size * width bytes too small for every ReLU.",
        wrong="relu_bytes = 4 * batch_size * width  # the output only",
        right="relu_bytes = (4 + 1) * batch_size * width  # float32 output + bool mask x > 0",
    ),
    Cause(
        code="TT510",
        title="Dropout's mask not counted",
        pattern=r"Dropout's mask is missing",
        what="A Dropout with p > 0 runs in training mode during a step and keeps its float32 "
             "mask and its output, 8 bytes per number; you count only one of them.",
        effect="activations come out 4 * batch_size * width bytes too small for every Dropout.",
        wrong="dropout_bytes = 4 * batch_size * width  # the output only",
        right="dropout_bytes = (4 + 4) * batch_size * width  # float32 mask + float32 output",
    ),
    Cause(
        code="TT511",
        title="Dropout with p = 0 counted",
        pattern=r"a Dropout with p = 0 returns its input unchanged",
        what="A Dropout with p == 0 returns its input unchanged and keeps nothing; you count it "
             "like any other Dropout.",
        effect="activations come out too large for models holding a Dropout(0.0).",
        wrong="kept = dropout_bytes  # also for a Dropout(0.0)",
        right="kept = dropout_bytes if layer.p > 0 else 0  # p == 0 returns its input as is",
    ),
    Cause(
        code="TT512",
        title="batch_size left out of activations",
        pattern=r"batch_size is missing: every kept array has one row per sample",
        what="Every array a forward pass keeps has one row per sample, so each layer's bytes "
             "grow with batch_size; you count them for a single sample.",
        effect="activations come out batch_size times too small, hiding the part of memory that "
               "grows with the batch.",
        wrong="linear_bytes = 4 * layer.out_features  # one sample's row",
        right="linear_bytes = 4 * batch_size * layer.out_features  # one row per sample",
    ),
    Cause(
        code="TT513",
        title="activations not counted layer by layer",
        pattern=r"compare layer by layer with the table",
        what="Your activations do not follow the per-layer table over the layers modules(model) "
             "yields, in order. A common cause: walking only the top-level layers "
             "(model.layers), which misses nested Sequentials and models without a base class.",
        effect="activations are wrong for any model with nested or duck-typed layers.",
        wrong="layers = list(model.layers)  # top level only: nested layers are missed",
        right="layers = list(modules(model))  # every layer, nested ones too, in order",
    ),
    Cause(
        code="TT514",
        title="total is not the sum of the four parts",
        pattern=r"total must be parameters \+ gradients \+ optimizer_state \+ activations",
        what="total must be parameters + gradients + optimizer_state + activations, the four "
             "values you return; yours leaves one out or adds something else.",
        effect="The headline number disagrees with its own parts.",
        wrong="total = param_bytes + state_bytes + act_bytes  # the gradients are left out",
        right="total = param_bytes + grad_bytes + state_bytes + act_bytes  # all four parts",
    ),
    Cause(
        code="TT515",
        title="ReLU's mask counted as float32",
        pattern=r"ReLU's mask counted as 4 bytes per number",
        what="A ReLU keeps its output (float32, 4 bytes a number) and the boolean mask x > 0 "
             "(1 byte a number); you count the mask as 4 bytes, like a float.",
        effect="activations come out 3 * batch_size * width bytes too large for every ReLU.",
        wrong="relu_bytes = (4 + 4) * batch_size * width  # the bool mask counted like a float",
        right="relu_bytes = (4 + 1) * batch_size * width  # the mask x > 0 is bool: 1 byte each",
    ),
    Cause(
        code="TT516",
        title="input batch counted in activations",
        pattern=r"the input batch is not counted",
        what="You add the input batch (4 * batch_size * in_features) to activations. The data "
             "loader holds it whether or not a step runs, and nothing before the first Linear "
             "needs a gradient, so the step keeps nothing of its own there.",
        effect="activations come out 4 * batch_size * in_features bytes too large.",
        wrong="act_bytes += 4 * batch_size * n_inputs  # the input batch: the loader holds it",
        right="act_bytes = 0  # the input is the loader's; counting starts at the first Linear",
    ),
    Cause(
        code="TT517",
        title="activation layers not counted",
        pattern=r"only the Linear layers were counted",
        what="You count only the Linear layers' outputs. Every activation layer keeps arrays "
             "too: ReLU its output and mask, Sigmoid and Tanh their output, a Dropout with "
             "p > 0 its mask and output.",
        effect="activations come out far too small for every model with activation layers.",
        wrong="act_bytes = sum(4 * batch_size * n for n in linear_widths)  # Linear outputs only",
        right="linear_bytes = 4 * batch_size * width\n"
              "relu_bytes = (4 + 1) * batch_size * width  # and Sigmoid, Tanh, Dropout: all count",
    ),
    Cause(
        code="TT518",
        title="Linear outputs not counted",
        pattern=r"the Linear layers' outputs are missing",
        what="You count what the activation layers keep but not the Linear layers' outputs, "
             "4 * batch_size * out_features each: the graph keeps them for backward too.",
        effect="activations come out too small by one float32 array per Linear layer.",
        wrong="act_bytes = relu_bytes + dropout_bytes  # the Linear outputs are left out",
        right="linear_bytes = 4 * batch_size * n_out  # each Linear's output, kept for backward\n"
              "act_bytes = linear_bytes + relu_bytes + dropout_bytes",
    ),
    Cause(
        code="TT519",
        title="parameter bytes not from p.data.nbytes",
        pattern=r"sum p\.data\.nbytes over every p in model\.parameters\(\)",
        what="Your parameters are not the sum of p.data.nbytes over model.parameters(). A "
             "common cause: sys.getsizeof(p.data), which adds the array object's own header "
             "to its bytes, or counting another list of tensors than model.parameters().",
        effect="parameters, and gradients counted like them, come out wrong (sys.getsizeof "
               "adds about a hundred bytes per tensor), and the total with them.",
        wrong="param_bytes = sum(sys.getsizeof(p.data) for p in params)  # + each array's header",
        right="param_bytes = sum(p.data.nbytes for p in params)  # the numbers' bytes only",
    ),
    Cause(
        code="TT520",
        title="memory not in whole bytes",
        pattern=r"bytes are whole numbers",
        what="training_memory returns values that are not whole numbers of bytes: converted "
             "to megabytes (/ 2**20), or computed with a fractional factor. The spec asks for "
             "bytes, as ints.",
        effect="Every component is reported in another unit than the spec's, so it compares "
               "with nothing the caller measures in bytes.",
        wrong="return {k: v / 2**20 for k, v in memory.items()}  # in MB",
        right="return memory  # bytes, ints",
    ),
    Cause(
        code="TT521",
        title="memory component missing or misnamed",
        pattern=r"return every component under exactly these names",
        what="The dict training_memory returns lacks one of the keys parameters, gradients, "
             "optimizer_state, activations, total: it was never added (total, often) or is "
             "spelled differently.",
        effect="A caller reading memory['total'] (or another key) gets a KeyError.",
        wrong="return memory  # four keys: \"total\" was never added",
        right="memory[\"total\"] = param_bytes + grad_bytes + state_bytes + act_bytes\n"
              "return memory",
    ),
    Cause(
        code="TT522",
        title="memory returned as a tuple, not a dict",
        pattern=r"return the dict of the five components, in bytes",
        what="training_memory returns a tuple or list of the numbers (or a single total) "
             "instead of the dict of the five named components.",
        effect="A caller reading memory['activations'] crashes, and nothing says which number "
               "is which.",
        wrong="return tuple(memory.values())",
        right="return memory",
    ),
    Cause(
        code="TT901",
        title="crash on valid input",
        pattern=r"(?:crashed on valid batches|raised this error on valid input)"
                r"|(?:train_epoch crashed on a plain list|train_epoch crashes on this setup)"
                r"|(?:train_epoch raised on a valid setup)",
        what="Your code raised an exception on input the spec allows; the last line of your code "
             "in the traceback shows where. Nothing else about the function can be judged until "
             "it runs.",
        effect="Everything that calls the function fails; in a real run, training stops at that "
               "line.",
        wrong="n = y.shape[1]  # fails for 1-D class labels",
        right="n = y.shape[0]  # the samples are the rows, for 1-D labels too",
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
        wrong="if math.isnan(v) or math.isinf(v):\n"
              "    sys.exit(\"training diverged\")",
        right="if math.isnan(v) or math.isinf(v):\n"
              "    raise TrainingDivergedError(f\"loss is {v} at epoch {epoch}, batch {i}\")",
    ),
    Cause(
        code="TT905",
        title="run stopped or checks interfered with",
        pattern=r"your code stopped the run",
        what="The graded run of a check did not finish: your code exited Python, crashed the "
             "interpreter, ran past the time or memory limit, or changed the checks' own objects.",
        effect="The check cannot be judged at all, so it earns nothing.",
        wrong="for x, y in itertools.cycle(batches):  # never ends",
        right="for x, y in batches:  # one pass over the data, then return",
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


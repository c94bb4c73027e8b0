"""Every check by id: the audit's numbers (1.1 to 7.3), the unit checks of the two functions,
and the check of ``training_memory`` (what training costs).

Each area module defines ``CHECKS``, a dict of id -> check function; this merges them in the
audit's order.
"""

from __future__ import annotations

from collections.abc import Callable

from checks import checkpoints, loop, modes, outcomes, schedule_clipping, systems, units

CHECKS: dict[str, Callable[..., None]] = {
    **units.CHECKS,
    **loop.CHECKS,
    **modes.CHECKS,
    **schedule_clipping.CHECKS,
    **outcomes.CHECKS,
    **checkpoints.CHECKS,
    **systems.CHECKS,
}

#: What a passing check verified, in one short line (printed by ``run_check``).
TITLES: dict[str, str] = {
    "cosine": "get_lr follows the cosine, is clamped at min_lr, returns a float, validates",
    "clip": "one global factor, in place, pre-clip norm returned, no overflow, validates",
    "1.1": "forward, backward and step run; the loss falls; history and counters advance",
    "1.2": "gradients are cleared before the epoch, between steps and across epochs",
    "1.3": "k accumulated batches give exactly the update of one batch of their samples",
    "accumulation-args": "a bad accumulation_steps raises ValueError and changes nothing",
    "nan-loss": "a NaN/inf loss raises, names epoch and batch, and its window is not applied",
    "3.1": "every batch of epoch e trains with get_lr(e), recorded in history",
    "3.2": "without a scheduler the optimizer's own lr is used, unchanged",
    "4.1": "every step gets the window's gradient clipped to grad_clip_norm, once",
    "4.2": "gradients below grad_clip_norm reach the optimizer bit for bit",
    "5.1": "loss falls on three tasks",
    "7.1": "trains models of several layer types",
    "7.2": "trains with MSE, cross-entropy and binary cross-entropy",
    "7.3": "trains with SGD, Adam and AdamW",
    "2.1": "train/eval mode seen inside forward, nested layers included",
    "2.2": "evaluate changes nothing; loss and accuracy are right; no graph (notebook only, "
           "not graded)",
    "5.2": "history holds one entry per epoch and per evaluate",
    "6.1": "train N, save, load into fresh objects, train M == train N + M, bit for bit",
    "6.2": "the checkpoint holds every piece of state a resume needs",
    "checkpoint-safety": "safe format, atomic writes, bad files refused with nothing changed",
    "memory": "training_memory predicts the bytes of a real step, component by component",
}
if set(TITLES) != set(CHECKS):
    raise RuntimeError(f"checks without a title or titles without a check: "
                       f"{sorted(set(TITLES) ^ set(CHECKS))}")

"""More mutants for the unit checks of CosineSchedule and clip_grad_norm ('cosine', 'clip') and
for how the Trainer applies the schedule (audit 3.1): the classic slips of a cosine formula, of a
global-norm computation, and of the moment the learning rate is set."""

from __future__ import annotations

from variants import Mutant, mutant

PROGRESS = ("        progress = (epoch - self.warmup_epochs) / "
            "(self.total_epochs - self.warmup_epochs)\n")
DECAY = ("        decay = (self.max_lr - self.min_lr) * "
         "(1.0 - math.cos(math.pi * progress)) / 2.0\n")
RETURN_LR = "        return max(self.min_lr, float(self.max_lr - decay))\n"
SET_LR = (
    "        if self.scheduler is not None:\n"
    "            self.optimizer.lr = self.scheduler.get_lr(self.epoch)\n"
)
GRADS = "    grads = [g for g in (grad_array(p) for p in parameters) if g is not None]\n"
SCALE = (
    "            scale = max_norm / (total_norm + 1e-6)\n"
    "            for g in grads:\n"
    "                g *= scale\n"
)
#: everything after the loop summing the squares, up to the return
TAIL = (
    "    total_norm = math.sqrt(squares)\n"
    "    if total_norm > max_norm:  # False for NaN, so non-finite gradients are left alone\n"
    "        if math.isfinite(total_norm):\n"
    + SCALE +
    "    return total_norm\n"
)
CHECK_MAX_NORM = (
    "    if not _is_number(max_norm) or not math.isfinite(max_norm) or max_norm < 0:\n"
    "        raise ValueError(f\"max_norm must be a finite number >= 0, got {max_norm!r}\")\n"
)


_m = mutant


# A schedule whose rates do not fall strictly from max_lr to min_lr over 3.1's epochs also fails
# 3.1 ("does not decrease", TT305): the trainer applies it faithfully, the 'cosine' check names it.
MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------------ CosineSchedule
    _m("cosine_epochs_one_based",
       [(PROGRESS, "        progress = (epoch + 1 - self.warmup_epochs) / "
                   "(self.total_epochs - self.warmup_epochs)\n")],
       {"cosine", "3.1"}, {"cosine"}, r"off by one"),
    _m("cosine_over_total_minus_one",
       [(PROGRESS, "        progress = (epoch - self.warmup_epochs) / "
                   "(self.total_epochs - 1 - self.warmup_epochs)\n")],
       {"cosine", "3.1"}, {"cosine"}, r"total_epochs - 1"),
    _m("cosine_upside_down",
       [(DECAY, "        decay = (self.max_lr - self.min_lr) * "
                "(1.0 + math.cos(math.pi * progress)) / 2.0\n")],
       {"cosine", "3.1"}, {"cosine"}, r"upside down"),
    _m("cosine_angle_without_pi",
       [(DECAY, "        decay = (self.max_lr - self.min_lr) * "
                "(1.0 - math.cos(progress)) / 2.0\n")],
       {"cosine"}, {"cosine"}, r"lacks pi"),
    _m("cosine_min_lr_not_added",
       [(RETURN_LR, "        lr = (self.max_lr - self.min_lr) * "
                    "(1.0 + math.cos(math.pi * progress)) / 2.0\n"
                    "        return max(self.min_lr, float(lr))\n")],
       {"cosine", "3.1"}, {"cosine"}, r"min_lr is not added"),
    _m("cosine_decays_to_zero",
       [(DECAY, "        decay = self.max_lr * (1.0 - math.cos(math.pi * progress)) / 2.0\n")],
       {"cosine", "3.1"}, {"cosine"}, r"decays to 0"),
    _m("cosine_negative_epoch_accepted",
       [("        if not _is_number(epoch) or not math.isfinite(epoch) or epoch < 0:\n"
         "            raise ValueError(f\"epoch must be a finite number >= 0, got {epoch!r}\")\n",
         "")],
       {"cosine"}, {"cosine"}, r"accepts a negative epoch"),
    # 3.1 trains total_epochs + 1 epochs: the last one crashes in get_lr
    _m("cosine_rejects_epochs_past_total",
       [("        if epoch >= self.total_epochs:\n            return self.min_lr\n",
         "        if epoch >= self.total_epochs:\n"
         "            raise ValueError(f\"epoch must be below total_epochs, got {epoch!r}\")\n")],
       {"cosine", "3.1"}, {"cosine", "3.1"}, r"accept every epoch|raised on a valid setup",
       # 5.2 trains 5 epochs: a hidden run's schedule of 3 or 4 epochs makes the bug raise there
       at_some_seeds={"5.2"}),
    # ------------------------------------------------------------------ clip_grad_norm
    # A wrong returned norm is logged by the trainer: 5.2 (history['grad_norm'], TT311) fails
    # too. The generator and overflow parts of 'clip' compare that norm as well and blame their
    # own causes (TT009, TT008): the first part's likely bug is the one that names the mutant.
    _m("clip_returns_sum_of_squares",
       [("    return total_norm\n    ### END SOLUTION",
         "    return squares\n    ### END SOLUTION")],
       {"clip", "5.2"}, {"clip"}, r"sum of squares"),
    # the rest of the function indented into the loop: norm, clipping and return of the first
    # gradient only; the trainer's steps are then not clipped to 1 (4.1, TT015)
    _m("clip_returns_first_norm",
       [(TAIL, "".join("    " + line + "\n" for line in TAIL.splitlines()))],
       {"clip", "4.1", "5.2"}, {"clip"}, r"one parameter's norm"),
    _m("clip_squares_overwritten",
       [("        squares += square\n", "        squares = square\n")],
       {"clip", "4.1", "5.2"}, {"clip"}, r"not sqrt\(sum over parameters"),
    _m("clip_fills_missing_grads",
       [(GRADS, "    grads = []\n"
                "    for p in parameters:\n"
                "        if p.grad is None:\n"
                "            p.grad = np.zeros_like(p.data)\n"
                "        grads.append(grad_array(p))\n")],
       {"clip"}, {"clip"}, r"without a gradient must be skipped"),
    _m("clip_replaces_tensor_grads",
       [(GRADS, "    parameters = list(parameters)\n" + GRADS),
        (SCALE, "            scale = max_norm / (total_norm + 1e-6)\n"
                "            for p in parameters:\n"
                "                if p.grad is not None:\n"
                "                    p.grad = grad_array(p) * scale\n")],
       {"clip"}, {"clip"}, r"instead of replacing p\.grad"),
    # NumPy 2: float32 array * np.float64 scalar is float64, and the product replaces .data
    _m("clip_upcasts_float32",
       [(GRADS, "    parameters = list(parameters)\n" + GRADS),
        ("    total_norm = math.sqrt(squares)\n", "    total_norm = np.sqrt(squares)\n"),
        (SCALE, "            scale = max_norm / (total_norm + 1e-6)\n"
                "            for p in parameters:\n"
                "                if isinstance(p.grad, Tensor):\n"
                "                    p.grad.data = p.grad.data * scale\n"
                "                elif p.grad is not None:\n"
                "                    p.grad = p.grad * scale\n")],
       {"clip"}, {"clip"}, r"changed the dtype"),
    # the factor (max_norm / total_norm) ** 2, from squared norms: the trainer's steps get a
    # gradient far below norm 1 (4.1, TT015)
    _m("clip_factor_of_squares",
       [(SCALE, "            scale = max_norm ** 2 / squares\n"
                "            for g in grads:\n"
                "                g *= scale\n")],
       {"clip", "4.1"}, {"clip"}, r"scaled twice"),
    # normalised to norm 1 whatever max_norm: the trainer's checks use grad_clip_norm=1 (4.1) or
    # a threshold no gradient reaches (4.2), so only 'clip' sees it
    _m("clip_normalizes_to_one",
       [(SCALE, "            for g in grads:\n"
                "                g /= total_norm\n")],
       {"clip"}, {"clip"}, r"the same factor for all"),
    _m("clip_max_norm_not_validated",
       [(CHECK_MAX_NORM, "")],
       {"clip"}, {"clip"}, r"negative, NaN or infinite max_norm is accepted"),
    # ------------------------------------------------------------------ Trainer: schedule
    # history['learning_rates'] records the lr read before the first batch, which is not the one
    # the epoch trained with: 5.2 (TT307) fails too
    _m("schedule_set_at_epoch_end",
       [(SET_LR, ""),
        ("        self.epoch += 1\n        self._emit(\"on_epoch_end\", loss=mean_loss)\n",
         "        if self.scheduler is not None:\n"
         "            self.optimizer.lr = self.scheduler.get_lr(self.epoch)\n"
         "        self.epoch += 1\n"
         "        self._emit(\"on_epoch_end\", loss=mean_loss)\n")],
       {"3.1", "5.2"}, {"3.1"}, r"get_lr\(e - 1\)"),
    _m("schedule_per_step",
       [(SET_LR, ""),
        ("        self.optimizer.step()\n        self._clear_grads(params)\n",
         "        if self.scheduler is not None:\n"
         "            self.optimizer.lr = self.scheduler.get_lr(self.step)\n"
         "        self.optimizer.step()\n        self._clear_grads(params)\n")],
       {"3.1", "5.2"}, {"3.1"}, r"changes at every batch"),
]

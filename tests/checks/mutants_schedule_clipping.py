"""Mutants for the schedule and clipping checks: CosineSchedule, clip_grad_norm, and how the
Trainer applies them (audit 3.1, 3.2, 4.1, 4.2)."""

from __future__ import annotations

from variants import Mutant, mutant

SET_LR = (
    "        if self.scheduler is not None:\n"
    "            self.optimizer.lr = self.scheduler.get_lr(self.epoch)\n"
)
SCALE = (
    "            scale = max_norm / (total_norm + 1e-6)\n"
    "            for g in grads:\n"
    "                g *= scale\n"
)
CLIP_CALL = "            norm = clip_grad_norm(params, self.grad_clip_norm)\n"


_m = mutant


MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------------ CosineSchedule
    _m("cosine_not_clamped",
       [("        if epoch >= self.total_epochs:\n            return self.min_lr\n", "")],
       {"cosine"}, {"cosine"}, r"not clamped after total_epochs"),
    _m("cosine_missing_half",
       [("(1.0 - math.cos(math.pi * progress)) / 2.0", "(1.0 - math.cos(math.pi * progress))")],
       {"cosine", "3.1"}, {"cosine"}, r"factor 1/2 is missing"),
    _m("cosine_numpy_float",
       [("return max(self.min_lr, float(self.max_lr - decay))",
         "return np.float32(max(self.min_lr, self.max_lr - decay))")],
       {"cosine"}, {"cosine"}, r"float \(float or np\.float64\).*np\.float32.*not float instances"),
    _m("cosine_accepts_nan_rate",
       [("    if not _is_number(value) or not math.isfinite(value) or value < 0:\n",
         "    if not _is_number(value) or value < 0:\n")],
       {"cosine"}, {"cosine"}, r"NaN|isfinite"),
    # ------------------------------------------------------------------ clip_grad_norm
    _m("clip_not_written_back",
       [(SCALE, "            scale = max_norm / (total_norm + 1e-6)\n"
                "            for g in grads:\n"
                "                g = g * scale\n")],
       {"clip", "4.1"}, {"clip", "4.1"},
       r"not (written back|clipped)|your clip_grad_norm does not clip.*global norm"),
    _m("clip_per_parameter",
       [(SCALE, "            for g in grads:\n"
                "                own = math.sqrt(float(np.sum(g.astype(np.float64) ** 2)))\n"
                "                if own > max_norm:\n"
                "                    g *= max_norm / (own + 1e-6)\n")],
       {"clip", "4.1"}, {"clip", "4.1"},
       r"each parameter was clipped to max_norm separately|your clip_grad_norm does not clip"),
    _m("clip_returns_norm_after",
       [("    return total_norm\n    ### END SOLUTION",
         "    return math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))\n"
         "    ### END SOLUTION")],
       {"clip"}, {"clip"}, r"returned the norm after clipping"),
    _m("clip_float32_overflow",
       [("        if not math.isfinite(square) or (square == 0.0 and flat.any()):\n",
         "        if False:\n")],
       {"clip"}, {"clip"}, r"overflow"),
    _m("clip_scales_below_threshold",
       [("    if total_norm > max_norm:  # False for NaN, so non-finite gradients are left alone\n",
         "    if total_norm > 0:\n")],
       {"clip", "4.2"}, {"clip", "4.2"}, r"(only scale when|scaled UP)"),
    _m("clip_generator_read_twice",
       [(SCALE, "            scale = max_norm / (total_norm + 1e-6)\n"
                "            for p in parameters:\n"
                "                g = grad_array(p)\n"
                "                if g is not None:\n"
                "                    g *= scale\n")],
       {"clip"}, {"clip"}, r"generator"),
    # ------------------------------------------------------------------ Trainer: schedule
    _m("schedule_not_applied",
       [(SET_LR, "        if self.scheduler is not None:\n"
                 "            scheduled_lr = self.scheduler.get_lr(self.epoch)  # noqa: F841\n")],
       {"3.1", "5.2"}, {"3.1"}, r"lr never changed, so the schedule is computed but not applied"),
    _m("schedule_lr_of_next_epoch",
       [(SET_LR, "        if self.scheduler is not None:\n"
                 "            self.optimizer.lr = self.scheduler.get_lr(self.epoch + 1)\n")],
       {"3.1", "5.2"}, {"3.1"}, r"lr of epoch 0 is get_lr\(1\)"),
    _m("schedule_set_after_epoch",
       [(SET_LR, ""),
        ("        self.epoch += 1\n        self._emit(\"on_epoch_end\", loss=mean_loss)\n",
         "        self.epoch += 1\n"
         "        if self.scheduler is not None:\n"
         "            self.optimizer.lr = self.scheduler.get_lr(self.epoch)\n"
         "        self._emit(\"on_epoch_end\", loss=mean_loss)\n")],
       {"3.1", "5.2"}, {"3.1"}, r"set after each epoch for the next one"),
    _m("schedule_unguarded_none",
       [(SET_LR, "        self.optimizer.lr = self.scheduler.get_lr(self.epoch)\n")],
       # every trainer without a scheduler crashes: all Trainer checks but 3.1 fail
       {"1.1", "1.2", "1.3", "2.1", "2.2", "3.2", "4.1", "4.2", "5.1", "5.2", "7.1", "7.2", "7.3",
        "accumulation-args", "nan-loss"},
       {"3.2"}, r"scheduler is not None"),
    _m("no_scheduler_resets_lr",
       [(SET_LR, SET_LR + "        else:\n            self.optimizer.lr = 0.01\n")],
       # every run without a scheduler trains at 0.01 instead of its lr (lr=0 checks move too)
       {"1.1", "1.2", "1.3", "3.2", "5.1", "5.2", "7.1", "7.3"}, {"3.2"},
       r"leave optimizer.lr alone",
       # at 0.01, 7.2's regression falls short of half its loss at some hidden seeds
       at_some_seeds={"7.2"}),
    # ------------------------------------------------------------------ Trainer: clipping
    _m("trainer_never_clips",
       [(CLIP_CALL, "            norm = math.sqrt(sum(float(np.sum(grad_array(p) ** 2))\n"
                    "                                 for p in params if p.grad is not None))\n")],
       {"4.1"}, {"4.1"}, r"not clipped"),
    _m("trainer_clips_with_default_max_norm",
       [(CLIP_CALL, "            norm = clip_grad_norm(params)\n")],
       {"4.2"}, {"4.2"}, r"default max_norm"),
    _m("trainer_clips_before_averaging",
       [("                g *= 1.0 / window_samples\n", "                pass\n"),
        ("        self.optimizer.step()\n        self._clear_grads(params)\n",
         "        for p in params:\n            g = grad_array(p)\n            if g is not None:\n"
         "                g *= 1.0 / window_samples\n"
         "        self.optimizer.step()\n        self._clear_grads(params)\n")],
       {"4.1", "4.2", "5.2"}, {"4.1", "4.2"},
       r"clipping ran (before the gradient was complete|on the window's summed)"),
    _m("trainer_clips_each_batch",
       [("            self._emit(\"on_batch_end\", batch=batch, loss=value, samples=n)\n",
         "            self._emit(\"on_batch_end\", batch=batch, loss=value, samples=n)\n"
         "            if self.grad_clip_norm is not None:\n"
         "                clip_grad_norm(params, self.grad_clip_norm * n)\n"),
        (CLIP_CALL, "            norm = 0.0\n")],
       {"4.1", "4.2", "5.2"}, {"4.1"}, r"clip once per optimizer step"),
]

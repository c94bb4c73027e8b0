"""The catalog of causes (``checks.catalog``): every likely bug a check names carries a stable
code, each code is named by a witness (a mutant of the checks' catalog, or a file of real
student code in the corpus) on the run it was seen at, and ``tinytorch explain`` prints it.

That each likely bug the mutants, the corpus and the solutions produce at the visible seed and
a hidden one matches exactly one cause is asserted where those runs happen already
(``test_checks.py``, ``test_corpus.py``, through ``assert_coded``); here each code is found
again from its witness, so a cause whose words drifted from its pattern, or a code no check
emits any more, fails by name.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from variants import (
    Mutant,
    mutant_implementations,
    reference_implementations,
    solution_implementations,
)

from checks import CheckFailed, catalog, judge, observe, run_check
from checks.diagnose import LIKELY_BUG, NotDefined, hint
from course.authoring import release

HERE = Path(__file__).parent
MUTANTS: dict[str, Mutant] = {
    mutant.name: mutant
    for path in sorted(HERE.glob("mutants_*.py"))
    for mutant in importlib.import_module(path.stem).MUTANTS
}
#: code -> (its witness: "mutant:<name>" or "corpus:<file stem>", the seed, the check that names
#: it). The corpus is real students' code: 7 causes were seen only there.
WITNESSES: dict[str, tuple[str, int, str]] = {
    "TT001": ("mutant:cosine_keyword_slip", 0, "cosine"),
    "TT002": ("mutant:cosine_not_clamped", 0, "cosine"),
    "TT003": ("mutant:cosine_missing_half", 0, "cosine"),
    "TT004": ("mutant:cosine_numpy_float", 0, "cosine"),
    "TT005": ("mutant:cosine_keyword_slip", 0, "cosine"),
    "TT006": ("corpus:student_07", 0, "clip"),
    "TT007": ("mutant:clip_returns_norm_after", 0, "clip"),
    "TT008": ("mutant:clip_returns_norm_after", 0, "clip"),
    "TT009": ("mutant:clip_returns_norm_after", 0, "clip"),
    "TT010": ("mutant:clip_per_parameter", 0, "clip"),
    "TT011": ("mutant:clip_not_written_back", 0, "clip"),
    "TT012": ("corpus:student_17", 0, "clip"),
    "TT013": ("mutant:clip_scales_weights", 0, "clip"),
    "TT014": ("mutant:clip_scales_below_threshold", 0, "clip"),
    "TT015": ("mutant:clip_scales_weights", 0, "4.1"),
    "TT016": ("mutant:trainer_never_clips", 0, "4.1"),
    "TT017": ("mutant:trainer_clips_with_default_max_norm", 0, "4.2"),
    "TT018": ("mutant:trainer_clips_before_averaging", 0, "4.1"),
    "TT019": ("mutant:backward-never-called", 0, "4.2"),
    "TT020": ("mutant:step-once-per-epoch", 0, "4.2"),
    "TT021": ("mutant:cosine_epochs_one_based", 0, "cosine"),
    "TT022": ("mutant:cosine_over_total_minus_one", 0, "cosine"),
    "TT023": ("mutant:cosine_upside_down", 0, "cosine"),
    "TT024": ("mutant:cosine_angle_without_pi", 0, "cosine"),
    "TT025": ("mutant:cosine_min_lr_not_added", 0, "cosine"),
    "TT026": ("mutant:cosine_decays_to_zero", 0, "cosine"),
    "TT027": ("mutant:cosine_rejects_epochs_past_total", 0, "cosine"),
    "TT028": ("mutant:cosine_negative_epoch_accepted", 0, "cosine"),
    "TT029": ("mutant:clip_returns_sum_of_squares", 0, "clip"),
    "TT030": ("mutant:clip_returns_first_norm", 0, "clip"),
    "TT031": ("mutant:clip_returns_sum_of_squares", 0, "clip"),
    "TT032": ("mutant:clip_fills_missing_grads", 0, "clip"),
    "TT033": ("mutant:clip_replaces_tensor_grads", 0, "clip"),
    "TT034": ("mutant:clip_upcasts_float32", 0, "clip"),
    "TT035": ("mutant:clip_factor_of_squares", 0, "clip"),
    "TT036": ("mutant:clip_normalizes_to_one", 0, "clip"),
    "TT037": ("mutant:clip_max_norm_not_validated", 0, "clip"),
    "TT038": ("mutant:schedule_per_step", 0, "3.1"),
    "TT101": ("mutant:backward-never-called", 0, "5.1"),
    "TT102": ("mutant:partial-last-window-dropped", 0, "4.1"),
    "TT103": ("mutant:no-zero-grad-between-steps", 0, "1.2"),
    "TT104": ("mutant:stale-grads-at-epoch-start", 0, "1.2"),
    "TT105": ("mutant:accumulation-summed-not-averaged", 0, "1.3"),
    "TT106": ("mutant:accumulation-divided-by-k", 0, "1.3"),
    "TT107": ("mutant:accumulation-summed-not-averaged", 0, "4.1"),
    "TT108": ("mutant:partial-last-window-dropped", 0, "1.1"),
    "TT109": ("mutant:train_epoch_needs_len", 0, "1.1"),
    "TT110": ("mutant:trainer_step_not_counted", 0, "1.1"),
    "TT111": ("mutant:step_counts_batches", 0, "1.3"),
    "TT112": ("mutant:step_not_counted_for_partial_window", 0, "1.3"),
    "TT113": ("mutant:epoch-loss-unweighted-batch-mean", 0, "1.1"),
    "TT114": ("mutant:accumulation-steps-not-validated", 0, "accumulation-args"),
    "TT115": ("mutant:nan-loss-not-checked", 0, "nan-loss"),
    "TT116": ("mutant:nan-window-applied", 0, "nan-loss"),
    "TT117": ("mutant:nan-error-without-location", 0, "nan-loss"),
    "TT118": ("mutant:no_scheduler_resets_lr", 0, "7.1"),
    "TT119": ("mutant:no_scheduler_resets_lr", 0, "5.1"),
    "TT120": ("mutant:backward-never-called", 0, "1.1"),
    "TT121": ("mutant:step-once-per-epoch", 0, "1.1"),
    "TT122": ("mutant:accumulation-steps-ignored", 0, "1.3"),
    "TT123": ("mutant:zero-grad-every-batch-with-accumulation", 0, "1.3"),
    "TT124": ("mutant:backward-never-called", 0, "1.3"),
    "TT125": ("mutant:epoch-not-incremented", 0, "1.1"),
    "TT126": ("mutant:epoch-loss-last-batch", 0, "1.1"),
    "TT127": ("mutant:epoch-loss-summed-not-divided", 0, "1.1"),
    "TT128": ("mutant:epoch-loss-last-batch", 0, "1.3"),
    "TT129": ("mutant:train-epoch-returns-nothing", 0, "1.1"),
    "TT130": ("mutant:backward-never-called", 0, "3.2"),
    "TT131": ("mutant:nan-checked-after-step", 0, "nan-loss"),
    "TT132": ("mutant:nan-rolls-back-the-epoch", 0, "nan-loss"),
    "TT133": ("mutant:nan-raised-without-clearing", 0, "nan-loss"),
    "TT134": ("mutant:accumulation-steps-asserted", 0, "accumulation-args"),
    "TT201": ("mutant:evaluate-without-eval-mode", 0, "2.1"),
    "TT202": ("mutant:mode-set-on-top-level-only", 0, "2.1"),
    "TT203": ("mutant:train-epoch-not-switching-back", 0, "2.1"),
    "TT204": ("corpus:student_22", 0, "2.1"),
    "TT205": ("mutant:evaluate_leaves_training_mode_flag", 0, "2.1"),
    "TT206": ("mutant:evaluate-without-no-grad", 0, "2.2"),
    "TT207": ("mutant:evaluate-without-eval-mode", 0, "2.2"),
    "TT208": ("mutant:evaluate-loss-unweighted-batch-mean", 0, "2.2"),
    "TT209": ("mutant:evaluate-loss-divided-by-classified-samples", 0, "2.2"),
    "TT210": ("corpus:student_19", 0, "2.2"),
    "TT211": ("corpus:student_14", 0, "2.2"),
    "TT212": ("mutant:binary_accuracy_without_threshold", 0, "2.2"),
    "TT213": ("mutant:evaluate_accuracy_percentage", 0, "2.2"),
    "TT214": ("mutant:evaluate_accuracy_max_not_argmax", 0, "2.2"),
    "TT215": ("mutant:evaluate_clears_gradients", 0, "2.2"),
    "TT216": ("mutant:evaluate_steps_optimizer", 0, "2.2"),
    "TT217": ("mutant:evaluate_steps_optimizer", 0, "2.2"),
    "TT218": ("mutant:evaluate_returns_loss_only", 0, "2.2"),
    "TT219": ("mutant:evaluate_reads_batches_twice", 0, "2.2"),
    "TT220": ("mutant:evaluate_returns_last_batch_loss", 0, "2.2"),
    "TT221": ("mutant:mode_set_on_dropouts_only", 0, "2.1"),
    "TT301": ("mutant:schedule_not_applied", 0, "3.1"),
    "TT302": ("mutant:schedule_lr_of_next_epoch", 0, "3.1"),
    "TT303": ("mutant:schedule_unguarded_none", 0, "3.2"),
    "TT304": ("mutant:no_scheduler_resets_lr", 0, "1.1"),
    "TT305": ("mutant:cosine_missing_half", 0, "3.1"),
    "TT306": ("mutant:learning_rates_not_recorded", 0, "3.1"),
    "TT307": ("mutant:epoch-not-incremented", 0, "5.2"),
    "TT308": ("mutant:train_loss_not_appended", 0, "1.1"),
    "TT309": ("mutant:train-history-overwritten-each-epoch", 0, "5.2"),
    "TT310": ("corpus:student_24", 0, "5.2"),
    "TT311": ("mutant:window-divided-by-epoch-samples", 0, "5.2"),
    "TT312": ("mutant:on-epoch-end-never-fired", 0, "5.2"),
    "TT313": ("mutant:train-history-records-last-batch", 0, "1.1"),
    "TT314": ("mutant:train-history-overwritten-each-epoch", 0, "1.1"),
    "TT315": ("mutant:on-batch-end-after-step", 0, "5.2"),
    "TT316": ("mutant:on-batch-end-running-loss", 0, "5.2"),
    "TT317": ("mutant:epoch-not-incremented", 0, "3.1"),
    "TT401": ("mutant:parameters_not_loaded", 0, "6.1"),
    "TT402": ("mutant:checkpoint_without_optimizer_buffers", 0, "6.1"),
    "TT403": ("mutant:checkpoint_without_step_counts", 0, "6.1"),
    "TT404": ("mutant:checkpoint_without_step_counts", 0, "6.2"),
    "TT405": ("mutant:optimizer_settings_not_restored", 0, "6.2"),
    "TT406": ("mutant:scheduler_not_restored", 0, "6.2"),
    "TT407": ("mutant:clip_norm_not_restored", 0, "6.2"),
    "TT408": ("mutant:epoch_not_restored", 0, "6.1"),
    "TT409": ("mutant:history_not_restored", 0, "6.1"),
    "TT410": ("mutant:load_keeps_training_mode", 0, "6.1"),
    "TT411": ("mutant:load_keeps_dropout_rng", 0, "6.1"),
    "TT412": ("mutant:data_seed_not_restored", 0, "6.1"),
    "TT413": ("mutant:train_epoch_skips_data_order", 0, "6.1"),
    "TT414": ("mutant:evaluate_sets_data_order", 0, "6.1"),
    "TT415": ("mutant:pickle_checkpoint", 0, "checkpoint-safety"),
    "TT416": ("mutant:pickle_checkpoint", 0, "checkpoint-safety"),
    "TT417": ("mutant:load_copies_before_validating", 0, "checkpoint-safety"),
    "TT418": ("mutant:checkpoint_step_not_restored", 0, "6.1"),
    "TT419": ("mutant:checkpoint_scheduler_restored_as_dict", 0, "6.1"),
    "TT420": ("mutant:checkpoint_optimizer_state_in_json", 0, "6.1"),
    "TT421": ("mutant:checkpoint_array_names_disagree", 0, "6.1"),
    "TT422": ("mutant:checkpoint_path_gets_npz_suffix", 0, "checkpoint-safety"),
    "TT423": ("mutant:checkpoint_load_swallows_errors", 0, "checkpoint-safety"),
    "TT424": ("mutant:checkpoint_counters_set_before_validating", 0, "checkpoint-safety"),
    "TT425": ("mutant:checkpoint_weights_copied_while_reading", 0, "checkpoint-safety"),
    "TT501": ("mutant:memory_counts_numbers_not_bytes", 0, "memory"),
    "TT502": ("mutant:memory_float64_parameters", 0, "memory"),
    "TT503": ("mutant:memory_biases_missing", 0, "memory"),
    "TT504": ("mutant:memory_float64_parameters", 0, "memory"),
    "TT505": ("mutant:memory_state_read_before_first_step", 0, "memory"),
    "TT506": ("mutant:memory_plain_sgd_keeps_a_buffer", 0, "memory"),
    "TT507": ("mutant:memory_sgd_counted_like_adam", 0, "memory"),
    "TT508": ("mutant:memory_adam_one_buffer", 0, "memory"),
    "TT509": ("mutant:memory_relu_mask_missing", 0, "memory"),
    "TT510": ("mutant:memory_dropout_mask_missing", 0, "memory"),
    "TT511": ("mutant:memory_dropout_p0_counted", 0, "memory"),
    "TT512": ("mutant:memory_batch_size_ignored", 0, "memory"),
    "TT513": ("mutant:memory_only_top_level_layers", 0, "memory"),
    "TT514": ("mutant:memory_total_without_gradients", 0, "memory"),
    "TT515": ("mutant:memory_relu_mask_as_float", 0, "memory"),
    "TT516": ("mutant:memory_input_batch_counted", 0, "memory"),
    "TT517": ("mutant:memory_only_linear_layers", 0, "memory"),
    "TT518": ("mutant:memory_linear_outputs_forgotten", 0, "memory"),
    "TT519": ("mutant:memory_getsizeof_parameters", 0, "memory"),
    "TT520": ("mutant:memory_in_megabytes", 0, "memory"),
    "TT521": ("mutant:memory_total_forgotten", 0, "memory"),
    "TT522": ("mutant:memory_returns_tuple", 0, "memory"),
    "TT901": ("mutant:train-epoch-returns-nothing", 0, "1.3"),
    "TT902": ("corpus:student_13", 0, "5.2"),
    "TT903": ("mutant:history_key_misspelled", 0, "accumulation-args"),
}
#: Codes no mutant's run names: what ``diagnose.hint`` says of an exit(), the verdict of a
#: graded run that stopped, and a graded name the notebook never defines; each has its own
#: test below.
WITHOUT_A_RUN = {"TT904", "TT905", "TT906"}


def assert_coded(results: dict[str, str | None]) -> None:
    """Every likely bug in ``results`` (check id -> message) carries the code of exactly one
    cause, and its words match that cause."""
    for check_id, message in results.items():
        for match in LIKELY_BUG.finditer(message or ""):
            end = message.find("\n", match.end())
            words = message[match.end():] if end < 0 else message[match.end():end]
            causes = [c.code for c in catalog.matching(words)]
            assert match[1] and causes == [match[1]], (
                f"[{check_id}] expected one cause with its code for: {words!r}; the line "
                f"carries {match[1]!r} and matches {causes}")


def _implementations(witness: str) -> dict:
    kind, name = witness.split(":", 1)
    if kind == "mutant":
        return mutant_implementations(MUTANTS[name])
    return solution_implementations(HERE / kind / f"{name}.py")


def test_the_catalog_is_whole_and_its_codes_unique() -> None:
    codes = [cause.code for cause in catalog.CAUSES]
    assert len(codes) == len(set(codes)) and all(re.fullmatch(r"TT\d{3}", c) for c in codes)
    assert set(WITNESSES) | WITHOUT_A_RUN == set(codes), sorted(
        set(codes) ^ (set(WITNESSES) | WITHOUT_A_RUN))
    for cause in catalog.CAUSES:
        assert cause.title and cause.what and cause.effect and cause.wrong and cause.right, cause
        assert cause.wrong != cause.right and len(cause.title) <= 60, cause.code
        re.compile(cause.pattern)


@pytest.mark.parametrize("code", sorted(WITNESSES))
def test_each_code_is_named_by_its_witness(code: str) -> None:
    witness, seed, check_id = WITNESSES[code]
    with pytest.raises(CheckFailed) as failed, contextlib.redirect_stdout(io.StringIO()):
        run_check(check_id, _implementations(witness), seed=seed)
    message = str(failed.value)
    assert f"likely bug [{code}]: " in message, f"{witness} at seed {seed}:\n{message}"
    assert_coded({check_id: message})


def test_an_exit_and_a_stopped_run_have_their_codes() -> None:
    assert catalog.code_for(hint(SystemExit(0), [])) == "TT904"
    # a trusted judge given a record that stops before the check's first call into the code
    verdict = judge("1.1", [], seed=0, ended="the run ended")
    assert "likely bug [TT905]: your code stopped the run" in (verdict or ""), verdict


def test_a_name_the_notebook_never_defines_is_named_as_such() -> None:
    """The sandbox stands ``NotDefined`` in for a graded name no cell defines; the trusted
    judge's verdict names the cause, and no frame of the checks as the student's line."""
    implementations = reference_implementations()
    implementations["training_memory"] = NotDefined("training_memory")
    verdict = judge("memory", observe("memory", implementations, seed=0), seed=0) or ""
    assert "likely bug [TT906]: name 'training_memory' is graded but the notebook never " \
        "defines it" in verdict, verdict
    assert "NotDefined" not in verdict and "diagnose.py" not in verdict, verdict


#: A line of an explanation this close to a line of the solution (difflib's ratio) counts as
#: that line: the explanations ship in the student wheel.
TOO_CLOSE = 0.8


def _close(line: str, secret: str) -> bool:
    matcher = difflib.SequenceMatcher(None, line, secret)
    return (matcher.real_quick_ratio() >= TOO_CLOSE and matcher.quick_ratio() >= TOO_CLOSE
            and matcher.ratio() >= TOO_CLOSE)


def test_no_explanation_shows_a_line_of_the_solution() -> None:
    """``tinytorch explain`` reaches every student: its wrong and right lines show the bug and
    the fix in code of their own, never a line of the reference's solution regions (or one a
    few characters away), which the release keeps from students."""
    secrets = sorted(release.secrets())
    shown = []
    for cause in catalog.CAUSES:
        for field in ("wrong", "right"):
            for line in getattr(cause, field).splitlines():
                text = line.strip()
                near = [secret for secret in secrets if len(text) >= 12 and _close(text, secret)]
                if near:
                    shown.append(f"{cause.code} {field}: {text!r} ~ {near[0]!r}")
    assert not shown, "\n".join(shown)


def test_the_words_of_no_cause_carry_no_code() -> None:
    from checks.diagnose import finding

    text = finding("what", 1, 2, "words no cause of the catalog matches")
    assert text.endswith("\n  likely bug: words no cause of the catalog matches")


def test_tinytorch_explain_prints_the_cause() -> None:
    cause = catalog.by_code()["TT101"]
    done = subprocess.run([sys.executable, "-m", "checks.explain", "tt101"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"TT101: {cause.title}\n") and "Wrong:" in done.stdout
    listed = subprocess.run([sys.executable, "-m", "checks.explain", "--list"],
                            capture_output=True, text=True, timeout=60).stdout.splitlines()
    assert len(listed) == len(catalog.CAUSES)
    bad = subprocess.run([sys.executable, "-m", "checks.explain", "TT999"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no cause has the code 'TT999'" in bad.stderr

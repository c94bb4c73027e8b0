"""The checks on whole implementations written the way students write them
(``tests/checks/corpus/``, described in its CORPUS.md): other structure, names and idioms than
the reference, and the slips students make.

Each correct implementation passes every check at seeds 0 to 5. Each implementation with slips
fails exactly the checks listed here at seed 0, never makes ``run_all`` raise, and the message
of every check it fails names its cause (matches the pattern listed for that check)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_catalog import assert_coded
from variants import solution_implementations

from checks import run_all

CORPUS = Path(__file__).parent / "corpus"
CORRECT = ("student_01", "student_02", "student_03", "student_04", "student_05", "student_16")
SEEDS = (0, 1, 2, 3, 4, 5)
# a message never points into the checks' own code
INTERNALS = re.compile(r"\bchecks/(?:__init__|diagnose|units|loop|modes|schedule_clipping|"
                       r"outcomes|checkpoints|fixtures|registry|seeds|systems)\.py")

# file -> {every check it fails at seed 0: a pattern naming the cause in that check's message}
SIG = r"CosineSchedule has no parameter 'total_epochs'.*CosineSchedule\(max_lr=0\.1"
SLIPS: dict[str, dict[str, str]] = {
    "student_06": {  # CosineSchedule(total_epoch=...), history["train_losses"]
        "cosine": SIG, "3.1": SIG, "6.1": SIG, "6.2": SIG, "checkpoint-safety": SIG,
        "1.1": r"history\['train_loss'\]", "5.2": r"history\['train_loss'\] = \[\]",
        "accumulation-args": r"key 'train_loss'.*spec's history keys"},
    "student_07": {  # p.grad.data on ndarray gradients; evaluate averages batches as equals
        "clip": r"AttributeError.*at .*student_07\.py, line \d+",
        "2.2": r"averaged as equals"},
    "student_08": {  # pickle checkpoint; trainer.step counts batches
        "1.3": r"trainer\.step counts batches",
        "checkpoint-safety": r"the file is a pickle"},
    "student_09": {  # loss / k; the partial last window skipped
        "1.1": r"generator is not the cause.*partial last window",
        "1.3": r"partial last window was dropped",
        "4.1": r"even with clipping off.*weighted as equals"},
    "student_10": {  # clipping each batch in the window; evaluate in training mode, with a graph
        "2.1": r"Dropout's random draws during evaluate.*training mode",
        "2.2": r"graph was recorded.*no_grad.*Dropout in training mode",
        "4.1": r"clipping ran before the gradient was complete",
        "4.2": r"clipping ran on the window's summed gradient"},
    "student_11": {  # get_lr returns np.float32; binary accuracy by argmax
        "cosine": r"returned a float32.*not float instances",
        "2.2": r"BinaryCrossEntropyLoss.*0\.5"},
    "student_12": {  # no optimizer state in the file; Dropout RNG and training mode not restored
        "6.1": r"training mode was not restored.*Dropout layers' random states.*momentum buffers",
        "6.2": r"momentum buffers.*Adam's moments.*training mode was not restored"},
    "student_13": {  # no evaluate; clip scales p.data
        "clip": r"scaled the parameters' values \(p\.data\)",
        "4.1": r"your clip_grad_norm does not clip",
        **{c: r"no attribute 'evaluate'" for c in
           ("2.1", "2.2", "5.2", "6.1", "6.2", "checkpoint-safety")}},
    "student_14": {  # the loader is never told the epoch; argmax over axis 0
        "2.2": r"evaluate with CrossEntropyLoss.*at .*student_14\.py, line \d+.*argmax",
        "6.1": r"never tells the loader which epoch.*set_epoch",
        "6.2": r"never tells the loader which epoch.*set_epoch"},
    "student_15": {  # accumulation sums; squares in float32 overflow at 3e20
        "clip": r"overflow", "1.3": r"summed, not averaged",
        "4.1": r"even with clipping off", "4.2": r"not averaged over the window's samples"},
    "student_17": {  # Tensor gradients rebound, not scaled; len(dataloader) in train_epoch
        "clip": r"Tensor gradient was left unscaled", "1.1": r"len\(\)",
        "4.1": r"your clip_grad_norm does not clip"},
    "student_18": {  # window gradient divided by k; trainer.step skips the partial window
        "1.3": r"divided by k instead of by samples.*does not count the partial last window",
        "4.1": r"even with clipping off.*weighted as equals"},
    # student_19, 20, 24 and 26: the message the student should see; the check does not say
    # it yet (CORPUS.md, "Messages still to change")
    "student_19": {  # evaluate: len(dataloader), and the batch accuracies averaged as equals
        "2.2": r"(?=.*accuracy with CrossEntropyLoss.*?batch accuracies were averaged as equals)"
               r"(?=.*generator.*do not call len\(dataloader\))"
               r"(?=.*accuracy with BinaryCrossEntropyLoss.*?averaged as equals)"},
    "student_20": {  # BCE accuracy: argmax of the one probability column against the targets'
        "2.2": r"accuracy with BinaryCrossEntropyLoss.*observed: 1\.0.*argmax"},
    "student_21": {  # CE accuracy: argmax over axis 0
        "2.2": r"evaluate with CrossEntropyLoss.*student_21\.py, line \d+.*not axis=0"},
    "student_22": {  # evaluate switches back to training mode before returning
        "2.1": r"after evaluate returned.*do not restore training mode at its end"},
    "student_23": {  # evaluate sums the loss only for CE / BCE: every regression loss is 0.0
        "2.2": r"^(?!.*Dropout).*loss of 0\.0 for a regression loss"},
    "student_24": {  # history['grad_norm'] never appended to; on_batch_end never emitted
        "5.2": r"(?=.*history\['grad_norm'\] is never appended to)(?=.*on_batch_end never fired)"},
    "student_25": {  # clip_grad_norm: g = g * scale (a new array, never written back)
        "clip": r"not written back.*g \*= scale", "4.1": r"your clip_grad_norm does not clip"},
    "student_26": {  # save_checkpoint writes {} for every Dropout's random state
        **{c: r"(?=.*save_checkpoint)(?=.*Dropout)(?=.*(\bempty\b|\{\}))"
           for c in ("6.1", "6.2", "checkpoint-safety")}},
    "student_27": {  # optimizer state saved without exp_avg, exp_avg_sq and state['step']
        **{c: r"(?=.*'step' missing)(?=.*'exp_avg' missing)(?=.*'exp_avg_sq' missing)"
           for c in ("6.1", "6.2")}},
    "student_28": {  # evaluate divides by the classified samples; mode set on the model only
        "2.1": r"model's own flag was True but its Dropout's was not",
        "2.2": r"\A(?=.*random generator across evaluate.*?random numbers were drawn)"
               + r"(?=.*evaluate's loss with batches of (?:(?!likely bug).)*?"
                 r"likely bug \[TT\d{3}\]: evaluate returned a loss of 0\.0 for a regression loss "
                 r"\(MSELoss\): the sum of each batch's loss times its samples was divided by "
                 r"the number of classification samples)"
               + r"(?!.*loss was computed with Dropout active)"},
}


def _impl(name: str) -> dict:
    return solution_implementations(CORPUS / f"{name}.py")


def test_the_corpus_is_whole() -> None:
    files = {p.stem for p in CORPUS.glob("student_*.py")}
    assert files == set(CORRECT) | set(SLIPS), sorted(files ^ (set(CORRECT) | set(SLIPS)))
    assert len(files) >= 12 and len(CORRECT) >= 4


@pytest.mark.parametrize("name", CORRECT)
def test_correct_student_code_passes_every_check_at_every_seed(name: str) -> None:
    implementations = _impl(name)
    for seed in SEEDS:
        failures = {k: v for k, v in run_all(implementations, seed=seed).items() if v}
        assert not failures, f"seed {seed}:\n" + "\n\n".join(
            f"[{k}] {v}" for k, v in failures.items())


#: file -> {check: pattern} its messages must still match at hidden seeds (other batch sizes
#: and data): a cause named from the run's numbers, not from the visible run's coincidences.
HIDDEN_SEEDS = (3, 9, 1234)
NAMED_AT_HIDDEN_SEEDS = {"student_28": {"2.2": SLIPS["student_28"]["2.2"]}}


@pytest.mark.parametrize("name", sorted(NAMED_AT_HIDDEN_SEEDS))
def test_student_slips_are_named_at_hidden_seeds_too(name: str) -> None:
    implementations = _impl(name)
    for seed in HIDDEN_SEEDS:
        results = run_all(implementations, seed=seed)
        failed = {k for k, v in results.items() if v}
        assert failed == set(SLIPS[name]), f"seed {seed}: fails {sorted(failed)}"
        for check_id, pattern in NAMED_AT_HIDDEN_SEEDS[name].items():
            assert re.search(pattern, results[check_id], flags=re.I | re.S), (
                f"[{check_id}] at seed {seed} does not name the cause ({pattern!r}):\n"
                f"{results[check_id]}")
        assert_coded(results)


@pytest.mark.parametrize("name", sorted(SLIPS))
def test_student_slips_fail_exactly_their_checks_and_name_the_cause(name: str) -> None:
    causes = SLIPS[name]
    results = run_all(_impl(name))  # never raises, whatever the code does
    failed = {k for k, v in results.items() if v}
    assert failed == set(causes), f"fails {sorted(failed)}, expected {sorted(causes)}"
    for check_id, pattern in causes.items():
        assert re.search(pattern, results[check_id], flags=re.I | re.S), (
            f"[{check_id}] does not name the cause ({pattern!r}):\n{results[check_id]}")
        assert not INTERNALS.search(results[check_id]), results[check_id]
    assert_coded(results)

"""Errors before checks (``checks.raised``): a check whose code comes from a cell that raised
names that cell, in the student's kernel and in trusted grading alike, and only its words
change: never whether it passed, never a score.

The kernel's side is tested here on the record directly (``noted``, as IPython's hook fills
it); tests/course/test_run_all.py runs it in a real kernel, and compares with the trusted
report of the same notebook.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from variants import reference_implementations

from checks import CheckFailed, needs, raised, run_check
from checks.diagnose import NOT_WRITTEN
from course.assignment.cells import GradedCell
from course.grading import submission
from tinytorch.viz import notebook as viz_notebook

#: The train_epoch answer cell with its signature's ":" missing (a SyntaxError at line 4).
BROKEN_EPOCH = (
    "@add_to_class(Trainer)\n"
    "def train_epoch(\n"
    "    self, dataloader, accumulation_steps: int = 1\n"
    ") -> float\n"
    "    return 0.0\n"
)
SAID = ("the answer cell for Trainer.train_epoch raised SyntaxError at line 4: fix it first\n"
        "  expected: the cell runs without an error (this check runs the code it defines)\n"
        "  observed: SyntaxError: expected ':'")


@pytest.fixture(autouse=True)
def record(monkeypatch: pytest.MonkeyPatch) -> list[raised.Raised]:
    """An empty record of the kernel's cells for each test."""
    fresh: list[raised.Raised] = []
    monkeypatch.setattr(raised, "RECORD", fresh)
    return fresh


def _syntax_error(source: str) -> SyntaxError:
    try:
        compile(source, "1812328410.py", "exec")
    except SyntaxError as error:
        return error
    raise AssertionError(f"expected a SyntaxError compiling:\n{source}")


class _WithoutTrainEpoch:
    """The notebook's Trainer when the train_epoch cell never ran: the given class only."""

    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None):
        self.history = {"train_loss": [], "eval_loss": [], "learning_rates": []}


# ----------------------------------------------------------------------------- what a cell defines
def test_a_cell_that_does_not_parse_still_says_what_it_defines() -> None:
    assert raised.definitions(BROKEN_EPOCH) == ("Trainer.train_epoch",)
    schedule = ("class CosineSchedule:\n    '''doc'''\n\n    def __init__(self):\n"
                "        def inner():\n            pass\n\n    def get_lr(self, epoch)\n")
    assert raised.definitions(schedule) == (
        "CosineSchedule", "CosineSchedule.__init__", "CosineSchedule.get_lr")
    assert raised.definitions('run_check("1.1", mine())\nwith viz.demo():\n    x = 1') == ()
    decorated = "@add_to_class(Trainer)\n@functools.cache\ndef evaluate(self, data):\n    pass"
    assert raised.definitions(decorated) == ("Trainer.evaluate",)


@pytest.mark.parametrize(("source", "cell"), [
    (BROKEN_EPOCH, "the answer cell for Trainer.train_epoch"),
    (BROKEN_EPOCH.replace("(Trainer)", "(Trainr)"), "the answer cell for Trainer.train_epoch"),
    ("class CosineSchedule:\n    def get_lr(self, e):\n        pass",
     "the answer cell for CosineSchedule.get_lr"),
    ("class Trainer:\n    def __init__(self):\n        pass", "the cell defining Trainer"),
])
def test_a_cell_is_named_by_the_answer_it_holds(source: str, cell: str) -> None:
    found = raised.Raised.of(source, "NameError", "x", 1)
    assert found is not None and found.cell == cell
    assert "Trainer" in found.owners() or "CosineSchedule" in found.owners()


def test_the_kernel_and_the_sandbox_word_a_syntax_error_alike() -> None:
    """Python names the cell's file in a SyntaxError's text: a kernel's temporary file, the
    sandbox's ``<cell In[10]>``; neither reaches the message."""
    assert raised.shown_text("expected ':' (1812328410.py, line 4)") == "expected ':'"
    assert raised.shown_text("expected ':' (<cell In[10]>, line 4)") == "expected ':'"
    assert raised.shown_text("name 'Trainr' is not defined") == "name 'Trainr' is not defined"


# ----------------------------------------------------------------------------- in the kernel
def test_a_check_names_the_raised_cell_instead_of_what_it_left_missing(
        record: list[raised.Raised]) -> None:
    implementations = {**reference_implementations(), "Trainer": _WithoutTrainEpoch}
    with pytest.raises(CheckFailed) as before:
        run_check("1.1", implementations)
    assert "train_epoch" in before.value.message and "fix it first" not in before.value.message
    error = _syntax_error(BROKEN_EPOCH)
    raised.noted(BROKEN_EPOCH, error, error.lineno)
    for check in ("1.1", "2.2", "6.1"):
        with pytest.raises(CheckFailed) as failed:
            run_check(check, implementations)
        assert failed.value.message == SAID, failed.value.message
        assert NOT_WRITTEN not in failed.value.message
    assert len(record) == 1


def test_a_check_that_does_not_receive_the_raised_cells_code_is_unchanged() -> None:
    error = _syntax_error(BROKEN_EPOCH)
    raised.noted(BROKEN_EPOCH, error, error.lineno)
    assert needs("clip") == ["clip_grad_norm"]

    def unwritten(parameters, max_norm=1.0):
        raise NotImplementedError()

    with pytest.raises(CheckFailed) as failed:
        run_check("clip", {"clip_grad_norm": unwritten})
    assert failed.value.message.startswith(f"{NOT_WRITTEN}: "), failed.value.message


def test_a_check_whose_code_the_raised_cell_never_defined_says_so() -> None:
    """A fresh kernel: the CosineSchedule cell raised, so the name is not defined at all."""
    source = "class CosineSchedule:\n    def get_lr(self, epoch)\n        return 0.1\n"
    error = _syntax_error(source)
    raised.noted(source, error, error.lineno)
    with pytest.raises(CheckFailed) as failed:
        run_check("cosine", {})
    assert failed.value.message.startswith(
        "the answer cell for CosineSchedule.get_lr raised SyntaxError at line 2: fix it first")
    with pytest.raises(ValueError, match="needs implementations"):
        run_check("clip", {})  # no cell raised for it: the caller's error, as before


def test_a_pass_on_code_from_before_the_cell_raised_says_so(
        capsys: pytest.CaptureFixture[str]) -> None:
    error = _syntax_error(BROKEN_EPOCH)
    raised.noted(BROKEN_EPOCH, error, error.lineno)
    run_check("accumulation-args", reference_implementations())
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("\N{CHECK MARK} accumulation-args: ")
    assert printed[1] == ("  but the answer cell for Trainer.train_epoch raised SyntaxError at "
                          "line 4: this check ran without that cell's code as it is now; fix "
                          "it, then run this check again")


def test_running_the_cell_again_replaces_what_it_recorded(record: list[raised.Raised]) -> None:
    raised.noted(BROKEN_EPOCH, _syntax_error(BROKEN_EPOCH), 4)
    named = BROKEN_EPOCH.replace("(Trainer)", "(Trainr)").replace(") -> float", "):")
    raised.noted(named, NameError("name 'Trainr' is not defined"), 1)
    assert [(r.error, r.line) for r in record] == [("NameError", 1)]
    raised.noted(BROKEN_EPOCH.replace(") -> float", ") -> float:"), None, None)
    assert record == []
    raised.noted('run_check("1.1", mine())', AssertionError("a check failed"), 1)
    assert record == [], "a cell that defines nothing is no cause of any check's failure"


def test_a_demo_names_the_raised_cell_instead_of_a_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[object] = []
    monkeypatch.setattr(viz_notebook, "_show", shown.append)
    raised.noted(BROKEN_EPOCH, _syntax_error(BROKEN_EPOCH), 4)

    class Trainer:  # the notebook's, without the train_epoch its cell failed to attach
        pass

    with viz_notebook.demo():
        Trainer().train_epoch([])
    assert [str(s) for s in shown] == [SAID.splitlines()[0]]
    with pytest.raises(ZeroDivisionError), viz_notebook.demo():
        1 / 0  # noqa: B018 - an error no raised cell explains is raised as usual


# ----------------------------------------------------------------------------- trusted grading
def test_trusted_grading_words_it_alike_and_scores_the_same() -> None:
    """The grader's report of verdicts already decided: the raised cell changes the failed
    cells' messages to the kernel's words, and nothing else."""
    graded = [GradedCell("cosine_schedule", 6.0, "cosine"),
              GradedCell("audit_1_1_complete_loop", 6.0, "1.1"),
              GradedCell("audit_6_1_resume_is_exact", 6.0, "6.1")]
    verdicts = {("cosine", 0): None, ("cosine", 5): None,
                ("1.1", 0): f"{NOT_WRITTEN}: Trainer.train_epoch", ("1.1", 5): "x",
                ("6.1", 0): None, ("6.1", 5): None}  # a pass on any code stays a pass
    sources = ["import numpy as np", BROKEN_EPOCH]
    failed = [[2, "SyntaxError", "expected ':' (<cell In[2]>, line 4)", 4]]
    cells = submission.raised_cells(sources, failed)
    plain = submission._report(  # noqa: SLF001 - the report's one composition of messages
        "a.ipynb", graded, verdicts, 0.0, None, failed, [], labels=["code cell 1", "x"])
    worded = submission._report(  # noqa: SLF001
        "a.ipynb", graded, verdicts, 0.0, None, failed, [], labels=["code cell 1", "x"],
        raised=cells)
    assert [(c["points"], c["passed"]) for c in worded["cells"]] == [
        (c["points"], c["passed"]) for c in plain["cells"]] == [
        (6.0, True), (0.0, False), (6.0, True)]
    assert worded["total"] == plain["total"] == 12.0
    assert worded["cells"][1]["message"] == SAID
    assert plain["cells"][1]["message"].startswith("first, your notebook did not run cleanly")


def test_a_name_the_raised_cell_never_defined_is_the_librarys_stub_never_a_solution(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh kernel: the CosineSchedule cell raised before defining the class, so the cells
    after it would stop "Run All" with a NameError. The student's tinytorch holds a stub of
    it, which stands in; the instructor's holds the solution, which never does."""
    namespace: dict[str, object] = {}
    assert raised.stub_back(("CosineSchedule", "CosineSchedule.get_lr"), namespace) == []
    assert namespace == {}, "the reference solution stood in for the student's cell"
    (tmp_path / "released_training.py").write_text(
        "class CosineSchedule:\n    def get_lr(self, epoch):\n        raise NotImplementedError()\n"
        "\n\ndef _check_count(name, value, minimum):\n    return value\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(raised, "LIBRARY", "released_training")
    namespace = {"_check_count": len}
    bound = raised.stub_back(("CosineSchedule", "CosineSchedule.get_lr", "_check_count",
                              "clip_grad_norm"), namespace)
    assert bound == ["CosineSchedule"] and namespace["_check_count"] is len
    assert namespace["CosineSchedule"].__module__ == "released_training"

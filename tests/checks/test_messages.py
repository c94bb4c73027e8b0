"""How a check speaks to a student: it never aborts on their code, names code not written yet
as such, shows the message first with only the student's own frames, confirms a pass in one
line, and lists every independent deviation.

The notebook test runs real cells in a real kernel (nbclient), as a student's JupyterLab does,
and reads the error output IPython renders through ``CheckFailed._render_traceback_``."""

from __future__ import annotations

import math
import re

import nbformat
import pytest
from nbclient import NotebookClient
from variants import reference_implementations

from checks import CHECKS, CheckFailed, run_all, run_check
from tinytorch.core.training import CosineSchedule as Reference

INTERNALS = re.compile(r"checks/(?:__init__|diagnose|units|loop|modes|schedule_clipping|outcomes|"
                       r"checkpoints|fixtures|systems)\.py")


class _Hostile:
    """A Trainer whose every method misbehaves in another way."""

    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None):
        self.history = {}  # no keys at all

    def train_epoch(self, dataloader, accumulation_steps=1):
        raise SystemExit(3)

    def evaluate(self, dataloader):
        return {}["missing"]

    def save_checkpoint(self, path):
        raise RecursionError("deep")

    def load_checkpoint(self, path):
        raise MemoryError()


def _not_written(*args, **kwargs):
    raise NotImplementedError()


def _exits(model, optimizer, batch_size):
    raise SystemExit(3)


class _Unwritten(Reference):
    def get_lr(self, epoch):
        raise NotImplementedError()


def test_run_all_never_raises_whatever_the_code_does() -> None:
    implementations = {"CosineSchedule": _Unwritten, "clip_grad_norm": _not_written,
                       "Trainer": _Hostile, "training_memory": _exits}
    results = run_all(implementations)
    assert set(results) == set(CHECKS) and all(results.values())
    assert "exit()" in results["1.1"]
    assert "SystemExit" in results["memory"]
    for message in results.values():
        assert not INTERNALS.search(message), message


def test_a_stub_is_not_written_yet_without_a_guess() -> None:
    implementations = {**reference_implementations(), "CosineSchedule": _Unwritten,
                       "clip_grad_norm": _not_written}
    results = run_all(implementations)
    assert results["cosine"].startswith("not written yet: _Unwritten.get_lr")
    assert results["clip"].startswith("not written yet: _not_written")
    assert "likely bug" not in results["cosine"] + results["clip"]
    with pytest.raises(CheckFailed, match="not written yet"):
        run_check("clip", implementations)


def test_a_method_attached_after_its_class_is_named_with_its_class() -> None:
    """The lesson writes ``Trainer``'s methods one cell at a time and attaches each to the class
    (``add_to_class``): its stub's name is the method's alone, and the message says whose it
    is, the way the lesson's pictures say it ("not written yet: Trainer.train_epoch")."""
    reference = reference_implementations()["Trainer"]

    class Trainer(reference):
        pass

    def train_epoch(self, dataloader, accumulation_steps=1):
        raise NotImplementedError()

    Trainer.train_epoch = train_epoch
    results = run_all({**reference_implementations(), "Trainer": Trainer})
    assert results["1.1"].startswith("not written yet: Trainer.train_epoch\n"), results["1.1"]


def test_a_crash_names_the_call_the_error_and_the_students_line() -> None:
    def clip(parameters, max_norm=1.0):
        norms = [p.grad.data for p in parameters]  # an ndarray gradient has no .data
        return float(sum(n.sum() for n in norms))

    message = run_all({**reference_implementations(), "clip_grad_norm": clip})["clip"]
    assert "AttributeError" in message
    assert re.search(r"at .*test_messages\.py, line \d+, in clip: norms = \[p\.grad\.data",
                     message), message
    assert not INTERNALS.search(message), message


def test_a_signature_slip_names_the_argument_and_the_spec() -> None:
    class CosineSchedule(Reference):
        def __init__(self, max_lr=0.1, min_lr=0.01, total_epoch=100):
            super().__init__(max_lr, min_lr, total_epoch)

    message = run_all({**reference_implementations(), "CosineSchedule": CosineSchedule})["3.1"]
    assert "has no parameter 'total_epochs'" in message
    assert "CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=100)" in message


def test_one_failure_does_not_hide_the_others() -> None:
    class Unvalidated(Reference):
        def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
            self.max_lr, self.min_lr, self.total_epochs = max_lr, min_lr, total_epochs

        def get_lr(self, epoch):  # unclamped, and no argument checks at all
            return self.min_lr + (self.max_lr - self.min_lr) * (
                1 + math.cos(math.pi * epoch / self.total_epochs)) / 2

    message = run_all({**reference_implementations(), "CosineSchedule": Unvalidated})["cosine"]
    assert re.match(r"\d+ deviations:", message), message
    assert "not clamped" in message and "bad settings accepted" in message
    assert "negative epoch" in message


def test_a_pass_prints_one_line_and_a_failure_renders_message_first() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (
        "from checks import run_check\n"
        "from tinytorch.core.training import CosineSchedule, Trainer\n"
        "def clip_grad_norm(parameters, max_norm=1.0):\n"
        "    grads = [p.grad for p in parameters]\n"
        "    return 1 / 0\n",
        'run_check("clip", {"clip_grad_norm": clip_grad_norm})',
        'run_check("cosine", {"CosineSchedule": CosineSchedule})',
    )]
    NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True).execute()
    failed, passed = notebook.cells[1].outputs, notebook.cells[2].outputs
    assert [o.output_type for o in failed] == ["error"]  # nbgrader scores the cell as failed
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in failed[0].traceback]
    assert lines[0].startswith("✗ check clip: ")
    assert any("observed: ZeroDivisionError: division by zero (at cell In[1], line 5" in line
               for line in lines), lines
    assert not any(INTERNALS.search(line) or "Traceback" in line for line in lines), lines
    assert [o.output_type for o in passed] == ["stream"] and passed[0].name == "stdout"
    assert passed[0].text.count("\n") == 1 and passed[0].text.startswith("✓ cosine: ")

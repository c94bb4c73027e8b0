"""The reference Module 07 marks what students write with nbgrader's solution markers. Removing
those regions (as ``nbgrader generate_assignment`` does) must leave a module that still imports
and whose student parts raise NotImplementedError: the seam the course release is built on."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

import tinytorch.core.training as reference
from course.assignment.solutions import SOLUTION_REGION as REGION
from course.assignment.solutions import strip_solutions

SOURCE = Path(reference.__file__)
STUDENT_PARTS = ["get_lr", "clip_grad_norm", "train_epoch", "_optimizer_step", "evaluate",
                 "save_checkpoint", "load_checkpoint", "training_memory"]


def _released_module() -> types.ModuleType:
    stub = strip_solutions(SOURCE.read_text())
    module = types.ModuleType("released_training")
    exec(compile(stub, "released_training.py", "exec"), module.__dict__)
    return module


def test_markers_are_balanced_and_not_nested() -> None:
    text = SOURCE.read_text()
    begins = re.findall(r"^\s*### BEGIN SOLUTION$", text, flags=re.M)
    ends = re.findall(r"^\s*### END SOLUTION$", text, flags=re.M)
    assert len(begins) == len(ends) == len(REGION.findall(text)) > 0
    assert not re.search(r"^\s*### (BEGIN|END) SOLUTION$", REGION.sub("", text), flags=re.M)


def test_every_student_part_is_a_solution_region() -> None:
    text = SOURCE.read_text()
    owners = []
    for match in REGION.finditer(text):
        before = text[: match.start()]
        owners.append(re.findall(r"def (\w+)\(", before)[-1])
    assert owners == STUDENT_PARTS


def test_release_imports_and_raises_not_implemented(tmp_path: Path) -> None:
    released = _released_module()
    with pytest.raises(NotImplementedError):
        released.CosineSchedule().get_lr(0)
    with pytest.raises(NotImplementedError):
        released.clip_grad_norm([], 1.0)
    from support import SimpleModel, line_data, loader

    from tinytorch.core.losses import MSELoss
    from tinytorch.core.optimizers import SGD

    model = SimpleModel(n_in=1)
    trainer = released.Trainer(model, SGD(model.parameters()), MSELoss())
    x, y = line_data(8)
    for call in (
        lambda: trainer.train_epoch(loader(x, y, 4)),
        lambda: trainer.evaluate(loader(x, y, 4)),
        lambda: trainer.save_checkpoint(tmp_path / "c"),
        lambda: trainer.load_checkpoint(tmp_path / "c"),
        lambda: released.training_memory(model, trainer.optimizer, 4),
    ):
        with pytest.raises(NotImplementedError):
            call()
    assert trainer.epoch == 0 and trainer.step == 0

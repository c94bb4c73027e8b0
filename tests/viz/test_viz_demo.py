"""``with viz.demo():``, the lesson's demo cells: code not written yet shows "not written yet:
<the part>" (the checks' words) in place of a traceback; every other error is raised."""

from __future__ import annotations

import numpy as np
import pytest

from tinytorch import viz
from tinytorch.core.layers import Module
from tinytorch.core.tensor import Tensor


class Schedule:
    """A student's class before get_lr is written, as the release gives it."""

    def get_lr(self, epoch: int) -> float:
        if epoch < 0:
            raise ValueError("epoch must be >= 0")
        raise NotImplementedError()


def train_epoch(self: object, dataloader: object) -> float:
    """A method attached with add_to_class, as the notebook's Trainer cells are."""
    raise NotImplementedError()


class Trainer:
    pass


Trainer.train_epoch = train_epoch  # what add_to_class(Trainer) does


def _words(shown: object) -> list[str]:
    return [str(obj) for obj in shown.displayed]


def test_a_stub_shows_its_name_instead_of_a_traceback(shown) -> None:
    with viz.demo():
        print("before")
        [Schedule().get_lr(e) for e in range(3)]
        raise AssertionError("the demo must end at the stub")
    assert _words(shown) == [
        "not written yet: Schedule.get_lr (write it, then run this cell again)"]
    html = shown.displayed[0]._repr_html_()
    assert "not written yet" in html and "<code>Schedule.get_lr</code>" in html


def test_a_method_attached_to_a_class_is_named_with_its_class(shown) -> None:
    with viz.demo():
        Trainer().train_epoch([])
    assert _words(shown)[0].startswith("not written yet: Trainer.train_epoch ")


def test_a_function_is_named_alone(shown) -> None:
    def clip_grad_norm(parameters: object, max_norm: float = 1.0) -> float:
        raise NotImplementedError("write clip_grad_norm")

    with viz.demo():
        clip_grad_norm([], 1.0)
    assert _words(shown)[0].startswith("not written yet: clip_grad_norm ")


@pytest.mark.parametrize("error", [TypeError("bad argument"), AssertionError("wrong value"),
                                   ValueError("epoch must be >= 0"), KeyboardInterrupt()])
def test_every_other_error_is_raised(shown, error: BaseException) -> None:
    with pytest.raises(type(error)), viz.demo():
        raise error
    assert shown.displayed == []


def test_the_given_argument_checks_still_raise(shown) -> None:
    with pytest.raises(ValueError, match="epoch must be"), viz.demo():
        Schedule().get_lr(-1)
    assert shown.displayed == []


def test_a_not_implemented_error_of_the_library_is_not_hidden(shown) -> None:
    """tinytorch's own abstract methods are no part left to the student: a layer without
    forward is a real bug, raised as usual."""

    class NoForward(Module):
        pass

    with pytest.raises(NotImplementedError, match="must define forward"), viz.demo():
        NoForward()(Tensor(np.ones((1, 2))))
    assert shown.displayed == []


def test_outside_a_notebook_the_message_is_printed_to_stdout(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def no_ipython(obj: object, **kwargs: object) -> None:
        raise ImportError("no IPython here")

    monkeypatch.setattr("tinytorch.viz.notebook._display", no_ipython)  # where demo() looks
    with viz.demo():
        Schedule().get_lr(0)
    out, err = capsys.readouterr()
    assert out.startswith("not written yet: Schedule.get_lr") and err == ""

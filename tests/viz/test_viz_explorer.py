"""schedule_explorer: sliders that redraw the student's schedule beside the reference."""

from __future__ import annotations

import base64
import math

import numpy as np
from ipywidgets import ValueWidget

from tinytorch.core.training import CosineSchedule
from tinytorch.viz import schedule_explorer, spec_lr
from tinytorch.viz.explorer import REDRAW


def _slider(explorer, name):
    return next(w for w in explorer.kwargs_widgets if w.description == name)


class LinearSchedule:
    """A wrong schedule a student might write: a straight line from max_lr to min_lr."""

    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):
        self.max_lr, self.min_lr, self.total_epochs = max_lr, min_lr, total_epochs

    def get_lr(self, epoch):
        done = min(epoch / self.total_epochs, 1.0)
        return self.max_lr - (self.max_lr - self.min_lr) * done


class Unwritten(CosineSchedule):
    def get_lr(self, epoch):
        raise NotImplementedError()


def test_sliders_exist_and_moving_max_lr_redraws_the_students_curve(shown, line) -> None:
    explorer = schedule_explorer(CosineSchedule, epochs=10)
    names = {w.description for w in explorer.kwargs_widgets}
    assert {"max_lr", "min_lr", "total_epochs", "warmup_epochs"} <= names
    first = explorer.result
    before = line(first, "CosineSchedule").get_ydata().copy()
    assert before[0] == 0.1 and "matches" in first.axes[0].get_title()

    _slider(explorer, "max_lr").value = 0.5
    after = line(explorer.result, "CosineSchedule").get_ydata()
    assert explorer.result is not first
    assert after[0] == 0.5 and not np.allclose(before, after)
    assert "matches" in explorer.result.axes[0].get_title()
    assert len(shown.displayed) == 2  # one picture per setting, into the widget's output


def test_curve_runs_past_total_epochs_and_warmup_slider_reaches_the_class(shown, line) -> None:
    explorer = schedule_explorer(CosineSchedule, epochs=10)
    _slider(explorer, "warmup_epochs").value = 3
    ys = line(explorer.result, "CosineSchedule").get_ydata()
    expected = CosineSchedule(max_lr=0.1, min_lr=0.001, total_epochs=10, warmup_epochs=3)
    assert len(ys) > 11 and ys[-1] == 0.001
    assert list(ys) == [expected.get_lr(e) for e in range(len(ys))]


def test_a_linear_schedule_is_visibly_off_the_reference(shown, line) -> None:
    explorer = schedule_explorer(LinearSchedule, epochs=20)
    sliders = {w.description for w in explorer.kwargs_widgets if isinstance(w, ValueWidget)}
    assert sliders == {"max_lr", "min_lr", "total_epochs"}  # it takes no warmup_epochs
    fig = explorer.result
    mine, reference = line(fig, "LinearSchedule").get_ydata(), line(fig, "reference").get_ydata()
    assert np.max(np.abs(mine - reference)) > 0.01
    assert "differs" in fig.axes[0].get_title()


def test_an_unwritten_get_lr_shows_its_error_instead_of_crashing(shown, line) -> None:
    fig = schedule_explorer(Unwritten).result
    title = " ".join(fig.axes[0].get_title().split())
    assert title == "not written yet: Unwritten.get_lr" + REDRAW  # the checks' words, and how
    assert not [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "Unwritten"]
    assert len(line(fig, "reference").get_ydata()) > 0  # the target is still drawn


def test_settings_the_class_rejects_show_the_reason(shown, line) -> None:
    explorer = schedule_explorer(CosineSchedule, epochs=5)
    _slider(explorer, "warmup_epochs").value = 8
    assert "ValueError" in explorer.result.axes[0].get_title()


def test_reference_cls_and_the_spec_formula_agree() -> None:
    """The default reference (spec_lr) is the reference CosineSchedule, warmup included."""
    for total, warmup in [(1, 0), (10, 0), (10, 4), (7, 6)]:
        ref = CosineSchedule(max_lr=0.3, min_lr=0.002, total_epochs=total, warmup_epochs=warmup)
        for e in range(total + 4):
            assert math.isclose(spec_lr(e, 0.3, 0.002, total, warmup), ref.get_lr(e),
                                rel_tol=1e-12, abs_tol=1e-15)


def test_an_explicit_reference_class_is_drawn(shown, line) -> None:
    fig = schedule_explorer(LinearSchedule, reference_cls=LinearSchedule).result
    assert "matches" in fig.axes[0].get_title()


def test_explorer_carries_a_static_picture_for_where_widgets_cannot_render() -> None:
    """Displayed, the explorer offers both the widget and a PNG of its figure: GitHub and
    nbviewer show the picture, a live JupyterLab the sliders."""
    explorer = schedule_explorer(CosineSchedule)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")


def test_slider_names_are_shown_whole(shown, line) -> None:
    """ipywidgets cuts descriptions longer than its default column ("total_epo..."): every
    slider sizes its description column to its name."""
    explorer = schedule_explorer(CosineSchedule, epochs=10)
    sliders = [w for w in explorer.kwargs_widgets if isinstance(w, ValueWidget)]
    assert {w.description for w in sliders} >= {"max_lr", "min_lr", "total_epochs",
                                                 "warmup_epochs"}
    assert all(w.style.description_width == "initial" for w in sliders)


def test_a_class_written_after_the_explorer_is_drawn_at_the_next_slider_move(
        shown, monkeypatch) -> None:
    """The student makes the explorer on the stub, then runs their CosineSchedule cell (a new
    class of the same name in the notebook): moving a slider draws their class."""
    import IPython

    class Shell:
        user_ns: dict = {}

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell)
    Shell.user_ns["Unwritten"] = Unwritten
    explorer = schedule_explorer(Unwritten, epochs=10)
    assert "not written yet" in explorer.result.axes[0].get_title()

    written = type("Unwritten", (CosineSchedule,), {})  # their cell, run again
    Shell.user_ns["Unwritten"] = written
    _slider(explorer, "total_epochs").value = 12
    assert explorer.result.axes[0].get_title() == "matches the reference"

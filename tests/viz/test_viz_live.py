"""LiveTraining and train_live: what they record, what they draw, and that under nbgrader they
draw nothing."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tinytorch.core.training import CosineSchedule
from tinytorch.viz import LiveTraining, headless, schedule_explorer, train_live


def _epochs(trainer, train, test, n, view=None):
    for _ in range(n):
        trainer.train_epoch(train)
        trainer.evaluate(test)
        if view is not None:
            view.update(trainer)


def test_as_a_callback_it_records_every_batch_and_every_step(make_run, shown, line) -> None:
    with LiveTraining(epochs=2, every=2) as view:
        trainer, train, test = make_run(callbacks=[view])
        _epochs(trainer, train, test, 2)

    assert [(e, b) for e, b, _ in view.batch_losses] == [(e, b) for e in (0, 1) for b in range(5)]
    # each epoch's batch losses average (8 samples each) to the epoch's recorded loss
    per_epoch = np.array([loss for *_, loss in view.batch_losses]).reshape(2, 5).mean(axis=1)
    np.testing.assert_allclose(per_epoch, trainer.history["train_loss"], rtol=1e-6)
    assert view.step_norms == trainer.history["grad_norm"] and len(view.step_norms) == 10

    fig = view.figure
    assert shown.displayed == [fig] and shown.updated and set(map(id, shown.updated)) == {id(fig)}
    assert list(line(fig, "train (batch)").get_ydata()) == [b[2] for b in view.batch_losses]
    assert list(line(fig, "before clipping").get_ydata()) == trainer.history["grad_norm"]
    assert plt.get_fignums() == []  # closed to pyplot: the notebook shows it only as displayed


def test_after_clipping_is_the_norm_capped_at_the_trainers_clip(make_run, shown, line) -> None:
    with LiveTraining() as view:
        trainer, train, test = make_run(callbacks=[view])
        _epochs(trainer, train, test, 2)
    before = np.array(line(view.figure, "before clipping").get_ydata())
    after = np.array(line(view.figure, "after clipping").get_ydata())
    clip = trainer.grad_clip_norm
    assert (before > clip).any() and (before < clip).any()  # both cases happen in this run
    np.testing.assert_array_equal(after, np.minimum(before, clip))
    assert list(line(view.figure, "grad_clip_norm").get_ydata()) == [clip, clip]


def test_update_alone_shows_the_history_of_a_trainer_without_callbacks(
    make_run, shown, line
) -> None:
    trainer, train, test = make_run(callbacks=())
    trainer.scheduler = CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=3)
    with LiveTraining(epochs=3) as view:
        _epochs(trainer, train, test, 3, view)

    history, fig = trainer.history, view.figure
    assert list(line(fig, "train (epoch)").get_xdata()) == [1, 2, 3]
    assert list(line(fig, "train (epoch)").get_ydata()) == history["train_loss"]
    assert list(line(fig, "eval").get_ydata()) == history["eval_loss"]
    rate = line(fig, "learning rate (epoch e: from e to e + 1)")
    # epoch e's rate from e to e + 1, counted from 0 as history counts: the last held to its end
    assert list(rate.get_ydata()) == history["learning_rates"] + history["learning_rates"][-1:]
    assert list(rate.get_xdata()) == [0, 1, 2, 3] and rate.get_drawstyle() == "steps-post"
    assert history["learning_rates"][0] > history["learning_rates"][-1]
    assert list(line(fig, "before clipping").get_ydata()) == history["grad_norm"]
    assert len(line(fig, "train (batch)").get_ydata()) == 0  # no callbacks, no batches
    assert shown.displayed == [fig] and len(shown.updated) == 2  # drawn once per epoch


def test_train_live_works_with_a_trainer_that_has_no_callbacks(make_run, shown, line) -> None:
    trainer, train, test = make_run()

    class StudentTrainer:  # the minimum the spec asks of a Trainer: no callbacks attribute
        def __init__(self):
            self.history, self.grad_clip_norm = trainer.history, trainer.grad_clip_norm

        def train_epoch(self, data, accumulation_steps=1):
            return trainer.train_epoch(data, accumulation_steps)

        def evaluate(self, data):
            return trainer.evaluate(data)

    history = train_live(StudentTrainer(), train, test, epochs=2)
    assert len(history["train_loss"]) == 2 and len(history["eval_loss"]) == 2
    assert list(line(shown.displayed[0], "eval").get_ydata()) == history["eval_loss"]


def test_train_live_attaches_itself_for_the_run_only(make_run, shown, capsys) -> None:
    trainer, train, test = make_run()
    history = train_live(trainer, train, test, epochs=2, accumulation_steps=2, every=1)
    assert trainer.callbacks == []
    assert len(history["train_loss"]) == 2 and len(history["grad_norm"]) == 6  # 3 steps/epoch
    figure = shown.displayed[0]
    assert shown.displayed == [figure] and len(shown.updated) >= 10  # every batch, every epoch
    out = capsys.readouterr()
    assert out.err == "" and "epochs: 100%" in out.out  # tqdm's bar, on stdout
    assert plt.get_fignums() == []


def test_a_failing_run_still_draws_its_last_state(make_run, shown) -> None:
    trainer, train, test = make_run()
    calls = []

    def evaluate_then_fail(data):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return type(trainer).evaluate(trainer, data)

    trainer.evaluate = evaluate_then_fail
    with pytest.raises(RuntimeError, match="boom"):
        train_live(trainer, train, test, epochs=3)
    assert trainer.callbacks == [] and len(trainer.history["train_loss"]) == 2


def test_under_nbgrader_nothing_is_drawn_or_displayed(
    make_run, shown, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert headless()
    assert schedule_explorer(CosineSchedule) is None

    view = LiveTraining(epochs=2, every=1)
    trainer, train, test = make_run(callbacks=[view])
    _epochs(trainer, train, test, 2, view)
    history = train_live(*make_run(), epochs=2)
    view.close()

    assert shown.displayed == [] and shown.updated == []
    assert view.figure is None and plt.get_fignums() == []
    assert len(view.batch_losses) == 10 and view.step_norms == trainer.history["grad_norm"]
    assert len(history["train_loss"]) == 2  # training itself is unchanged
    assert capsys.readouterr() == ("", "")  # no progress bar either


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="every"):
        LiveTraining(every=0)


def test_without_clipping_the_norm_panel_says_why_it_is_empty(make_run, shown, line) -> None:
    trainer, train, test = make_run(clip=None)
    train_live(trainer, train, test, epochs=1)
    fig = shown.displayed[0]
    assert len(line(fig, "before clipping").get_ydata()) == 0
    assert not line(fig, "grad_clip_norm").get_visible()
    assert "grad_clip_norm is None" in fig.axes[2].get_title()

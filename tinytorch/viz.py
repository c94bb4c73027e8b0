"""Pictures for Module 07 (Training): the schedule explorer, a live view of a run, plots of the
classic training-loop bugs, and what training costs, measured on this machine.

Every function takes the implementation to draw (the student's ``CosineSchedule``, ``Trainer``
or ``clip_grad_norm``) as an argument, so the notebook decides whose code is drawn and nothing
here reads notebook globals.

Two rules come from nbgrader, which runs the notebook to grade it:

* it scores any stderr output (a warning included) of a graded cell as a failure, so nothing here
  writes to stderr: progress bars go to stdout, and the tests run with warnings as errors;
* it sets ``NBGRADER_EXECUTION`` while it runs notebooks (see ``headless()``). Then the explorer
  and the live view draw nothing at all, so grading time is not spent on pictures nobody sees.

IPython, matplotlib, ipywidgets and tqdm are imported inside the functions that draw: a headless
run never imports them, and the module imports with numpy alone.

Figures are made with pyplot (that is what activates the notebook's inline backend, whose
formatter turns a Figure into a PNG) and closed at once: the notebook shows them only when they
are displayed or returned, never twice, and ``plt.get_fignums()`` stays empty.

Code not written yet never breaks a cell that only shows something: a picture draws the words
"not written yet: clip_grad_norm" instead, the explorer puts them in its title, and a demo cell
of the lesson runs inside ``with viz.demo():``, which shows them in place of the traceback. So
"Run All" on a blank notebook goes on to every check (the checks still fail: that is the
grade) and shows every part left to write, in the checks' own words (``checks.diagnose``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import inspect
import io
import math
import os
import sys
import sysconfig
import tempfile
import textwrap
import time
import traceback
import tracemalloc
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam, grad_array
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Trainer, clip_grad_norm
from tinytorch.data import DataLoader, TensorDataset

if TYPE_CHECKING:
    from ipywidgets import interactive
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "LiveTraining",
    "NOT_WRITTEN",
    "demo",
    "digits_mlp",
    "headless",
    "measure_epoch",
    "plot_accumulation",
    "plot_checkpoint_sizes",
    "plot_clipping",
    "plot_clipping_cost",
    "plot_dropout_modes",
    "plot_memory_and_time",
    "plot_missing_zero_grad",
    "schedule_explorer",
    "spec_lr",
    "train_live",
    "unwritten",
]

#: How every message about code not written yet begins (the checks' words: checks.diagnose).
NOT_WRITTEN = "not written yet"
_PACKAGE = os.path.dirname(os.path.abspath(__file__))
#: The module students write: a NotImplementedError raised there is a stub of theirs.
_STUDENT_MODULE = os.path.join(_PACKAGE, "core", "training.py")
_INSTALLED = tuple(
    os.path.abspath(p) + os.sep
    for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)


def headless() -> bool:
    """True while nbgrader executes the notebook (autograde or validate): nobody watches then."""
    return "NBGRADER_EXECUTION" in os.environ


def _unless_headless(draw: Callable[..., Figure]) -> Callable[..., Figure | None]:
    """A teaching picture returns None under nbgrader instead of drawing (nobody sees it). If
    the code it draws raises (a student's part not written yet), the picture says so in words
    instead of breaking the cell, as the schedule explorer does. Warnings the code raises (an
    overflow in a student's clip_grad_norm) are written under the picture, where they explain
    it, rather than on the cell's stderr."""

    @functools.wraps(draw)
    def picture(*args: Any, **kwargs: Any) -> Figure | None:
        if headless():
            return None
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fig = draw(*args, **kwargs)
            if caught:
                _note_warnings(fig, caught)
            return fig
        except Exception as error:  # a student's unfinished code must not break the picture
            fig = _new_figure(figsize=(8, 1.0))
            # The words go on an (invisible) axes: IPython's inline backend renders no PNG for
            # a figure without axes, and the cell would show "<Figure ... with 0 Axes>".
            ax = fig.subplots()
            ax.set_axis_off()
            text = _unwritten_message(draw.__name__, error)
            ax.text(0.02, 0.5, textwrap.shorten(text, 110), color="firebrick", va="center",
                    transform=ax.transAxes)
            return fig

    return picture


def unwritten(error: BaseException) -> str | None:
    """The student's function that ``error`` says is not written yet (``"CosineSchedule.get_lr"``,
    ``"Trainer.train_epoch"``, ``"clip_grad_norm"``), or None: ``error`` is no
    NotImplementedError, or one raised outside the student's code (an abstract method of
    tinytorch's library, another package), which is a real error and is never hidden."""
    if not isinstance(error, NotImplementedError):
        return None
    tb = error.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    code, frame = tb.tb_frame.f_code, tb.tb_frame
    path = code.co_filename if code.co_filename.startswith("<") else \
        os.path.abspath(code.co_filename)
    if path != _STUDENT_MODULE and (path.startswith(_PACKAGE + os.sep)
                                    or path.startswith(_INSTALLED)):
        return None
    name = getattr(code, "co_qualname", code.co_name).rsplit("<locals>.", 1)[-1]
    owner = frame.f_locals.get("self") if code.co_argcount else None
    if "." not in name and owner is not None:  # a method attached with add_to_class
        name = f"{type(owner).__name__}.{name}"
    return name


def _unwritten_message(picture: str, error: Exception) -> str:
    """What a picture says when the code it draws raised: which function, and why."""
    name = unwritten(error)
    if name is not None:
        return f"{NOT_WRITTEN}: {name} ({picture} draws it once it is written)"
    frames = traceback.extract_tb(error.__traceback__)
    where = frames[-1].name if frames else "your code"
    return f"{picture} needs working code: {where} raised {type(error).__name__}: {error}"


class Unwritten:
    """What a demo cell shows instead of a traceback while the code it runs is not written
    yet: one line, in the checks' words, red in a notebook (plain text elsewhere)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return f"{NOT_WRITTEN}: {self.name} (write it, then run this cell again)"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return (f'<span style="color: firebrick">{NOT_WRITTEN}: '
                f"<code>{html.escape(self.name)}</code> (write it, then run this cell "
                "again)</span>")


@contextlib.contextmanager
def demo() -> Iterator[None]:
    """Run a demo of the student's code (``with viz.demo(): ...``). While a part it runs is
    not written yet (its stub raises NotImplementedError), the cell shows "not written yet:
    CosineSchedule.get_lr" instead of a traceback and ends there, so that "Run All" goes on to
    the next cells. Every other error, and a NotImplementedError that is not a stub of the
    student's (see ``unwritten``), is raised as usual."""
    try:
        yield
    except NotImplementedError as error:
        name = unwritten(error)
        if name is None:
            raise
        _show(Unwritten(name))


def _show(obj: Any) -> None:
    """Display ``obj`` in a notebook, print it elsewhere (stdout: nbgrader scores stderr)."""
    try:
        _display(obj)
    except ImportError:
        print(obj)


def _note_warnings(fig: Figure, caught: list[warnings.WarningMessage]) -> None:
    """Name the warnings raised while drawing ``fig`` in a red line under it (each once)."""
    seen: dict[str, int] = {}
    for item in caught:
        key = f"{item.category.__name__}: {item.message}"
        seen[key] = seen.get(key, 0) + 1
    text = "; ".join(f"{key} (x{count})" if count > 1 else key for key, count in seen.items())
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set"):
        engine.set(rect=(0, 0.07, 1, 0.93))  # room for the line under the axes
    fig.text(0.01, 0.01, textwrap.shorten(f"warned while drawing: {text}", 110),
             color="firebrick", fontsize=8, ha="left", va="bottom")


def _display(obj: Any, **kwargs: Any) -> Any:
    """IPython's display, looked up at each call (tests replace it to see what is shown)."""
    import IPython.display

    return IPython.display.display(obj, **kwargs)


def _new_figure(**kwargs: Any) -> Figure:
    """A pyplot figure (so the inline backend is active and can render it as PNG), already
    closed (so the backend does not show it again at the end of the cell)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(**{"layout": "constrained", **kwargs})
    plt.close(fig)
    return fig


def _integer_ticks(ax: Axes) -> None:
    """Whole-number ticks on the x axis (steps and epochs have no halves)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _global_norm(params: Iterable[Tensor]) -> float:
    """L2 norm of all gradients together, in float64 (what clipping compares with max_norm)."""
    grads = [g for g in (grad_array(p) for p in params) if g is not None]
    return math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))


def _flat_params(params: Iterable[Tensor]) -> np.ndarray:
    return np.concatenate([p.data.astype(np.float64).ravel() for p in params])


# ============================================================================ schedule explorer
def spec_lr(epoch: int, max_lr: float, min_lr: float, total_epochs: int, warmup: int = 0) -> float:
    """The Module 07 schedule written out from the spec, as the explorer's default reference.

    Cosine from max_lr down to min_lr over the epochs after the warmup, min_lr from total_epochs
    on, and during a warmup of w epochs the ramp max_lr * (e + 1) / (w + 1).
    """
    if epoch >= total_epochs:
        return min_lr
    if epoch < warmup:
        return max_lr * (epoch + 1) / (warmup + 1)
    progress = (epoch - warmup) / (total_epochs - warmup)
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2


def _accepts(cls: Any, name: str) -> bool:
    """Whether ``cls(...)`` takes the keyword ``name`` (a student's class may lack warmup)."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)


def _curve(cls: Any, settings: dict[str, Any], epochs: range) -> tuple[list[float], str | None]:
    """``cls(**settings).get_lr(e)`` for every epoch, or the error it raised, as text."""
    if not _accepts(cls, "warmup_epochs"):
        settings = {k: v for k, v in settings.items() if k != "warmup_epochs"}
    try:
        schedule = cls(**settings)
        return [float(schedule.get_lr(e)) for e in epochs], None
    except Exception as error:  # a student's unfinished code must not break the picture
        name = unwritten(error)
        if name is not None:
            return [], f"{NOT_WRITTEN}: {name}"
        text = str(error) or "(no message)"
        return [], f"{cls.__name__} raised {type(error).__name__}: {text}"


def _schedule_figure(schedule_cls: Any, reference_cls: Any, settings: dict[str, Any]) -> Figure:
    total, warmup = settings["total_epochs"], settings["warmup_epochs"]
    epochs = range(total + max(3, total // 5) + 1)  # a few past the end: is the rate clamped?
    mine, error = _curve(schedule_cls, settings, epochs)
    if reference_cls is None:
        args = (settings["max_lr"], settings["min_lr"], total, warmup)
        reference, reference_error = [spec_lr(e, *args) for e in epochs], None
    else:
        reference, reference_error = _curve(reference_cls, settings, epochs)

    fig = _new_figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    if mine:
        ax.plot(epochs, mine, "o-", markersize=3, color="C0", label=schedule_cls.__name__)
    if reference:  # dashed on top, so a match shows as a dashed line over a solid one
        ax.plot(epochs, reference, "--", color="black", label="reference")
    ax.axvline(total, color="lightgrey", linewidth=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    if mine or reference:
        ax.legend(loc="upper right")
    if error or reference_error:
        text = error or f"reference: {reference_error}"
        ax.set_title(textwrap.fill(text, 80), color="firebrick", fontsize=9)
    else:
        gap = np.abs(np.subtract(mine, reference))
        worst = int(np.argmax(gap))
        if gap[worst] <= 1e-9 * max(1.0, abs(reference[worst])):
            ax.set_title("matches the reference", color="darkgreen")
        else:
            ax.set_title(
                f"differs from the reference by {gap[worst]:.3g} at epoch {worst}",
                color="firebrick",
            )
    return fig


def schedule_explorer(
    schedule_cls: type,
    reference_cls: type | None = None,
    *,
    epochs: int = 20,
    max_lr: float = 0.1,
    min_lr: float = 0.001,
) -> interactive | None:
    """Sliders for max_lr, min_lr, total_epochs (and warmup_epochs if ``schedule_cls`` takes
    it) that redraw ``schedule_cls(...).get_lr(e)`` with the reference dashed beside it.

    The reference is ``reference_cls`` built with the same settings, or the spec's formula
    (``spec_lr``) when it is None. A schedule that raises shows its error in the title instead
    of breaking the cell: "not written yet: CosineSchedule.get_lr" before it is written.

    Returns the ``ipywidgets.interactive`` (display it; its ``result`` is the last Figure), or
    None under nbgrader.
    """
    if headless():
        return None
    import ipywidgets as widgets

    # Redraw when a slider is released, not at every pixel of a drag: a drawing takes a tenth
    # of a second or more, and queued redraws make the sliders lag behind the hand.
    # The description column as wide as the longest name: "total_epochs" and "warmup_epochs"
    # are cut to "total_epo..." at ipywidgets' default width.
    common = {"continuous_update": False, "style": {"description_width": "initial"}}
    log = {"step": 0.1, "readout_format": ".2g", **common}
    sliders: dict[str, Any] = {
        "max_lr": widgets.FloatLogSlider(value=max_lr, min=-4, max=0, **log),
        "min_lr": widgets.FloatLogSlider(value=min_lr, min=-6, max=-1, **log),
        "total_epochs": widgets.IntSlider(value=epochs, min=1, max=max(100, 2 * epochs), **common),
        "warmup_epochs": widgets.fixed(0),
    }
    if _accepts(schedule_cls, "warmup_epochs"):
        top = max(20, epochs // 2)
        sliders["warmup_epochs"] = widgets.IntSlider(value=0, min=0, max=top, **common)

    def draw(max_lr: float, min_lr: float, total_epochs: int, warmup_epochs: int) -> Figure:
        settings = {"max_lr": max_lr, "min_lr": min_lr, "total_epochs": total_epochs,
                    "warmup_epochs": warmup_epochs}
        fig = _schedule_figure(schedule_cls, reference_cls, settings)
        _display(fig)
        return fig

    class Explorer(widgets.interactive):
        """The interactive, displayed with a PNG of its current figure beside the widget: a
        live frontend renders the widget (it ranks above images), a saved notebook on GitHub
        or nbviewer, where widgets cannot render, shows the picture."""

        def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
            bundle = super()._repr_mimebundle_(**kwargs)
            if self.result is not None:
                bundle["image/png"] = _png_base64(self.result)
            return bundle

    return Explorer(draw, **sliders)


def _png_base64(fig: Figure) -> str:
    """The figure as a base64 PNG, the form notebooks store images in."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# ============================================================================ live training view
class LiveTraining:
    """Live plots of a run: loss, learning rate and gradient norms, and a tqdm bar over epochs.

    Two ways to use it, so it works with any Trainer:

    * as a callback of a Trainer that calls them (``Trainer(..., callbacks=[view])``): it records
      every batch's loss and every step's gradient norm, and redraws every ``every`` batches and
      once per epoch (after the evaluation, when one follows);
    * with a Trainer that calls no callbacks: call ``view.update(trainer)`` after each epoch; it
      reads ``trainer.history`` (train_loss, eval_loss, learning_rates, grad_norm).

    The picture is one matplotlib figure, displayed once and then updated in place (IPython's
    display handles), so the saved notebook keeps its last state as a plain PNG even where
    widgets do not render. Under nbgrader (``headless()``) it only records.
    """

    def __init__(self, epochs: int | None = None, *, every: int = 100) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.epochs = epochs
        self.every = every
        self.batch_losses: list[tuple[int, int, float]] = []  # (epoch, batch, loss)
        self.step_norms: list[float] = []  # from on_step, before clipping
        self.figure: Figure | None = None
        self._lines: dict[str, Any] = {}
        self._handle: Any = None
        self._bar: Any = None
        self._trainer: Any = None
        self._running: tuple[int, float] | None = None  # (epoch, lr) of the epoch in progress
        self._seen: int | None = None  # epochs the trainer had completed when we first met it
        self._drawn: tuple | None = None

    # ------------------------------------------------------------------ Trainer callbacks
    def on_epoch_begin(self, trainer: Any, epoch: int, lr: float) -> None:
        self._meet(trainer, completed=_completed(trainer))
        self._draw(trainer)  # the previous epoch, if nothing drew it (see on_epoch_end)
        self._running = (int(epoch), float(lr))

    def on_batch_end(self, trainer: Any, batch: int, loss: float, samples: int) -> None:
        epoch = self._running[0] if self._running else _completed(trainer)
        self.batch_losses.append((epoch, int(batch), float(loss)))
        if len(self.batch_losses) % self.every == 0:
            self._draw(trainer)

    def on_step(self, trainer: Any, grad_norm: float | None) -> None:
        if grad_norm is not None:
            self.step_norms.append(float(grad_norm))

    def on_epoch_end(self, trainer: Any, loss: float) -> None:
        self._meet(trainer, completed=_completed(trainer) - 1)
        self._running = None
        self._advance_bar(trainer)
        # A drawing costs a few tenths of a second, more than an epoch of a small model. An
        # evaluation or the next epoch follows and draws this one, so only the last is drawn now.
        if self.epochs is None or _completed(trainer) - self._seen >= self.epochs:
            self._draw(trainer)

    def on_evaluate_end(self, trainer: Any, loss: float, accuracy: float | None) -> None:
        self.update(trainer)

    # ------------------------------------------------------------------ any Trainer
    def update(self, trainer: Any) -> None:
        """Show the state of ``trainer.history``: call it after each epoch. Redraws only when
        something changed, so calling it as well as being a callback costs nothing."""
        self._meet(trainer, completed=_completed(trainer) - 1)
        self._advance_bar(trainer)
        self._draw(trainer)

    def close(self) -> None:
        """Draw the final state and close the progress bar (as ``with LiveTraining() as v``)."""
        if self._trainer is not None:
            self._draw(self._trainer)
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> LiveTraining:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _meet(self, trainer: Any, completed: int) -> None:
        if self._seen is None:
            self._seen = max(completed, 0)
        self._trainer = trainer
        if self._bar is None and not headless():
            from tqdm.auto import tqdm

            # stdout: a console bar would go to stderr, which nbgrader scores as a failure
            self._bar = tqdm(total=self.epochs, desc="epochs", unit="epoch", file=sys.stdout)

    def _advance_bar(self, trainer: Any) -> None:
        if self._bar is None:
            return
        history = getattr(trainer, "history", {}) or {}
        latest = {"loss": history.get("train_loss"), "eval": history.get("eval_loss"),
                  "lr": history.get("learning_rates")}
        self._bar.set_postfix(
            {k: f"{v[-1]:.4g}" for k, v in latest.items() if v and v[-1] is not None},
            refresh=False,
        )
        done = _completed(trainer) - self._seen
        if done > self._bar.n:
            self._bar.update(done - self._bar.n)
        else:
            self._bar.refresh()

    # ------------------------------------------------------------------ what is drawn
    def series(self, trainer: Any) -> dict[str, list]:
        """The numbers the figure shows, by line: x and y of each."""
        history = getattr(trainer, "history", {}) or {}
        train = list(history.get("train_loss", []))
        evals = list(history.get("eval_loss", []))
        rates = list(history.get("learning_rates", []))
        if self._running is not None and len(rates) == self._running[0]:
            rates.append(self._running[1])  # the epoch in progress already has its rate
        logged = list(history.get("grad_norm", []))
        norms = logged if len(logged) >= len(self.step_norms) else list(self.step_norms)
        clip = getattr(trainer, "grad_clip_norm", None)
        after = [min(n, clip) for n in norms] if clip is not None else []
        return {
            "batch_x": self._batch_positions(),
            "batch_loss": [loss for _, _, loss in self.batch_losses],
            "epoch": list(range(1, len(train) + 1)),
            "train_loss": train,
            "eval_epoch": list(range(1, len(evals) + 1)),
            "eval_loss": evals,
            "lr_epoch": list(range(1, len(rates) + 1)),
            "learning_rates": rates,
            "step": list(range(1, len(norms) + 1)),
            "grad_norm": norms,
            "clipped_norm": after,
            "clip": [] if clip is None else [float(clip)],
        }

    def _batch_positions(self) -> list[float]:
        """Batch b of epoch e sits at e + (b + 1) / batches, so the epoch's mean loss (at
        e + 1) ends its batches. The epoch in progress borrows the previous epoch's count."""
        counts: dict[int, int] = {}
        for epoch, _, _ in self.batch_losses:
            counts[epoch] = counts.get(epoch, 0) + 1
        running = self._running[0] if self._running else None
        previous = max((n for e, n in counts.items() if e != running), default=0)
        positions = []
        for epoch, batch, _ in self.batch_losses:
            n = max(counts[epoch], previous) if epoch == running else counts[epoch]
            positions.append(epoch + (batch + 1) / n)
        return positions

    def _draw(self, trainer: Any) -> None:
        if headless():
            return
        data = self.series(trainer)
        snapshot = tuple(len(v) for v in data.values())
        if snapshot == self._drawn or not any(snapshot):
            return
        self._drawn = snapshot
        if self.figure is None:
            self.figure = self._build_figure()
        lines, clip = self._lines, data["clip"]
        lines["batch"].set_data(data["batch_x"], data["batch_loss"])
        lines["train"].set_data(data["epoch"], data["train_loss"])
        lines["eval"].set_data(data["eval_epoch"], data["eval_loss"])
        lines["lr"].set_data(data["lr_epoch"], data["learning_rates"])
        lines["before"].set_data(data["step"], data["grad_norm"])
        lines["after"].set_data(data["step"][: len(data["clipped_norm"])], data["clipped_norm"])
        lines["clip"].set_visible(bool(clip))
        lines["clip"].set_ydata(clip * 2 if clip else [1.0, 1.0])
        ax_norm = lines["before"].axes
        ax_norm.set_title("gradient norm per optimizer step" if data["grad_norm"] else
                          "gradient norm: none logged (grad_clip_norm is None)")
        for ax in self.figure.axes:
            ax.relim(visible_only=True)
            ax.autoscale_view()
        if self._handle is None:
            self._handle = _display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)

    def _build_figure(self) -> Figure:
        # A fixed layout: constrained layout would double the cost of every redraw.
        fig = _new_figure(figsize=(12, 3.2), layout="none")
        fig.subplots_adjust(left=0.05, right=0.99, bottom=0.16, top=0.9, wspace=0.22)
        ax_loss, ax_lr, ax_norm = fig.subplots(1, 3)
        lines = self._lines
        lines["batch"], = ax_loss.plot([], [], color="C0", alpha=0.3, linewidth=1,
                                       label="train (batch)")
        lines["train"], = ax_loss.plot([], [], "o-", color="C0", label="train (epoch)")
        lines["eval"], = ax_loss.plot([], [], "s-", color="C1", label="eval")
        lines["lr"], = ax_lr.plot([], [], "o-", color="C2", label="learning rate")
        lines["before"], = ax_norm.plot([], [], color="C3", linewidth=1, label="before clipping")
        lines["after"], = ax_norm.plot([], [], color="C0", linewidth=1, label="after clipping")
        lines["clip"] = ax_norm.axhline(1.0, color="grey", linestyle="--", label="grad_clip_norm")
        _label(ax_loss, "loss", "epoch")
        _label(ax_lr, "learning rate per epoch", "epoch")
        _label(ax_norm, "gradient norm per optimizer step", "step")
        return fig


def _label(ax: Axes, title: str, xlabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.legend(loc="upper right", fontsize=8)


def _completed(trainer: Any) -> int:
    """Epochs the trainer has finished, as its history tells."""
    return len((getattr(trainer, "history", {}) or {}).get("train_loss", []))


def train_live(
    trainer: Any,
    train_data: Any,
    test_data: Any = None,
    epochs: int = 1,
    accumulation_steps: int = 1,
    every: int = 100,
) -> dict[str, list]:
    """Train ``epochs`` epochs (evaluating on ``test_data`` after each, if given) with a
    LiveTraining view, and return ``trainer.history``.

    The view is added to ``trainer.callbacks`` for the run when that is a list (the reference
    Trainer), so it also shows batches as they come; in any case ``update`` runs after each
    epoch, so a Trainer that calls no callbacks is drawn too.
    """
    view = LiveTraining(epochs, every=every)
    callbacks = getattr(trainer, "callbacks", None)
    attached = isinstance(callbacks, list)
    if attached:
        callbacks.append(view)
    try:
        for _ in range(epochs):
            trainer.train_epoch(train_data, accumulation_steps=accumulation_steps)
            if test_data is not None:
                trainer.evaluate(test_data)
            view.update(trainer)
    finally:
        if attached:
            callbacks.remove(view)
        view.close()
    return trainer.history


# ============================================================================ the classic bugs
@_unless_headless
def plot_missing_zero_grad(*, steps: int = 10, lr: float = 0.001, seed: int = 0) -> Figure:
    """Gradient norm per step on the same batch, with and without clearing the gradients.

    Gradients ADD into ``.grad``; without ``zero_grad()`` step k uses the sum of k gradients, so
    the norm grows like k times the first one and the steps grow with it.
    """
    rng = np.random.default_rng(seed)
    x = Tensor(rng.normal(size=(16, 3)))
    y = Tensor(rng.normal(size=(16, 1)))

    def norms(clear: bool) -> list[float]:
        model = Linear(3, 1, seed=seed)
        optimizer, loss_fn = SGD(model.parameters(), lr=lr), MSELoss()
        result = []
        for _ in range(steps):
            if clear:
                optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            result.append(_global_norm(model.parameters()))
            optimizer.step()
        return result

    cleared, kept = norms(clear=True), norms(clear=False)
    k = np.arange(1, steps + 1)
    fig = _new_figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    ax.plot(k, kept, "o-", color="firebrick", label="zero_grad() forgotten")
    ax.plot(k, k * kept[0], ":", color="grey", label="k × first norm")
    ax.plot(k, cleared, "o-", color="C0", label="zero_grad() every step")
    ax.set(title="Same batch every step: forgotten gradients pile up",
           xlabel="step k", ylabel="gradient norm")
    _integer_ticks(ax)
    ax.legend()
    return fig


@_unless_headless
def plot_clipping(
    implementation: Callable[..., Any] | type = clip_grad_norm,
    *,
    max_norm: float = 1.0,
    steps: int = 20,
    lr: float = 0.01,
    seed: int = 0,
) -> Figure:
    """Per-step gradient norms before and after clipping, on a regression with big inputs (the
    gradients are thousands of times max_norm: without clipping these steps would diverge).

    ``implementation`` is a clip function ``f(parameters, max_norm)`` (norms are measured
    around the call) or a Trainer class (built with ``grad_clip_norm=max_norm``; before is its
    ``history["grad_norm"]``, after is the length of the SGD update divided by lr, i.e. the
    gradient the optimizer really applied).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=50.0, size=(32, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 1)) + 5.0).astype(np.float32)
    model = Linear(4, 1, seed=seed)
    params = model.parameters()
    optimizer, loss_fn = SGD(params, lr=lr), MSELoss()
    before, after = [], []
    if inspect.isclass(implementation):
        trainer = implementation(model, optimizer, loss_fn, grad_clip_norm=max_norm)
        data = DataLoader(TensorDataset(x, y), batch_size=len(x))  # one step per epoch
        for _ in range(steps):
            start = _flat_params(params)
            trainer.train_epoch(data)
            after.append(float(np.linalg.norm(_flat_params(params) - start)) / lr)
        before = list(trainer.history["grad_norm"])
        name = implementation.__name__
    else:
        for _ in range(steps):
            optimizer.zero_grad()
            loss_fn(model(Tensor(x)), Tensor(y)).backward()
            before.append(_global_norm(params))
            implementation(params, max_norm)
            after.append(_global_norm(params))
            optimizer.step()
        name = getattr(implementation, "__name__", "clip")
    k = np.arange(1, steps + 1)
    fig = _new_figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    ax.plot(k[: len(before)], before, "o-", color="firebrick", label="before clipping")
    ax.plot(k, after, "o-", color="C0", label="after clipping")
    ax.axhline(max_norm, color="grey", linestyle="--", label=f"max_norm = {max_norm:g}")
    ax.set_yscale("log")
    _integer_ticks(ax)
    ax.set(title=f"{name}: gradient norms around clipping", xlabel="optimizer step",
           ylabel="gradient norm (log scale)")
    ax.legend()
    return fig


@_unless_headless
def plot_accumulation(
    trainer_cls: type = Trainer, *, steps: int = 12, lr: float = 0.15, seed: int = 0
) -> Figure:
    """Parameter paths of a linear model trained three ways on 10 samples, and how far each
    strays from the first:

    * one batch of 10 per step;
    * ``trainer_cls`` accumulating 3 batches of 4, 4 and 2 per step: must coincide with the
      first, since the step's gradient is the mean over the same 10 samples;
    * the common bug, each batch's mean loss divided by 3: the batch of 2 weighs as much as a
      batch of 4, so the path visibly drifts away.
    """
    x = np.linspace(-1.0, 1.0, 10, dtype=np.float32).reshape(-1, 1)
    y = (2.0 * x + 1.0 + 0.5 * x**2).astype(np.float32)
    data = TensorDataset(x, y)

    def run(batch_size: int, accumulation: int, buggy: bool = False) -> np.ndarray:
        model = Linear(1, 1, seed=seed)
        optimizer, loss_fn = SGD(model.parameters(), lr=lr), MSELoss()
        loader = DataLoader(data, batch_size=batch_size)
        path = [_flat_params(model.parameters())]
        trainer = None if buggy else trainer_cls(model, optimizer, loss_fn)
        for _ in range(steps):
            if trainer is None:
                optimizer.zero_grad()
                batches = list(loader)
                for inputs, targets in batches:
                    (loss_fn(model(inputs), targets) * (1.0 / len(batches))).backward()
                optimizer.step()
            else:
                trainer.train_epoch(loader, accumulation_steps=accumulation)
            path.append(_flat_params(model.parameters()))
        return np.array(path)

    big, accumulated, wrong = run(10, 1), run(4, 3), run(4, 3, buggy=True)

    fig = _new_figure(figsize=(10, 3.6))
    ax_path, ax_gap = fig.subplots(1, 2)
    styles = {
        "one batch of 10": (big, dict(color="lightgrey", linewidth=6)),
        f"{trainer_cls.__name__}: 4 + 4 + 2 accumulated": (accumulated, dict(color="C0")),
        "bug: each batch's mean / 3": (wrong, dict(color="firebrick", linestyle="--")),
    }
    for label, (path, style) in styles.items():
        ax_path.plot(path[:, 0], path[:, 1], marker="o", markersize=3, label=label, **style)
        gap = np.linalg.norm(path - big, axis=1)
        ax_gap.plot(range(steps + 1), gap, marker="o", markersize=3, label=label, **style)
    ax_path.set(title="parameters after each step", xlabel="weight", ylabel="bias")
    ax_gap.set(title="distance from the one-batch parameters", xlabel="optimizer step")
    _integer_ticks(ax_gap)
    ax_path.legend(fontsize=8)
    return fig


@_unless_headless
def plot_dropout_modes(
    *, p: float = 0.5, calls: int = 6, units: int = 12, seed: int = 0
) -> Figure:
    """A Dropout layer called repeatedly on the same input of ones, in train and eval mode.

    Training: a new random mask every call, survivors scaled by 1/(1-p) (the mean stays 1).
    Evaluation: the identity, the same output every call: a model left in train mode while
    evaluating gives noisy, too-pessimistic numbers.
    """
    layer = Dropout(p, seed=seed)
    ones = Tensor(np.ones((1, units)))
    layer.train()
    training = np.vstack([layer(ones).data for _ in range(calls)])
    layer.eval()
    evaluating = np.vstack([layer(ones).data for _ in range(calls)])

    fig = _new_figure(figsize=(10, 3.2))
    axes = fig.subplots(1, 2)
    scale = 1.0 / (1.0 - p)
    for ax, values, title in (
        (axes[0], training, f"train mode: new mask each call (0 or {scale:g})"),
        (axes[1], evaluating, "eval mode: identical every call"),
    ):
        image = ax.imshow(values, vmin=0.0, vmax=scale, cmap="viridis")
        ax.set(title=title, xlabel="unit", ylabel="call")
    fig.colorbar(image, ax=axes, shrink=0.8, label="output")
    return fig


# ============================================================================ what training costs
def digits_mlp(hidden: int = 64) -> Any:
    """The lesson's digits model, 64 -> hidden -> 10 with ReLU and Dropout(0.1), seeded."""
    return Sequential(Linear(64, hidden, seed=1), ReLU(), Dropout(0.1, seed=2),
                      Linear(hidden, 10, seed=3))


def _adam(params: Any) -> Any:
    return Adam(params, lr=0.001)


def measure_epoch(
    trainer_cls: type,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    accumulation_steps: int = 1,
    grad_clip_norm: float | None = None,
    make_model: Callable[[], Any] = digits_mlp,
    make_optimizer: Callable[[Any], Any] = _adam,
    repeats: int = 3,
) -> dict[str, float]:
    """One epoch of training with cross-entropy on ``x``, ``y`` on fresh objects, measured here.

    ``peak``: the most bytes traced at once above where the epoch started (``tracemalloc``, to
    which numpy reports its arrays), counting the model and optimizer built for it: the
    parameters, gradients, optimizer buffers and activations, and also what a prediction
    leaves out (each batch's copy of the data, the loss's arrays, backward's temporaries, the
    optimizer's scratch array). ``seconds``: the fastest of ``repeats`` untraced epochs
    (``time.perf_counter``; tracing slows every allocation). ``steps``: optimizer steps taken.
    """
    def run(trace: bool) -> tuple[float, int, int]:
        loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, seed=0)
        if trace:
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
        model = make_model()
        trainer = trainer_cls(model, make_optimizer(model.parameters()), CrossEntropyLoss(),
                              grad_clip_norm=grad_clip_norm)
        began = time.perf_counter()
        trainer.train_epoch(loader, accumulation_steps=accumulation_steps)
        seconds = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1] - start if trace else 0
        return seconds, peak, int(trainer.step)

    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        _, peak, steps = run(trace=True)
    finally:
        if not tracing:
            tracemalloc.stop()
    seconds = min(run(trace=False)[0] for _ in range(repeats))
    return {"peak": float(peak), "seconds": seconds, "steps": float(steps)}


def _kib(n: float) -> str:
    return f"{n / 1024:,.0f} KiB" if n >= 10 * 1024 else f"{n / 1024:,.1f} KiB"


@_unless_headless
def plot_memory_and_time(
    trainer_cls: type,
    training_memory: Callable[..., dict],
    x: np.ndarray,
    y: np.ndarray,
    *,
    micro_batch: int = 32,
    effective: tuple[int, ...] = (32, 64, 128, 256, 512),
    make_model: Callable[[], Any] = digits_mlp,
    make_optimizer: Callable[[Any], Any] = _adam,
) -> Figure:
    """Peak memory and time of one epoch against the effective batch size, measured here, two
    ways: one batch of that size per step, and ``effective / micro_batch`` accumulated batches
    of ``micro_batch`` (the same update). Dashed: ``training_memory``'s total for the batch
    that is in memory at once. Accumulation keeps memory at the small batch's and pays in time.
    """
    big = [measure_epoch(trainer_cls, x, y, batch_size=b, make_model=make_model,
                         make_optimizer=make_optimizer) for b in effective]
    small = [measure_epoch(trainer_cls, x, y, batch_size=micro_batch,
                           accumulation_steps=b // micro_batch, make_model=make_model,
                           make_optimizer=make_optimizer) for b in effective]

    def predicted(batch: int) -> float:
        model = make_model()
        return float(training_memory(model, make_optimizer(model.parameters()), batch)["total"])

    fig = _new_figure(figsize=(11, 3.8))
    ax_mem, ax_time = fig.subplots(1, 2)
    xs = np.arange(len(effective))
    kib = 1.0 / 1024
    ax_mem.plot(xs, [r["peak"] * kib for r in big], "o-", color="firebrick",
                label="one batch of that size: measured peak")
    ax_mem.plot(xs, [predicted(b) * kib for b in effective], "--", color="firebrick",
                alpha=0.6, label="training_memory(...)['total'] of that batch")
    ax_mem.plot(xs, [r["peak"] * kib for r in small], "o-", color="C0",
                label=f"accumulated batches of {micro_batch}: measured peak")
    ax_mem.plot(xs, [predicted(micro_batch) * kib] * len(xs), "--", color="C0", alpha=0.6,
                label=f"training_memory(...)['total'] of {micro_batch}")
    ax_time.plot(xs, [r["seconds"] * 1000 for r in big], "o-", color="firebrick",
                 label="one batch of that size")
    ax_time.plot(xs, [r["seconds"] * 1000 for r in small], "o-", color="C0",
                 label=f"accumulated batches of {micro_batch}")
    ticks = [f"{b}\n(k = {b // micro_batch})" for b in effective]
    for ax in (ax_mem, ax_time):
        ax.set_xticks(xs, ticks)
        ax.set_xlabel(f"effective batch size (k = accumulation steps of {micro_batch})")
        ax.set_ylim(bottom=0)
    ax_mem.set(title="peak memory of one epoch (tracemalloc)", ylabel="KiB")
    ax_time.set(title="time of one epoch on this machine (fastest of 3)", ylabel="ms")
    ax_mem.legend(fontsize=7, loc="upper left")
    ax_time.legend(fontsize=8)
    return fig


@_unless_headless
def plot_checkpoint_sizes(
    trainer_cls: type,
    training_memory: Callable[..., dict],
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = 32,
    make_model: Callable[[], Any] = digits_mlp,
) -> Figure:
    """The size on disk of a checkpoint saved after one epoch with SGD, SGD with momentum and
    Adam, beside ``training_memory``'s parameters + optimizer_state: what is left is the
    format's own (array names and headers, the JSON record with the history)."""
    kinds: list[tuple[str, Callable[[Any], Any]]] = [
        ("SGD", lambda ps: SGD(ps, lr=0.1)),
        ("SGD, momentum 0.9", lambda ps: SGD(ps, lr=0.1, momentum=0.9)),
        ("Adam", _adam),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, make in kinds:
            model = make_model()
            optimizer = make(model.parameters())
            memory = training_memory(model, optimizer, batch_size)
            trainer = trainer_cls(model, optimizer, CrossEntropyLoss())
            trainer.train_epoch(DataLoader(TensorDataset(x, y), batch_size=batch_size))
            path = os.path.join(folder, f"{len(rows)}.ckpt")
            trainer.save_checkpoint(path)
            rows.append((name, float(memory["parameters"]), float(memory["optimizer_state"]),
                         float(os.path.getsize(path))))
    fig = _new_figure(figsize=(8, 3.8))
    ax = fig.add_subplot()
    xs = np.arange(len(rows))
    params = np.array([r[1] for r in rows]) / 1024
    state = np.array([r[2] for r in rows]) / 1024
    disk = np.array([r[3] for r in rows]) / 1024
    ax.bar(xs - 0.2, params, 0.4, color="C0", label="predicted: parameters")
    ax.bar(xs - 0.2, state, 0.4, bottom=params, color="C1", label="predicted: optimizer_state")
    ax.bar(xs + 0.2, disk, 0.4, color="grey", label="checkpoint file on disk")
    for i, (_, p, s, d) in enumerate(rows):
        ax.annotate(f"{_kib(d)}\n(+{_kib(d - p - s)} format)", (i + 0.2, d / 1024),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xticks(xs, [r[0] for r in rows])
    ax.set_ylim(top=max(disk.max(), (params + state).max()) * 1.25)
    ax.set(title="checkpoint size: parameters + optimizer state, measured on disk",
           ylabel="KiB")
    ax.legend(fontsize=8, loc="upper left")
    return fig


@_unless_headless
def plot_clipping_cost(
    trainer_cls: type,
    x: np.ndarray,
    y: np.ndarray,
    *,
    widths: tuple[int, ...] = (64, 256, 1024),
    batch_size: int = 32,
    max_norm: float = 1.0,
) -> Figure:
    """Time per optimizer step with and without ``grad_clip_norm``, for digits models of
    several hidden widths, measured here (the fastest of 3 epochs each): clipping reads every
    gradient once more and scales it, a cost that grows with the parameters, not the batch."""
    without, with_clip = [], []
    for width in widths:
        def build(width: int = width) -> Any:
            return digits_mlp(width)

        for clip, out in ((None, without), (max_norm, with_clip)):
            run = measure_epoch(trainer_cls, x, y, batch_size=batch_size, grad_clip_norm=clip,
                                make_model=build)
            out.append(run["seconds"] / max(run["steps"], 1.0) * 1e6)
    fig = _new_figure(figsize=(8, 3.8))
    ax = fig.add_subplot()
    xs = np.arange(len(widths))
    ax.bar(xs - 0.2, without, 0.4, color="C0", label="grad_clip_norm=None")
    ax.bar(xs + 0.2, with_clip, 0.4, color="C1", label=f"grad_clip_norm={max_norm:g}")
    for i, (a, b) in enumerate(zip(without, with_clip, strict=True)):
        ax.annotate(f"{(b - a) / a:+.0%}", (i + 0.2, b), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(xs, [f"hidden {w}\n({64 * w + w + 10 * w + 10:,} parameters)" for w in widths])
    ax.set(title=f"time per optimizer step, batch {batch_size} (fastest of 3 epochs)",
           ylabel="microseconds")
    ax.legend(fontsize=8)
    return fig

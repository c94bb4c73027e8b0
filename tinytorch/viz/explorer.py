"""The schedule explorer: sliders over a learning-rate schedule, with the spec's curve beside it.

The student's ``CosineSchedule`` is drawn for the settings on the sliders, the reference dashed
on top, and the title says whether they match; a schedule not written yet (or one that raises)
shows its error in the title instead of breaking the cell. ipywidgets is imported only when
the explorer is made, and under nbgrader it is not made at all.
"""

from __future__ import annotations

import base64
import inspect
import io
import math
import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch.viz.figures import _new_figure
from tinytorch.viz.notebook import NOT_WRITTEN, _display, _raised_cell, headless, unwritten

if TYPE_CHECKING:
    from ipywidgets import interactive
    from matplotlib.figure import Figure


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
        said = _raised_cell(error)  # their cell that raised left this code missing
        if said is not None:
            return [], said
        name = unwritten(error)
        if name is not None:
            return [], f"{NOT_WRITTEN}: {name}"
        text = str(error) or "(no message)"
        return [], f"{cls.__name__} raised {type(error).__name__}: {text}"


def latest(cls: Any) -> Any:
    """The class of that name the notebook defines now, else ``cls``. A student who writes (or
    fixes) ``CosineSchedule`` after making the explorer runs its cell, which makes a new class:
    the next slider move draws that one, without making the explorer again."""
    try:
        from IPython import get_ipython
    except ImportError:
        return cls
    shell = get_ipython()
    name = getattr(cls, "__name__", None)
    current = shell.user_ns.get(name) if shell is not None and name else None
    return current if isinstance(current, type) and current is not cls else cls


#: What a title adds to an error of the student's schedule: how to see the code once fixed.
REDRAW = " (once it is written, move a slider: the explorer draws your current class)"


def _schedule_figure(schedule_cls: Any, reference_cls: Any, settings: dict[str, Any]) -> Figure:
    schedule_cls = latest(schedule_cls)
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
        text = error + REDRAW if error else f"reference: {reference_error}"
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

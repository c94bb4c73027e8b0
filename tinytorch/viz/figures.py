"""What every picture shares: how a figure is made, and what it shows when it cannot be drawn.

Figures are made with pyplot (that is what activates the notebook's inline backend, whose
formatter turns a Figure into a PNG) and closed at once: the notebook shows them only when they
are displayed or returned, never twice, and ``plt.get_fignums()`` stays empty. matplotlib is
imported inside the functions that draw: a headless run never imports it.

A picture wrapped in ``_unless_headless`` returns None under nbgrader and, when the code it
draws raises, a figure that says so in words (see ``notebook.py``). The pictures of the
training-loop mechanics also share two measurements of a model's parameters, here.
"""

from __future__ import annotations

import functools
import math
import textwrap
import traceback
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch.core.optimizers import grad_array
from tinytorch.core.tensor import Tensor
from tinytorch.viz.notebook import NOT_WRITTEN, _raised_cell, headless, unwritten

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


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


def _unwritten_message(picture: str, error: Exception) -> str:
    """What a picture says when the code it draws raised: which function, and why (or which
    cell of the student's raised, leaving that code missing: the checks' words)."""
    said = _raised_cell(error)
    if said is not None:
        return said
    name = unwritten(error)
    if name is not None:
        return f"{NOT_WRITTEN}: {name} ({picture} draws it once it is written)"
    frames = traceback.extract_tb(error.__traceback__)
    where = frames[-1].name if frames else "your code"
    return f"{picture} needs working code: {where} raised {type(error).__name__}: {error}"


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

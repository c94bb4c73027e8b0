"""Pictures for Module 07 (Training): the schedule explorer, a live view of a run, plots of the
classic training-loop bugs, and what training costs, measured on this machine.

Every function takes the implementation to draw (the student's ``CosineSchedule``, ``Trainer``
or ``clip_grad_norm``) as an argument, so the notebook decides whose code is drawn and nothing
here reads notebook globals. Under nbgrader nothing is drawn, and code not written yet shows
"not written yet: <the part>" instead of a traceback (``notebook.py`` says why). IPython,
matplotlib, ipywidgets and tqdm are imported inside the functions that draw, threadpoolctl
inside the one that times (``timing.py``): a headless run never imports the first four, and the
package imports with numpy alone.

The lesson uses the names below as ``viz.<name>``; each file holds one picture or one step:

    notebook.py          headless, demo, unwritten, Unwritten, NOT_WRITTEN: how every picture
                         behaves in the notebook (silent under nbgrader, unfinished code named)
    figures.py           what the pictures share: a closed pyplot figure, the words shown when
                         the code drawn raises, the gradient norm and parameters of a model
    explorer.py          schedule_explorer, spec_lr: sliders over a learning-rate schedule
    live.py              LiveTraining, train_live: a run's loss, learning rate and gradient norms
    zero_grad.py         plot_missing_zero_grad: forgotten gradients pile up
    clipping.py          plot_clipping: gradient norms before and after clipping
    accumulation.py      plot_accumulation: accumulated batches follow one big batch
    dropout_modes.py     plot_dropout_modes: Dropout in train and eval mode
    timing.py            how every time is taken (BLAS pinned to one thread, warm-ups, repeats
                         interleaved) and read (median, middle half of the runs, within the noise)
    measure.py           measure_epoch, digits_mlp: one epoch's peak memory and time, measured
    memory_and_time.py   plot_memory_and_time: one big batch or accumulated small ones
    memory_budget.py     plot_memory_budget: a step's predicted bytes against the measured peak
    checkpoint_sizes.py  plot_checkpoint_sizes: a checkpoint on disk against its prediction
    clipping_cost.py     plot_clipping_cost: the time clipping adds to a step
"""

from tinytorch.viz.accumulation import plot_accumulation
from tinytorch.viz.checkpoint_sizes import plot_checkpoint_sizes
from tinytorch.viz.clipping import plot_clipping
from tinytorch.viz.clipping_cost import plot_clipping_cost
from tinytorch.viz.dropout_modes import plot_dropout_modes
from tinytorch.viz.explorer import schedule_explorer, spec_lr
from tinytorch.viz.live import LiveTraining, train_live
from tinytorch.viz.measure import digits_mlp, measure_epoch
from tinytorch.viz.memory_and_time import plot_memory_and_time
from tinytorch.viz.memory_budget import plot_memory_budget
from tinytorch.viz.notebook import NOT_WRITTEN, demo, headless, unwritten
from tinytorch.viz.notebook import Unwritten as Unwritten  # public, though never in __all__
from tinytorch.viz.zero_grad import plot_missing_zero_grad

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
    "plot_memory_budget",
    "plot_missing_zero_grad",
    "schedule_explorer",
    "spec_lr",
    "train_live",
    "unwritten",
]

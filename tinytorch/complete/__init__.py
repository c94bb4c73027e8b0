"""Your finished notebook becomes your library: Module 07 of your own tinytorch.

    tinytorch complete 07_training.ipynb            # the command the student wheel installs
    python -m tinytorch.complete 07_training.ipynb  # the same

In the notebook, your code lives in answer cells; ``from tinytorch.core.training import
Trainer`` elsewhere still gives the stub that raises ``NotImplementedError``. This command
writes your answer cells into ``tinytorch/core/training.py`` so that later modules, scripts and
other notebooks import your Trainer, the way TinyTorch's ``tito module complete`` does:

1. it reads the notebook's answer cells (nbgrader's solution cells) and puts each definition
   where its stub is in Module 07 as you were given it (the stripped ``training.py`` your
   tinytorch shipped with, kept as ``tinytorch/core/training_released.py``);
2. it runs every check of ``checks`` (the package installed beside tinytorch) on the assembled
   module, in a separate process with a time limit. If a check fails, it prints the check's
   id, what the check verifies and its message (naming the lines of your answer cells), and
   writes nothing;
3. when every check passes, it writes the module, atomically, to each tinytorch your code is
   imported from (the one beside the notebook, and the one installed in the environment of the
   Python running this command), keeping the file it replaces as
   ``training.py.before-complete``.

It needs only Python's standard library and what the student wheel ships (the checks run in a
separate process, with the environment's numpy); it names a failing check's graded cell from
the notebook's own graded cells (nbgrader's metadata, as released). ``--protect DIR`` (any
number) names folders it must never write into (the course's ``make complete`` protects the
reference solution and the nbgrader course folder). Exit status: 0 written (or already up to
date), 1 a check failed, 2 bad input or a refused target; nothing is changed unless the status
is 0.

Each file holds one step, and says more about it:

    notebook.py      reading the notebook: answer_cells, graded_cells, AnswerCell
    released.py      what is assembled onto: given_module, RELEASED
    assembly.py      the cells put in place of the stubs: assemble, fingerprint, Assembled
    checking.py      every check on the assembled module: run_checks, CheckRun
    destinations.py  where to write, and where never: targets, forbidden, installed_module
    writing.py       the files written, their backups kept: write, Written
    command.py       the command: complete, main, parser, cli (the ``tinytorch`` script)
    common.py        what the steps share: MODULE, BACKUP, HEADER, CompleteError
"""

from tinytorch.complete.assembly import (
    Assembled,
    Definition,
    Function,
    Piece,
    assemble,
    fingerprint,
)
from tinytorch.complete.checking import (
    DEFAULT_TIMEOUT,
    IMPLEMENTATIONS,
    CheckRun,
    installed_checks,
    run_checks,
)
from tinytorch.complete.command import cli, complete, main, parser
from tinytorch.complete.common import BACKUP, HEADER, MODULE, CompleteError
from tinytorch.complete.destinations import (
    Protected,
    Target,
    forbidden,
    installed_module,
    targets,
)
from tinytorch.complete.notebook import (
    DEFAULT_NOTEBOOK,
    RUN_CHECK,
    AnswerCell,
    answer_cells,
    graded_cells,
)
from tinytorch.complete.released import RELEASED, given_module
from tinytorch.complete.writing import Written, write

__all__ = [
    "BACKUP",
    "DEFAULT_NOTEBOOK",
    "DEFAULT_TIMEOUT",
    "HEADER",
    "IMPLEMENTATIONS",
    "MODULE",
    "RELEASED",
    "RUN_CHECK",
    "AnswerCell",
    "Assembled",
    "CheckRun",
    "CompleteError",
    "Definition",
    "Function",
    "Piece",
    "Protected",
    "Target",
    "Written",
    "answer_cells",
    "assemble",
    "cli",
    "complete",
    "fingerprint",
    "forbidden",
    "given_module",
    "graded_cells",
    "installed_checks",
    "installed_module",
    "main",
    "parser",
    "run_checks",
    "targets",
    "write",
]

"""A class for the grading-at-scale tests (Dask cluster, resume after a kill, shared gradebook):
a few distinct notebooks (the reference, three mutants, the blank release and cheap attacks on
it), repeated to make a class; most are cheap, so a class of 40 grades in seconds."""

from __future__ import annotations

import importlib
from pathlib import Path

import nbformat
from submissions import from_training_source, write
from variants import mutant_source

from course.assignment import cells, paths

#: Attacks on the blank release (as benchmarks/grading.py's cheats), each ends quickly.
ATTACKS = {
    "exit": "exit()\n",
    "os-exit": "import os\nos._exit(0)\n",
    "rebind-run-check": "run_check = lambda *a, **k: None\n",
    "read-solutions": "import glob\nfound = glob.glob('/work/**/training.py', recursive=True)\n",
}
MUTANT_FILES = ("mutants_loop_modes", "mutants_schedule_clipping")
#: Which distinct notebooks are costly to grade (every check runs on real code).
COSTLY = ("reference", *(f"mutant-{n}" for n in range(len(MUTANT_FILES))))


def distinct_notebooks(folder: Path, release: Path) -> dict[str, Path]:
    """name -> a notebook file, one of each kind."""
    found = {"reference": write(from_training_source(paths.REFERENCE.read_text()),
                                folder / "reference.ipynb")}
    for index, module in enumerate(MUTANT_FILES):
        mutant = importlib.import_module(module).MUTANTS[0]
        found[f"mutant-{index}"] = write(from_training_source(mutant_source(mutant)),
                                         folder / f"mutant-{index}.ipynb")
    found["release"] = write(nbformat.read(release, as_version=4), folder / "release.ipynb")
    for name, code in ATTACKS.items():
        notebook = nbformat.read(release, as_version=4)
        notebook.cells.insert(2, nbformat.v4.new_code_cell(code))
        found[f"attack-{name}"] = write(notebook, folder / f"attack-{name}.ipynb")
    return found


def a_class(distinct: dict[str, Path], size: int, costly_every: int = 8) -> list[str]:
    """The kinds of ``size`` students: one in ``costly_every`` costly, the rest cheap."""
    costly = [k for k in distinct if k in COSTLY]
    cheap = [k for k in distinct if k not in COSTLY]
    kinds = []
    for i in range(size):
        pool = costly if i % costly_every == 0 else cheap
        kinds.append(pool[(i // costly_every if pool is costly else i) % len(pool)])
    return kinds


def fixed_seeds() -> dict[str, int]:
    """The same hidden seed per check for every submission: reproducible scores."""
    return {cell.check: 1_000 + index for index, cell in enumerate(cells.source_graded_cells())}


def outcome(report: dict) -> tuple:
    """What must be the same wherever a submission is graded: points per cell, total."""
    return (report["total"], report["gradable"],
            tuple((c["grade_id"], c["points"], c["passed"]) for c in report["cells"]))

"""``python -m course.student.complete``: a notebook whose code passes every check becomes the
student's ``tinytorch/core/training.py``; one that fails a check, or bad input, changes nothing.

Working copies are made in tmp_path the way the release lays them out (the notebook beside
``tinytorch/`` with Module 07 stripped, ``course.assignment.packages.stage``); an installed
tinytorch is a staged copy on PYTHONPATH, which is where ``import tinytorch`` finds it from any
folder."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from submissions import from_training_source, write

from checks.registry import TITLES
from course.assignment import packages, paths
from course.student import complete

REFERENCE_CODE = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION\n", "",
                        paths.REFERENCE.read_text(), flags=re.M)


def _cell(notebook: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in notebook.cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _edit(notebook: nbformat.NotebookNode, grade_id: str, old: str, new: str) -> None:
    """Replace ``old`` (found exactly once) in the answer cell ``grade_id``."""
    cell = _cell(notebook, grade_id)
    assert cell.source.count(old) == 1, (grade_id, old)
    cell.source = cell.source.replace(old, new)


def _working_copy(root: Path, notebook: nbformat.NotebookNode) -> Path:
    """A folder holding the notebook and the released tinytorch (and checks) beside it."""
    packages.stage(root)
    return write(notebook, root / paths.NOTEBOOK)


def _run(notebook: Path, env: dict[str, str] | None = None,
         *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course.student.complete", str(notebook),
                           *options],
                          cwd=paths.REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def _files(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


def _cells(notebook: nbformat.NotebookNode, tmp_path: Path) -> list[complete.AnswerCell]:
    return complete.answer_cells(write(notebook, tmp_path / "cells.ipynb"))


def _student_notebook() -> nbformat.NotebookNode:
    """The reference's answers with what a student adds: a constant, a helper evaluate uses,
    a comment, an import, a debugging print and a helper method with a multi-line string."""
    notebook = from_training_source(paths.REFERENCE.read_text())
    _edit(notebook, "answer_Trainer_evaluate", "@add_to_class(Trainer)\ndef evaluate",
          "import statistics\n\nSTUDENT_MARK = 'written in my notebook'\n\n\n"
          "def _my_mean(total, count):\n    return statistics.fmean([total / count])\n\n\n"
          "print('debugging')\n\n\n@add_to_class(Trainer)\ndef evaluate")
    _edit(notebook, "answer_Trainer_evaluate", "    loss = loss_sum / samples\n",
          "    loss = _my_mean(loss_sum, samples)  # my own evaluate\n")
    _edit(notebook, "answer_Trainer_evaluate", "    return loss, accuracy",
          "    return loss, accuracy\n\n\n@add_to_class(Trainer)\ndef describe(self):\n"
          "    return '''epochs\n  done'''\n")
    return notebook


# ----------------------------------------------------------------------------- assembling
def test_the_references_answer_cells_assemble_into_the_reference(tmp_path: Path) -> None:
    """Each answer (a class, a function, five methods) lands where its stub is, methods back
    in their class at its indentation: the reference's answers rebuild the reference exactly."""
    cells = _cells(from_training_source(paths.REFERENCE.read_text()), tmp_path)
    assembled = complete.assemble(complete.given_module(), cells, "mine.ipynb")
    header, body = assembled.text.split("\n", 1)
    assert header.startswith("# Your Module 07: the answer cells of mine.ipynb")
    assert body == REFERENCE_CODE
    assert assembled.left_out == []
    assert "add_to_class" not in assembled.text


def test_helpers_imports_and_new_methods_are_kept(tmp_path: Path) -> None:
    assembled = complete.assemble(complete.given_module(), _cells(_student_notebook(), tmp_path),
                                  "mine.ipynb")
    tree = ast.parse(assembled.text)
    top = [getattr(node, "name", None) for node in tree.body]
    imports = [i for i, node in enumerate(tree.body) if isinstance(node, ast.Import)]
    assert "statistics" in {alias.name for i in imports for alias in tree.body[i].names}
    assert max(imports) < top.index("CosineSchedule")  # with the module's imports
    assert top.index("Trainer") < top.index("_my_mean")  # beside the class its cell completes
    trainer = tree.body[top.index("Trainer")]
    methods = [node.name for node in trainer.body if isinstance(node, ast.FunctionDef)]
    assert methods.index("describe") == methods.index("evaluate") + 1
    describe = trainer.body[[getattr(n, "name", None) for n in trainer.body].index("describe")]
    assert describe.col_offset == 4
    assert ast.literal_eval(describe.body[0].value) == "epochs\n  done"  # string unchanged
    assert "loss = _my_mean(loss_sum, samples)  # my own evaluate" in assembled.text
    assert "print('debugging')" not in assembled.text
    assert assembled.left_out == ["answer cell answer_Trainer_evaluate, line 10: "
                                  "print('debugging')"]
    # a line of the module is traced back to its cell's line (for the checks' messages)
    lines = assembled.text.splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "_my_mean(loss" in text)
    cell, cell_line = assembled.origins[line]
    source = _cell(_student_notebook(), cell).source
    assert cell == "answer_Trainer_evaluate"
    assert source.splitlines()[cell_line - 1].strip() == lines[line - 1].strip()


# ----------------------------------------------------------------------------- bad input
def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], *expected: str) -> None:
    assert complete.main(argv) == 2
    error = capsys.readouterr().err
    for text in expected:
        assert text in error, error


def test_bad_notebooks_are_refused_by_name(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    packages.stage(tmp_path)
    before = _files(tmp_path)
    missing = tmp_path / "missing.ipynb"
    _refused([str(missing)], capsys, f"no notebook at {missing}")
    text = tmp_path / "notes.ipynb"
    text.write_text("not json")
    _refused([str(text)], capsys, f"{text} is not a Jupyter notebook")
    cellless = tmp_path / "cellless.ipynb"
    cellless.write_text('{"metadata": {}}')
    _refused([str(cellless)], capsys, f"{cellless} is not a Jupyter notebook")
    no_answers = tmp_path / "no-answers.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(notebook, no_answers)
    _refused([str(no_answers)], capsys, f"{no_answers} has no answer cells")
    broken = from_training_source(paths.REFERENCE.read_text())
    _edit(broken, "answer_Trainer_evaluate", "@add_to_class(Trainer)\n",
          "%time\n@add_to_class(Trainer)\n")
    path = write(broken, tmp_path / "broken.ipynb")
    _refused([str(path)], capsys, str(path), "answer cell answer_Trainer_evaluate",
             "line 1", "magics")
    created = {missing, text, cellless, no_answers, path}
    assert {p: b for p, b in _files(tmp_path).items() if p not in created} == before


def test_the_reference_solution_is_never_a_target(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A working copy whose tinytorch is the repository's (a symlink) is refused; the
    repository's editable install, this environment's tinytorch, is left alone."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "tinytorch").symlink_to(paths.REPO / "tinytorch")
    assert complete.forbidden(work / complete.MODULE) == "the course's reference solution"
    assert complete.forbidden(paths.SOURCE_NOTEBOOK.parent / complete.MODULE).startswith(
        "the nbgrader course folder")
    assert complete.forbidden(tmp_path / complete.MODULE) is None

    # The command end to end, on a stand-in for the reference: a regression must not be able
    # to reach the real one.
    stand_in = tmp_path / "reference"
    packages.stage(stand_in)
    monkeypatch.setitem(complete.FORBIDDEN, stand_in / "tinytorch",
                        "the course's reference solution")
    (work / "tinytorch").unlink()
    (work / "tinytorch").symlink_to(stand_in / "tinytorch")
    notebook = write(from_training_source(paths.REFERENCE.read_text()), work / paths.NOTEBOOK)
    before = _files(stand_in)
    _refused([str(notebook)], capsys, "refusing to write", "reference solution")
    with pytest.raises(complete.CompleteError, match="reference solution"):  # the last guard
        complete.write([complete.Target(work / complete.MODULE, "a test")], "x = 1\n")
    assert _files(stand_in) == before

    assert complete.installed_module().resolve() == paths.REFERENCE
    own = tmp_path / "own"
    packages.stage(own)
    notes: list[str] = []
    found = complete.targets(own / paths.NOTEBOOK, notes=notes)
    assert [t.path for t in found] == [own / complete.MODULE]
    assert notes and "reference solution" in notes[0]


# ----------------------------------------------------------------------------- end to end
USE_IT = """
import inspect, json
import numpy as np
import tinytorch.core.training as training
from tinytorch.core.training import STUDENT_MARK, Trainer
from tinytorch.core.layers import Linear
from tinytorch.core.losses import MSELoss
from tinytorch.core.optimizers import SGD
from tinytorch.data import DataLoader, TensorDataset
x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(-1, 1)
model = Linear(1, 1, seed=0)
trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss())
data = DataLoader(TensorDataset(x, 2 * x + 1), batch_size=4)
losses = [trainer.train_epoch(data) for _ in range(3)]
print(json.dumps({"file": training.__file__, "mark": STUDENT_MARK, "steps": trainer.step,
                  "losses": losses, "evaluate": trainer.evaluate(data)[0],
                  "mine": "# my own evaluate" in inspect.getsource(Trainer.evaluate)}))
"""


def _use(cwd: Path, site: Path) -> dict:
    used = subprocess.run([sys.executable, "-B", "-c", USE_IT], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(site)})
    assert used.returncode == 0, used.stderr
    return json.loads(used.stdout)


@pytest.mark.slow
def test_a_passing_notebook_becomes_the_students_tinytorch(tmp_path: Path) -> None:
    work, site = tmp_path / "work", tmp_path / "site"
    notebook = _working_copy(work, _student_notebook())
    packages.stage(site)  # an installed tinytorch, found through PYTHONPATH
    module, installed = work / complete.MODULE, site / complete.MODULE
    released = module.read_bytes()

    done = _run(notebook, {"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    assert f"all {len(TITLES)} checks pass" in done.stdout
    assert f"wrote {module}" in done.stdout and f"wrote {installed}" in done.stdout
    assert "print('debugging')" in done.stderr  # said to be left out
    for path in (module, installed):
        assert path.with_name("training.py.before-complete").read_bytes() == released
        assert "# my own evaluate" in path.read_text()

    for cwd in (work, tmp_path):  # the notebook's folder, and anywhere else in the environment
        used = _use(cwd, site)
        assert Path(used["file"]) == (module if cwd == work else installed)
        assert used["mark"] == "written in my notebook" and used["mine"]
        assert used["steps"] == 12 and used["losses"][2] < used["losses"][0]
        assert used["evaluate"] < used["losses"][0]

    snapshot = _files(work, site)
    again = _run(notebook, {"PYTHONPATH": str(site)})
    assert again.returncode == 0, again.stderr
    assert f"up to date: {module}" in again.stdout
    assert _files(work, site) == snapshot


def _unchanged_after(notebook: Path, site: Path, tmp_path: Path,
                     *options: str) -> subprocess.CompletedProcess:
    """Run the command; assert it failed and no file anywhere changed (the reference too)."""
    before = _files(tmp_path) | {paths.REFERENCE: paths.REFERENCE.read_bytes()}
    done = _run(notebook, {"PYTHONPATH": str(site)}, *options)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Nothing was written" in done.stderr
    assert _files(tmp_path) | {paths.REFERENCE: paths.REFERENCE.read_bytes()} == before
    return done


@pytest.mark.slow
def test_a_failing_check_names_itself_and_changes_nothing(tmp_path: Path) -> None:
    notebook = from_training_source(paths.REFERENCE.read_text())
    # the loop never clears gradients between optimizer steps (a catalogued mutant's bug)
    _edit(notebook, "answer_Trainer__optimizer_step",
          "    self.optimizer.step()\n    self._clear_grads(params)\n",
          "    self.optimizer.step()\n")
    site = tmp_path / "site"
    packages.stage(site)
    done = _unchanged_after(_working_copy(tmp_path / "work", notebook), site, tmp_path)
    assert f"checks fail on your code from {tmp_path / 'work' / paths.NOTEBOOK}" in done.stderr
    assert f"1.2: {TITLES['1.2']} (graded cell audit_1_2_gradients_cleared)" in done.stderr
    assert "so zero_grad() is not called between steps" in done.stderr
    assert "all 21 checks pass" not in done.stdout and "wrote" not in done.stdout


@pytest.mark.slow
def test_a_crash_is_shown_at_the_students_line_and_exits_and_loops_stop_nothing(
        tmp_path: Path) -> None:
    crash = from_training_source(paths.REFERENCE.read_text())
    _edit(crash, "answer_Trainer_save_checkpoint", "    arrays = {",
          "    missing = {}['no such key']\n    arrays = {")
    cell = _cell(crash, "answer_Trainer_save_checkpoint").source
    line = cell.splitlines().index("    missing = {}['no such key']") + 1
    site = tmp_path / "site"
    packages.stage(site)
    done = _unchanged_after(_working_copy(tmp_path / "crash", crash), site, tmp_path)
    assert f"answer cell answer_Trainer_save_checkpoint, line {line}" in done.stderr
    assert "6.1: " in done.stderr and "KeyError" in done.stderr

    exits = from_training_source(paths.REFERENCE.read_text())
    _edit(exits, "answer_Trainer_evaluate", "    self._set_mode(False)\n",
          "    __import__('os')._exit(3)\n")
    done = _unchanged_after(_working_copy(tmp_path / "exits", exits), site, tmp_path)
    assert "the check run ended without a result (exit status 3)" in done.stderr

    loops = from_training_source(paths.REFERENCE.read_text())
    _edit(loops, "answer_clip_grad_norm", "    if isinstance(parameters, Tensor):\n",
          "    while True:\n        pass\n    if isinstance(parameters, Tensor):\n")
    done = _unchanged_after(_working_copy(tmp_path / "loops", loops), site, tmp_path,
                            "--timeout", "5")
    assert "the checks did not finish within 5 s" in done.stderr


# ----------------------------------------------------------------------------- the student's side
def test_complete_imports_nothing_a_student_environment_lacks() -> None:
    """The student's command (tinytorch.complete, in the student wheel) needs the standard
    library only: no jupytext (the lesson's format), none of the grading tools, nothing of
    `course`; it runs the checks in a separate process and reads the graded cells from the
    notebook itself. course.student.complete adds only course.assignment's paths and
    solutions."""
    lacking = ["jupytext", "nbformat", "nbgrader", "nbclient", "numpy", "packaging", "checks",
               "tinytorch.core", "course.authoring.build", "course.grading.submission",
               "course.authoring.release", "course.grading.sandbox",
               "course.student.environment"]
    for module, expected in (("tinytorch.complete", []),
                             ("course.student.complete", [
                                 "course", "course.assignment", "course.assignment.paths",
                                 "course.assignment.solutions", "course.student",
                                 "course.student.complete"])):
        code = (f"import sys\nfor name in {lacking!r}:\n    sys.modules[name] = None\n"
                f"import json, {module}\n"
                "print(json.dumps(sorted(name for name, module in sys.modules.items()\n"
                "                         if module and name.startswith(('course', 'tiny')))))")
        done = subprocess.run([sys.executable, "-c", code], cwd=paths.REPO, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == sorted([
            *expected, "tinytorch", "tinytorch.complete", "tinytorch.files",
            *(f"tinytorch.complete.{step}" for step in (  # its files, one step each
                "assembly", "checking", "command", "common", "destinations", "notebook",
                "released", "writing"))])


def test_graded_cells_come_from_the_notebook_as_released(tmp_path: Path) -> None:
    """The graded cell named beside a failing check is the notebook's own (nbgrader's metadata
    and its `run_check("<id>", ...)`), the same as the course's list of graded cells."""
    from course.assignment import cells

    expected = {cell.check: cell.grade_id for cell in cells.source_graded_cells()}
    submitted = write(from_training_source(paths.REFERENCE.read_text()), tmp_path / "a.ipynb")
    assert complete.graded_cells(submitted) == expected
    assert complete.graded_cells(paths.SOURCE_NOTEBOOK) == expected
    assert complete.graded_cells(tmp_path / "missing.ipynb") == {}


def _make_complete(venv: Path, notebook: Path) -> subprocess.CompletedProcess:
    """`make complete` as a student types it after `make lab` (here the student venv is a
    temporary one: STUDENT_VENV names it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "--no-print-directory", "complete", f"STUDENT_VENV={venv}",
                           f"NOTEBOOK={notebook}"], cwd=paths.REPO, capture_output=True,
                          text=True, timeout=600, env=env)


@pytest.mark.slow
def test_make_complete_runs_in_the_students_environment_and_writes_into_it(
        tmp_path: Path, lab_venv: Path) -> None:
    """After `make lab`: the student venv's Python (no jupytext, no course installed) checks
    the notebook, names a failing check's graded cell, and once every check passes writes the
    student's module beside the notebook and into that venv's tinytorch, which the student's
    kernels then import; every message speaks of the student's files."""
    from course.student import environment as student_env

    installed = student_env.installed_module(lab_venv)
    assert installed is not None
    released = installed.read_bytes()
    buggy = from_training_source(paths.REFERENCE.read_text())
    _edit(buggy, "answer_Trainer__optimizer_step",
          "    self.optimizer.step()\n    self._clear_grads(params)\n",
          "    self.optimizer.step()\n")
    work = tmp_path / "work"
    notebook = _working_copy(work, buggy)
    module = work / complete.MODULE
    before = _files(work) | {installed: released}

    failed = _make_complete(lab_venv, notebook)
    assert f"{lab_venv}/bin/tinytorch complete {notebook}" in failed.stdout
    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert "ModuleNotFoundError" not in failed.stderr, failed.stderr
    assert f"1.2: {TITLES['1.2']} (graded cell audit_1_2_gradients_cleared)" in failed.stderr
    assert "Nothing was written" in failed.stderr
    assert _files(work) | {installed: installed.read_bytes()} == before

    write(_student_notebook(), notebook)  # the student fixes their answer cell
    done = _make_complete(lab_venv, notebook)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert f"all {len(TITLES)} checks pass" in done.stdout
    assert f"wrote {module} (the tinytorch beside your notebook" in done.stdout
    assert f"wrote {installed} (your environment's tinytorch, in {lab_venv}" in done.stdout
    for word in ("reference solution", "instructor", "Traceback", "left alone"):
        assert word not in said, said
    assert installed.with_name("training.py.before-complete").read_bytes() == released

    # the student's kernels (the venv's Python, anywhere but the working copy) get their code
    used = subprocess.run([str(lab_venv / "bin" / "python"), "-B", "-I", "-c", USE_IT],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert used.returncode == 0, used.stderr
    found = json.loads(used.stdout)
    assert Path(found["file"]) == installed and found["mine"]
    assert found["mark"] == "written in my notebook" and found["steps"] == 12

    # and the student venv was given no instructor tool along the way
    tools = subprocess.run([str(lab_venv / "bin" / "python"), "-I", "-c",
                            "import importlib.util as u; print([n for n in ('jupytext', "
                            "'course', 'nbval', 'pytest') if u.find_spec(n)])"],
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    assert tools.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_student_wheels_own_command_completes_outside_the_repository(
        tmp_path: Path, lab_venv: Path) -> None:
    """What a student on Binder or a hub runs: `tinytorch complete 07_training.ipynb`, the
    console script of a venv made only from the student wheel, in a folder outside the
    repository (the notebook alone, as fetched), with the repository not importable. It
    writes the answer cells into Module 07 as that student was given it (the wheel's
    training_released.py, marked here so that any other source shows), never the reference."""
    from course.student import environment as student_env

    command = lab_venv / "bin" / "tinytorch"
    installed = student_env.installed_module(lab_venv)
    assert command.is_file() and installed is not None
    released = installed.with_name("training_released.py")
    kept = {path: path.read_bytes() for path in (installed, released)}
    backups = set(installed.parent.glob("training.py.before-complete*"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    folder = tmp_path / "fetched"
    folder.mkdir()
    notebook = write(_student_notebook(), folder / paths.NOTEBOOK)
    try:
        released.write_text("# as released to this student\n" + released.read_text())
        not_here = subprocess.run(
            [str(lab_venv / "bin" / "python"), "-c", "import importlib.util as u; "
             "print([n for n in ('course', 'jupytext') if u.find_spec(n)])"],
            cwd=folder, env=env, capture_output=True, text=True, check=True)
        assert not_here.stdout.strip() == "[]"  # not from the student's folder either

        done = subprocess.run([str(command), "complete", paths.NOTEBOOK], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=300)
        said = done.stdout + done.stderr
        assert done.returncode == 0, said
        assert f"all {len(TITLES)} checks pass on your code from {paths.NOTEBOOK}" in done.stdout
        assert f"wrote {installed} (your environment's tinytorch" in done.stdout
        assert not list(folder.glob("tinytorch")), "nothing beside a notebook without tinytorch"
        mine = installed.read_text()
        assert mine.startswith("# Your Module 07: the answer cells of 07_training.ipynb")
        assert "# as released to this student" in mine  # the student's given module
        assert "# my own evaluate" in mine
        for word in ("reference solution", "instructor", "Traceback"):
            assert word not in said, said

        used = subprocess.run([str(lab_venv / "bin" / "python"), "-B", "-I", "-c", USE_IT],
                              cwd=folder, capture_output=True, text=True, timeout=120)
        assert used.returncode == 0, used.stderr
        assert Path(json.loads(used.stdout)["file"]) == installed

        # without the released module (nor a never-completed copy of it, the backup), nothing
        # is assembled from anything else
        released.unlink()
        for backup in installed.parent.glob("training.py.before-complete*"):
            backup.unlink()
        missing = subprocess.run([str(command), "complete", str(notebook)], cwd=folder, env=env,
                                 capture_output=True, text=True, timeout=300)
        assert missing.returncode == 2, missing.stdout + missing.stderr
        assert "no Module 07 as released (training_released.py)" in missing.stderr
        assert installed.read_text() == mine
    finally:  # the shared student venv as it was (other tests write their own module into it)
        for path, data in kept.items():
            path.write_bytes(data)
        for backup in set(installed.parent.glob("training.py.before-complete*")) - backups:
            backup.unlink()


def test_the_student_wheels_command_explains_a_code(tmp_path: Path, lab_venv: Path) -> None:
    """`tinytorch explain TT103`, the console script of a venv made only from the student
    wheel, outside the repository: the catalog's explanation, as the checks' messages name it;
    an unknown code is refused by name."""
    from checks import catalog

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    command = [str(lab_venv / "bin" / "tinytorch"), "explain"]
    done = subprocess.run([*command, "TT103"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == catalog.explain("TT103").strip()
    unknown = subprocess.run([*command, "TT000"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=120)
    assert unknown.returncode == 2 and "no cause has the code 'TT000'" in unknown.stderr

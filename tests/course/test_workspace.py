"""The student's working copy (``make lab``): made once from the release, and no later release
or second ``make lab`` replaces a file the student edited."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat

from course.assignment import paths
from course.authoring import release
from course.student import workspace


def _released(course_dir: Path) -> Path:
    return course_dir / "release" / paths.ASSIGNMENT


def _solve_a_cell(notebook_path: Path, text: str) -> None:
    """What a student does: write into the first answer cell and save."""
    notebook = nbformat.read(notebook_path, as_version=4)
    answer = next(c for c in notebook.cells if "raise NotImplementedError()" in c.source)
    answer.source = answer.source.replace("raise NotImplementedError()", text)
    nbformat.write(notebook, notebook_path)


def test_second_lab_run_keeps_the_students_edit(course_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    first = workspace.prepare(_released(course_dir), work)
    assert "07_training.ipynb" in first.created
    assert "tinytorch/core/training.py" in first.created
    _solve_a_cell(work / paths.NOTEBOOK, "return 0.5  # my answer")
    (work / ".ipynb_checkpoints").mkdir()
    (work / ".ipynb_checkpoints" / "07_training-checkpoint.ipynb").write_text("{}")

    # What `make lab` does again: regenerate the release (nbgrader --force), then prepare.
    assert release.release(release.secrets(), course=course_dir) == []
    second = workspace.prepare(_released(course_dir), work)

    assert "return 0.5  # my answer" in (work / paths.NOTEBOOK).read_text()
    assert (work / ".ipynb_checkpoints" / "07_training-checkpoint.ipynb").read_text() == "{}"
    assert second.created == [] and second.updated == [] and second.kept == {}
    assert not list(work.glob("07_training.release-*"))


def test_a_changed_release_is_offered_beside_the_edited_notebook(
        course_dir: Path, tmp_path: Path) -> None:
    old, new, work = tmp_path / "old", tmp_path / "new", tmp_path / "work"
    shutil.copytree(_released(course_dir), old)
    workspace.prepare(old, work)
    _solve_a_cell(work / paths.NOTEBOOK, "return 0.5  # my answer")

    shutil.copytree(old, new)  # the next release: a changed notebook and a changed library file
    notebook = nbformat.read(new / paths.NOTEBOOK, as_version=4)
    notebook.cells[0].source += "\n\nErratum: section 3.2 now says more."
    nbformat.write(notebook, new / paths.NOTEBOOK)
    library = new / "tinytorch" / "core" / "layers.py"
    library.write_text(library.read_text() + "\n# a fix of the release\n")
    (work / "tinytorch" / "core" / "tensor.py").unlink()  # a file the student deleted

    outcome = workspace.prepare(new, work)

    assert "return 0.5  # my answer" in (work / paths.NOTEBOOK).read_text()
    offered = work / outcome.kept[paths.NOTEBOOK]
    assert offered.name.startswith("07_training.release-") and offered.suffix == ".ipynb"
    assert "Erratum" in offered.read_text()
    assert outcome.updated == ["tinytorch/core/layers.py"]  # untouched by the student: follows
    assert (work / "tinytorch/core/layers.py").read_text().endswith("# a fix of the release\n")
    assert outcome.created == ["tinytorch/core/tensor.py"]
    assert any("your edited copy is kept" in line for line in outcome.messages(work))

    again = workspace.prepare(new, work)  # the same release again: offered once, not each time
    assert again.kept == {} and again.updated == [] and again.created == []
    manifest = json.loads((work / workspace.MANIFEST).read_text())
    assert manifest[paths.NOTEBOOK]["release"] == workspace.digest(new / paths.NOTEBOOK)


def test_the_notebook_records_the_students_kernel_and_stays_the_releases(
        course_dir: Path, tmp_path: Path) -> None:
    """On a machine whose Python is not the pinned one, the working copy's notebook records
    this kernel's version (so JupyterLab opens it unmodified). That adapted copy still counts
    as untouched: a new release replaces it in place, and a second prepare changes nothing."""
    old, new, work = tmp_path / "old", tmp_path / "new", tmp_path / "work"
    shutil.copytree(_released(course_dir), old)
    released = json.loads((old / paths.NOTEBOOK).read_text())
    assert released["metadata"]["language_info"]["version"] != "3.99.1"
    workspace.prepare(old, work, version="3.99.1")
    mine = json.loads((work / paths.NOTEBOOK).read_text())
    assert mine["metadata"]["language_info"]["version"] == "3.99.1"
    mine["metadata"]["language_info"]["version"] = released["metadata"]["language_info"][
        "version"]
    assert mine == released, "only the recorded version may differ from the release"

    again = workspace.prepare(old, work, version="3.99.1")
    assert (again.created, again.updated, again.kept) == ([], [], {})

    shutil.copytree(old, new)
    notebook = nbformat.read(new / paths.NOTEBOOK, as_version=4)
    notebook.cells[0].source += "\n\nErratum."
    nbformat.write(notebook, new / paths.NOTEBOOK)
    outcome = workspace.prepare(new, work, version="3.99.1")
    assert outcome.updated == [paths.NOTEBOOK] and outcome.kept == {}
    text = (work / paths.NOTEBOOK).read_text()
    assert "Erratum." in text and '"version": "3.99.1"' in text
    pinned = released["metadata"]["language_info"]["version"]  # the students' own Python
    assert workspace.as_written(new / paths.NOTEBOOK, pinned) == (
        new / paths.NOTEBOOK).read_bytes(), "a notebook already right must be copied byte for byte"


def test_no_release_is_a_clear_error_that_names_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "release"
    try:
        workspace.prepare(missing, tmp_path / "work")
    except FileNotFoundError as error:
        assert str(missing / paths.NOTEBOOK) in str(error)
    else:
        raise AssertionError("prepare() of a missing release must raise FileNotFoundError")
    assert not (tmp_path / "work").exists()


def test_the_lab_command_serves_the_working_copy(tmp_path: Path) -> None:
    """The Makefile's `make lab` command line, run where a working copy exists: JupyterLab
    serves the working copy's folder and finds the notebook it was asked to open."""
    import re
    import socket
    import subprocess
    import sys
    import time

    recipe = re.search(r"^lab:.*\n(?:\t.*\n)*", (paths.REPO / "Makefile").read_text(), re.M)
    assert recipe, "the Makefile has no lab target"
    command = recipe.group(0).split("jupyter lab", 1)[1].replace("\\\n", " ")
    args = [a for a in command.split() if a != "$(ROOT_FLAG)"]
    work = tmp_path / "work" / paths.ASSIGNMENT
    work.mkdir(parents=True)
    (work / paths.NOTEBOOK).write_text(nbformat.writes(nbformat.v4.new_notebook()))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        lab = subprocess.Popen(
            [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser",
             "--allow-root", f"--port={port}", "--ServerApp.token=", *args],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "Serving notebooks" not in log.read_text():
                assert lab.poll() is None, log.read_text()
                time.sleep(0.2)
        finally:
            lab.terminate()
            lab.wait(timeout=15)
    text = log.read_text()
    assert f"Serving notebooks from local directory: {work}" in text, text
    assert "No such file" not in text, text


def test_a_second_lab_is_refused_while_one_serves_the_working_copy(tmp_path: Path) -> None:
    """`make lab` twice: the first JupyterLab serves work/07_training; the second `make lab`
    must not start another one on the next port (two kernels editing one notebook), and says
    which server is running. Run here: the lab recipe's first line, with Jupyter's runtime
    folder and the working copy in tmp_path, beside a real JupyterLab."""
    import os
    import re
    import socket
    import subprocess
    import sys
    import time

    recipe = re.search(r"^lab:.*\n(?:\t.*\n)*", (paths.REPO / "Makefile").read_text(), re.M)
    assert recipe, "the Makefile has no lab target"
    first = recipe.group(0).splitlines()[1].strip()
    # the plain python3 runs it (make lab has no venv yet): standard library only, here -S
    assert first == "@$(PYTHON) -m course.student.workspace --refuse-if-served"
    from course.student.environment import base_python
    runtime, work, other = tmp_path / "runtime", tmp_path / "work" / paths.ASSIGNMENT, \
        tmp_path / "other"
    for folder in (work, other):
        folder.mkdir(parents=True)
        (folder / paths.NOTEBOOK).write_text(nbformat.writes(nbformat.v4.new_notebook()))
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}

    def second_lab(folder: Path = work) -> subprocess.CompletedProcess:
        return subprocess.run([base_python(), "-S", "-m", "course.student.workspace",
                               "--refuse-if-served", "--work", str(folder)], cwd=paths.REPO,
                              env=env, capture_output=True, text=True, timeout=60)

    assert second_lab().returncode == 0, "refused with no server running"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        lab = subprocess.Popen(
            [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser",
             "--allow-root", f"--port={port}", "--ServerApp.token=secret-token",
             f"--ServerApp.root_dir={work}"], cwd=tmp_path, env=env, stdout=out,
            stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                    "Serving notebooks" in log.read_text() and list(runtime.glob("jpserver-*"))):
                assert lab.poll() is None, log.read_text()
                time.sleep(0.2)
            refused = second_lab()
            assert refused.returncode == 1, refused.stderr
            said = refused.stderr
            assert f"JupyterLab is already serving your working copy {work}" in said, said
            assert f"(process {lab.pid})" in said and f"kill {lab.pid}" in said
            assert f":{port}/lab?token=secret-token" in said
            assert second_lab(other).returncode == 0, "a lab of another folder was refused"
        finally:
            lab.terminate()
            lab.wait(timeout=15)
    # stopped: a runtime file left behind by a server that died is no reason to refuse
    (runtime / "jpserver-999999999.json").write_text(json.dumps(
        {"root_dir": str(work), "pid": 999999999, "port": port, "hostname": "localhost",
         "url": f"http://localhost:{port}/", "token": ""}))
    assert second_lab().returncode == 0, second_lab().stderr

"""Binder: `binder/` pins what pyproject pins for the library and the course, builds with a
postBuild that fails loudly, and leaves an image in which no solution is left (simulated on a
copy of the checkout); JupyterLab's widget, matplotlib and nbgrader extensions are enabled."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from course.assignment import paths
from course.authoring import binder, release

ROOT = paths.REPO
BINDER = ROOT / "binder"


def _pins(specs: list[str]) -> dict[str, str]:
    return {Requirement(s).name.lower(): str(Requirement(s).specifier) for s in specs}


def test_binder_environment_pins_the_library_and_course_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["course"])
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == wanted
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11.7" in conda, (
        f"expected Binder's Python pinned exactly (nbgrader 0.9.6 needs 3.11; the notebook's "
        f"language_info records the kernel's exact version): {conda}")
    assert not (ROOT / ".binder").exists(), "repo2docker refuses binder/ and .binder/ together"


def test_post_build_is_executable_and_stops_on_the_first_error() -> None:
    script = BINDER / "postBuild"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    assert "python -m course.authoring.binder" in text


def test_image_holds_no_solution(course_dir: Path, tmp_path: Path) -> None:
    """The checkout as git tracks it, plus a release, stripped by `course.authoring.binder`: every
    text file left is scanned for solution lines and hidden tests."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    image = tmp_path / "image"
    for relative in tracked:
        (image / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, image / relative)
    shutil.copytree(course_dir / "release", image / "notebooks" / "release")
    (image / ".git").mkdir()  # stands for the history, which holds every solution
    secrets = release.secrets()
    assert binder.strip_checkout(image, secrets) == []
    assert not (image / ".git").exists() and not (image / "tests").exists()
    assert (image / "notebooks/release/07_training/07_training.ipynb").is_file()
    training = (image / "tinytorch/core/training.py").read_text()
    assert training.count("raise NotImplementedError()") == 8


def test_strip_would_catch_a_solution_left_behind(tmp_path: Path) -> None:
    """The image scan can fail: a copy of training.py under another name is reported."""
    (tmp_path / "tinytorch/core").mkdir(parents=True)
    shutil.copy(paths.REFERENCE, tmp_path / "tinytorch/core/training.py")
    shutil.copy(paths.REFERENCE, tmp_path / "notes.py")
    leaks = binder.strip_checkout(tmp_path, release.secrets())
    assert leaks and {leak.path.name for leak in leaks} == {"notes.py"}


@pytest.mark.parametrize("extension", [
    "@jupyter-widgets/jupyterlab-manager", "jupyter-matplotlib", "@jupyter/nbgrader",
])
def test_lab_extension_is_enabled_and_ok(extension: str) -> None:
    listing = _labextensions()
    line = next((ln for ln in listing.splitlines() if ln.split()[:1] == [extension]), None)
    assert line is not None, f"{extension} is not installed:\n{listing}"
    assert "enabled" in line and line.rstrip().endswith(("OK", ")")) and " OK" in line, line


def test_no_lab_extension_reports_a_problem() -> None:
    listing = _labextensions()
    entries = [ln for ln in listing.splitlines() if ln.startswith((" ", "\t")) and ln.strip()]
    assert entries, listing
    bad = [ln for ln in entries if " OK" not in ln or "disabled" in ln]
    assert not bad and "problem" not in listing.lower(), listing


def _labextensions() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True, text=True, check=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


def test_stripping_a_checkout_needs_the_flag_postbuild_gives(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Run by mistake in a working copy (``--help`` included), the Binder step deletes nothing:
    without ``--strip-this-checkout`` it names what it would delete and stops."""
    kept = [ROOT / name for name in binder.REMOVE if (ROOT / name).exists()]
    assert kept, "a checkout holds what the Binder step removes"
    assert binder.main([]) == 2
    said = capsys.readouterr().err
    assert "--strip-this-checkout" in said and ".git" in said and str(ROOT) in said
    with pytest.raises(SystemExit) as help_asked:
        binder.main(["--help"])
    assert help_asked.value.code == 0
    assert all(path.exists() for path in kept)
    assert "--strip-this-checkout" in (BINDER / "postBuild").read_text()

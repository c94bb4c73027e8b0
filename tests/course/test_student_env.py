"""What a student environment installs holds no solution and none of the instructor's tools.

The slow tests build the student wheel, install it with ``--no-deps`` into a fresh venv made
from the base interpreter (not this venv, which has the whole repository on its path), add
numpy at pyproject's pin, and look at what a student gets: no line of reference solution or
hidden test anywhere on disk, a Module 07 whose methods are stubs, ``checks`` importable and
``course`` not. numpy comes from pip's cache (or this machine's wheel folder), so no download
is needed and the venv is ready in a few seconds; the venv gets no pip of its own (this venv's
pip installs into it with ``--python``), which keeps it small enough to scan whole.

The cheap tests hold the rest: the pins the student venv installs are pyproject's, an
up-to-date venv is left alone, the wheel gate refuses a wheel with a solution or the
instructor's package, and the student configuration turns nbgrader's instructor extensions off
even beside nbgrader's own ``nbgrader.json``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from jupyter_server.extension.config import ExtensionConfigManager
from jupyter_server.services.config.manager import ConfigManager
from packaging.requirements import Requirement

from course.assignment import paths
from course.assignment.solutions import scan
from course.authoring import release
from course.student import environment as student_env

ROOT = paths.REPO
NBGRADER_LAB = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter" / "nbgrader"
NBGRADER_SERVER_CONFIG = (Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d"
                          / "nbgrader.json")
#: Every text file in the student venv is read: the usual suffixes, stubs, data, and files
#: without a suffix (METADATA, RECORD, scripts).
VENV_TEXT = (".py", ".pyi", ".ipynb", ".md", ".txt", ".json", ".cfg", ".toml", ".csv", "")


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["course"]
    return {Requirement(s).name.lower(): str(Requirement(s).specifier) for s in specs}


# ---- cheap: pins, stamp, gate, configuration

def test_every_pin_the_student_venv_installs_is_pyprojects() -> None:
    installed = {Requirement(s).name.lower(): str(Requirement(s).specifier)
                 for s in student_env.requirements()}
    pins = _pyproject_pins()
    assert {name: pins.get(name) for name in installed} == installed
    assert all(spec.startswith("==") for spec in installed.values()), installed
    for name in ("jupyterlab", "notebook", "nbgrader", "ipywidgets", "ipympl", "matplotlib",
                 "tqdm", "threadpoolctl", "numpy"):
        assert name in installed, f"the student venv does not install {name}"
    for name in ("pytest", "torch", "ruff", "playwright", "hypothesis", "nbval", "jupytext"):
        assert name not in installed, f"the student venv installs the instructor's {name}"


def test_the_wheel_requires_what_pyproject_requires() -> None:
    project = student_env.project()
    staged = tomllib.loads(student_env.staging_pyproject(project))
    assert staged["project"]["dependencies"] == project["project"]["dependencies"]
    assert staged["project"]["version"] == project["project"]["version"]
    assert staged["build-system"] == project["build-system"]
    students = {package: files for package, files
                in project["tool"]["setuptools"]["package-data"].items()
                if package.split(".")[0] in ("tinytorch", "checks")}
    assert staged["tool"]["setuptools"]["package-data"] == students
    assert "tinytorch.datasets" in students  # the digits travel with the student's library
    assert staged["tool"]["setuptools"]["packages"]["find"]["include"] == [
        "tinytorch*", "checks*"]


def _fake_wheel(folder: Path, body: bytes = b"wheel") -> Path:
    wheel = folder / student_env.wheel_name()
    wheel.write_bytes(body)
    return wheel


@pytest.fixture()
def pip_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Commands ``ensure_venv`` runs, recorded instead of run; making a venv leaves a
    ``bin/python`` behind as ``python -m venv`` would."""
    calls: list[list[str]] = []

    def run(command: list[str]) -> None:
        calls.append(command)
        if command[1:3] == ["-m", "venv"]:
            python = Path(command[3]) / "bin" / "python"
            python.parent.mkdir(parents=True)
            python.touch()
        if "--force-reinstall" in command:  # the wheel's training.py: here, the wheel's bytes
            venv = Path(command[0]).parents[1]
            module = venv / "lib" / "python3.11" / "site-packages" / "tinytorch" / "core"
            module.mkdir(parents=True, exist_ok=True)
            (module / "training.py").write_bytes(Path(command[-1]).read_bytes())

    monkeypatch.setattr(student_env, "_run", run)
    return calls


def test_venv_installs_the_pins_and_config_once(tmp_path: Path,
                                                  pip_calls: list[list[str]]) -> None:
    venv, wheel = tmp_path / "venv", _fake_wheel(tmp_path)
    assert student_env.ensure_venv(venv, wheel) is True
    made, install, replace = pip_calls
    assert made == [student_env.base_python(), "-m", "venv", str(venv)]
    assert install[-len(student_env.requirements()) - 1:] == [str(wheel),
                                                              *student_env.requirements()]
    assert install[:4] == [str(venv / "bin" / "python"), "-m", "pip", "install"]
    assert replace[-3:] == ["--force-reinstall", "--no-deps", str(wheel)]
    config = venv / "etc" / "jupyter"
    assert (config / "jupyter_server_config.d" / "tinytorch-student.json").is_file()
    assert (config / "labconfig" / "page_config.d" / "tinytorch-student.json").is_file()

    pip_calls.clear()
    assert student_env.ensure_venv(venv, wheel) is False, "an up-to-date venv was reinstalled"
    assert pip_calls == []

    _fake_wheel(tmp_path, b"a new training.py")
    assert student_env.ensure_venv(venv, wheel) is True
    assert [c[1:3] for c in pip_calls] == [["-m", "pip"], ["-m", "pip"]], "venv made twice"


def test_a_reinstall_keeps_the_students_own_module(tmp_path: Path,
                                                  pip_calls: list[list[str]]) -> None:
    """`make complete` wrote the student's Trainer into the venv's tinytorch: a new wheel
    reinstalls the package, puts the student's file back, and the new version beside it."""
    venv, wheel = tmp_path / "venv", _fake_wheel(tmp_path, b"release 1")
    student_env.ensure_venv(venv, wheel)
    module = student_env.installed_module(venv)
    assert module is not None and module.read_bytes() == b"release 1"
    _fake_wheel(tmp_path, b"release 2")
    student_env.ensure_venv(venv, wheel)
    assert module.read_bytes() == b"release 2", "an untouched module did not follow the release"

    module.write_bytes(b"the student's Trainer")
    _fake_wheel(tmp_path, b"release 3")
    assert student_env.ensure_venv(venv, wheel) is True
    assert module.read_bytes() == b"the student's Trainer"
    beside = sorted(module.parent.glob("training.release-*.py"))
    assert [p.read_bytes() for p in beside] == [b"release 3"]


def test_venv_refuses_the_students_working_copy(pip_calls: list[list[str]],
                                                 tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="work"):
        student_env.ensure_venv(ROOT / "work" / "venv", _fake_wheel(tmp_path))
    assert pip_calls == []


def test_config_refuses_the_instructors_venv(capsys: pytest.CaptureFixture[str]) -> None:
    """Installed there, the students' configuration would turn the instructor's formgrader off."""
    etc = student_env.INSTRUCTOR_VENV / "etc" / "jupyter"
    before = sorted(etc.rglob("*")) if etc.exists() else []
    assert student_env.main(["config", "--prefix", str(student_env.INSTRUCTOR_VENV)]) == 2
    assert "instructor's venv" in capsys.readouterr().err
    assert (sorted(etc.rglob("*")) if etc.exists() else []) == before


def test_make_lab_and_binder_install_the_student_environment() -> None:
    """`make lab` serves from the student venv it keeps up to date, Binder installs the wheel
    and the configuration (never the checkout, whose training.py is the reference)."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^lab:.*\n(?:\t.*\n)*", makefile, re.M)
    assert recipe, "the Makefile has no lab target"
    lines = [line.strip() for line in recipe.group(0).splitlines()[1:]]
    assert lines[:2] == ["@$(PYTHON) -m course.student.workspace --refuse-if-served",
                         "@$(MAKE) --no-print-directory student-venv"], lines
    assert lines[3:6] == ["$(BUILD_PY) -m course.authoring.release",
                          "$(BUILD_PY) -m course.student.workspace >/dev/null",
                          "$(STUDENT_VENV)/bin/jupyter lab $(ROOT_FLAG) "
                          "--ServerApp.root_dir=work/07_training \\"], lines
    steps = re.search(r"^student-venv:.*\n(?:\t.*\n)*", makefile, re.M)
    assert steps, "the Makefile has no student-venv target"
    assert [line.strip() for line in steps.group(0).splitlines()[1:] if "@echo" not in line] == [
        "@$(PYTHON) -m course.student.environment stack --venv $(STUDENT_VENV)",
        "@$(PYTHON) -m course.student.environment build-venv --venv $(BUILD_VENV) --student "
        "$(STUDENT_VENV)",
        "@$(BUILD_PY) -m course.student.environment venv --venv $(STUDENT_VENV)"]
    assert f"BUILD_VENV := {student_env.BUILD_VENV.name}\n" in makefile
    assert f"STUDENT_VENV := {student_env.VENV.name}\n" in makefile
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert f"{student_env.VENV.name}/" in ignored and f"{student_env.BUILD_VENV.name}/" in ignored
    assert re.search(r"^student-wheel:.*## .+\n\t\$\(PY\) -m course.student.environment wheel$",
                     makefile, re.M), "no `make student-wheel` with a help comment"
    post = [line for line in (ROOT / "binder" / "postBuild").read_text().splitlines()
            if line and not line.startswith("#")]
    assert post == ["set -euo pipefail", "wheel=$(python -m course.student.environment wheel)",
                    'python -m pip install --no-deps "$wheel"',
                    "python -m course.student.environment config",
                    "python -m course.authoring.binder --strip-this-checkout"]


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def test_wheel_gate_refuses_a_solution_and_the_instructors_package(tmp_path: Path) -> None:
    """The gate can fail: a line of the reference in any file, or a package besides tinytorch
    and checks, is refused with the file named."""
    secrets = release.secrets()
    name = student_env.wheel_name()
    info = f"{name.split('-')[0]}-{name.split('-')[1]}.dist-info"
    clean = {"tinytorch/__init__.py": "", "checks/__init__.py": "", f"{info}/METADATA": "x"}
    student_env.check_wheel(_zip(tmp_path / name, clean), secrets)

    leaked = {**clean, "checks/notes.txt": f"{sorted(secrets)[0]}\n"}
    with pytest.raises(student_env.LeakError, match=r"checks/notes\.txt:1"):
        student_env.check_wheel(_zip(tmp_path / name, leaked), secrets)
    with pytest.raises(student_env.LeakError, match="course"):
        student_env.check_wheel(_zip(tmp_path / name, {**clean, "course/__init__.py": ""}),
                                secrets)


def _installed_config(tmp_path: Path, *, exchange: bool) -> Path:
    """A prefix holding nbgrader's own server config (every extension on) and ours."""
    etc = tmp_path / "etc" / "jupyter"
    (etc / "jupyter_server_config.d").mkdir(parents=True, exist_ok=True)
    shutil.copy(NBGRADER_SERVER_CONFIG, etc / "jupyter_server_config.d")
    student_env.install_config(tmp_path, exchange=exchange)
    return etc


def _effective(etc: Path) -> tuple[dict[str, bool], set[str]]:
    """What Jupyter reads there, with its own readers: server extensions on or off, and the
    lab plugins disabled."""
    server = ExtensionConfigManager(read_config_path=[str(etc)]).get_jpserver_extensions()
    page = ConfigManager(read_config_path=[str(etc / "labconfig")]).get("page_config")
    return server, {k for k, v in page.get("disabledExtensions", {}).items() if v}


def test_config_turns_instructor_tools_off_beside_nbgraders_own(tmp_path: Path) -> None:
    assert json.loads(NBGRADER_SERVER_CONFIG.read_text())["ServerApp"]["jpserver_extensions"][
        "nbgrader.server_extensions.formgrader"] is True
    server, disabled = _effective(_installed_config(tmp_path, exchange=False))
    prefix = "nbgrader.server_extensions."
    assert {k.removeprefix(prefix): v for k, v in server.items() if k.startswith(prefix)} == {
        "formgrader": False, "course_list": False, "assignment_list": False,
        "validate_assignment": True}
    assert disabled == {f"@jupyter/nbgrader:{p}" for p in (
        "formgrader", "create-assignment", "course-list", "assignment-list", "menu")}

    # A hub with an exchange: the same prefix reinstalled keeps the assignment list on.
    server, disabled = _effective(_installed_config(tmp_path, exchange=True))
    assert server[f"{prefix}assignment_list"] is True and server[f"{prefix}formgrader"] is False
    assert "@jupyter/nbgrader:assignment-list" not in disabled
    assert "@jupyter/nbgrader:menu" not in disabled
    assert "@jupyter/nbgrader:formgrader" in disabled


def test_config_names_nbgraders_real_plugins_and_extensions() -> None:
    """A misspelt id would disable nothing, silently: each one must be nbgrader's."""
    bundle = "".join(p.read_text() for p in (NBGRADER_LAB / "static").glob("*.js"))
    for path in (student_env.CONFIG / "labconfig").rglob("*.json"):
        for plugin in json.loads(path.read_text())["disabledExtensions"]:
            assert f'"{plugin}"' in bundle, f"{path.name}: no lab plugin {plugin}"
    for path in (student_env.CONFIG / "jupyter_server_config.d").rglob("*.json"):
        for module in json.loads(path.read_text())["ServerApp"]["jpserver_extensions"]:
            file = Path(sys.prefix, "lib", "python3.11", "site-packages", *module.split("."))
            assert (file / "__init__.py").is_file(), f"{path.name}: no server extension {module}"


# ---- slow: the wheel, installed where nothing else is

@pytest.fixture(scope="module")
def wheel(student_wheel: Path) -> Path:
    """The session's student wheel (conftest.py), built once for every test that needs it."""
    return student_wheel


@pytest.fixture(scope="module")
def student_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv of the base interpreter holding the wheel, numpy and threadpoolctl only
    (what tinytorch needs to train and to time section 5), at the student stack's pins."""
    venv = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([student_env.base_python(), "-m", "venv", "--without-pip", str(venv)],
                   check=True)
    pins = [s for s in student_env.requirements()
            if Requirement(s).name in ("numpy", "threadpoolctl")]
    assert len(pins) == 2, pins
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "--quiet", "--no-deps", str(wheel), *pins], check=True)
    return venv


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _python(venv: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in the venv, isolated (-I: no cwd, no PYTHONPATH, no user site)."""
    return subprocess.run([str(venv / "bin" / "python"), "-I", "-c", code], cwd=cwd,
                          capture_output=True, text=True)


def _record_digests(dist_info: Path) -> dict[Path, str]:
    """Files a package installed, by the sha256 its RECORD lists (urlsafe base64)."""
    site = dist_info.parent
    found = {}
    for line in (dist_info / "RECORD").read_text().splitlines():
        name, digest, _ = line.rsplit(",", 2)
        if digest.startswith("sha256="):
            found[(site / name).resolve()] = digest.removeprefix("sha256=")
    return found


@pytest.mark.slow
def test_wheel_is_reproducible_and_holds_the_student_packages(wheel: Path,
                                                               tmp_path: Path) -> None:
    """The same sources give the same bytes: the student venv's stamp relies on it."""
    again = student_env.build_wheel(tmp_path)

    def members(path: Path) -> set[tuple[str, tuple[int, ...], int]]:
        with zipfile.ZipFile(path) as archive:
            return {(i.filename, i.date_time, i.CRC) for i in archive.infolist()}

    differ = sorted({m[0] for m in members(wheel) ^ members(again)})
    assert not differ, f"two builds of the same sources differ in {differ} (dates or contents)"
    assert _digest(again) == _digest(wheel)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        training = archive.read("tinytorch/core/training.py").decode()
    assert {n.split("/")[0] for n in names} == {"tinytorch", "checks", "tinytorch_student-"
                                                f"{student_env.project()['project']['version']}"
                                                ".dist-info"}
    assert "tinytorch/datasets/digits.csv.gz" in names
    assert training.count("raise NotImplementedError()") == 8


@pytest.mark.slow
def test_no_solution_anywhere_in_the_student_venv(student_venv: Path) -> None:
    """Every text file of the venv is scanned. numpy's own files, unchanged from its wheel
    (their digest is the one its RECORD lists), may share a generic line with the reference
    (``if isinstance(value, np.ndarray):``); nothing else may."""
    secrets = release.secrets()
    assert len(secrets) > 50
    site = next((student_venv / "lib").glob("python3.*/site-packages"))
    assert (site / "tinytorch" / "core" / "training.py").is_file()
    numpy_files = _record_digests(next(site.glob("numpy-*.dist-info")))
    leaks = []
    for leak in scan(student_venv, secrets, suffixes=VENV_TEXT):
        digest = base64.urlsafe_b64encode(hashlib.sha256(leak.path.read_bytes()).digest())
        if numpy_files.get(leak.path.resolve()) != digest.rstrip(b"=").decode():
            leaks.append(leak)
    assert leaks == [], "\n".join(str(leak) for leak in leaks)


@pytest.mark.slow
def test_student_venv_imports_the_stubs_and_checks_not_course(student_venv: Path,
                                                              tmp_path: Path) -> None:
    code = """
import importlib.util, json, sys
import checks
import tinytorch.core.training as training
from tinytorch.core.tensor import Tensor
from tinytorch.datasets import load_digits
from tinytorch.viz.timing import time_runs
out = {"training": training.__file__, "checks": len(checks.CHECKS),
       "course": importlib.util.find_spec("course") is not None,
       "digits": len(load_digits()[0]), "stubs": [],
       "threads": time_runs({"a": lambda: lambda: None}, repeats=1, warmup=0)["a"].threads}
for name, call in [
    ("clip_grad_norm", lambda: training.clip_grad_norm([Tensor([1.0])], 1.0)),
    ("CosineSchedule.get_lr", lambda: training.CosineSchedule(0.1, 0.01, 10).get_lr(0)),
]:
    try:
        call()
    except NotImplementedError:
        out["stubs"].append(name)
print(json.dumps(out))
"""
    result = _python(student_venv, code, tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert Path(out["training"]).is_relative_to(student_venv), out["training"]
    assert out["stubs"] == ["clip_grad_norm", "CosineSchedule.get_lr"]
    assert out["checks"] > 20 and out["digits"] > 1000
    assert out["threads"] == 1  # section 5's times pin numpy's BLAS to one thread there too
    assert out["course"] is False, "the instructor's `course` is importable in the student venv"


def _members(wheel: Path) -> dict[str, bytes]:
    """The wheel's files besides its metadata (which names the setuptools that built it)."""
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()
                if ".dist-info/" not in name}


#: What a copy of the repository tree leaves out: venvs, git, generated and course folders.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", ".venv-student", "work", "dist", "build",
                                    "__pycache__", "*.egg-info", ".*_cache", ".hypothesis",
                                    "release", "submitted", "autograded", "feedback",
                                    "gradebook.db", "grades.csv", "results")


@pytest.mark.slow
def test_the_wheel_builds_with_the_setuptools_a_plain_venv_has(wheel: Path,
                                                               tmp_path: Path) -> None:
    """`python -m course.student.environment wheel` (what make student-wheel runs), by a plain
    venv's Python with its own old pip, in a copy of the repository tree: that venv's setuptools
    65.5 (what Python 3.11's venv ships) and then 76 (which the old `setuptools>=68` allowed)
    cannot read `license = "MIT"`; the build must not use them, and gives the files the
    instructor's environment builds (checked for solutions by the build, as always)."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=NOT_COPIED, symlinks=True)
    venv = tmp_path / "plain"
    subprocess.run([student_env.base_python(), "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pins = _pyproject_pins()
    # what course.student.environment imports, at the instructor's versions
    needs = [f"nbformat{pins['nbformat']}", f"numpy{pins['numpy']}",
             f"jupytext{pins['jupytext']}",
             f"packaging=={importlib.metadata.version('packaging')}"]
    for setuptools in ("setuptools<66", "setuptools>=68,<77"):
        installed = subprocess.run([python, "-m", "pip", "install", "--quiet", setuptools,
                                    *needs], capture_output=True, text=True, timeout=600)
        assert installed.returncode == 0, installed.stderr
        needs = []
        found = subprocess.run([python, "-c", "import importlib.metadata as m; "
                                "print(m.version('setuptools'))"],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert int(found.split(".")[0]) < 77, f"setuptools {found} can build it"
        built = subprocess.run([python, "-m", "course.student.environment", "wheel"], cwd=repo,
                               capture_output=True, text=True, timeout=600)
        assert built.returncode == 0, f"setuptools {found}:\n{built.stderr}"
        made = repo / "dist" / student_env.wheel_name()
        assert built.stdout.strip() == str(made)
        members = _members(made)
        assert sorted(members) == sorted(_members(wheel)), found
        assert members["tinytorch/core/training.py"].count(b"raise NotImplementedError()") == 8
        made.unlink()


def test_the_build_uses_this_environments_setuptools_only_if_it_can(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """pyproject's build requirement is the setuptools that reads its `license`; a setuptools
    below it (or none) is not used: pip builds in isolation, installing the required one."""
    requires = student_env.project()["build-system"]["requires"]
    assert student_env.project()["project"]["license"] == "MIT"  # an SPDX string: PEP 639
    setuptools = Requirement(next(r for r in requires if r.startswith("setuptools")))
    assert not setuptools.specifier.contains("76.1.0"), "76 cannot build license = \"MIT\""
    assert setuptools.specifier.contains("77.0.3")

    commands: list[list[str]] = []

    def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(student_env.subprocess, "run", run)
    for version, isolated in (("65.5.0", True), ("76.1.0", True), ("77.0.3", False),
                              ("84.2.1", False), (None, True)):
        def installed(name: str, version: str | None = version) -> str:
            if version is None:
                raise importlib.metadata.PackageNotFoundError(name)
            return version

        monkeypatch.setattr(student_env.importlib.metadata, "version", installed)
        student_env._pip_wheel(tmp_path, tmp_path / "out", requires)
        assert ("--no-build-isolation" not in commands[-1]) is isolated, (version, commands[-1])

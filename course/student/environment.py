"""What a student's environment installs: tinytorch with Module 07 stripped, ``checks``, the
student's Jupyter stack, and nothing of the instructor's.

    python -m course.student.environment wheel         # dist/tinytorch_student-<version>-*.whl
    python -m course.student.environment venv [--venv V]       # V (.venv-student/): wheel, config
    python3 -m course.student.environment stack [--venv V]     # V: the Jupyter stack (any python3)
    python3 -m course.student.environment build-venv [--venv B] [--student V]  # B: V + jupytext
    python -m course.student.environment requirements  # the pinned Jupyter stack, one per line
    python -m course.student.environment config [--prefix P] [--exchange]    # P/etc/jupyter

An install of this repository would put the reference solution (``tinytorch/core/training.py``)
and the instructor's tools (``course``) into every student's kernel. The wheel is built instead
from a staged copy made the way ``course.authoring.release`` stages an assignment (solution regions
replaced by ``raise NotImplementedError()``), by setuptools through ``pip wheel``; the staged
tree and the finished wheel are both scanned for solution lines and hidden tests, and a wheel
holding anything besides ``tinytorch`` and ``checks`` is refused. The build uses this
environment's setuptools only when it satisfies pyproject's build requirements (then no
package index is needed); any other setuptools, or none, and pip builds in an isolated
environment holding the required one, whatever pip and setuptools the user has.

The student's Jupyter stack is pyproject's ``course`` extra (its pins, read from
pyproject.toml, so there is one list of versions) without the instructor's tools:
``requirements()`` (``course.assignment.pins``, which the release's ``requirements.txt`` lists
too). The
configuration in ``binder/jupyter-student/`` turns nbgrader's instructor extensions off
(formgrader, course list, create assignment) and, with no exchange to talk to, the assignment
list and the Nbgrader menu too; the Validate button stays, and its dialog wraps long lines
(``jupyter_server_config.py`` makes the lab load ``custom/custom.css``); the lab's terminals
start in the folder it serves with the environment's commands first on PATH (the same file:
``tinytorch complete 07_training.ipynb`` works in them). It goes into the
environment's ``etc/jupyter`` (sys-prefix level), where its file names sort after
``nbgrader.json`` (which turns every nbgrader extension on) and therefore win. Everything here
writes to ``dist/`` and to the student venv only: the student's working copy ``work/`` is never
touched.

``make lab`` needs nothing of the instructor's environment (``.venv``: tests, PyTorch,
Playwright). Any ``python3`` runs ``stack`` (this module imports only the standard library
until it builds a wheel): it makes the student venv with the Jupyter stack, showing pip's
progress. ``build-venv`` then makes ``.venv-build``, the small environment that releases the
assignment and builds the wheel: a venv that sees the student venv's packages (a ``.pth`` file)
and adds only what those two steps need besides them (``BUILD_TOOLS``: jupytext, which reads
the lesson, and pyproject's build requirement, setuptools), a few megabytes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from course.assignment import packages, paths
from course.assignment.pins import project
from course.assignment.pins import requirement_name as _name
from course.assignment.pins import student_requirements as requirements
from course.assignment.solutions import Leak, scan

DIST = paths.REPO / "dist"
VENV = paths.REPO / ".venv-student"
INSTRUCTOR_VENV = paths.REPO / ".venv"
#: nbgrader and Jupyter configuration files for students, installed into ``etc/jupyter``.
CONFIG = paths.REPO / "binder" / "jupyter-student"
#: Files of CONFIG that are only right without an nbgrader exchange (laptop, Binder).
NO_EXCHANGE = "-no-exchange.json"
#: CONFIG's folder of JupyterLab setting defaults (``overrides.d``: no "Would you like to get
#: notified about official Jupyter news?" prompt, no update check); JupyterLab reads them from
#: its application settings folder, ``share/jupyter/lab/settings``, not from ``etc/jupyter``.
LAB_SETTINGS = "lab-settings"
LAB_SETTINGS_DIR = Path("share") / "jupyter" / "lab" / "settings"
#: CONFIG's files: JSON settings, and ``jupyter_server_config.py`` with the ``custom/custom.css``
#: it makes the lab load (nbgrader's Validate dialog wraps long lines); that file also starts
#: the lab's terminals beside the notebook with the environment's commands on PATH.
CONFIG_SUFFIXES = (".json", ".py", ".css")
NAME = "tinytorch-student"
#: The student's own commands, installed with the wheel (``tinytorch complete NOTEBOOK``).
SCRIPTS = {"tinytorch": "tinytorch.complete:cli"}
#: The stripped Module 07, shipped beside ``training.py`` (``tinytorch.complete.RELEASED``).
RELEASED_MODULE = "training_released.py"
#: What releasing the assignment and building the wheel need besides the student's stack (the
#: ``course`` extra's jupytext, and pyproject's build requirements), in ``BUILD_VENV``.
BUILD_TOOLS = frozenset({"jupytext"})
BUILD_VENV = paths.REPO / ".venv-build"
#: In a venv's site-packages: the build venv sees the student venv's packages through it.
OVERLAY = "_tinytorch_student_stack.pth"
#: The stamp of ``stack`` and of ``build-venv`` (what they installed, so they run once).
STACK_STAMP = ".student-stack.json"
BUILD_STAMP = ".build-env.json"
#: Under ``python -m venv``'s folder: what was installed, so an up-to-date venv is left alone.
STAMP = ".student-env.json"
#: Zip entries get this date (1980-01-01, the earliest a zip holds), so the same sources give
#: the same wheel, byte for byte, and its digest says whether the venv is up to date.
SOURCE_DATE_EPOCH = "315532800"
#: Scanned in the wheel besides the usual text files: METADATA, WHEEL and RECORD have no suffix.
WHEEL_TEXT = (".py", ".ipynb", ".md", ".txt", ".json", ".cfg", ".toml", "")


class LeakError(RuntimeError):
    """A file bound for students holds a solution line, a hidden test or an nbgrader marker."""

    def __init__(self, what: str, leaks: list[Leak] | None = None) -> None:
        self.leaks = leaks or []
        lines = "".join(f"\n  {leak}" for leak in self.leaks)
        super().__init__(f"{what}; it must not reach students{lines}")


def build_requirements(pyproject: dict[str, Any] | None = None) -> list[str]:
    """What the build venv adds to the student's stack: the ``course`` extra's BUILD_TOOLS at
    their pins, and pyproject's build requirements (the wheel then builds without an isolated
    build environment)."""
    pyproject = pyproject or project()
    course = pyproject["project"]["optional-dependencies"]["course"]
    return [*[spec for spec in course if _name(spec) in BUILD_TOOLS],
            *pyproject["build-system"]["requires"]]


def wheel_name(pyproject: dict[str, Any] | None = None) -> str:
    version = (pyproject or project())["project"]["version"]
    return f"{NAME.replace('-', '_')}-{version}-py3-none-any.whl"


def _toml(value: Any) -> str:
    """A TOML value for strings and lists of strings (JSON's escapes are TOML's)."""
    return json.dumps(value)


def staging_pyproject(pyproject: dict[str, Any]) -> str:
    """A pyproject.toml for the staged packages: pyproject's build system, version, Python and
    runtime dependencies, its package data, and only the student's packages."""
    meta = pyproject["project"]
    build = pyproject["build-system"]
    package_data = {package: files for package, files
                    in pyproject["tool"]["setuptools"]["package-data"].items()
                    if package.split(".")[0] in paths.STUDENT_PACKAGES}
    lines = [
        "[build-system]",
        f"requires = {_toml(build['requires'])}",
        f"build-backend = {_toml(build['build-backend'])}",
        "",
        "[project]",
        f"name = {_toml(NAME)}",
        f"version = {_toml(meta['version'])}",
        f"description = {_toml('TinyTorch for students: Module 07 (Training) left to write.')}",
        f"requires-python = {_toml(meta['requires-python'])}",
        f"license = {_toml(meta['license'])}",
        f"dependencies = {_toml(meta['dependencies'])}",
        "",
        "[project.scripts]",
        *(f"{name} = {_toml(entry)}" for name, entry in SCRIPTS.items()),
        "",
        "[tool.setuptools.packages.find]",
        f"include = {_toml([f'{p}*' for p in paths.STUDENT_PACKAGES])}",
        "",
        "[tool.setuptools.package-data]",
        *(f"{_toml(package)} = {_toml(files)}" for package, files in package_data.items()),
    ]
    return "\n".join(lines) + "\n"


def stage(folder: Path, pyproject: dict[str, Any]) -> None:
    """Fill ``folder`` with what the wheel is built from: the student's packages as
    ``course.authoring.release`` stages them (Module 07 stripped) and a pyproject.toml for them."""

    packages.stage(folder)
    # Module 07 as released, kept beside the training.py that `tinytorch complete` overwrites:
    # the student's answer cells are always written into this one (tinytorch/complete/).
    module = folder / paths.REFERENCE.relative_to(paths.REPO)
    shutil.copyfile(module, module.with_name(RELEASED_MODULE))
    (folder / "pyproject.toml").write_text(staging_pyproject(pyproject))


def unmet_build_requirements(requires: list[str]) -> list[str]:
    """The build requirements (pyproject's ``build-system.requires``) this environment does
    not satisfy, each with what is installed: ``setuptools>=77.0.3 (installed: 65.5.0)``."""
    from packaging.requirements import Requirement

    unmet = []
    for spec in requires:
        requirement = Requirement(spec)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            unmet.append(f"{spec} (not installed)")
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{spec} (installed: {version})")
    return unmet


def _pip_wheel(source: Path, out: Path, requires: list[str]) -> None:
    """Build with setuptools through this Python's pip. When this environment satisfies the
    build requirements ``requires`` (the instructor's venv), the build uses them and needs no
    package index; otherwise (an older setuptools, or none) pip builds in an isolated
    environment into which it installs ``requires`` from the index, as for any sdist."""
    unmet = unmet_build_requirements(requires)
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
               str(out), str(source)]
    if not unmet:
        command.insert(4, "--no-build-isolation")
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=source)
    if result.returncode != 0:
        how = (f"\nThis environment does not have what the build needs ({', '.join(unmet)}), "
               f"so pip fetched {', '.join(requires)} from the package index into an isolated "
               "build: without an index, install them here first "
               f"(`{sys.executable} -m pip install {' '.join(map(shlex.quote, requires))}`)."
               if unmet else "")
        raise RuntimeError(f"`pip wheel {source}` failed (exit {result.returncode}):\n"
                           f"{result.stdout}{result.stderr}{how}")


def check_wheel(wheel: Path, secrets: set[str]) -> None:
    """Raise unless ``wheel`` holds only the student's packages and its metadata, and no
    solution line, hidden test or nbgrader marker in any text file."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top = {name.split("/", 1)[0] for name in names}
        name, version = wheel.name.split("-")[:2]
        extra = sorted(top - {*paths.STUDENT_PACKAGES, f"{name}-{version}.dist-info"})
        if extra:
            raise LeakError(f"{wheel} holds {', '.join(extra)} besides "
                            f"{', '.join(paths.STUDENT_PACKAGES)} and its metadata")
        with tempfile.TemporaryDirectory(prefix="student-wheel-") as unpacked:
            archive.extractall(unpacked)
            leaks = scan(Path(unpacked), secrets, suffixes=WHEEL_TEXT)
            if leaks:
                raise LeakError(f"{wheel} holds solutions", [
                    Leak(wheel / leak.path.relative_to(unpacked), leak.line, leak.what, leak.text)
                    for leak in leaks
                ])


def build_wheel(dist: Path = DIST) -> Path:
    """Build the student wheel into ``dist`` (replacing an older one of the same name) and
    return its path; raise LeakError, naming the file, if a solution would be in it."""
    from course.authoring import release

    pyproject = project()
    secrets = release.secrets()
    with tempfile.TemporaryDirectory(prefix="student-wheel-") as temp:
        staged, out = Path(temp) / "src", Path(temp) / "out"
        stage(staged, pyproject)
        leaks = scan(staged, secrets)
        if leaks:
            raise LeakError(f"the staged copy {staged} holds solutions", leaks)
        _pip_wheel(staged, out, pyproject["build-system"]["requires"])
        built = out / wheel_name(pyproject)
        if not built.is_file():
            found = ", ".join(p.name for p in out.iterdir()) or "nothing"
            raise RuntimeError(f"expected pip to build {built.name}; it built {found}")
        check_wheel(built, secrets)
        dist.mkdir(parents=True, exist_ok=True)
        target = dist / built.name
        partial = dist / f".{built.name}.partial"
        shutil.copyfile(built, partial)
        os.replace(partial, target)
    return target


def base_python() -> str:
    """The interpreter this one's venv was made from: the student venv is made from it, never
    nested in the instructor's."""
    base = getattr(sys, "_base_executable", None)
    if base and Path(base).is_file():
        return base
    return str(Path(sys.base_prefix) / "bin" / "python3")


def config_files() -> list[Path]:
    """The files of CONFIG that install_config installs."""
    return sorted(path for path in CONFIG.rglob("*")
                  if path.is_file() and path.suffix in CONFIG_SUFFIXES)


def install_config(prefix: Path, *, exchange: bool = False) -> list[Path]:
    """Copy the students' Jupyter configuration into ``prefix``/etc/jupyter (its lab setting
    defaults into ``prefix``/share/jupyter/lab/settings); with ``exchange`` (a hub with an
    nbgrader exchange) leave the assignment list on."""
    if not prefix.is_dir():
        raise FileNotFoundError(f"prefix {prefix} is not a folder (expected an environment's "
                                "sys.prefix)")
    installed = []
    for source in config_files():
        relative = source.relative_to(CONFIG)
        if relative.parts[0] == LAB_SETTINGS:
            target = prefix / LAB_SETTINGS_DIR / relative.relative_to(LAB_SETTINGS)
        else:
            target = prefix / "etc" / "jupyter" / relative
        if exchange and source.name.endswith(NO_EXCHANGE):
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        installed.append(target)
    return installed


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _config_digest() -> str:
    files = config_files()
    return hashlib.sha256(b"".join(
        f.relative_to(CONFIG).as_posix().encode() + b"\0" + f.read_bytes() for f in files
    )).hexdigest()


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed (exit {result.returncode}):\n"
                           f"{result.stdout}{result.stderr}")


def ensure_venv(venv: Path = VENV, wheel: Path | None = None, *,
                base: str | None = None) -> bool:
    """Make ``venv`` the student's environment: the wheel (built now unless given), the
    Jupyter stack at pyproject's pins and the student configuration. A new venv is made from
    ``base`` (default: ``base_python()``; a hub's accounts need one they can all run). Return
    False when it already held exactly these (nothing is reinstalled), True when it installed
    them."""
    venv = venv.resolve()
    work = (paths.REPO / "work").resolve()
    if venv == work or work in venv.parents:
        raise ValueError(f"venv {venv} is inside the student's working copy {work}")
    wheel = (wheel or build_wheel()).resolve()
    wanted = {"wheel": wheel.name, "wheel_sha256": _digest(wheel),
              "requirements": requirements(), "config_sha256": _config_digest()}
    stamp = venv / STAMP
    python = venv / "bin" / "python"
    before = json.loads(stamp.read_text()) if stamp.is_file() else {}
    if python.is_file() and {k: before.get(k) for k in wanted} == wanted:
        return False
    # The student's own Module 07 (written there by `make complete`), kept across reinstalls.
    module = installed_module(venv)
    theirs = module.read_bytes() if module is not None else None
    if theirs is not None and hashlib.sha256(theirs).hexdigest() == before.get("module_sha256"):
        theirs = None  # as installed: nothing of the student's to keep
    print(f"installing the student's environment into {venv}: the student wheel, the Jupyter "
          "stack (a minute, unless `stack` installed it) and the configuration", file=sys.stderr)
    if not python.is_file():
        _run([base or base_python(), "-m", "venv", str(venv)])
    stamp.unlink(missing_ok=True)  # a failed install below is retried on the next run
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    _run([*pip, str(wheel), *wanted["requirements"]])
    # Same version, new contents (training.py or checks changed): replace the package.
    _run([*pip, "--force-reinstall", "--no-deps", str(wheel)])
    install_config(venv)
    module = installed_module(venv)
    if module is None:
        raise RuntimeError(f"the student wheel installed no tinytorch/core/training.py in {venv}")
    installed = module.read_bytes()
    if theirs is not None and theirs != installed:
        kept = module.with_name(f"training.release-{hashlib.sha256(installed).hexdigest()[:8]}.py")
        kept.write_bytes(installed)
        module.write_bytes(theirs)
        print(f"your own Module 07 is kept in {module}; the new release's version is beside "
              f"it: {kept.name}", file=sys.stderr)
    stamp.write_text(json.dumps({**wanted, "module_sha256": hashlib.sha256(installed).hexdigest()},
                                indent=1) + "\n")
    return True


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise RuntimeError(f"{venv} has no lib/python*/site-packages: not a venv?")
    return found[0]


def _shown(command: list[str], what: str) -> None:
    """Run ``command`` with its output on the terminal (pip's progress); raise if it fails."""
    result = subprocess.run(command, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"{what}: `{' '.join(command)}` failed (exit {result.returncode}); "
                           "its output is above")


def _up_to_date(stamp: Path, wanted: dict[str, Any]) -> bool:
    try:
        return json.loads(stamp.read_text()) == wanted
    except (OSError, ValueError):
        return False


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ensure_stack(venv: Path = VENV) -> bool:
    """Make ``venv`` with the student's Jupyter stack at pyproject's pins (not yet the wheel:
    ``ensure_venv`` adds it), showing pip's progress. Needs only the standard library, so any
    python3 makes the student's environment without the instructor's. Return False when the
    stack was already installed (nothing runs)."""
    venv = venv.absolute()
    python = venv / "bin" / "python"
    wanted = {"requirements": requirements()}
    if python.is_file() and _up_to_date(venv / STACK_STAMP, wanted):
        return False
    _say(f"the student's Jupyter stack into {_shown_path(venv)}: {len(wanted['requirements'])} "
         "pinned packages and what they need (about 500 MB; 30 to 60 s the first time)")
    if not python.is_file():
        _shown([base_python(), "-m", "venv", str(venv)], "making the student's venv")
    (venv / STACK_STAMP).unlink(missing_ok=True)
    _shown([str(python), "-m", "pip", "install", "--disable-pip-version-check",
            *wanted["requirements"]], "installing the student's Jupyter stack")
    (venv / STACK_STAMP).write_text(json.dumps(wanted, indent=1) + "\n")
    return True


def ensure_build_venv(venv: Path = BUILD_VENV, student: Path = VENV) -> bool:
    """Make ``venv``, the environment that releases the assignment and builds the student
    wheel for ``make lab``: it sees the packages of the student venv ``student`` (made by
    ``ensure_stack``) and adds BUILD_TOOLS and the wheel's build requirements, so nothing of
    the instructor's environment is needed. Return False when it was up to date."""
    venv, student = venv.absolute(), student.absolute()
    if not (student / "bin" / "python").is_file():
        raise FileNotFoundError(f"no student venv at {student}: run `python3 -m "
                                f"course.student.environment stack --venv {student}` first")
    python = venv / "bin" / "python"
    overlay = str(site_packages(student))
    wanted = {"student": overlay, "requirements": build_requirements()}
    if python.is_file() and _up_to_date(venv / BUILD_STAMP, wanted):
        return False
    _say(f"the release's tools into {_shown_path(venv)}: {', '.join(wanted['requirements'])} "
         f"beside the student's stack (a few seconds)")
    if not python.is_file():
        _shown([base_python(), "-m", "venv", "--without-pip", str(venv)], "making the build venv")
    (venv / BUILD_STAMP).unlink(missing_ok=True)
    if site_packages(venv).parent.name != site_packages(student).parent.name:
        raise RuntimeError(f"{venv} ({site_packages(venv).parent.name}) and {student} "
                           f"({site_packages(student).parent.name}) have different Pythons: "
                           f"remove both and run `make lab` again")
    (site_packages(venv) / OVERLAY).write_text(overlay + "\n")
    # pip itself comes from the student venv, through the overlay
    _shown([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
            *wanted["requirements"]], "installing the release's tools")
    (venv / BUILD_STAMP).write_text(json.dumps(wanted, indent=1) + "\n")
    return True


def _shown_path(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    path = path.absolute()
    return str(path.relative_to(paths.REPO)) if path.is_relative_to(paths.REPO) else str(path)


def installed_module(venv: Path) -> Path | None:
    """The ``tinytorch/core/training.py`` installed in ``venv``, if there is one."""
    found = sorted(venv.glob("lib/python*/site-packages/tinytorch/core/training.py"))
    return found[0] if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.student.environment",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("wheel", help="build the student wheel into dist/ and print its path")
    venv = commands.add_parser("venv", help=f"create or update {VENV.name}/ (skipped when up "
                               "to date)")
    venv.add_argument("--venv", type=Path, default=VENV,
                      help=f"the environment's folder (default: {VENV.name}/)")
    stack = commands.add_parser("stack", help=f"make {VENV.name}/ with the Jupyter stack only "
                                "(any python3; skipped when up to date)")
    stack.add_argument("--venv", type=Path, default=VENV,
                       help=f"the environment's folder (default: {VENV.name}/)")
    build_venv = commands.add_parser("build-venv", help=f"make {BUILD_VENV.name}/ (releases "
                                     "and builds the wheel for make lab) over the student venv")
    build_venv.add_argument("--venv", type=Path, default=BUILD_VENV,
                            help=f"the build environment's folder (default: {BUILD_VENV.name}/)")
    build_venv.add_argument("--student", type=Path, default=VENV,
                            help=f"the student venv it adds to (default: {VENV.name}/)")
    commands.add_parser("requirements", help="print the student's pinned Jupyter stack")
    config = commands.add_parser("config", help="install binder/jupyter-student/ into "
                                 "PREFIX/etc/jupyter")
    config.add_argument("--prefix", type=Path, default=Path(sys.prefix),
                        help="the environment's prefix (default: this Python's sys.prefix)")
    config.add_argument("--exchange", action="store_true",
                        help="a hub with an nbgrader exchange: keep the assignment list on")
    args = parser.parse_args(argv)
    try:
        if args.command == "wheel":
            print(build_wheel())
        elif args.command == "venv":
            changed = ensure_venv(args.venv)
            state = "installed" if changed else "up to date, nothing installed"
            shown = args.venv.resolve()
            if shown.is_relative_to(paths.REPO):
                shown = shown.relative_to(paths.REPO)
            print(f"{shown}: {state}", file=sys.stderr)
        elif args.command == "stack":
            if not ensure_stack(args.venv):
                _say(f"{_shown_path(args.venv)}: the Jupyter stack is up to date")
        elif args.command == "build-venv":
            if not ensure_build_venv(args.venv, args.student):
                _say(f"{_shown_path(args.venv)}: up to date")
        elif args.command == "requirements":
            print("\n".join(requirements()))
        else:
            if args.prefix.resolve() == INSTRUCTOR_VENV.resolve():
                raise ValueError(f"--prefix {args.prefix} is the instructor's venv: the students' "
                                 "configuration would turn its formgrader off")
            for path in install_config(args.prefix, exchange=args.exchange):
                print(path)
    except LeakError as error:
        print(error, file=sys.stderr)
        return 1
    except (RuntimeError, FileNotFoundError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

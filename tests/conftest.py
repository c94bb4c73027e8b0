from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from course.authoring import release
from course.student import environment as student_env

if TYPE_CHECKING:
    from playwright.sync_api import Page

TESTS = Path(__file__).resolve().parent
# Tests that make real Unix accounts (the hub's, and the fetch test's): one worker, in file
# order, so that no two of them add or remove accounts at once.
ACCOUNTS = "unix-accounts"
_MAKE_ACCOUNTS = (TESTS / "hub", TESTS / "course" / "test_fetch_feedback_owner.py")
# The longest groups, handed to the workers first so that none of them is the last to start.
_FIRST = (ACCOUNTS, "course/test_grading.py", "grading/test_cheats.py",
          "grading/test_cache_exact.py", "grading/test_cluster.py")


def _group(path: Path) -> str:
    if any(path == place or place in path.parents for place in _MAKE_ACCOUNTS):
        return ACCOUNTS
    return path.relative_to(TESTS).as_posix()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (make test: ``-n auto --dist loadgroup``) a test module is one unit
    of work, so its module fixtures (a graded class, a cluster) are made once, on one worker,
    and its tests run in file order; the tests that make Unix accounts are one unit. The
    longest units are handed out first. Without xdist, nothing changes."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group(item.path)))
    if getattr(config.option, "dist", "no") != "no":
        rank = {name: place for place, name in enumerate(_FIRST)}
        items.sort(key=lambda item: rank.get(_group(item.path), len(rank)))  # stable


@pytest.fixture(scope="session")
def course_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away nbgrader course after `generate_assignment`: source/, release/ and a
    gradebook that knows the graded cells."""
    root = tmp_path_factory.mktemp("course")
    release.make_course(root)
    return root


@pytest.fixture(scope="session")
def copy_course(course_dir: Path) -> Callable[[Path], None]:
    """``copy_course(folder)`` makes ``folder`` (new or empty) a course like ``course_dir``, for
    tests that write into theirs (submissions, grades): a copy, not a second
    ``generate_assignment`` (about 7 s each)."""
    def copy(folder: Path) -> None:
        shutil.copytree(course_dir, folder, symlinks=True, dirs_exist_ok=True)

    return copy


# The student's side, built once per test session and shared by every test that needs it
# (tests/course: make complete, the student's own command; tests/hub: the students' servers):
# the student wheel, and the student's environment made from it the way `make lab` makes
# .venv-student/ (course.student.environment.ensure_venv: the wheel, the Jupyter stack at
# pyproject's pins, the students' configuration; about 40 s, most of it pip).
def _once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], Path]) -> Path:
    """``make(folder)``, once per test run: under pytest-xdist the first worker that needs it
    makes it, holding a lock in the folder the run's workers share, and the others wait for it
    and use the same one."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return make(factory.mktemp(name))
    shared = factory.getbasetemp().parent
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        made = shared / f"{name}.json"
        if made.is_file():
            return Path(json.loads(made.read_text()))
        path = make(factory.mktemp(name))
        made.write_text(json.dumps(str(path)))
        return path


@pytest.fixture(scope="session")
def student_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _once(tmp_path_factory, "dist", student_env.build_wheel)


@pytest.fixture(scope="session")
def lab_venv(student_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A student environment exactly as ``make lab`` installs it, in a temporary folder. Tests
    may write a student's Module 07 into its tinytorch, as ``make complete`` does: those are
    in one module (``tests/course/test_complete.py``), so they write one at a time (and
    atomically), and its other users (nbgrader's fetch, the build venv made over it) never
    import its Module 07."""
    def make(folder: Path) -> Path:
        venv = folder / ".venv-student"
        assert student_env.ensure_venv(venv, student_wheel) is True
        return venv

    return _once(tmp_path_factory, "lab", make)


# A real browser for the browser tests (tests/browser) and the hub's course cycle (tests/hub):
# Debian's chromium driven by Playwright, which cannot download its own browsers here.
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    """A page of Debian's chromium, headless, 1400 x 1000."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        pytest.fail(
            f"expected Playwright to be importable ({error}); install the dev extra: "
            f"pip install -e '.[dev]' (it pins playwright==1.65.2)"
        )
    if not CHROMIUM.is_file():
        pytest.fail(
            f"expected Debian's chromium at {CHROMIUM}, it is missing: apt-get install chromium "
            "(`playwright install` cannot download browsers here, and CI installs chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            new_page = context.new_page()
            new_page.set_default_timeout(30_000)
            yield new_page
            context.close()
        finally:
            browser.close()


@pytest.fixture(scope="module")
def screenshot(page: Page) -> Callable[..., Path]:
    """``screenshot(name, **playwright_options)`` saves the page to build/screenshots/<name> at
    the repository root (ignored by git through build/) and prints the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(name: str, **options: Any) -> Path:
        path = SCREENSHOTS / name
        page.screenshot(path=str(path), **options)
        print(f"screenshot: {path}")
        return path

    return save

"""``nbgrader collect`` with the course's ``SafeCollect`` (``course.classroom.exchange``): what
students leave in the exchange's inbound, as Unix accounts, reaches the instructor's course only
as the assignment's notebook and timestamp, regular files of the account that owns the
submission. Each attack sits beside honest classmates, who keep their work; nbgrader's own
collect, run on the same inbound, is shown to fall for it (so each assertion can fail).

Real accounts (``useradd``) own the submissions, so it runs as root, as ``make hub`` does."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from course.classroom import hub

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates Unix accounts: run as root")

ASSIGNMENT = "07_training"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
COURSE_ID = "tt-collect"
STUDENTS = ("ttc-alice", "ttc-bob", "ttc-carol", "ttc-mallory")
SECRET = "the instructor's solutions"


@pytest.fixture(scope="module")
def accounts() -> Iterator[dict[str, int]]:
    made = {}
    try:
        for name in STUDENTS:
            subprocess.run(["userdel", name], capture_output=True)
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            name], check=True, capture_output=True)
            made[name] = pwd.getpwnam(name).pw_uid
        yield made
    finally:
        for name in made:
            subprocess.run(["userdel", name], capture_output=True)


def _stamp(minutes: int) -> str:
    when = datetime(2026, 12, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=minutes)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f %Z")


def _submission(inbound: Path, named: str, owner: int, minutes: int,
                notebook: str | None = "honest") -> Path:
    """A submission folder as ``nbgrader submit`` leaves it, owned by ``owner``."""
    folder = inbound / f"{named}+{ASSIGNMENT}+{_stamp(minutes)}+abc{minutes}"
    folder.mkdir()
    (folder / "timestamp.txt").write_text(_stamp(minutes))
    (folder / "submission_secret.txt").write_text(f"secret-{named}-{minutes}")
    if notebook is not None:
        (folder / NOTEBOOK).write_text(f'{{"by": "{named}", "kind": "{notebook}"}}')
    for path in [folder, *folder.iterdir()]:
        os.chown(path, owner, owner, follow_symlinks=False)
    return folder


def _course(root: Path, exchange: Path, collect: str | None) -> Path:
    course = root / "course"
    course.mkdir()
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    (course / "source" / ASSIGNMENT / NOTEBOOK).write_text(f'{{"secret": "{SECRET}"}}')
    config = [f"c.CourseDirectory.course_id = {COURSE_ID!r}",
              f"c.Exchange.root = {str(exchange)!r}"]
    if collect:
        config.append(f"c.ExchangeFactory.collect = {collect!r}")
    (course / "nbgrader_config.py").write_text("\n".join(config) + "\n")
    return course


def _collect(course: Path, *more: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # alembic
    return subprocess.run([sys.executable, "-m", "nbgrader", "collect", ASSIGNMENT, *more],
                          cwd=course, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": path})


def _collected(course: Path) -> dict[str, str]:
    found = {}
    for folder in sorted((course / "submitted").glob(f"*/{ASSIGNMENT}")):
        notebook = folder / NOTEBOOK
        found[folder.parent.name] = notebook.read_text() if notebook.is_file() else "(none)"
    return found


@pytest.fixture
def inbound_under_attack(accounts: dict[str, int], tmp_path: Path) -> tuple[Path, Path]:
    """Honest alice, bob and carol; mallory submits in bob's name later, links her notebook
    to the instructor's source, and fills her folder with a FIFO, a link to the gradebook and
    a 2 GiB sparse file; a folder name nbgrader cannot parse sits in the inbound too."""
    exchange = tmp_path / "exchange"
    inbound = exchange / COURSE_ID / "inbound"
    inbound.mkdir(parents=True)
    alice, bob, carol, mallory = (accounts[n] for n in STUDENTS)
    _submission(inbound, "ttc-alice", alice, 1)
    _submission(inbound, "ttc-bob", bob, 2)
    _submission(inbound, "ttc-carol", carol, 3)
    _submission(inbound, "ttc-bob", mallory, 30, notebook="mallory's, in bob's name")
    own = _submission(inbound, "ttc-mallory", mallory, 31, notebook=None)
    (own / NOTEBOOK).symlink_to(tmp_path / "course" / "source" / ASSIGNMENT / NOTEBOOK)
    os.mkfifo(own / "pipe")
    (own / "gradebook.db").symlink_to(tmp_path / "course" / "gradebook.db")
    with open(own / "huge.bin", "wb") as sparse:
        sparse.truncate(2 * 2**30)
    for path in [own, *own.iterdir()]:
        os.chown(path, mallory, mallory, follow_symlinks=False)
    junk = inbound / f"ttc-mallory+{ASSIGNMENT}+not a time"
    junk.mkdir()
    os.chown(junk, mallory, mallory)
    return tmp_path, exchange


def test_collect_takes_each_students_own_notebook_and_names_every_refusal(
        inbound_under_attack: tuple[Path, Path]) -> None:
    root, exchange = inbound_under_attack
    course = _course(root, exchange, hub.COLLECT)
    done = _collect(course)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    taken = _collected(course)
    assert taken == {
        "ttc-alice": '{"by": "ttc-alice", "kind": "honest"}',
        "ttc-bob": '{"by": "ttc-bob", "kind": "honest"}',
        "ttc-carol": '{"by": "ttc-carol", "kind": "honest"}'}, said
    for folder in (course / "submitted").iterdir():
        assert sorted(p.name for p in (folder / ASSIGNMENT).iterdir()) == sorted(
            [NOTEBOOK, "timestamp.txt", "submission_secret.txt"])
    assert SECRET not in "".join(p.read_text() for p in (course / "submitted").rglob("*.ipynb"))
    assert "owned by ttc-mallory, not by ttc-bob" in said, said
    assert "refused: ttc-mallory" in said and "is not a regular file" in said, said
    assert "not a time" in said, said


def test_a_refused_resubmission_keeps_the_earlier_one(
        inbound_under_attack: tuple[Path, Path], accounts: dict[str, int]) -> None:
    root, exchange = inbound_under_attack
    course = _course(root, exchange, hub.COLLECT)
    assert _collect(course).returncode == 0
    inbound = exchange / COURSE_ID / "inbound"
    later = _submission(inbound, "ttc-alice", accounts["ttc-alice"], 60, notebook=None)
    os.mkfifo(later / NOTEBOOK)
    os.chown(later / NOTEBOOK, accounts["ttc-alice"], accounts["ttc-alice"])
    done = _collect(course, "--update")
    assert done.returncode == 0, done.stderr
    assert _collected(course)["ttc-alice"] == '{"by": "ttc-alice", "kind": "honest"}'
    assert "an earlier submission, if any, is kept" in done.stdout + done.stderr


def test_nbgrader_s_own_collect_falls_for_the_same_inbound(
        inbound_under_attack: tuple[Path, Path]) -> None:
    """The threat is real: without ``SafeCollect``, the folder name it cannot parse stops the
    whole collect; without it, mallory's folder replaces bob's work and her link brings the
    instructor's source notebook into the course as hers."""
    root, exchange = inbound_under_attack
    course = _course(root, exchange, None)
    stopped = _collect(course)
    assert stopped.returncode != 0 and not _collected(course)
    shutil.rmtree(exchange / COURSE_ID / "inbound" / f"ttc-mallory+{ASSIGNMENT}+not a time")
    for huge in (exchange / COURSE_ID / "inbound").glob("ttc-mallory+*/huge.bin"):
        huge.unlink()  # nbgrader's own size check refuses the folder as a whole otherwise
    for pipe in (exchange / COURSE_ID / "inbound").glob("ttc-mallory+*/pipe"):
        pipe.unlink()  # copying a FIFO would wait for a writer
    done = _collect(course)
    taken = _collected(course)
    assert taken["ttc-bob"] == '{"by": "ttc-bob", "kind": "mallory\'s, in bob\'s name"}', (
        done.stderr)
    assert SECRET in taken["ttc-mallory"]


def test_the_courses_exchange_folders_are_the_instructors_before_any_student_logs_in(
        accounts: dict[str, int]) -> None:
    """``make hub`` makes the course's folders in the exchange, owned by the instructor, before
    a student can: a squatter's folder left from an earlier run is gone, and a student can
    neither make nor move the course's folder."""
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="tt-exchange-", dir="/tmp"))
    try:
        top.chmod(0o755)
        exchange = top / "exchange"
        squatted = exchange / hub.COURSE_ID / "outbound" / ASSIGNMENT
        squatted.mkdir(parents=True)
        for path in (exchange / hub.COURSE_ID, squatted.parent, squatted):
            os.chown(path, accounts["ttc-mallory"], accounts["ttc-mallory"])
        hub.prepare_exchange(exchange, "ttc-alice")
        assert not squatted.exists()
        for name, mode in hub.COURSE_FOLDERS.items():
            info = (exchange / hub.COURSE_ID / name).stat()
            assert (info.st_uid, info.st_mode & 0o7777) == (accounts["ttc-alice"], mode), name
        assert exchange.stat().st_mode & 0o7777 == 0o1777
        for command in (["mkdir", str(exchange / hub.COURSE_ID)],
                        ["mv", str(exchange / hub.COURSE_ID), str(exchange / "moved")],
                        ["mkdir", str(exchange / hub.COURSE_ID / "outbound" / ASSIGNMENT)]):
            done = subprocess.run(["runuser", "-u", "ttc-mallory", "--", *command],
                                  capture_output=True, text=True)
            assert done.returncode != 0, command
        own = subprocess.run(["runuser", "-u", "ttc-mallory", "--", "mkdir",
                              str(exchange / "another-course")], capture_output=True, text=True)
        assert own.returncode == 0, own.stderr  # she can act there: the refusals are real
        assert (exchange / hub.COURSE_ID).stat().st_uid == accounts["ttc-alice"]
    finally:
        shutil.rmtree(top)


def test_a_checkout_in_a_private_folder_keeps_the_hub_outside_it(tmp_path: Path) -> None:
    """What the accounts run must be reachable: for a checkout under a folder of mode 700 the
    hub's environments, exchange and configuration go to a folder of their own, root's."""
    private = tmp_path / "private"
    (private / "repo").mkdir(parents=True)
    private.chmod(0o700)
    shared = Path("/tmp") / f"tt-shared-{os.getpid()}"
    (shared / "repo").mkdir(parents=True, exist_ok=True)
    try:
        shared.chmod(0o755)
        (shared / "repo").chmod(0o755)
        assert hub.hub_root(shared / "repo") == shared / "repo" / "build" / "hub"
        kept = hub.hub_root(private / "repo")
        assert kept.parent == hub.PRIVATE_CHECKOUT_ROOT and not kept.is_relative_to(private)
        assert kept != hub.hub_root(shared / "repo")
    finally:
        shutil.rmtree(shared)

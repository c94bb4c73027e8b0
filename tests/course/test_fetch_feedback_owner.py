"""``nbgrader fetch_feedback`` with the student wheel's ``SafeFetchFeedback``
(``tinytorch.exchange``): a student takes from the exchange only the feedback pages nbgrader
finds for their own submission, as regular files of the account that owns the course's
``feedback`` folder, within bounds; every other page is refused by name and nothing of it is
copied, while the honest page still arrives.

The exchange holds one submission's five pages, each at the hash nbgrader computes for one of
the submission's notebooks, each faulty in one way only: (a) the honest page, the instructor's;
(b) a page of another account; (c) a link, the instructor's, to a file of the instructor's; (d) a
FIFO, the instructor's; (e) a sparse file, the instructor's, one byte over the bound. The fetch
runs as a student runs it, ``python -m nbgrader fetch_feedback`` with a course configuration
naming the exchange, from the students' environment as ``make lab`` installs it
(``lab_venv``: the student wheel and the Jupyter stack, no ``course``). nbgrader's own
``ExchangeFetchFeedback``, run on the same exchange, falls for each fault: so each assertion can
fail.

Real accounts (``useradd -M``) own the exchange's files, so it runs as root. The fetch itself
runs as root too (the students' environment lives where no other account can run it): root
reads every file, so each refusal here is the class's own, never a permission error; a separate
test reads a page as an unprivileged student, through the folder's mode 711."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nbgrader.utils import notebook_hash

from course.assignment import paths
from course.classroom import hub
from tinytorch.exchange import (
    SafeFetchFeedback,
    open_feedback_folder,
    read_page,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="NOT RUN: makes Unix accounts (useradd) to own the exchange's "
    "files and chowns files to them; run as root (the test machine does)")

ASSIGNMENT = paths.ASSIGNMENT
COURSE_ID = "tt-feedback"
INSTRUCTOR, MALLORY, STUDENT = "ttf-instructor", "ttf-mallory", "ttf-student"
TIMESTAMP = "2026-12-01 12:00:00.000000 UTC"
SECRET = "the submission's secret"
LIMIT = SafeFetchFeedback.max_page_bytes.default_value
HONEST = b"<html><p>Your score: 42 / 50. Well done, your own page.</p></html>"
MALLORYS = b"<html><p>Your score: 0 / 50 (a page another account wrote)</p></html>"
LINKED = b"<html><p>another student's feedback, which the link points to</p></html>"
#: Each notebook of the submission and the reason its page is refused (None: taken).
PAGES: dict[str, str | None] = {
    "honest": None,
    "other_owner": f"owned by {MALLORY} (uid ",
    "link": "a symbolic link, not a regular file",
    "fifo": "a FIFO (named pipe), not a regular file",
    "oversized": f"{LIMIT + 1} bytes, more than the {LIMIT} a feedback page may have",
}


@pytest.fixture(scope="module")
def accounts() -> Iterator[dict[str, int]]:
    """Throwaway accounts, without homes: the instructor owns the course's exchange folders,
    mallory is any other account, the student reads through the 711 folder."""
    made = {}
    try:
        for name in (INSTRUCTOR, MALLORY, STUDENT):
            subprocess.run(["userdel", name], capture_output=True)
            subprocess.run(["useradd", "-M", "--shell", "/usr/sbin/nologin", name],
                           check=True, capture_output=True)
            made[name] = pwd.getpwnam(name).pw_uid
        yield made
    finally:
        for name in made:
            subprocess.run(["userdel", name], capture_output=True)


@dataclass
class Exchange:
    """A course's exchange and a student's side of it."""

    root: Path  # the exchange root
    home: Path  # the student's working folder: nbgrader_config.py, the fetched feedback
    cache: Path  # the student's nbgrader cache, holding the submission

    @property
    def feedback(self) -> Path:
        return self.root / COURSE_ID / "feedback"

    def page(self, notebook: str) -> Path:
        """Where nbgrader looks for ``notebook``'s page: the hash of the submission's secret
        and the notebook's name."""
        return self.feedback / f"{notebook_hash(secret=SECRET, notebook_id=notebook)}.html"

    def fetched(self) -> dict[str, bytes]:
        """The pages in the student's feedback folder, by name."""
        folder = self.home / ASSIGNMENT / "feedback"
        return {str(p.relative_to(folder)): p.read_bytes()
                for p in sorted(folder.rglob("*")) if p.is_file()} if folder.is_dir() else {}


def _own(path: Path, uid: int) -> None:
    os.chown(path, uid, uid, follow_symlinks=False)


def make_exchange(top: Path, accounts: dict[str, int]) -> Exchange:
    """The exchange as ``make hub`` makes it (course/classroom/hub.py: the root 1777, the
    course's folder the instructor's, its feedback folder 711) with the five pages, and a
    student who submitted the five notebooks (nbgrader's cache: the notebooks and the
    submission's secret)."""
    instructor = accounts[INSTRUCTOR]
    exchange = Exchange(top / "exchange", top / "home", top / "cache")
    exchange.root.mkdir()
    exchange.root.chmod(0o1777)
    exchange.feedback.mkdir(parents=True)
    for folder, mode in ((exchange.feedback.parent, 0o755), (exchange.feedback, 0o711)):
        _own(folder, instructor)
        folder.chmod(mode)
    submission = exchange.cache / COURSE_ID / f"{STUDENT}+{ASSIGNMENT}+{TIMESTAMP}"
    submission.mkdir(parents=True)
    (submission / "submission_secret.txt").write_text(SECRET)
    for notebook in PAGES:
        (submission / f"{notebook}.ipynb").write_text("{}")
    exchange.page("honest").write_bytes(HONEST)
    exchange.page("other_owner").write_bytes(MALLORYS)
    elsewhere = top / "classmates-page.html"  # the instructor's: only the link is at fault
    elsewhere.write_bytes(LINKED)
    _own(elsewhere, instructor)
    exchange.page("link").symlink_to(elsewhere)
    os.mkfifo(exchange.page("fifo"))
    with open(exchange.page("oversized"), "wb") as sparse:
        sparse.truncate(LIMIT + 1)
    for notebook in PAGES:
        page = exchange.page(notebook)
        _own(page, accounts[MALLORY] if notebook == "other_owner" else instructor)
        if not page.is_symlink():
            page.chmod(0o644)
    exchange.home.mkdir()
    return exchange


@pytest.fixture
def exchange(accounts: dict[str, int]) -> Iterator[Exchange]:
    """``make_exchange`` in a folder every account can traverse (pytest's own is root's)."""
    top = Path(tempfile.mkdtemp(prefix="tt-feedback-", dir="/tmp"))
    try:
        top.chmod(0o755)
        yield make_exchange(top, accounts)
    finally:
        shutil.rmtree(top)


def fetch_feedback(python: Path, exchange: Exchange,
                   fetch_class: str | None) -> subprocess.CompletedProcess[str]:
    """``python -m nbgrader fetch_feedback ASSIGNMENT`` in the student's folder, whose
    ``nbgrader_config.py`` names the course, the exchange, the cache and ``fetch_class`` (None:
    nbgrader's own). No other Jupyter configuration is read (a fresh configuration folder)."""
    config = [f"c.CourseDirectory.course_id = {COURSE_ID!r}",
              f"c.Exchange.root = {str(exchange.root)!r}",
              f"c.Exchange.cache = {str(exchange.cache)!r}"]
    if fetch_class is not None:
        config.append(f"c.ExchangeFactory.fetch_feedback = {fetch_class!r}")
    (exchange.home / "nbgrader_config.py").write_text("\n".join(config) + "\n")
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("JUPYTER", "PYTHON"))}
    environment["JUPYTER_CONFIG_DIR"] = str(exchange.home / ".jupyter")
    return subprocess.run([str(python), "-m", "nbgrader", "fetch_feedback", ASSIGNMENT],
                          cwd=exchange.home, capture_output=True, text=True, timeout=300,
                          env=environment)


def _refusal(said: str, page: Path) -> str:
    """The line of the fetch's output that refuses ``page``, or '' if none does."""
    lines = [line for line in said.splitlines() if f"refused feedback page {page} " in line]
    return lines[0] if lines else ""


def test_the_student_takes_the_honest_page_and_each_bad_one_is_refused_by_name(
        lab_venv: Path, exchange: Exchange) -> None:
    """The hub's configuration (``hub.FETCH_FEEDBACK``) in the students' environment: the
    honest page arrives; each other page is named with its own reason and nothing of it, not
    even its name, reaches the student's folder; the fetch then fails, so the student hears of
    it."""
    done = fetch_feedback(lab_venv / "bin" / "python", exchange, hub.FETCH_FEEDBACK)
    said = done.stdout + done.stderr
    assert "Traceback" not in said, said
    assert done.returncode == 1 and "nbgrader fetch_feedback failed" in said, said
    assert exchange.fetched() == {f"{TIMESTAMP}/honest.html": HONEST}, said
    for notebook, reason in PAGES.items():
        line = _refusal(said, exchange.page(notebook))
        if reason is None:
            assert not line, line
        else:
            assert reason in line, (notebook, said)
    assert f"refused {len(PAGES) - 1} feedback page(s)" in said, said
    everything = b"".join(p.read_bytes() for p in exchange.home.rglob("*") if p.is_file())
    assert MALLORYS not in everything and LINKED not in everything
    assert exchange.page("fifo").exists() and exchange.page("oversized").stat().st_size > LIMIT


def test_a_page_fetched_before_is_kept_when_its_replacement_is_refused(
        lab_venv: Path, exchange: Exchange, accounts: dict[str, int]) -> None:
    """A refused page is not written over the student's earlier copy of it."""
    assert fetch_feedback(lab_venv / "bin" / "python", exchange, hub.FETCH_FEEDBACK
                          ).returncode == 1
    honest = exchange.page("honest")
    honest.unlink()
    honest.write_bytes(MALLORYS)
    _own(honest, accounts[MALLORY])
    done = fetch_feedback(lab_venv / "bin" / "python", exchange, hub.FETCH_FEEDBACK)
    assert f"owned by {MALLORY}" in _refusal(done.stdout + done.stderr, honest), done.stderr
    assert exchange.fetched() == {f"{TIMESTAMP}/honest.html": HONEST}


def test_nbgrader_s_own_fetch_falls_for_each_bad_page(lab_venv: Path,
                                                      exchange: Exchange) -> None:
    """The threat is real, page by page: nbgrader's own fetch stops at the FIFO; without it, it
    hands the student the other account's page, the file the link points to and the oversized
    file, each as their feedback."""
    python = lab_venv / "bin" / "python"
    stopped = fetch_feedback(python, exchange, None)
    assert stopped.returncode != 0, stopped.stderr
    assert "is a named pipe" in stopped.stdout + stopped.stderr, stopped.stderr
    exchange.page("fifo").unlink()
    done = fetch_feedback(python, exchange, None)
    assert done.returncode == 0, done.stderr
    fetched = exchange.fetched()
    assert fetched[f"{TIMESTAMP}/other_owner.html"] == MALLORYS
    assert fetched[f"{TIMESTAMP}/link.html"] == LINKED
    assert len(fetched[f"{TIMESTAMP}/oversized.html"]) == LIMIT + 1
    assert fetched[f"{TIMESTAMP}/honest.html"] == HONEST


def test_a_link_in_place_of_the_feedback_folder_refuses_every_page(
        lab_venv: Path, exchange: Exchange, accounts: dict[str, int]) -> None:
    """The owner pages are checked against is that of the course's ``feedback`` folder itself:
    a link there to a folder of another account's, holding that account's page at the honest
    page's hash, gives nothing (nbgrader's own follows it and takes the page)."""
    planted = exchange.root / "planted"
    planted.mkdir()
    shutil.copyfile(exchange.page("other_owner"), planted / exchange.page("honest").name)
    for path in (planted, *planted.iterdir()):
        _own(path, accounts[MALLORY])
    real = exchange.feedback.with_name("feedback.real")
    exchange.feedback.rename(real)
    exchange.feedback.symlink_to(planted)
    python = lab_venv / "bin" / "python"
    done = fetch_feedback(python, exchange, hub.FETCH_FEEDBACK)
    said = done.stdout + done.stderr
    assert done.returncode == 1 and "refused all feedback" in said, said
    assert f"the course's feedback folder {exchange.feedback} is not a folder" in said, said
    assert exchange.fetched() == {}
    theirs = fetch_feedback(python, exchange, None)
    assert exchange.fetched() == {f"{TIMESTAMP}/honest.html": MALLORYS}, theirs.stderr


def test_a_student_reads_their_page_through_the_711_folder(exchange: Exchange,
                                                           accounts: dict[str, int]) -> None:
    """As an unprivileged account, which may search the feedback folder but not list it:
    ``read_page`` opens the folder without reading it (``O_PATH``) and reads the honest page;
    the other account's page is still refused. Runs in a child process that drops to the
    student's uid for good."""
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the student: never returns into pytest
        status = 1
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(accounts[STUDENT])
            os.setuid(accounts[STUDENT])
            try:
                os.listdir(exchange.feedback)
                listed = "listed"
            except PermissionError:
                listed = "not listed"
            folder = open_feedback_folder(exchange.feedback)
            owner = os.fstat(folder).st_uid
            page = read_page(folder, exchange.page("honest").name, owner, LIMIT)
            try:
                read_page(folder, exchange.page("other_owner").name, owner, LIMIT)
                other = "taken"
            except Exception as why:  # noqa: BLE001 - reported to the parent
                other = f"refused: {why}"
            os.write(writer, f"{listed}\n{owner}\n{other}\n".encode() + page)
            status = 0
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            os.write(writer, f"error: {error!r}".encode())
        finally:
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as stream:
        answer = stream.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, answer
    listed, owner, other, page = answer.split(b"\n", 3)
    assert listed == b"not listed", "the student could list the 711 folder: the test proves less"
    assert int(owner) == accounts[INSTRUCTOR]
    assert other.decode().startswith(f"refused: owned by {MALLORY}"), other
    assert page == HONEST


def test_the_class_ships_to_students_and_the_hub_names_it() -> None:
    """The students' environment has ``tinytorch`` and ``checks``, not ``course``; the hub's
    configuration names the class there, for every server."""
    assert hub.FETCH_FEEDBACK == f"{SafeFetchFeedback.__module__}.{SafeFetchFeedback.__name__}"
    assert SafeFetchFeedback.__module__.split(".")[0] in paths.STUDENT_PACKAGES
    for course_root in (None, Path("/home/ttf-instructor/course")):
        config = hub.nbgrader_config(Path("/srv/exchange"), course_root)
        assert re.search(rf"^c\.ExchangeFactory\.fetch_feedback = '{hub.FETCH_FEEDBACK}'$",
                         config, re.M), config
    source = Path(SafeFetchFeedback.__module__.replace(".", "/") + ".py")
    imported = re.findall(r"^(?:from|import) (\w+)", (paths.REPO / source).read_text(), re.M)
    assert "course" not in imported and "checks" not in imported, imported

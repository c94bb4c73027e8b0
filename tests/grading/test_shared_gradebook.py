"""The gradebook nbgrader is configured with (``course.assignment.config.db_url``), shared: a real
PostgreSQL server, started here (Debian's ``postgresql``: ``initdb`` in a temporary folder,
``pg_ctl start`` on a loopback port, as an unprivileged user when we are root), and two graders
(``python -m course.classroom.autograde --student ...``) running at the same time into it for
different students. Both complete, each student's score is the one their grader decided, nothing is
overwritten, and no SQLite gradebook is made.

Without PostgreSQL's binaries this test is skipped with the reason, except as root or in CI,
where it fails: ``.ci/run`` installs them (``apt-get install postgresql``)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from course.assignment import config, paths
from course.classroom import autograde, hub

pytestmark = pytest.mark.slow


def _binaries() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl), if installed."""
    found = shutil.which("initdb") and shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda f: int(f.split("/")[4]))
    return Path(folders[-1]) if folders else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server on loopback with an empty database; yields its URL."""
    binaries = _binaries()
    if binaries is None:
        reason = ("PostgreSQL is not installed: the shared-gradebook test needs Debian's "
                  "`postgresql` package (apt-get install postgresql)")
        if os.getuid() == 0 or os.environ.get("CI"):
            pytest.fail(reason + "; .ci/run installs it, so it must be here")
        pytest.skip("SKIPPED LOUDLY: " + reason)
    # not under pytest's folder (root's, 0700): the server's user must reach its data
    folder = Path(tempfile.mkdtemp(prefix="tinytorch-postgres-"))
    data, sockets = folder / "data", folder / "run"
    sockets.mkdir()
    run_as: list[str] = []
    if os.getuid() == 0:  # initdb and postgres refuse to run as root
        user = "postgres" if hub.exists("postgres") else "nobody"
        run_as = ["runuser", "-u", user, "--"]
        os.chmod(folder, 0o755)
        shutil.chown(folder, user)
        shutil.chown(sockets, user)
    port = _free_port()
    _run([*run_as, str(binaries / "initdb"), "-D", str(data), "-U", "grader", "--auth=trust",
          "--no-sync", "-E", "UTF8"])
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        _run([*run_as, str(binaries / "pg_ctl"), "-D", str(data), "-o", options,
              "-l", str(folder / "server.log"), "-w", "-t", "60", "start"])
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=grader dbname=postgres",
                             autocommit=True) as connection:
            connection.execute("CREATE DATABASE gradebook")
        yield f"postgresql+psycopg://grader@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run([*run_as, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    assert done.returncode == 0, f"{argv[-1]} failed: {done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def course(postgres: str, course_dir: Path, scale_notebooks: dict[str, Path],
           tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course whose nbgrader_config.py points at the server, released into it."""
    root = tmp_path_factory.mktemp("shared") / "course"
    shutil.copytree(course_dir, root, ignore=shutil.ignore_patterns("gradebook.db"))
    with open(root / "nbgrader_config.py", "a") as settings:
        settings.write(f"\nc.CourseDirectory.db_url = {postgres!r}\n")
    from course.authoring.release import nbgrader

    nbgrader("generate_assignment", paths.ASSIGNMENT, "--force", course=root)
    for student, kind in (("alice", "reference"), ("bob", "mutant-0"), ("carol", "release")):
        target = root / "submitted" / student / paths.ASSIGNMENT / paths.NOTEBOOK
        target.parent.mkdir(parents=True)
        shutil.copy(scale_notebooks[kind], target)
    return root


def test_the_gradebook_is_the_one_nbgrader_is_configured_with(course: Path,
                                                              postgres: str) -> None:
    assert config.db_url(course) == postgres
    assert config.db_url(course.parent).startswith("sqlite:///")  # nbgrader's default
    assert "gradebook.db" in config.db_url(course.parent)


def test_two_graders_at_once_into_one_gradebook(course: Path, postgres: str) -> None:
    def grader(*students: str) -> subprocess.Popen[str]:
        more = [a for s in students for a in ("--student", s)]
        return subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "course.classroom.autograde", "--course", str(course),
             "--jobs", "1", "--limit", "30", *more], cwd=paths.REPO, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

    first, second = grader("alice", "carol"), grader("bob")
    (out1, err1), (out2, err2) = first.communicate(timeout=300), second.communicate(timeout=300)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    printed = {}
    for out in (out1, out2):
        for line in out.splitlines():
            if not re.match(r"^\S+\s+[\d.]+ / \d+", line):
                continue  # not a score line (the written answers waiting for a grader, say)
            student, score = line.split()[0], float(line.split()[1])
            assert student not in printed, f"{student} printed by both graders"
            printed[student] = score
    assert set(printed) == {"alice", "bob", "carol"}
    in_gradebook = {student: score for student, score, _ in autograde.scores(course)}
    assert in_gradebook == printed, (in_gradebook, printed)
    assert printed["alice"] > printed["bob"] > 0 and printed["carol"] == 0
    assert not (course / "gradebook.db").exists(), "a SQLite gradebook was made"

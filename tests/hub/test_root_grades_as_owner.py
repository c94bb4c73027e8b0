"""Autograde as root touches an account's course only as that account (course.classroom.owner).

The guide has root autograde the instructor's ``~/course`` on a hub: the sandboxes need root's
uids and control groups. The course is the instructor's to write, so root must not read or
write through it: a link the instructor's account (or whoever holds its token) planted in
``submitted/`` must not make root read a file only root can read, nothing root writes may land
in the course, and a course a third account can change is refused, naming the files. Real Unix
accounts; the owner's Python is the hub's instructor environment (what `make hub-deps` makes),
found on the owner's login PATH as a hub's terminal finds it."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from submissions import from_training_source, with_cell, write

from course.assignment import paths
from course.classroom import hub as hubmod

pytestmark = pytest.mark.slow

OWNER, THIRD = "ttx-owner", "ttx-third"


def _account(name: str) -> None:
    if hubmod.exists(name):
        hubmod.remove_account(name)
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)


@pytest.fixture(scope="module")
def accounts(instructor_python: Path) -> Iterator[Path]:
    """The owner (their login PATH starts with the instructor environment, as `make hub` sets
    it) and a third account; yields the owner's home."""
    if os.geteuid() != 0:
        pytest.skip("NOT TESTED: root autograding another account's course needs root and "
                    "real accounts; run the tests as root (CI does)")
    for name in (OWNER, THIRD):
        _account(name)
    home = Path(f"/home/{OWNER}")
    (home / ".profile").write_text(f'PATH="{instructor_python.parent}:$PATH"\n')
    try:
        yield home
    finally:
        for name in (OWNER, THIRD):
            hubmod.remove_account(name)


def _chown(path: Path, name: str) -> None:
    subprocess.run(["chown", "-R", f"{name}:{name}", str(path)], check=True)


@pytest.fixture(scope="module")
def graded(accounts: Path, copy_course: Callable[[Path], None]
           ) -> Iterator[tuple[Path, subprocess.CompletedProcess[str], Path]]:
    """The owner's course, two honest downloads and, in submitted/, a link the owner's
    account planted to a file only root can read; autograded by root. Yields the course, the
    run, and the secret file."""
    place = Path(f"/tmp/ttx-{secrets.token_hex(4)}")
    place.mkdir(mode=0o755)
    place.chmod(0o755)
    secret = place / "root-only"
    secret.write_text(f"ROOT-ONLY-{secrets.token_hex(8)}")
    secret.chmod(0o600)
    course, downloads = accounts / "course", accounts / "downloads"
    copy_course(course)
    write(from_training_source(paths.REFERENCE.read_text()), downloads / "alice.ipynb")
    write(with_cell(from_training_source(paths.REFERENCE.read_text()),
                    "raise RuntimeError('bob stopped here')\n", at=3),
          downloads / "bob.ipynb")
    planted = course / "submitted" / "eve" / paths.ASSIGNMENT
    planted.mkdir(parents=True)
    (planted / paths.NOTEBOOK).symlink_to(secret)
    (planted / "timestamp.txt").write_text("2026-12-07 10:00:00.000000 UTC")
    _chown(accounts, OWNER)
    run = subprocess.run(
        [sys.executable, "-m", "course.classroom.autograde", str(downloads),
         "--course", str(course), "--jobs", "2"],
        capture_output=True, text=True, timeout=600, cwd=Path.cwd())
    try:
        yield course, run, secret
    finally:
        shutil.rmtree(place, ignore_errors=True)


def test_root_grades_the_owners_class_and_writes_nothing_there(
        graded: tuple[Path, subprocess.CompletedProcess[str], Path]) -> None:
    course, run, _ = graded
    shown = run.stdout + run.stderr
    assert [line for line in run.stdout.splitlines()
            if line.startswith("alice") and "100.0 / 114" in line], shown
    assert [line for line in run.stdout.splitlines() if line.startswith("bob")], shown
    owner_uid = Path(f"/home/{OWNER}").stat().st_uid
    roots = [str(p) for p in course.rglob("*") if p.lstat().st_uid != owner_uid]
    assert not roots, f"root wrote into the owner's course: {roots[:10]}"
    assert (course / "autograded" / "alice" / paths.ASSIGNMENT / paths.NOTEBOOK).is_file()


def test_a_link_in_submitted_reads_nothing_root_alone_can_read(
        graded: tuple[Path, subprocess.CompletedProcess[str], Path]) -> None:
    course, run, secret = graded
    shown = run.stdout + run.stderr
    assert run.returncode == 1, shown  # eve is named, the class is graded
    assert "eve" in run.stderr and "is a link" in run.stderr, shown
    words = secret.read_text()
    assert words not in shown
    leaked = [p for p in course.rglob("*") if p.is_file() and not p.is_symlink()
              and words.encode() in p.read_bytes()]
    assert not leaked, leaked


def test_a_course_a_third_account_can_change_is_refused_by_name(
        graded: tuple[Path, subprocess.CompletedProcess[str], Path]) -> None:
    course, _, _ = graded
    gradebook = course / "gradebook.db"
    before = gradebook.stat().st_mtime_ns
    third = course / "source" / "planted.txt"
    third.write_text("a third account's file")
    _chown(third, THIRD)
    gradebook.chmod(0o666)
    try:
        run = subprocess.run([sys.executable, "-m", "course.classroom.autograde",
                              "--course", str(course), "--regrade"],
                             capture_output=True, text=True, timeout=120)
    finally:
        third.unlink()
        gradebook.chmod(0o644)
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"{third}: owned by uid" in run.stderr, run.stderr
    assert f"{gradebook}: writable by every account" in run.stderr, run.stderr
    assert gradebook.stat().st_mtime_ns == before, "the refused course was graded"


def test_an_owner_without_the_course_on_their_path_is_told_what_to_pass(
        graded: tuple[Path, subprocess.CompletedProcess[str], Path], accounts: Path) -> None:
    course, _, _ = graded
    profile = accounts / ".profile"
    kept = profile.read_text()
    profile.write_text('PATH="/nonexistent:$PATH"\n')
    try:
        run = subprocess.run([sys.executable, "-m", "course.classroom.autograde",
                              "--course", str(course)],
                             capture_output=True, text=True, timeout=120)
    finally:
        profile.write_text(kept)
    assert run.returncode != 0
    assert "--owner-python" in run.stderr, run.stderr

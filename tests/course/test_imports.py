"""Importing a folder of downloads (``course.classroom.imports``, ``make autograde
SUBMISSIONS=dir/``): each download's student id by the stated rule (the map, else the name,
else its slug), a name without an id or two downloads of one id refused alone while the class
is imported and graded, and no import that replaces a submission silently: the same bytes are
left, a later one replaces the held one (kept in ``replaced/``), an earlier one is refused
unless ``--replace``."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from submissions import from_training_source, write

from course.assignment import paths
from course.classroom import autograde, imports
from course.grading.grade import SubmissionError


# ------------------------------------------------------------ the rule
@pytest.mark.parametrize(("name", "student"), [
    ("Dave Smith", "dave_smith"),
    ("Zoë Ångström", "zoe_angstrom"),
    ("alice", "alice"),                        # a usable id stays as it is
    ("bob.smith-2", "bob.smith-2"),
    ("Alice", "Alice"),
    ("  O'Brien, Erin (2) ", "o_brien_erin_2"),
    ("Straße", "stra_e"),                      # no accent to drop: another character
    ("ＡＢＣ１", "abc1"),                       # compatibility forms (NFKD)
    ("alice\n", "alice"),                      # a newline is no part of an id
    ("-x-", "x"),
    ("???", ""),
    ("", ""),
])
def test_a_download_name_gives_its_id_by_the_stated_rule(name: str, student: str) -> None:
    assert imports.student_id(name) == student


def test_the_slug_itself_keeps_only_lower_case_letters_digits_and_single_underscores() -> None:
    assert imports.slug("bob.smith-2") == "bob_smith_2"
    assert imports.slug("Émile  --  Zola__Jr") == "emile_zola_jr"
    assert imports.slug("İlkay Gündoğan") == "ilkay_gundogan"


def test_a_map_is_read_and_a_wrong_line_refused_by_its_number(tmp_path: Path) -> None:
    table = tmp_path / "map.csv"
    table.write_text("\ufefffile,student\n"  # a spreadsheet's byte-order mark
                     "smithdave_12345_67890_07_training.ipynb,dsmith\n Erin/ , eobrien \n",
                     encoding="utf-8")
    assert imports.read_map(table) == {
        "smithdave_12345_67890_07_training.ipynb": "dsmith", "Erin": "eobrien"}
    table.write_text("file,student\nx.ipynb,x\nDave Smith.ipynb,dave smith\n")
    with pytest.raises(SubmissionError, match=r"map.csv', line 3: 'dave smith' is not a usable "
                                              r"student id \(expected a letter or digit"):
        imports.read_map(table)
    table.write_text("file,student\na.ipynb,a\na.ipynb,b\n")
    with pytest.raises(SubmissionError, match=r"line 3: 'a.ipynb' is 'b' here but 'a' on line 2"):
        imports.read_map(table)
    table.write_text("name,id\na.ipynb,a\n")
    with pytest.raises(SubmissionError, match=r"expected the columns 'file', 'student', found "
                                              r"\['id', 'name'\]"):
        imports.read_map(table)
    with pytest.raises(SubmissionError, match="students map .*missing.csv' does not exist"):
        imports.read_map(tmp_path / "missing.csv")


def test_the_map_wins_and_odd_names_fail_alone(tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for name in ("Dave Smith", "Erin O'Brien", "???", "", "Carol Jones", "carol  jones", "alice",
                 "smithdave_12345_67890_07_training"):
        (downloads / f"{name}.ipynb").write_text("{}")
    for folder in ("alice", "bob.smith-2", "notes"):
        (downloads / folder).mkdir()
    (downloads / "alice" / paths.NOTEBOOK).write_text("{}")
    (downloads / "bob.smith-2" / paths.NOTEBOOK).write_text("{}")
    (downloads / "readme.txt").write_text("not a download")
    found = imports.submissions_in(downloads, {
        "smithdave_12345_67890_07_training.ipynb": "dsmith", "Erin O'Brien.ipynb": "eobrien"})
    assert found.found == {
        "dave_smith": downloads / "Dave Smith.ipynb",
        "eobrien": downloads / "Erin O'Brien.ipynb",
        "bob.smith-2": downloads / "bob.smith-2" / paths.NOTEBOOK,
        "dsmith": downloads / "smithdave_12345_67890_07_training.ipynb"}
    assert found.renamed == {"Dave Smith.ipynb": "dave_smith", "Erin O'Brien.ipynb": "eobrien",
                             "smithdave_12345_67890_07_training.ipynb": "dsmith"}
    no_id = ("its name has no letter or digit to make a student id of: not imported; give it "
             "an id in --students map.csv (columns file,student)")
    decides = "not imported; --students map.csv (columns file,student) decides which id each is"
    assert found.refused == {
        ".ipynb": no_id, "???.ipynb": no_id,
        "Carol Jones.ipynb": f"is the student id 'carol_jones', as 'carol  jones.ipynb' is too: "
                             f"{decides}",
        "carol  jones.ipynb": f"is the student id 'carol_jones', as 'Carol Jones.ipynb' is too: "
                              f"{decides}",
        "alice/": f"is the student id 'alice', as 'alice.ipynb' is too: {decides}",
        "alice.ipynb": f"is the student id 'alice', as 'alice/' is too: {decides}"}


def test_a_folder_without_downloads_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="no submissions in .*: expected <student>.ipynb"):
        imports.submissions_in(tmp_path)
    with pytest.raises(SubmissionError, match="not a directory"):
        imports.submissions_in(tmp_path / "missing")
    (tmp_path / "???.ipynb").write_text("{}")
    with pytest.raises(SubmissionError, match="no usable submission in"):
        imports.import_folder(tmp_path, tmp_path / "course", out=io.StringIO(),
                              err=io.StringIO())
    assert not (tmp_path / "course" / "submitted").exists()


def test_imported_downloads_keep_their_submission_time(tmp_path: Path) -> None:
    """Each imported notebook gets nbgrader's timestamp.txt: its file's time, or the time a CSV
    gives; a bad CSV is refused naming the file and line."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for name in ("alice", "bob"):
        (downloads / f"{name}.ipynb").write_text("{}")
    os.utime(downloads / "alice.ipynb", (1_700_000_000, 1_700_000_000))  # 2023-11-14 22:13:20
    times = tmp_path / "times.csv"
    times.write_text("student,submitted\nbob,2026-12-01T09:30:00+01:00\n")
    course = tmp_path / "course"
    done = imports.import_submissions(imports.submissions_in(downloads).found, course,
                                      imports.read_times(times))
    assert done == imports.Imported()  # new students: nothing to say, nothing refused
    assert _stamp(course, "alice") == "2023-11-14 22:13:20.000000 UTC"
    assert _stamp(course, "bob") == "2026-12-01 08:30:00.000000 UTC"
    times.write_text("student,submitted\nbob,yesterday\n")
    with pytest.raises(SubmissionError, match=r"times.csv', line 2: 'yesterday' is not a time"):
        imports.read_times(times)


def test_nothing_is_read_or_written_through_a_link_in_submitted(tmp_path: Path) -> None:
    """A student's folder that is a link (a hub's hostile entry) refuses that student alone:
    what the link points to is neither read nor changed."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.ipynb").write_text("the instructor's")
    course = tmp_path / "course"
    (course / "submitted").mkdir(parents=True)
    (course / "submitted" / "mallory").symlink_to(elsewhere)
    eve = course / "submitted" / "eve" / paths.ASSIGNMENT
    eve.mkdir(parents=True)
    (eve / paths.NOTEBOOK).symlink_to(elsewhere / "secret.ipynb")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for name in ("alice", "eve", "mallory"):
        (downloads / f"{name}.ipynb").write_text(f'{{"by": "{name}"}}')
    done = imports.import_submissions(imports.submissions_in(downloads).found, course)
    assert done.refused == {
        "mallory": f"{course}/submitted/mallory is a link or not a folder, not what an import "
                   "writes: nothing is written through it: not imported",
        "eve": f"{eve}/{paths.NOTEBOOK} is a link, not the file a collect or an import writes: "
               "nothing is read through it: not imported"}
    assert sorted(p.name for p in elsewhere.iterdir()) == ["secret.ipynb"]
    assert (elsewhere / "secret.ipynb").read_text() == "the instructor's"
    assert (eve / paths.NOTEBOOK).is_symlink()
    assert (course / "submitted" / "alice" / paths.ASSIGNMENT / paths.NOTEBOOK).read_text() == \
        '{"by": "alice"}'


def test_a_submission_of_the_same_time_is_not_later_and_replace_keeps_each(
        tmp_path: Path) -> None:
    """Another file of the held time is not later: not imported. ``--replace`` twice, the held
    time each time the same: each replaced submission gets a folder of its own in replaced/,
    none overwrites another."""
    course = tmp_path / "course"
    download = tmp_path / "alice.ipynb"
    when = {"alice": datetime(2026, 12, 1, 10, tzinfo=UTC)}
    download.write_text("1")
    assert imports.import_submissions({"alice": download}, course, when) == imports.Imported()
    download.write_text("2")
    assert imports.import_submissions({"alice": download}, course, when).said == [
        "alice: kept the submission of 2026-12-01 10:00:00 UTC; this file (2026-12-01 10:00:00 "
        "UTC) is not later: not imported (--replace imports it anyway)"]
    assert not (course / "replaced").exists()
    for text in ("2", "3"):
        download.write_text(text)
        imports.import_submissions({"alice": download}, course, when, replace=True)
    kept = course / "replaced" / "alice"
    assert sorted(p.name for p in kept.iterdir()) == ["2026-12-01T10-00-00Z",
                                                       "2026-12-01T10-00-00Z-2"]
    assert [(kept / n / paths.NOTEBOOK).read_text() for n in sorted(os.listdir(kept))] == \
        ["1", "2"]
    assert (course / "submitted" / "alice" / paths.ASSIGNMENT / paths.NOTEBOOK).read_text() \
        == "3"


def _stamp(course: Path, student: str) -> str:
    return (course / "submitted" / student / paths.ASSIGNMENT / "timestamp.txt").read_text()


# ------------------------------------------------------------ a class imported three times
@dataclass
class Run:
    status: int
    out: list[str]
    err: list[str]
    scores: dict[str, float]


def _run(course: Path, *argv: str | Path) -> Run:
    """``python -m course.classroom.autograde ARGV --course COURSE``, what it printed and the
    gradebook's scores after it."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = autograde.main([*map(str, argv), "--course", str(course)])
    return Run(status, out.getvalue().splitlines(), err.getvalue().splitlines(),
               {student: score for student, score, _ in autograde.scores(course)})


def _import(course: Path, folder: Path, times: Path) -> Run:
    """Only the import of ``make autograde SUBMISSIONS=folder`` (nothing graded): its status
    is the number of downloads it refused."""
    out, err = io.StringIO(), io.StringIO()
    refused = imports.import_folder(folder, course, times=times, out=out, err=err)
    return Run(len(refused), out.getvalue().splitlines(), err.getvalue().splitlines(),
               {student: score for student, score, _ in autograde.scores(course)})


@dataclass
class Class:
    course: Path
    downloads: Path
    reference: bytes  # full marks
    release: bytes  # the untouched release: 0
    first: Run
    submitted_after_first: list[str]
    again: Run
    replaced: Run
    max_score: float


@pytest.fixture(scope="module")
def class_(copy_course: Callable[[Path], None],
           tmp_path_factory: pytest.TempPathFactory) -> Class:
    """A class imported from a folder of downloads (spaces, accents, an LMS name the map
    names, a clash, a name without an id), then from a second folder (alice's later, changed
    file; Dave's same file; Zoë's earlier, changed file), then the second again with
    --replace. To stay fast only alice's first submission is graded (the reference: graded
    once, then Zoë's replacement is the same bytes, kept from the cache)."""
    root = tmp_path_factory.mktemp("imports")
    course = root / "course"
    course.mkdir()
    copy_course(course)
    reference = write(from_training_source(paths.REFERENCE.read_text()),
                      root / "reference.ipynb").read_bytes()
    release = (course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK).read_bytes()
    downloads = root / "downloads"
    downloads.mkdir()
    for name, data in (("alice", reference), ("Dave Smith", release),
                       ("Zoë Ångström", release),
                       ("smithdave_12345_67890_07_training", release),
                       ("Carol Jones", release), ("carol jones", reference),
                       ("???", release)):
        (downloads / f"{name}.ipynb").write_bytes(data)
    students = root / "map.csv"
    students.write_text("file,student\nsmithdave_12345_67890_07_training.ipynb,dsmith\n")
    times = root / "times.csv"
    times.write_text("student,submitted\nalice,2026-12-01T10:00:00+00:00\n"
                     "dave_smith,2026-12-01T11:00:00+00:00\n"
                     "zoe_angstrom,2026-12-02T09:00:00+00:00\n"
                     "dsmith,2026-12-01T12:00:00+00:00\n")
    first = _run(course, downloads, "--students", students, "--times", times,
                 "--student", "alice")
    submitted_after_first = sorted(os.listdir(course / "submitted"))

    later = root / "later"
    later.mkdir()
    (later / "alice.ipynb").write_bytes(release)  # changed, later
    (later / "Dave Smith.ipynb").write_bytes(release)  # the same bytes
    (later / "Zoë Ångström.ipynb").write_bytes(reference)  # changed, earlier
    times_later = root / "times-later.csv"
    times_later.write_text("student,submitted\nalice,2026-12-05T10:00:00+00:00\n"
                           "dave_smith,2026-12-06T10:00:00+00:00\n"
                           "zoe_angstrom,2026-11-30T10:00:00+00:00\n")
    again = _import(course, later, times_later)
    max_score = {s: m for s, _, m in autograde.scores(course)}["alice"]
    replaced = _run(course, later, "--times", times_later, "--replace",
                    "--student", "zoe_angstrom")
    return Class(course, downloads, reference, release, first, submitted_after_first, again,
                 replaced, max_score)


def _notebook(course: Path, student: str) -> bytes:
    return (course / "submitted" / student / paths.ASSIGNMENT / paths.NOTEBOOK).read_bytes()


@pytest.mark.slow
def test_odd_names_fail_alone_and_the_class_is_imported_and_graded(class_: Class) -> None:
    first = class_.first
    assert first.status == 1, first
    assert first.out[:3] == ["Dave Smith.ipynb -> dave_smith",
                             "Zoë Ångström.ipynb -> zoe_angstrom",
                             "smithdave_12345_67890_07_training.ipynb -> dsmith"], first.out
    decides = "not imported; --students map.csv (columns file,student) decides which id each is"
    assert first.err[:3] == [
        "error: '???.ipynb': its name has no letter or digit to make a student id of: not "
        "imported; give it an id in --students map.csv (columns file,student)",
        f"error: 'Carol Jones.ipynb': is the student id 'carol_jones', as 'carol jones.ipynb' "
        f"is too: {decides}",
        f"error: 'carol jones.ipynb': is the student id 'carol_jones', as 'Carol Jones.ipynb' "
        f"is too: {decides}"], first.err
    assert first.err[-1] == (f"error: 3 of the downloads in {str(class_.downloads)!r} were not "
                             "imported (each named above with the reason); every other one is "
                             "graded")
    assert class_.submitted_after_first == ["alice", "dave_smith", "dsmith", "zoe_angstrom"]
    assert first.scores == {"alice": 100.0}
    assert next(line for line in first.out if line.startswith("alice ")).split()[1] == "100.0"


@pytest.mark.slow
def test_a_later_file_replaces_and_keeps_the_earlier_an_earlier_one_waits_for_replace(
        class_: Class) -> None:
    course, most = class_.course, f"{class_.max_score:.0f}"
    again = class_.again
    assert (again.status, again.err) == (0, [])
    assert again.out == [  # in the order of the downloads' names
        "Dave Smith.ipynb -> dave_smith",
        "Zoë Ångström.ipynb -> zoe_angstrom",
        "dave_smith: unchanged (already submitted at 2026-12-01 11:00:00 UTC)",
        "zoe_angstrom: kept the submission of 2026-12-02 09:00:00 UTC; this file (2026-11-30 "
        "10:00:00 UTC) is not later: not imported (--replace imports it anyway)",
        f"alice: replaced an earlier submission (graded 100.0 / {most}) submitted at "
        "2026-12-01 10:00:00 UTC by one submitted at 2026-12-05 10:00:00 UTC; the replaced one "
        f"is kept in {course}/replaced/alice/2026-12-01T10-00-00Z/"]
    kept = course / "replaced" / "alice" / "2026-12-01T10-00-00Z"
    assert sorted(os.listdir(course / "replaced")) == ["alice", "zoe_angstrom"]
    assert (kept / paths.NOTEBOOK).read_bytes() == class_.reference
    assert (kept / "timestamp.txt").read_text() == "2026-12-01 10:00:00.000000 UTC"
    assert _notebook(course, "alice") == class_.release
    assert _stamp(course, "alice") == "2026-12-05 10:00:00.000000 UTC"
    assert _notebook(course, "dave_smith") == class_.release
    assert _stamp(course, "dave_smith") == "2026-12-01 11:00:00.000000 UTC"

    replaced = class_.replaced
    assert replaced.status == 0, replaced
    assert replaced.out[:5] == [
        "Dave Smith.ipynb -> dave_smith",
        "Zoë Ångström.ipynb -> zoe_angstrom",
        "dave_smith: unchanged (already submitted at 2026-12-01 11:00:00 UTC)",
        "zoe_angstrom: --replace: replaced the submission (not graded yet) submitted at "
        "2026-12-02 09:00:00 UTC by one submitted at 2026-11-30 10:00:00 UTC; the replaced one "
        f"is kept in {course}/replaced/zoe_angstrom/2026-12-02T09-00-00Z/",
        "alice: unchanged (already submitted at 2026-12-05 10:00:00 UTC)"], replaced.out
    assert replaced.scores["zoe_angstrom"] == 100.0  # the file --replace imported is graded
    zoe = course / "replaced" / "zoe_angstrom" / "2026-12-02T09-00-00Z"
    assert (zoe / paths.NOTEBOOK).read_bytes() == class_.release
    assert (zoe / "timestamp.txt").read_text() == "2026-12-02 09:00:00.000000 UTC"
    assert _notebook(course, "zoe_angstrom") == class_.reference
    assert _stamp(course, "zoe_angstrom") == "2026-11-30 10:00:00.000000 UTC"
    assert sorted(p.name for p in (course / "replaced").rglob("*") if p.is_file()) == \
        sorted([paths.NOTEBOOK, "timestamp.txt"] * 2)


@pytest.mark.slow
def test_a_grade_is_said_only_of_the_submission_it_was_decided_for(class_: Class) -> None:
    """The gradebook holds alice's first submission's grade (nbgrader recorded its time): it
    is that one's, not her later, still ungraded one's."""
    first, later = (datetime(2026, 12, day, 10, tzinfo=UTC) for day in (1, 5))
    most = f"{class_.max_score:.0f}"
    assert imports.earlier_grade(class_.course, "alice", first) == f"graded 100.0 / {most}"
    assert imports.earlier_grade(class_.course, "alice", later) == "not graded yet"
    assert imports.earlier_grade(class_.course, "dave_smith", first) == "not graded yet"


def test_root_forwards_the_map_and_replace_to_the_courses_owner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root, for a course another account owns, the command runs again as that account
    (``_as_root``): with the map, as an absolute path, and --replace."""
    sent: list[list[str]] = []
    monkeypatch.setattr(autograde.os, "geteuid", lambda: 0)
    monkeypatch.setattr(autograde.owner, "owner_of", lambda course: SimpleNamespace(pw_uid=1))
    monkeypatch.setattr(autograde.owner, "others_can_change", lambda course, uid: [])
    monkeypatch.setattr(autograde.owner, "run",
                        lambda account, given, **_: sent.append(given) or 0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "downloads").mkdir()
    assert autograde.main(["downloads", "--course", ".", "--students", "map.csv",
                           "--replace"]) == 0
    assert sent == [[str(tmp_path / "downloads"), "--course", str(tmp_path), "--limit",
                     str(autograde.sandbox.DEFAULT_LIMITS.wall), "--students",
                     str(tmp_path / "map.csv"), "--replace"]]

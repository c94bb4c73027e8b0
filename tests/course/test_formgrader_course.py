"""The course's formgrader without a browser (``make formgrader``; the browser's view is
tests/browser/test_formgrader.py): the rubric read from the instructor guide, one section per
written answer and a missing one named; students named from the roster or by their id; the
submission's page rendered with MathML, the rubric beside each answer and the student named;
the list pages that show names; and the server's command line."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbgrader.api import Gradebook

from course.assignment import config, paths
from course.authoring import release
from course.classroom import formgrader, formgrader_view, rubric

QUESTIONS = ["reflection_clipping", "reflection_resume", "reflection_accumulation",
             "reflection_optimizer_memory", "reflection_schedule",
             "reflection_checkpoint_interval"]


# ----------------------------------------------------------------------------- the rubric
def test_each_written_answer_has_exactly_one_rubric_section() -> None:
    answers = rubric.written_answers()
    assert list(answers) == QUESTIONS
    found = rubric.for_answers()
    assert list(found) == QUESTIONS
    assert sum(section.points for section in found.values()) == 14
    for grade_id, section in found.items():
        assert section.points == answers[grade_id]
        assert section.text.startswith("- Full marks:"), section.text[:80]
        assert "0 points" in section.text and "### " not in section.text
        guide_line = release.GUIDE.read_text().splitlines()[section.line - 1]
        assert guide_line.startswith(f"### `{grade_id}` ({section.points} points): ")
    # every line of the rubric a release scan forbids is in a section (one source)
    parsed = "\n".join(f"{s.title}\n{s.text}" for s in found.values())
    assert all(line in parsed or line.startswith("### ") for line in release.rubric_lines())


def _guide(tmp_path: Path, edit: callable) -> Path:  # type: ignore[valid-type]
    guide = tmp_path / "instructor-guide.md"
    guide.write_text(edit(release.GUIDE.read_text()))
    return guide


def _without(text: str, grade_id: str) -> str:
    return re.sub(rf"^### `{grade_id}` .*?(?=^### |^<!-- END RUBRIC -->)", "", text,
                  flags=re.S | re.M)


def test_a_missing_rubric_section_is_named(tmp_path: Path) -> None:
    guide = _guide(tmp_path, lambda text: _without(text, "reflection_schedule"))
    assert "reflection_schedule" not in rubric.sections(guide)
    with pytest.raises(rubric.MissingRubric, match=r"instructor-guide\.md: no rubric section "
                                                   r"for reflection_schedule \("):
        rubric.for_answers(guide=guide)


def test_a_second_section_a_bad_heading_or_wrong_points_is_refused(tmp_path: Path) -> None:
    text = release.GUIDE.read_text()
    section = re.search(r"^### `reflection_resume` .*?(?=^### )", text, re.S | re.M).group(0)
    twice = _guide(tmp_path, lambda t: t.replace(section, section + section))
    with pytest.raises(rubric.RubricError, match=r"line \d+: a second rubric section for "
                                                 r"reflection_resume \(the first is at line"):
        rubric.sections(twice)
    bad = _guide(tmp_path, lambda t: t.replace("### `reflection_resume` (3 points):",
                                               "### reflection_resume (3 points):"))
    with pytest.raises(rubric.RubricError, match=r"line \d+: '### reflection_resume .*' is not "
                                                 "a rubric heading"):
        rubric.sections(bad)
    points = _guide(tmp_path, lambda t: t.replace("### `reflection_resume` (3 points):",
                                                  "### `reflection_resume` (2 points):"))
    with pytest.raises(rubric.RubricError, match="the rubric of reflection_resume says 2 "
                                                 "points, the notebook 3"):
        rubric.for_answers(guide=points)
    unmarked = _guide(tmp_path, lambda t: t.replace("<!-- BEGIN RUBRIC -->", ""))
    with pytest.raises(rubric.RubricError, match="no rubric between"):
        rubric.sections(unmarked)
    with pytest.raises(rubric.RubricError, match="cannot read the instructor guide"):
        rubric.sections(tmp_path / "missing.md")


# ----------------------------------------------------------------------------- names
@pytest.fixture(scope="module")
def gradebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gradebook of three students: alice (added by autograde: no name), bob (named by hand
    in Manage Students) and carol; made once (nbgrader stamps a new one with `alembic`, a few
    seconds), copied by each test."""
    folder = tmp_path_factory.mktemp("gradebook")
    shutil.copy(paths.COURSE / config.CONFIG_FILE, folder / config.CONFIG_FILE)
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"  # its alembic
    try:
        with Gradebook(config.db_url(folder), config.course_id(folder)) as book:
            book.add_student("alice")
            book.add_student("bob", first_name="Bob", last_name="Builder")
            book.add_student("carol")
    finally:
        os.environ["PATH"] = path
    return folder / "gradebook.db"


@pytest.fixture
def course(tmp_path: Path, gradebook: Path) -> Path:
    """A course root with the course's settings and its own copy of ``gradebook``."""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(paths.COURSE / config.CONFIG_FILE, course / config.CONFIG_FILE)
    shutil.copy(gradebook, course / "gradebook.db")
    return course


def _names(course: Path) -> dict[str, tuple[str | None, str | None]]:
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        return {s.id: (s.first_name, s.last_name) for s in gradebook.students}


def test_students_without_a_roster_are_named_by_their_id(course: Path) -> None:
    assert formgrader.name_students(course) == {"alice": "alice", "carol": "carol"}
    assert _names(course) == {"alice": (None, "alice"), "bob": ("Bob", "Builder"),
                              "carol": (None, "carol")}
    assert formgrader.name_students(course) == {}  # nothing left to name


def test_the_roster_names_the_students_it_lists(course: Path) -> None:
    (course / formgrader.ROSTER).write_text(
        "id,first_name,last_name,email\ncarol,Carol,Danvers,c@example.org\n"
        "bob,Robert,Builder,\ndave,Dave,Lister,\nalice,Alice,\n")
    assert formgrader.name_students(course) == {
        "alice": "Alice", "bob": "Builder, Robert", "carol": "Danvers, Carol"}
    assert _names(course) == {"alice": ("Alice", None), "bob": ("Robert", "Builder"),
                              "carol": ("Carol", "Danvers")}  # dave has not submitted


def test_no_gradebook_yet_names_nobody_and_makes_none(tmp_path: Path) -> None:
    shutil.copy(paths.COURSE / config.CONFIG_FILE, tmp_path / config.CONFIG_FILE)
    assert formgrader.name_students(tmp_path) == {}
    assert not (tmp_path / "gradebook.db").exists()


@pytest.mark.parametrize(("text", "said"), [
    ("id,first_name\nalice,Alice\n", r"roster\.csv: expected the columns id,first_name,"
                                     r"last_name in its first line; missing: last_name"),
    ("id,first_name,last_name\nalice,A,L\nalice,A,L\n", r"roster\.csv, line 3: 'alice' is "
                                                        "listed twice"),
    ("id,first_name,last_name\n,A,L\n", r"roster\.csv, line 2: no student id"),
    ("id,first_name,last_name\nalice,A," + "L" * 129 + "\n", r"roster\.csv, line 2: a name "
                                                            "of 'alice' is longer"),
])
def test_a_roster_that_cannot_be_read_is_named_with_its_line(course: Path, text: str,
                                                             said: str) -> None:
    (course / formgrader.ROSTER).write_text(text)
    with pytest.raises(formgrader.RosterError, match=said):
        formgrader.name_students(course)
    assert _names(course)["alice"] == (None, None)  # nothing written


def test_a_student_is_shown_by_name_never_none() -> None:
    assert formgrader.shown_name("alice", None, None) == "alice"
    assert formgrader.shown_name("alice", None, "alice") == "alice"
    assert formgrader.shown_name("alice", "Alice", "Liddell") == "Liddell, Alice"
    assert formgrader.shown_name("alice", "Alice", "") == "Alice"


# ----------------------------------------------------------------------------- the view
def _submission_page(student: str = "alice<img src=x onerror=alert(1)>",
                     first: str | None = None, last: str | None = None) -> str:
    notebook = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
    resources = {"assignment_id": paths.ASSIGNMENT, "notebook_id": "07_training",
                 "submission_id": "abc", "index": 2, "total": 3, "base_url": "",
                 "student": student, "first_name": first, "last_name": last,
                 "notebook_path": "./autograded/x/07_training/07_training.ipynb"}
    html, _ = formgrader_view.FormgradeExporter().from_notebook_node(notebook, resources)
    return html


def test_the_submission_page_has_mathml_the_rubric_and_the_students_name() -> None:
    html = _submission_page()
    assert "mathjax" not in html.lower() and html.count("<math") >= 10
    for grade_id, section in rubric.for_answers().items():
        aside = re.search(rf'<aside[^>]*data-grade-id="{grade_id}"[^>]*>(.*?)</aside>', html,
                          re.S)
        assert aside, grade_id
        assert section.title in aside.group(1)
    assert "Submission #" not in html
    bar = re.search(r"<nav.*?</nav>", html, re.S).group(0)
    title = re.search(r'<h4 class="panel-title">.*?</h4>', html, re.S).group(0)
    assert "None" not in bar + title, bar + title
    assert "<img src=x" not in html  # the id a student chose is escaped
    assert "alice&lt;img src=x onerror=alert(1)&gt;" in html
    named = _submission_page("alice", "Alice", "Liddell")
    assert re.search(r'class="student-name">Liddell, Alice</span>\s*<span class="student-id">'
                     r"\(alice\)", named)


def test_a_missing_section_shows_beside_its_answer() -> None:
    aside = formgrader_view.rubric_aside("reflection_new", {}, None, str)
    assert "rubric-missing" in aside and "no rubric section for reflection_new" in aside


def test_the_list_pages_show_names() -> None:
    pages = formgrader_view.pages_environment()
    listed = pages.get_template("gradebook_notebook_submissions.tpl").render(
        base_url="", assignment_id="07_training", notebook_id="07_training")
    assert ".name-hidden { display: none; }" in listed and "Hide All Names" in listed
    assert "<th>Student</th>" in listed and "gradebook_notebook_submissions.js" in listed
    for page, view in [("manage_students.tpl", "StudentUI"),
                       ("manage_submissions.tpl", "SubmissionUI")]:
        html = pages.get_template(page).render(base_url="", assignment_id="07_training")
        assert f"var View = {view}" in html and "shownName" in html, page
    # a page the course leaves alone is nbgrader's
    assert "Manage Assignments" in pages.get_template("manage_assignments.tpl").render(
        base_url="", url_prefix=".", windows=False, course_id="c", exchange="",
        exchange_missing=False, current_config="{}", default_timezone="UTC")


def test_install_replaces_nbgrader_s_exporter_and_pages_only_when_it_is_loaded() -> None:
    log = SimpleNamespace(warning=lambda *a: None, info=lambda *a: None)
    assert formgrader_view.install({}, log) is False
    settings = {"nbgrader_formgrader": SimpleNamespace(config=None),
                "nbgrader_exporter": object(), "nbgrader_jinja2_env": object()}
    assert formgrader_view.install(settings, log) is True
    assert isinstance(settings["nbgrader_exporter"], formgrader_view.FormgradeExporter)
    assert settings["nbgrader_jinja2_env"].get_template("manage_students.tpl")


# ----------------------------------------------------------------------------- make formgrader
def test_the_server_command_lets_jupyter_choose_a_port_and_loads_the_extension() -> None:
    assert formgrader.EXTENSION == formgrader_view.EXTENSION
    line = formgrader.command(Path("/srv/course"))
    assert line[1:4] == ["-m", "jupyterlab", "--no-browser"]
    assert "--ServerApp.port=0" in line and "--ServerApp.ip=127.0.0.1" in line
    assert f"--ServerApp.jpserver_extensions={formgrader.EXTENSION}=True" in line
    assert "--ServerApp.root_dir=/srv/course" in line
    assert not any("token" in part for part in line)  # Jupyter's own, read from its file
    server = formgrader.Server(None, 41234, "abc123", Path("log"))  # type: ignore[arg-type]
    assert server.url == "http://127.0.0.1:41234/formgrader?token=abc123"


def test_make_formgrader_refuses_a_folder_that_is_no_course(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    assert formgrader.main(["--course", str(tmp_path)]) == 2
    assert f"--course {tmp_path}: no nbgrader_config.py there" in capsys.readouterr().err

"""hub/Dockerfile, the students' image for Zero to JupyterHub, installs what `make hub` gives a
student's server (course/classroom/hub.py): the student
wheel, the Jupyter stack at the course's pins
(course.student.environment's requirements file), jupyterhub at the `hub` extra's pin, the students'
configuration with the exchange on, nbgrader's course id, and the class that fetches feedback.
Each is compared here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from course.assignment import paths
from course.classroom import hub
from course.student import environment as student_env

DOCKERFILE = paths.REPO / "hub" / "Dockerfile"


@pytest.fixture(scope="module")
def text() -> str:
    return DOCKERFILE.read_text()


def test_it_installs_the_student_wheel_and_the_hubs_pins(text: str) -> None:
    wheel = student_env.wheel_name()
    assert f"COPY dist/{wheel} dist/student-requirements.txt" in text
    assert f"pip install --no-cache-dir /tmp/student/{wheel}" in text
    assert "-r /tmp/student/student-requirements.txt" in text
    assert ("python -m course.student.environment requirements "
            "> dist/student-requirements.txt") in text
    for pin in hub.hub_requirements():
        assert f" {pin} " in text, pin
    installed = set(re.findall(r"\b([a-z][a-z0-9_-]*)==", text))
    assert installed == {re.split("==", pin)[0] for pin in hub.hub_requirements()}, installed
    assert "course" not in re.findall(r"COPY (\S+)", text)


def test_its_configuration_is_the_students_with_the_exchange_on(text: str) -> None:
    shipped = {Path(source).relative_to("binder/jupyter-student")
               for source in re.findall(r"COPY (binder/jupyter-student/\S+)", text)}
    expected = {path.relative_to(student_env.CONFIG) for path in student_env.config_files()
                if not path.name.endswith(student_env.NO_EXCHANGE)}
    assert shipped == expected
    for relative in shipped:
        if relative.parts[0] == student_env.LAB_SETTINGS:
            where = Path("/usr/local") / student_env.LAB_SETTINGS_DIR / relative.relative_to(
                student_env.LAB_SETTINGS)
        else:
            where = Path("/usr/local/etc/jupyter") / relative
        assert f"{relative} {where.parent}/" in text.replace("binder/jupyter-student/", ""), where


def test_its_course_id_is_the_hubs_and_the_courses(text: str) -> None:
    assert f'c.CourseDirectory.course_id = "{hub.COURSE_ID}"' in text
    course = (paths.COURSE / "nbgrader_config.py").read_text()
    assert f'c.CourseDirectory.course_id = "{hub.COURSE_ID}"' in course
    assert "c.Exchange.root = " in text


def test_its_students_fetch_feedback_as_the_hubs_do(text: str) -> None:
    """Both name the student wheel's ``SafeFetchFeedback`` (tinytorch/exchange.py): the image
    has no ``course`` package to take it from."""
    named = f'c.ExchangeFactory.fetch_feedback = "{hub.FETCH_FEEDBACK}"'
    assert named in text
    assert f"c.ExchangeFactory.fetch_feedback = {hub.FETCH_FEEDBACK!r}" in hub.nbgrader_config(
        Path("/srv/nbgrader/exchange"))
    assert hub.FETCH_FEEDBACK.split(".")[0] in paths.STUDENT_PACKAGES

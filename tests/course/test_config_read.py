"""The course's tools read nbgrader's configuration as data, never run it
(``course.assignment.config.read``): trusted grading runs as root on an instructor's course,
whose ``nbgrader_config.py`` another account may have changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

from course.assignment import config, paths
from course.classroom import hub


def _nbgraders_own(path: Path) -> dict:
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


@pytest.mark.parametrize("text", [
    paths.COURSE.joinpath(config.CONFIG_FILE).read_text(),
    hub.nbgrader_config(Path("/srv/exchange"), Path("/home/instructor/course")),
    'c = get_config()\nc.CourseDirectory.db_url = "postgresql://grader@db/course"\n'
    "c.Execute.timeout = 120\nc.CourseDirectory.ignore = ['.ipynb_checkpoints', '*.pyc']\n",
])
def test_the_course_s_settings_read_as_nbgrader_runs_them(tmp_path: Path, text: str) -> None:
    path = tmp_path / config.CONFIG_FILE
    path.write_text(text)
    assert config.read(path) == _nbgraders_own(path)


@pytest.mark.parametrize("code, said", [
    ("import os\nos.system('touch {marker}')\n", "line 1"),
    ("c = get_config()\nc.CourseDirectory.db_url = __import__('os').system('touch {marker}')\n",
     "db_url is not a literal"),
    ("c = get_config()\nopen('{marker}', 'w')\n", "line 2"),
    ("c = get_config()\nc.CourseDirectory.root = c.Exchange.root = '/tmp'\n", "line 2"),
    ("c = get_config()\nc.CourseDirectory.db_url: str = f'{{open(\"{marker}\", \"w\")}}'\n",
     "line 2"),
])
def test_a_setting_that_would_run_code_is_refused_and_nothing_runs(
        tmp_path: Path, code: str, said: str) -> None:
    marker = tmp_path / "ran"
    course = tmp_path / "course"
    course.mkdir()
    (course / config.CONFIG_FILE).write_text(code.format(marker=marker))
    with pytest.raises(config.ConfigRefused, match=said) as refused:
        config.load(course)
    assert str(course / config.CONFIG_FILE) in str(refused.value)
    assert not marker.exists()


def test_nbgrader_itself_runs_such_a_file(tmp_path: Path) -> None:
    """Why the course reads instead: nbgrader's own loader runs whatever the file says."""
    marker = tmp_path / "ran"
    (tmp_path / config.CONFIG_FILE).write_text(f"import os\nos.system('touch {marker}')\n")
    _nbgraders_own(tmp_path / config.CONFIG_FILE)
    assert marker.exists()

"""One real JupyterHub for every hub test (course/classroom/hub.py, started once per session as
`make hub` starts it): an instructor and four students as real Unix accounts, the students' servers
from build/hub/student-venv, the instructor's from build/hub/instructor-venv, nbgrader's exchange
(1777) and course id. The course cycle runs first (tests are collected in file order) and the
walls are then tried on what it left: a real release, real submissions, a real gradebook.

Needs root (real Unix accounts, a server per user): skipped loudly otherwise; CI runs as root.
`make hub-deps` installs configurable-http-proxy and the hub's environments, made from a Python
every account can run (build/hub/; .ci/run does)."""

from __future__ import annotations

import gc
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_accounts import INSTRUCTOR, MISCONFIGURED, NAMES, PREFIX, STUDENTS

from course.classroom import hub as hubmod


@pytest.fixture(scope="session")
def student_python() -> Path:
    """The students' servers' environment as `make hub` uses it (build/hub/student-venv: the
    student wheel of this checkout, jupyterhub, the exchange configuration); `make hub-deps`
    made it, so this only checks it is current."""
    return hubmod.student_environment()


@pytest.fixture(scope="session")
def instructor_python() -> Path:
    """The instructor's servers' environment (build/hub/instructor-venv)."""
    return hubmod.instructor_environment()


@pytest.fixture(scope="session")
def hub(student_python: Path, instructor_python: Path) -> Iterator[hubmod.Hub]:
    if os.geteuid() != 0:
        pytest.skip("NOT TESTED: the hub tests need root (useradd, a server per user); run the "
                    "tests as root (CI does)")
    for name in NAMES:
        if hubmod.exists(name):
            if hubmod.processes_of(name):  # another test run's hub is using it
                pytest.fail(f"the account {name} exists and runs processes: another run of the "
                            "hub tests is going on; wait for it, or stop it and `userdel -r "
                            f"{name}`")
            hubmod.remove_account(name)  # left by a run that was killed before its clean-up
    if not hubmod.PROXY.is_file():
        pytest.fail(f"configurable-http-proxy is missing at {hubmod.PROXY}: run `make hub-deps`")
    if not shutil.which("runuser") or not shutil.which("useradd"):
        pytest.fail("runuser and useradd are needed (Debian's util-linux and passwd)")
    root = Path(f"/tmp/{PREFIX}-hub-{secrets.token_hex(4)}")
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    accounts = [hubmod.Account(INSTRUCTOR, "instructor", instructor_python),
                *(hubmod.Account(name, "student", student_python) for name in STUDENTS),
                hubmod.Account(MISCONFIGURED, "student", instructor_python)]
    made = hubmod.Hub(accounts, root=root, port=hubmod.free_port(),
                      service_token=secrets.token_hex(24))
    try:
        with made.running(instructor_python):
            yield made
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for name in NAMES:
            assert not hubmod.exists(name), f"{name} was not removed"
        # a socket these tests left open would warn whenever it is collected, in a later
        # module's test: collect now, so it is reported here, as the hub tests' own
        gc.collect()

"""The walls between accounts, on the session's real JupyterHub (tests/hub/conftest.py): code
runs in a student's own kernel, started through the hub's REST API (a service token with the
admin role starts their server), through the server's REST API and the kernel's websocket. That
kernel cannot read the instructor's course folder or gradebook, another student's home, nor list
the submissions in the exchange's inbound; it can read what nbgrader releases (outbound); it
cannot import `course`; it cannot remove another account's file from the exchange root (sticky
bit). It runs after the course cycle (test_course_cycle.py), on the real release, submissions
and gradebook; run alone, it seeds stand-ins for whatever is missing.

The walls are asserted by one function, `breaches`, and two variants show it catches what it
must: a student whose server runs from the instructor's environment (`import course` works,
its Python is the instructor's), and the exchange made world-writable without the sticky bit."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from hub_accounts import (
    ALICE,
    BOB,
    INSTRUCTOR,
    MISCONFIGURED,
    as_account,
    close_websocket,
    create,
    open_websocket,
    start_server,
)

from course.classroom import hub as hubmod

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("seeded")]

STUDENT, CLASSMATE = ALICE, BOB


@pytest.fixture(scope="module")
def seeded(hub: hubmod.Hub) -> hubmod.Hub:
    """What the walls guard, made only where the course cycle left nothing: a gradebook in the
    instructor's course, the exchange as nbgrader's release_assignment leaves it (outbound 755,
    inbound 2733, owned by the instructor), a classmate's submission in inbound; always a file
    of the classmate's home and a file of the instructor's in the exchange root."""
    course = hub.account(INSTRUCTOR).home / hubmod.COURSE_FOLDER
    exchange = hub.exchange / hubmod.COURSE_ID
    released = exchange / "outbound" / "07_training" / "07_training.ipynb"
    script = (
        "import os\n"
        f"if not os.path.exists({str(course / 'gradebook.db')!r}):\n"
        f"    open({str(course / 'gradebook.db')!r}, 'w').write('grades')\n"
        f"if not os.path.exists({str(released)!r}):\n"
        f"    for sub, mode in (('outbound/07_training', 0o755), ('inbound', 0o2733)):\n"
        f"        os.makedirs(os.path.join({str(exchange)!r}, sub), exist_ok=True)\n"
        f"        os.chmod(os.path.join({str(exchange)!r}, sub), mode)\n"
        f"    os.chmod({str(exchange)!r}, 0o755)\n"
        f"    open({str(released)!r}, 'w').write('{{}}')\n"
        f"open({str(hub.exchange / 'instructor-file')!r}, 'w').write('mine')\n")
    classmate = (
        f"import glob, os\ninbound = {str(exchange / 'inbound')!r}\n"
        f"if not glob.glob(os.path.join(inbound, '{CLASSMATE}+*')):\n"
        f"    d = os.path.join(inbound, '{CLASSMATE}+07_training+2026-12-06 10:00:00 x1y2')\n"
        "    os.mkdir(d)\n"
        "    open(os.path.join(d, '07_training.ipynb'), 'w').write('answers')\n"
        "open(os.path.expanduser('~/notes.txt'), 'w').write('mine')\n")
    for account, code in ((INSTRUCTOR, script), (CLASSMATE, classmate)):
        as_account(hub, account, [str(hub.account(account).python), "-c", code], timeout=60)
    return hub


PROBE = r"""
import getpass, importlib.util, json, os, sys
def attempt(action):
    try:
        action()
        return "allowed"
    except PermissionError:
        return "denied"
    except FileNotFoundError:
        return "missing"
paths = json.loads(PATHS)
probe = os.path.join(paths["exchange"], "instructor-file")
def move():
    os.rename(probe, probe + ".moved")
    os.rename(probe + ".moved", probe)
print(json.dumps({
    "user": getpass.getuser(), "prefix": sys.prefix,
    "import course": importlib.util.find_spec("course") is not None,
    "read course folder": attempt(lambda: os.listdir(paths["course"])),
    "read gradebook": attempt(lambda: open(paths["gradebook"]).read()),
    "read classmate's home": attempt(lambda: os.listdir(paths["classmate"])),
    "list submissions": attempt(lambda: os.listdir(paths["inbound"])),
    "read release": attempt(lambda: open(paths["released"]).read()),
    "move instructor's exchange file": attempt(move),
}))
"""


def _paths(hub: hubmod.Hub) -> dict[str, str]:
    course = hub.account(INSTRUCTOR).home / hubmod.COURSE_FOLDER
    exchange = hub.exchange / hubmod.COURSE_ID
    return {"course": str(course), "gradebook": str(course / "gradebook.db"),
            "classmate": str(hub.account(CLASSMATE).home), "exchange": str(hub.exchange),
            "inbound": str(exchange / "inbound"),
            "released": str(exchange / "outbound" / "07_training" / "07_training.ipynb")}


def breaches(seen: dict, student: str, student_prefix: Path) -> list[str]:
    """Every wall the student's kernel got through (empty: all hold)."""
    wanted = {"user": student, "prefix": str(student_prefix), "import course": False,
              "read course folder": "denied", "read gradebook": "denied",
              "read classmate's home": "denied", "list submissions": "denied",
              "read release": "allowed", "move instructor's exchange file": "denied"}
    return [f"{wall}: {seen.get(wall)!r}, expected {value!r}" for wall, value in wanted.items()
            if seen.get(wall) != value]


async def _execute(url: str, token: str, code: str, timeout: float = 60) -> str:
    """Run ``code`` in a new kernel of the server at ``url`` (REST and the kernel websocket);
    its stdout, or fail with its error."""
    kernel = create(url, token, "kernels")["id"]
    connection = await open_websocket(url, token, f"/api/kernels/{kernel}/channels")
    msg_id = uuid.uuid4().hex
    connection.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
    out, error = [], None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = await asyncio.wait_for(connection.read_message(), deadline - time.monotonic())
        assert raw is not None, "the kernel's websocket closed"
        message = json.loads(raw)
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = message["header"]["msg_type"]
        if kind == "stream":
            out.append(message["content"]["text"])
        elif kind == "error":
            error = "\n".join(message["content"]["traceback"])
        elif kind == "status" and message["content"]["execution_state"] == "idle":
            break
    await close_websocket(connection)
    assert error is None, error
    return "".join(out)


def _probe(hub: hubmod.Hub, name: str) -> dict:
    start_server(hub, name)
    code = f"PATHS = {json.dumps(json.dumps(_paths(hub)))}\n{PROBE}"
    out = asyncio.run(_execute(f"{hub.url}/user/{name}", hub.service_token, code))
    return json.loads(out.strip().splitlines()[-1])


def test_a_students_kernel_stays_behind_every_wall(hub: hubmod.Hub,
                                                   student_python: Path) -> None:
    seen = _probe(hub, STUDENT)
    assert breaches(seen, STUDENT, student_python.parent.parent) == [], seen
    # the exchange root keeps its sticky bit through the hub's and nbgrader's use
    assert oct(hub.exchange.stat().st_mode & 0o7777) == "0o1777"


def test_the_walls_catch_a_server_from_the_instructors_environment(
        hub: hubmod.Hub, student_python: Path) -> None:
    seen = _probe(hub, MISCONFIGURED)
    found = breaches(seen, MISCONFIGURED, student_python.parent.parent)
    assert any(b.startswith("import course: True") for b in found), found
    assert any(b.startswith("prefix: ") for b in found), found


def test_the_walls_catch_an_exchange_without_the_sticky_bit(
        hub: hubmod.Hub, student_python: Path) -> None:
    hub.exchange.chmod(0o777)
    try:
        seen = _probe(hub, STUDENT)
    finally:
        hub.exchange.chmod(0o1777)
    found = breaches(seen, STUDENT, student_python.parent.parent)
    assert found == ["move instructor's exchange file: 'allowed', expected 'denied'"], found

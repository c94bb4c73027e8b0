"""The hub's real terminals have the commands the guide names: a terminal opened in a server
(JupyterLab's, a login shell, through the server's REST API and terminal websocket, as the
browser opens it) finds ``nbgrader`` for the instructor and ``tinytorch`` for a student, each
from that account's environment."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import pytest
from hub_accounts import ALICE, INSTRUCTOR, close_websocket, create, open_websocket, start_server

from course.classroom import hub as hubmod

pytestmark = pytest.mark.slow
DONE = "terminal-done"


async def _in_terminal(url: str, token: str, line: str, timeout: float = 60) -> str:
    """What the terminal shows for ``line``, typed into a new terminal of the server at
    ``url``, up to the line the shell prints when it is done."""
    name = create(url, token, "terminals")["name"]
    connection = await open_websocket(url, token, f"/terminals/websocket/{name}")
    # the shell prints the marker computed, so the typed line's echo never ends the wait
    connection.write_message(json.dumps(["stdin", f"{line}; echo terminal-$((1+1))one\r"]))
    shown = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(connection.read_message(), deadline - time.monotonic())
            assert raw is not None, "the terminal's websocket closed"
            kind, *content = json.loads(raw)
            if kind == "stdout":
                shown.append(content[0])
                if "terminal-2one" in "".join(shown):
                    break
    finally:
        await close_websocket(connection)
        delete = urllib.request.Request(f"{url}/api/terminals/{name}", method="DELETE",
                                        headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(delete, timeout=30).close()
    text = "".join(shown)
    assert "terminal-2one" in text, f"the terminal did not finish: {text[-2000:]!r}"
    return text


def _shell(hub: hubmod.Hub, name: str, line: str) -> str:
    start_server(hub, name)
    return asyncio.run(_in_terminal(f"{hub.url}/user/{name}", hub.service_token, line))


def test_the_instructors_terminal_finds_nbgrader(hub: hubmod.Hub,
                                                 instructor_python: Path) -> None:
    shown = _shell(hub, INSTRUCTOR, "command -v nbgrader && nbgrader --version")
    assert f"{instructor_python.parent}/nbgrader" in shown, shown
    assert "command not found" not in shown


def test_a_students_terminal_finds_tinytorch(hub: hubmod.Hub, student_python: Path) -> None:
    shown = _shell(hub, ALICE, "command -v tinytorch && tinytorch --help | head -1")
    assert f"{student_python.parent}/tinytorch" in shown, shown
    assert "command not found" not in shown

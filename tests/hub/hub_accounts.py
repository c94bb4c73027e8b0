"""The hub tests' accounts and what they do as those accounts: start a server through the hub's
REST API, run a command the way a server's terminal runs it (tests/hub/conftest.py starts the
hub)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from course.classroom import hub as hubmod

PREFIX = "ttw"  # account names of these tests: never the demo's (make hub may run beside it)
INSTRUCTOR = f"{PREFIX}-instructor"
ALICE, BOB, CAROL = f"{PREFIX}-alice", f"{PREFIX}-bob", f"{PREFIX}-carol"
#: A student whose server is (wrongly) the instructor's environment: the walls must catch it.
MISCONFIGURED = f"{PREFIX}-mallory"
STUDENTS = (ALICE, BOB, CAROL)
NAMES = (INSTRUCTOR, *STUDENTS, MISCONFIGURED)



def hub_log(hub: hubmod.Hub) -> str:
    return (hub.run_dir / "jupyterhub.log").read_text(errors="replace")[-4000:]


def start_server(hub: hubmod.Hub, name: str) -> None:
    """``name``'s server started through the hub's REST API (if it is not running), ready."""
    try:
        if not hub.api(f"/users/{name}")["servers"].get("", {}).get("ready"):
            hub.api(f"/users/{name}/server", method="POST")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if hub.api(f"/users/{name}")["servers"].get("", {}).get("ready"):
                return
            time.sleep(0.5)
    except urllib.error.HTTPError as error:
        pytest.fail(f"the hub refused to start {name}'s server ({error}); its log:\n"
                    f"{hub_log(hub)}")
    pytest.fail(f"{name}'s server did not become ready in 90 s; the hub's log:\n{hub_log(hub)}")


def as_account(hub: hubmod.Hub, name: str, command: list[str], *, cwd: Path | None = None,
               timeout: float = 300) -> str:
    """``command`` run as ``name`` the way their server's terminal runs it (their home, their
    server's environment and nbgrader configuration); its output, or fail with it."""
    account = hub.account(name)
    role = name if account.role == "instructor" else "student"
    env = {"HOME": str(account.home), "USER": name, "LOGNAME": name, "LANG": "C.UTF-8",
           "PATH": f"{account.python.parent}:/usr/local/bin:/usr/bin:/bin",
           "JUPYTER_CONFIG_PATH": str(hub.config_folder(role))}
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    done = subprocess.run([runuser, "-u", name, "--", *command], cwd=cwd or account.home,
                          env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(command)}` as {name} failed ({done.returncode}):\n"
                    f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def create(url: str, token: str, collection: str) -> dict[str, Any]:
    """A new kernel or terminal of the server at ``url`` (its REST API: ``/api/kernels``,
    ``/api/terminals``), as the browser makes one."""
    request = urllib.request.Request(f"{url}/api/{collection}", data=b"{}", method="POST",
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


async def open_websocket(url: str, token: str, path: str) -> Any:
    """The server's websocket at ``path`` (a kernel's channels, a terminal)."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    return await websocket_connect(HTTPRequest(url.replace("http://", "ws://") + path,
                                               headers={"Authorization": f"token {token}"}))


async def close_websocket(connection: Any) -> None:
    """Close ``connection`` and wait for the server's answer, then its socket: tornado's
    close() only starts the closing handshake, and a loop that ends first leaks the socket."""
    stream = connection.protocol.stream
    connection.close()
    closing = time.monotonic() + 5
    while not stream.closed() and time.monotonic() < closing:
        await asyncio.sleep(0.05)
    stream.close()


async def _typed(url: str, token: str, line: str, timeout: float) -> tuple[int, str]:
    name = create(url, token, "terminals")["name"]
    connection = await open_websocket(url, token, f"/terminals/websocket/{name}")
    # the shell prints the status and a marker it computes, so the typed line's echo (which
    # shows `$((1+1))` as typed) never ends the wait
    connection.write_message(json.dumps(
        ["stdin", f"{line}\recho \"tt-status=$?:$((1+1))one\"\r"]))
    shown: list[str] = []
    deadline = time.monotonic() + timeout
    found = None
    try:
        while found is None and time.monotonic() < deadline:
            raw = await asyncio.wait_for(connection.read_message(), deadline - time.monotonic())
            assert raw is not None, "the terminal's websocket closed"
            kind, *content = json.loads(raw)
            if kind == "stdout":
                shown.append(content[0])
                found = _STATUS.search("".join(shown))
    finally:
        await close_websocket(connection)
        delete = urllib.request.Request(f"{url}/api/terminals/{name}", method="DELETE",
                                        headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(delete, timeout=30).close()
    text = "".join(shown)
    assert found is not None, f"the terminal did not finish `{line}`: {text[-2000:]!r}"
    return int(found.group(1)), text


_STATUS = re.compile(r"tt-status=(\d+):2one")


def in_terminal(hub: hubmod.Hub, name: str, line: str, timeout: float = 300) -> tuple[int, str]:
    """``line`` typed into a new terminal of ``name``'s server (JupyterLab's terminal: a login
    shell, through the server's REST API and terminal websocket, as the browser opens it);
    the shell's exit status for it and what the terminal showed."""
    start_server(hub, name)
    # a loop of its own, in a thread of its own: playwright's sync API runs one in this thread
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, _typed(f"{hub.url}/user/{name}", hub.service_token,
                                                 line, timeout)).result()


#: Seconds from the hub's login form to a ready JupyterLab (the server's spawn included).
LOGIN_TIMEOUT = 120.0


def log_in(page: Any, hub: hubmod.Hub, name: str) -> None:
    """``name`` logs in through the hub's login page in the browser ``page`` (playwright's),
    until their JupyterLab is ready; or fail, saying what the page shows."""
    page.goto(f"{hub.url}/hub/login", wait_until="domcontentloaded")
    page.fill("#username_input", name)
    page.fill("#password_input", hub.account(name).password)
    page.click("#login_submit")
    try:
        page.wait_for_url(re.compile(rf"/user/{name}/lab"), timeout=LOGIN_TIMEOUT * 1000)
        page.locator("#jp-MainMenu").wait_for(timeout=LOGIN_TIMEOUT * 1000)
    except Exception as error:  # noqa: BLE001 - Playwright's TimeoutError: say what was seen
        pytest.fail(f"{name} logged in but no JupyterLab within {LOGIN_TIMEOUT:.0f} s ({error}); "
                    f"the page at {page.url} reads "
                    f"{page.locator('body').inner_text()[:500]!r}")

"""A JupyterLab server for the browser tests; the browser itself (Debian's chromium driven by
Playwright: ``page``, ``screenshot``) is in tests/conftest.py, shared with the hub's course cycle.

The server runs from this venv (so it finds the venv's kernelspec and prebuilt lab extensions
through ``sys.prefix``) in a temporary folder holding a copy of the notebook, on a free port of
127.0.0.1, with a random token. Its user-level folders (config, data, runtime, settings,
workspaces, IPython profile) are temporary too, so nothing from the machine's home folder leaks
in and nothing is written there; the venv is never modified. The lab settings turn windowed
rendering off (every cell stays in the DOM) and news and update checks off (no popups).
``start_jupyterlab`` starts further servers the same way, in a folder and with Jupyter
configuration of the test's choosing (``JUPYTER_CONFIG_PATH``, and the lab's application
settings folder, where setting defaults are read from ``overrides.d``), with or without these
user settings, and with environment variables of its choosing. ``JupyterLab.in_terminal``
types lines into a new terminal of a server (its REST API and terminal websocket, as the lab
opens one) and returns what it shows. ``start_formgrader`` starts the course's formgrader as
``make formgrader`` does (``python -m course.classroom.formgrader``, with the same temporary
user folders) and reads the URL it prints.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "source" / "07_training" / "07_training.ipynb"

SERVER_START_TIMEOUT = 60.0  # seconds until /api/status answers
SERVER_STOP_TIMEOUT = 15.0  # seconds between terminate and kill
OPEN_TIMEOUT = 90.0  # seconds for a notebook to open with an idle kernel
TERMINAL_TIMEOUT = 30.0  # seconds for a new terminal to run a few short lines
#: What ``JupyterLab.in_terminal``'s last line prints (``$((1+1))`` computed by the shell).
TERMINAL_DONE = "tt-done=2"

# User settings of the lab, as <plugin>.jupyterlab-settings files under JUPYTERLAB_SETTINGS_DIR.
LAB_SETTINGS = {
    # Windowed rendering keeps only the cells near the viewport in the DOM: render them all.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # No "receive Jupyter news?" toast over the notebook in the screenshots.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
}


@dataclass
class JupyterLab:
    """A running server: where it is, how to get in, and its log."""

    base_url: str
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}?token={self.token}"

    def open_notebook(self, page: Page, name: str, timeout: float = OPEN_TIMEOUT) -> None:
        """Open the notebook ``name`` in ``page`` and wait until its kernel is idle; otherwise
        fail with what the page showed and the server log."""
        page.goto(self.url(f"/lab/tree/{name}"), wait_until="domcontentloaded")
        try:
            page.wait_for_function(
                """(path) => {
                  const app = window.jupyterapp;
                  if (!app) return false;
                  const panel = Array.from(app.shell.widgets("main")).find(
                    (w) => w.context && w.context.path === path && w.sessionContext);
                  if (!panel || !panel.context.isReady || !panel.sessionContext.isReady) {
                    return false;
                  }
                  const kernel = panel.sessionContext.session &&
                    panel.sessionContext.session.kernel;
                  return kernel && kernel.status === "idle" && panel.content.widgets.length > 0;
                }""",
                arg=name,
                timeout=timeout * 1000,
            )
        except Exception as error:  # Playwright's TimeoutError: say what was seen instead
            pytest.fail(
                f"expected {name} open in JupyterLab with an idle kernel within {timeout:.0f} s; "
                f"saw page {page.title()!r} at {page.url} ({error}). Server log:\n"
                f"{self.log_tail()}"
            )

    def in_terminal(self, lines: list[str], *, cwd: str | None = None,
                    timeout: float = TERMINAL_TIMEOUT) -> str:
        """What a new terminal shows for ``lines``, typed one by one: the terminal made through
        ``POST /api/terminals`` as the lab makes one (File > New > Terminal asks for no folder;
        the Launcher and "Open in Terminal" ask for ``cwd``, relative to the served folder),
        read through its websocket until the shell has run them all, then shut down."""
        import websocket  # websocket-client, a dependency of jupyter_server

        body = json.dumps({} if cwd is None else {"cwd": cwd}).encode()
        request = urllib.request.Request(self.url("/api/terminals"), data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            name = json.load(response)["name"]
        socket_url = self.url(f"/terminals/websocket/{name}").replace("http://", "ws://", 1)
        connection = websocket.create_connection(socket_url, timeout=timeout)
        shown: list[str] = []
        try:
            # The shell computes the marker, so the echo of the typed line never matches it.
            for line in [*lines, 'echo "tt-done=$((1+1))"']:
                connection.send(json.dumps(["stdin", line + "\r"]))
            deadline = time.monotonic() + timeout
            while TERMINAL_DONE not in "".join(shown):
                if time.monotonic() > deadline:
                    pytest.fail(f"the terminal did not run {lines} within {timeout:.0f} s; it "
                                f"showed {''.join(shown)[-2000:]!r}")
                kind, *content = json.loads(connection.recv())
                if kind == "stdout":
                    shown.append(content[0])
        finally:
            connection.close()
            delete = urllib.request.Request(self.url(f"/api/terminals/{name}"), method="DELETE")
            urllib.request.urlopen(delete, timeout=30).close()
        return "".join(shown)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(the server log is empty)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_lab_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))


def _server_env(home: Path, user_settings: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    # The kernel inherits this environment: under nbgrader the notebook draws nothing, and a
    # non-inline matplotlib backend would show no figure at all.
    for name in ("NBGRADER_EXECUTION", "MPLBACKEND", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH"):
        env.pop(name, None)
    folders = {
        "JUPYTER_CONFIG_DIR": home / "config",
        "JUPYTER_DATA_DIR": home / "data",  # user level only: the venv's share/jupyter stays
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": home / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / "lab-workspaces",
        "IPYTHONDIR": home / "ipython",
    }
    for name, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    if user_settings:
        _write_lab_settings(folders["JUPYTERLAB_SETTINGS_DIR"])
    env["JUPYTER_PLATFORM_DIRS"] = "1"  # no migration notice about the old locations
    return env


def _wait_until_up(lab: JupyterLab) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            pytest.fail(
                f"JupyterLab exited with code {lab.process.returncode} before answering "
                f"/api/status; expected a running server. Server log:\n{lab.log_tail()}"
            )
        try:
            with urllib.request.urlopen(lab.url("/api/status"), timeout=2) as response:
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as error:
            last_error = repr(error)
        time.sleep(0.25)
    pytest.fail(
        f"JupyterLab did not answer {lab.base_url}/api/status within {SERVER_START_TIMEOUT:.0f} s "
        f"(last attempt: {last_error}). Server log:\n{lab.log_tail()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=SERVER_STOP_TIMEOUT)


@contextmanager
def _running_lab(root_dir: Path, home: Path, log_path: Path, *, cwd: Path | None = None,
                 config_path: Path | None = None, app_settings_dir: Path | None = None,
                 user_settings: bool = True,
                 env: dict[str, str] | None = None) -> Iterator[JupyterLab]:
    """A JupyterLab serving ``root_dir``, started in ``cwd`` (default: ``root_dir``), with the
    Jupyter configuration folder ``config_path`` ahead of the venv's own (if given), the lab's
    application settings folder ``app_settings_dir`` (if given), unless ``user_settings``
    is False the user settings LAB_SETTINGS, and the environment variables ``env`` over
    this process's."""
    port, token = _free_port(), secrets.token_hex(24)
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # fail loudly rather than serve elsewhere
        f"--ServerApp.root_dir={root_dir}",
        f"--IdentityProvider.token={token}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run commands
    ]
    if os.getuid() == 0:
        command.append("--allow-root")
    if app_settings_dir is not None:
        command.append(f"--LabApp.app_settings_dir={app_settings_dir}")
    env = {**_server_env(home, user_settings), **(env or {})}
    if config_path is not None:
        env["JUPYTER_CONFIG_PATH"] = str(config_path)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd or root_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    lab = JupyterLab(f"http://127.0.0.1:{port}", token, root_dir, log_path, process)
    try:
        _wait_until_up(lab)
        yield lab
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """JupyterLab serving a folder with a copy of the Module 07 notebook."""
    assert NOTEBOOK.is_file(), f"expected the generated notebook at {NOTEBOOK}; it is missing"
    base = tmp_path_factory.mktemp("jupyterlab")
    root_dir, home = base / "course", base / "home"
    root_dir.mkdir()
    shutil.copy2(NOTEBOOK, root_dir / NOTEBOOK.name)
    with _running_lab(root_dir, home, base / "jupyterlab.log") as lab:
        yield lab


@pytest.fixture(scope="module")
def start_jupyterlab(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., JupyterLab]]:
    """``start_jupyterlab(root_dir, cwd=None, config_path=None, app_settings_dir=None,
    user_settings=True, env=None)`` starts a JupyterLab serving ``root_dir`` (a folder the
    test filled), launched from ``cwd`` (as ``make lab`` launches from the repository), with
    ``config_path`` put in ``JUPYTER_CONFIG_PATH`` so that its server and lab configuration
    override the venv's, and the others as ``_running_lab`` takes them. Every server started
    is stopped at the end of the module."""
    with ExitStack() as servers:

        def start(root_dir: Path, *, cwd: Path | None = None, config_path: Path | None = None,
                  app_settings_dir: Path | None = None, user_settings: bool = True,
                  env: dict[str, str] | None = None) -> JupyterLab:
            base = tmp_path_factory.mktemp("jupyterlab-server")
            return servers.enter_context(_running_lab(
                root_dir, base / "home", base / "jupyterlab.log", cwd=cwd,
                config_path=config_path, app_settings_dir=app_settings_dir,
                user_settings=user_settings, env=env,
            ))

        yield start


# ---------------------------------------------------------------- the course's formgrader
#: The line ``make formgrader`` prints once the server answers.
FORMGRADER_LINE = re.compile(r"^formgrader: (http://127\.0\.0\.1:\d+)/formgrader\?token=(\w+)$")


@dataclass
class Formgrader(JupyterLab):
    """``make formgrader``'s server: what its command printed, how long until it printed the
    URL, and the server's own process id (the command's child)."""

    printed: list[str]
    seconds_to_url: float
    server_pid: int


def _read_lines(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line.rstrip("\n"))
    lines.put(None)


@contextmanager
def _running_formgrader(course: Path, home: Path, log_path: Path) -> Iterator[Formgrader]:
    """``python -m course.classroom.formgrader --course course`` until its URL is printed;
    stopped (SIGTERM, as Ctrl-C) on leaving, which must stop its server too."""
    env = _server_env(home)
    command = [sys.executable, "-m", "course.classroom.formgrader", "--course", str(course),
               "--log", str(log_path)]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    printed: list[str] = []
    found = None
    try:
        deadline = started + SERVER_START_TIMEOUT
        while found is None:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                log = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
                pytest.fail(f"expected `make formgrader` to print 'formgrader: http://127.0.0.1:"
                            f"PORT/formgrader?token=...' within {SERVER_START_TIMEOUT:.0f} s; "
                            f"it printed {printed!r} (exit code {process.poll()}). Server "
                            f"log:\n{log}")
            printed.append(line)
            found = FORMGRADER_LINE.match(line)
        seconds = time.monotonic() - started
        runtime = list((home / "runtime").glob("jpserver-*.json"))
        assert len(runtime) == 1, f"expected one server's runtime file, found {runtime}"
        server_pid = int(json.loads(runtime[0].read_text())["pid"])
        yield Formgrader(found.group(1), found.group(2), course, log_path, process,  # type: ignore[arg-type]
                         printed, seconds, server_pid)
    finally:
        _stop(process)  # type: ignore[arg-type]
        reader.join(timeout=SERVER_STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()
    # the command's SIGTERM (Ctrl-C alike) stopped its server, which cleaned up after itself
    try:
        os.kill(server_pid, 0)
    except ProcessLookupError:
        pass
    else:
        pytest.fail(f"the formgrader's server (pid {server_pid}) still runs after its command "
                    "was stopped")
    assert not list((home / "runtime").glob("jpserver-*.json")), "the server left its file"


@pytest.fixture(scope="module")
def start_formgrader(tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[Callable[[Path], Formgrader]]:
    """``start_formgrader(course)`` runs ``make formgrader``'s command for the course root
    ``course`` and returns its server once the URL is printed; stopped at the end of the
    module."""
    with ExitStack() as servers:

        def start(course: Path) -> Formgrader:
            base = tmp_path_factory.mktemp("formgrader-server")
            return servers.enter_context(
                _running_formgrader(course, base / "home", base / "formgrader.log"))

        yield start

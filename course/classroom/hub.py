"""``make hub``: a real JupyterHub on this machine for a demo class, in one command.

    python -m course.classroom.hub [--port 8000]  # as root: start it; Ctrl-C stops, removes it all

What it sets up, as the instructor guide's "On a JupyterHub with nbgrader" describes:

- **Accounts.** Real Unix users, made with ``useradd`` (so it must run as root; otherwise it
  says so and does nothing): an instructor, ``tt-instructor``, and three students,
  ``tt-alice``, ``tt-bob``, ``tt-carol``, each home readable by its owner only (0700). A
  password per account, drawn for this run and printed; the hub's authenticator
  (``DemoAuthenticator`` in the generated configuration) accepts exactly these. For a demo
  only: a production hub authenticates through the school's login (OAuth, LDAP, ...).
- **Servers.** JupyterHub's ``LocalProcessSpawner`` starts each user's server as that user. A
  student's comes from the student environment, ``build/hub/student-venv/``: the student wheel
  (Module 07 stripped, ``checks``, the ``tinytorch complete`` command), the Jupyter stack at
  the course's pins, ``jupyterhub`` (its single-user server) and the students' configuration
  with the exchange on (``course.student.environment.install_config(exchange=True)``): no solution,
  no ``course``, no formgrader. The instructor's comes from the instructor's environment,
  ``build/hub/instructor-venv/`` (this repository installed editable with the course's Jupyter
  stack and jupyterhub: nbgrader's formgrader and every course tool; the hub itself runs from
  it too), in a home holding the course root ``~/course`` (``nbgrader_config.py`` and
  ``source/``; the gradebook is made there). Both are made from a Python every account can
  run: this environment's base Python, or ``/usr/bin/python3`` when that one lives where the
  accounts cannot reach (a pyenv Python in root's 0700 home).
- **nbgrader's exchange.** ``build/hub/exchange``, mode 1777 (everyone writes, nobody removes
  another's files), and ``course_id`` ``tinytorch-07-training``, given to every server in an
  ``nbgrader_config.py`` on its ``JUPYTER_CONFIG_PATH`` (``build/hub/etc/<role>/``). There,
  the instructor's ``nbgrader collect`` is ``COLLECT`` and everyone's ``fetch_feedback`` is
  ``FETCH_FEEDBACK`` (in the student wheel): each takes only regular files of the right owner.
- **The proxy.** ``configurable-http-proxy`` from the npm registry, installed with npm into
  ``build/hub/node_modules`` (``make hub-deps``), at ``PROXY_VERSION``.

It prints the hub's address and the accounts. Ctrl-C (or SIGTERM) stops the hub, which stops
every server and the proxy; any process left running as a demo account is killed, by process
id, the accounts and their homes are removed (``userdel -r``), and so is the exchange. The
environments and the proxy stay in ``build/hub/`` for the next run.

The hub's own state (its configuration, database, cookie secret, log) is in
``build/hub/run/``, readable by root only. Everything the accounts run or reach (the
environments, the exchange, the configuration) is in ``build/hub/`` when every account can
traverse the checkout; a checkout in a private folder (mode 700, as ``mktemp -d`` makes) keeps
it instead in ``/var/lib/tinytorch-hub/<checkout>/`` (``hub_root``), where the instructor's
environment holds a copy of the course, and no account can read the checkout. On a real hub the
course lives in the instructor's home and students get an image built from the student wheel
(``hub/Dockerfile``, for Zero to JupyterHub on Kubernetes): see the instructor guide.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from course.assignment import paths
from course.classroom import formgrader
from course.student import environment as student_env


def blocked(python: Path) -> Path | None:
    """The first folder on the way to ``python`` (an interpreter, or a checkout; symlinks
    followed: a venv's ``bin/python`` points at its base Python) that other accounts cannot
    traverse, or None. A pyenv Python under ``/root`` (0700) is such a case: no demo account
    could run it."""
    for path in (python, python.resolve()):
        for folder in reversed(path.parents):
            if not folder.stat().st_mode & stat.S_IXOTH:
                return folder
    return None


#: Where the hub's environments, proxy, configuration, exchange and state live when the
#: checkout is in a private folder (``hub_root``): root's, outside every checkout.
PRIVATE_CHECKOUT_ROOT = Path("/var/lib/tinytorch-hub")


def hub_root(repo: Path = paths.REPO) -> Path:
    """``build/hub`` of the checkout ``repo`` when every account can reach it; else (a
    checkout in a folder of mode 700, as ``mktemp -d`` makes and many homes are) a folder of
    its own under ``PRIVATE_CHECKOUT_ROOT``: the accounts' servers run from there, and the
    instructor's environment holds a copy of the course instead of the checkout itself."""
    if blocked(repo) is None:
        return repo / "build" / "hub"
    return PRIVATE_CHECKOUT_ROOT / hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:16]


HUB = hub_root()
#: configurable-http-proxy from the npm registry, the version ``make hub-deps`` installs.
PROXY_VERSION = "5.3.0"
PROXY = HUB / "node_modules" / ".bin" / "configurable-http-proxy"
STUDENT_VENV = HUB / "student-venv"
#: The instructor's server (and the hub itself): this repository with the course and hub extras.
INSTRUCTOR_VENV = HUB / "instructor-venv"
INSTRUCTOR_PYTHON = INSTRUCTOR_VENV / "bin" / "python"
#: The system's Python: the hub's environments are made from it when this environment's base
#: Python is out of the accounts' reach (a pyenv or conda Python in root's home).
SYSTEM_PYTHON = Path("/usr/bin/python3")
COURSE_ID = "tinytorch-07-training"
INSTRUCTOR = "tt-instructor"
STUDENTS = ("tt-alice", "tt-bob", "tt-carol")
#: The instructor's course root, in their home.
COURSE_FOLDER = "course"
#: Seconds the hub may take to answer its API.
START_TIMEOUT = 60.0


class HubError(RuntimeError):
    """Something the hub needs is missing or refused; the message says what to do."""


def hub_requirements() -> list[str]:
    """pyproject's ``hub`` extra: ``jupyterhub`` at the course's pin."""
    return list(student_env.project()["project"]["optional-dependencies"]["hub"])


# ----------------------------------------------------------------------------- what it installs
def ensure_proxy(folder: Path = HUB) -> Path:
    """configurable-http-proxy at PROXY_VERSION in ``folder``/node_modules (npm); its path."""
    proxy = folder / "node_modules" / ".bin" / "configurable-http-proxy"
    if proxy.is_file():
        version = subprocess.run([str(proxy), "--version"], capture_output=True, text=True)
        if version.stdout.strip() == PROXY_VERSION:
            return proxy
    if shutil.which("npm") is None:
        raise HubError("npm is missing: install Node.js and npm (apt-get install nodejs npm), "
                       "then run `make hub-deps`")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["npm", "install", "--prefix", str(folder), "--no-save", "--no-audit",
                           "--no-fund", "--loglevel=error",
                           f"configurable-http-proxy@{PROXY_VERSION}"],
                          capture_output=True, text=True)
    if done.returncode != 0 or not proxy.is_file():
        raise HubError(f"npm could not install configurable-http-proxy@{PROXY_VERSION} into "
                       f"{folder}:\n{done.stdout}{done.stderr}")
    return proxy


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise HubError(f"pip install {' '.join(args)} into {python} failed:\n"
                       f"{done.stdout}{done.stderr}")


def base_python() -> str:
    """The interpreter the hub's environments are made from: every account must be able to run
    it. This environment's base Python if they can, else the system's ``/usr/bin/python3``."""
    tried = []
    for candidate in (Path(student_env.base_python()), SYSTEM_PYTHON):
        if candidate.is_file():
            folder = blocked(candidate)
            if folder is None:
                return str(candidate)
            tried.append(f"{candidate} (under {folder}, which other accounts cannot traverse)")
        else:
            tried.append(f"{candidate} (missing)")
    raise HubError("no Python every account can run, to make the hub's environments from: "
                   + "; ".join(tried) + ". Install Debian's python3 and python3-venv.")


def _usable(venv: Path) -> None:
    """Remove ``venv`` if the accounts could not run its Python (made from a Python they cannot
    reach, or broken): it is made again."""
    python = venv / "bin" / "python"
    if python.is_symlink() or python.exists():
        if not python.exists() or blocked(python) is not None:
            shutil.rmtree(venv)


def _reachable(venv: Path) -> None:
    """HubError unless every account can run ``venv``'s Python."""
    folder = blocked(venv / "bin" / "python")
    if folder is not None:
        raise HubError(f"{folder} cannot be traversed by other accounts (mode "
                       f"{stat.S_IMODE(folder.stat().st_mode):o}): no server could start from "
                       f"{venv}")


def student_environment(venv: Path = STUDENT_VENV, *, wheel: Path | None = None) -> Path:
    """The students' servers' environment in ``venv``: the student environment
    (``course.student.environment.ensure_venv``, from ``wheel`` or the wheel built now) made from a
    Python every account can run, plus the hub's single-user server (``hub_requirements``) and
    the students' configuration with the exchange on. No solution, no ``course``. Returns its
    Python."""
    _usable(venv)
    if student_env.ensure_venv(venv, wheel, base=base_python()) or not _has_hub(venv):
        _pip(venv / "bin" / "python", *hub_requirements())
    student_env.install_config(venv, exchange=True)
    _reachable(venv)
    return venv / "bin" / "python"


def _has_hub(venv: Path) -> bool:
    return any((venv / "lib").glob("python3*/site-packages/jupyterhub/singleuser"))


def instructor_environment(venv: Path = INSTRUCTOR_VENV) -> Path:
    """The instructor's servers' (and the hub's) environment in ``venv``: this repository
    installed editable with the course's Jupyter stack and jupyterhub, made from a Python every
    account can run; reinstalled only when pyproject.toml changed. Returns its Python."""
    _usable(venv)
    python = venv / "bin" / "python"
    stamp = venv / ".hub-installed"
    editable = blocked(paths.REPO) is None
    wanted = _installed_digest(editable)
    if not (python.exists() and stamp.is_file() and stamp.read_text() == wanted):
        if not python.exists():
            venv.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            made = subprocess.run([base_python(), "-m", "venv", str(venv)], capture_output=True,
                                  text=True)
            if made.returncode != 0:
                raise HubError(f"could not make {venv}:\n{made.stdout}{made.stderr}")
        stamp.unlink(missing_ok=True)
        # an account that cannot reach the checkout gets a copy of it, made again whenever
        # the course's code changes
        _pip(python, *(["-e"] if editable else []), f"{paths.REPO}[course,hub]")
        if not editable:  # the same version number, other code: the copy made anew
            _pip(python, "--force-reinstall", "--no-deps", str(paths.REPO))
        stamp.write_text(wanted)
    _reachable(venv)
    return python


def _installed_digest(editable: bool) -> str:
    """What the instructor's environment was made from: pyproject.toml, and for a copy (not
    editable) every file of the packages it copies."""
    digest = hashlib.sha256((paths.REPO / "pyproject.toml").read_bytes())
    if not editable:
        for package in ("course", *paths.STUDENT_PACKAGES):
            for path in sorted((paths.REPO / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    digest.update(str(path.relative_to(paths.REPO)).encode() + b"\0")
                    digest.update(path.read_bytes())
    return ("editable " if editable else "copy ") + digest.hexdigest()


# ----------------------------------------------------------------------------- accounts
@dataclass
class Account:
    """A demo account: its name, role, password and the Python its server runs from."""

    name: str
    role: str  # "instructor" or "student"
    python: Path
    password: str = field(default_factory=lambda: secrets.token_urlsafe(9))

    @property
    def home(self) -> Path:
        return Path("/home") / self.name


def exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def create_account(account: Account) -> None:
    """A Unix user with a home only its owner can enter; HubError if the name is taken."""
    if exists(account.name):
        raise HubError(f"the account {account.name} exists already: remove it (`userdel -r "
                       f"{account.name}`) if a demo hub left it, or choose other names")
    done = subprocess.run(["useradd", "--create-home", "--home-dir", str(account.home),
                           "--shell", "/bin/bash", "--user-group", account.name],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise HubError(f"useradd {account.name} failed: {done.stderr.strip()}")
    account.home.chmod(0o700)
    # the instructor's terminal is a login shell (JupyterLab's, started by a spawner), which
    # sets PATH anew from /etc/profile: the account's environment goes first in its
    # ~/.profile, so the commands the guide names (nbgrader, tinytorch) are found there (a
    # student's terminal puts it first itself: the students' jupyter_server_config.py)
    profile = account.home / ".profile"
    with open(profile, "a") as shell:
        shell.write(f"\n# The course's environment (make hub): its commands come first.\n"
                    f'PATH="{account.python.parent}:$PATH"\n')
    owner = pwd.getpwnam(account.name)
    os.chown(profile, owner.pw_uid, owner.pw_gid)


def processes_of(name: str) -> list[int]:
    """Process ids running as the account ``name``."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
    return found


def remove_account(name: str) -> None:
    """Kill what still runs as ``name`` (by process id), then ``userdel -r``."""
    for pid in processes_of(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while processes_of(name) and time.monotonic() < deadline:
        time.sleep(0.1)
    if exists(name):
        subprocess.run(["userdel", "--remove", name], capture_output=True, text=True)


def run_as(account: str, command: list[str], **options) -> subprocess.CompletedProcess:
    """``command`` run as ``account`` (runuser), in its home."""
    return subprocess.run(["runuser", "-u", account, "--", *command],
                          cwd=Path("/home") / account, capture_output=True, text=True, **options)


# ----------------------------------------------------------------------------- the hub's layout
#: The instructor's ``nbgrader collect`` (``course.classroom.exchange``): regular files only, from
#: the account that owns the submission.
COLLECT = "course.classroom.exchange.SafeCollect"
#: Every account's ``nbgrader fetch_feedback`` and Assignment List (``tinytorch.exchange``, in the
#: student wheel: a student's environment has no ``course``): regular files only, from the
#: account that owns the course's feedback folder.
FETCH_FEEDBACK = "tinytorch.exchange.SafeFetchFeedback"


def nbgrader_config(exchange: Path, course_root: Path | None = None) -> str:
    lines = ['"""nbgrader on the demo hub (course/classroom/hub.py): the course id and the '
             'exchange."""',
             "c = get_config()  # noqa: F821", f"c.CourseDirectory.course_id = {COURSE_ID!r}",
             f"c.Exchange.root = {str(exchange)!r}",
             f"c.ExchangeFactory.fetch_feedback = {FETCH_FEEDBACK!r}"]
    if course_root is not None:  # the instructor's: collect takes from owners only
        lines += [f"c.CourseDirectory.root = {str(course_root)!r}",
                  f"c.ExchangeFactory.collect = {COLLECT!r}"]
    return "\n".join(lines) + "\n"


#: The course's folders in the exchange, as nbgrader's release makes them, and their modes:
#: students read what is released, write submissions they cannot list, and fetch feedback
#: by its hashed name only.
COURSE_FOLDERS = {"": 0o755, "outbound": 0o755, "inbound": 0o2733, "feedback": 0o711}


def prepare_exchange(exchange: Path, instructor: str | None = None) -> None:
    """The exchange root (1777: everyone writes, nobody removes another's files), new, and
    the course's folders in it owned by ``instructor`` before any student can log in: a
    student who made the course's folder first would own what the instructor releases and
    what classmates submit."""
    if exchange.exists():  # a killed run's: whatever an account left in it goes with it
        shutil.rmtree(exchange)
    exchange.mkdir(parents=True)
    os.chown(exchange, 0, 0)
    exchange.chmod(0o1777)
    if instructor is None:
        return
    owner = pwd.getpwnam(instructor)
    for name, mode in COURSE_FOLDERS.items():
        folder = exchange / COURSE_ID / name
        folder.mkdir(exist_ok=True)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        folder.chmod(mode)


def instructor_course(account: Account) -> Path:
    """The course root in the instructor's home, as ``make release`` leaves a course:
    nbgrader_config.py, source/, the gradebook and release/ (generated, scanned: no solution),
    ready for ``nbgrader release_assignment``."""
    from course.authoring import release

    root = account.home / COURSE_FOLDER
    root.mkdir(exist_ok=True)
    shutil.copyfile(paths.COURSE / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(paths.SOURCE_NOTEBOOK.parent, root / "source" / paths.ASSIGNMENT,
                    dirs_exist_ok=True, ignore=shutil.ignore_patterns(
                        *paths.STUDENT_PACKAGES, "__pycache__", "*.pyc", ".ipynb_checkpoints"))
    leaks = release.release(release.secrets(), course=root)
    if leaks:
        raise HubError(f"the release in {root / 'release'} holds solutions: "
                       + "; ".join(map(str, leaks[:5])))
    owner = pwd.getpwnam(account.name)
    for path in [root, *root.rglob("*")]:
        os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_CONFIG = '''"""The demo hub's configuration, written by course/classroom/hub.py on every start."""
import hmac
import json

from jupyterhub.auth import Authenticator

SETTINGS = json.loads({settings!r})


class DemoAuthenticator(Authenticator):
    """A password per demo account (printed by `make hub`): for a demo only."""

    async def authenticate(self, handler, data):
        name = (data or {{}}).get("username", "")
        expected = SETTINGS["passwords"].get(name)
        given = (data or {{}}).get("password", "")
        if expected and hmac.compare_digest(expected.encode(), given.encode()):
            return name
        return None


def pre_spawn_hook(spawner):
    """Each account's server from its own environment, with its role's nbgrader config."""
    server = SETTINGS["servers"][spawner.user.name]
    spawner.cmd = [server["python"], "-m", "jupyterhub.singleuser"]
    spawner.environment.update(server["environment"])


c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = SETTINGS["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = SETTINGS["hub_port"]
c.JupyterHub.db_url = "sqlite:///" + SETTINGS["run"] + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = SETTINGS["run"] + "/jupyterhub_cookie_secret"
c.JupyterHub.authenticator_class = DemoAuthenticator
c.Authenticator.allowed_users = set(SETTINGS["passwords"])
c.Authenticator.admin_users = set(SETTINGS["admins"])
c.ConfigurableHTTPProxy.command = [SETTINGS["proxy"]]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % SETTINGS["proxy_api_port"]
c.ConfigurableHTTPProxy.pid_file = SETTINGS["run"] + "/proxy.pid"
c.Spawner.pre_spawn_hook = pre_spawn_hook
c.Spawner.default_url = "/lab"
c.Spawner.env_keep = ["LANG", "LC_ALL"]  # never the hub's PYTHONPATH or PATH
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 60
if SETTINGS.get("service_token"):  # tests drive the hub through its REST API with this token
    c.JupyterHub.services = [{{"name": "tinytorch-tests", "api_token": SETTINGS["service_token"]}}]
    c.JupyterHub.load_roles = [{{"name": "admin", "services": ["tinytorch-tests"]}}]
'''


@dataclass
class Hub:
    """A demo hub's accounts and folders; ``running()`` starts it and removes it all after."""

    accounts: list[Account]
    root: Path = HUB
    port: int = 8000
    proxy: Path = PROXY
    service_token: str | None = None
    process: subprocess.Popen | None = None

    @property
    def exchange(self) -> Path:
        return self.root / "exchange"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def account(self, name: str) -> Account:
        return next(a for a in self.accounts if a.name == name)

    def config_folder(self, role: str) -> Path:
        return self.root / "etc" / role

    def write_config(self) -> Path:
        servers = {}
        for account in self.accounts:
            folder = self.config_folder(account.name if account.role == "instructor"
                                        else "student")
            folder.mkdir(parents=True, exist_ok=True)
            course = (account.home / COURSE_FOLDER if account.role == "instructor" else None)
            (folder / "nbgrader_config.py").write_text(nbgrader_config(self.exchange, course))
            if account.role == "instructor":  # the course's formgrader (make formgrader's)
                (folder / "jupyter_server_config.json").write_text(json.dumps(
                    {"ServerApp": {"jpserver_extensions": {formgrader.EXTENSION: True}}}))
            folder.chmod(0o755)
            bin_dir = account.python.parent
            servers[account.name] = {"python": str(account.python), "environment": {
                "JUPYTER_CONFIG_PATH": str(folder),
                "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            }}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o700)
        settings = {
            "port": self.port, "hub_port": free_port(), "proxy_api_port": free_port(),
            "run": str(self.run_dir), "proxy": str(self.proxy),
            "passwords": {a.name: a.password for a in self.accounts},
            "admins": [a.name for a in self.accounts if a.role == "instructor"],
            "servers": servers, "service_token": self.service_token,
        }
        config = self.run_dir / "jupyterhub_config.py"
        config.write_text(_CONFIG.format(settings=json.dumps(settings)))
        config.chmod(0o600)
        return config

    def set_up(self) -> Path:
        if os.geteuid() != 0:
            raise HubError("the demo hub makes real Unix accounts (useradd) and starts each "
                           "user's server as that user: run it as root (sudo make hub)")
        for account in self.accounts:
            folder = blocked(account.python)
            if folder is not None:
                raise HubError(f"{account.name}'s server would run {account.python} "
                               f"({account.python.resolve()}), but {folder} cannot be traversed "
                               "by other accounts: build the environments from a Python every "
                               "account can run (e.g. Debian's /usr/bin/python3: make "
                               "PYTHON=/usr/bin/python3 clean setup)")
        for account in self.accounts:
            create_account(account)
            if account.role == "instructor":
                instructor_course(account)
        instructors = [a.name for a in self.accounts if a.role == "instructor"]
        prepare_exchange(self.exchange, instructors[0] if instructors else None)
        return self.write_config()

    def tear_down(self) -> None:
        """Stop the hub (it stops the servers and the proxy), then whatever is left of the
        accounts' processes, the accounts, the exchange and the hub's state."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        pid_file = self.run_dir / "proxy.pid"
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        for account in self.accounts:  # each one, whatever happened to the one before
            try:
                remove_account(account.name)
            except Exception as error:  # noqa: BLE001 - named, and the rest still removed
                print(f"error: could not remove the account {account.name}: {error}",
                      file=sys.stderr)
        shutil.rmtree(self.exchange, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def api(self, path: str, method: str = "GET", body: dict | None = None,
            token: str | None = None) -> dict:
        """The hub's REST API (``/hub/api{path}``) with ``token`` (default: the service's)."""
        request = urllib.request.Request(
            f"{self.url}/hub/api{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {token or self.service_token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read()
        return json.loads(data) if data else {}

    def wait_until_up(self, log: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise HubError(f"jupyterhub exited ({self.process.returncode}); its log:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(f"{self.url}/hub/api/", timeout=2) as response:
                    if response.status == 200:
                        return
            time.sleep(0.3)
        raise HubError(f"the hub did not answer {self.url}/hub/api/ within {START_TIMEOUT:.0f} "
                       f"s; its log:\n{log.read_text(errors='replace')[-3000:]}")

    @contextlib.contextmanager
    def running(self, python: Path = INSTRUCTOR_PYTHON) -> Iterator[Hub]:
        """The hub, started from ``python`` (the instructor's environment, which has
        ``jupyterhub``), until the block ends; then everything is removed."""
        try:
            config = self.set_up()
            log = self.run_dir / "jupyterhub.log"
            with log.open("wb") as out:
                self.process = subprocess.Popen(
                    [str(python), "-m", "jupyterhub", "-f", str(config)], cwd=self.run_dir,
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
            self.wait_until_up(log)
            yield self
        finally:
            self.tear_down()


def demo_accounts(student_python: Path) -> list[Account]:
    return [Account(INSTRUCTOR, "instructor", INSTRUCTOR_PYTHON),
            *(Account(name, "student", student_python) for name in STUDENTS)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.classroom.hub",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="the hub's port on 127.0.0.1")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make hub makes real Unix accounts (useradd) and runs each user's server as "
              "that user: run it as root (sudo make hub). Nothing was changed.", file=sys.stderr)
        return 2
    started = time.monotonic()
    stop = {"now": False}

    def interrupted(number: int, frame: object) -> None:
        # the first signal stops it; any later one (make relays to its process group the
        # signal that group already got) must not cut the tear-down short, leaving accounts
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM stop it; SIGINT too where a shell started it with SIGINT ignored
    # (in the background of a script), which Python would otherwise keep
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        print("the proxy (npm), the students' and the instructor's environments (two minutes "
              "the first time)", file=sys.stderr, flush=True)
        proxy = ensure_proxy()
        student_python = student_environment()
        instructor_environment()
        hub = Hub(demo_accounts(student_python), port=args.port, proxy=proxy)
        with hub.running():
            print(f"\nThe demo hub is up after {time.monotonic() - started:.0f} s: {hub.url}\n"
                  f"(course id {COURSE_ID}, exchange {hub.exchange}, mode 1777)\n")
            for account in hub.accounts:
                print(f"  {account.role:<10} {account.name:<14} password {account.password}")
            shown = ("every account can read this checkout (demo only)" if HUB.is_relative_to(
                paths.REPO) else "the checkout is private to root")
            print(f"\nThe accounts are real Unix users; {shown}. Ctrl-C stops the hub and "
                  "removes the accounts.", flush=True)
            while not stop["now"]:
                time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopped: the hub, its servers and proxy, the demo accounts and the exchange "
              "are gone", file=sys.stderr)
        return 0
    except HubError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

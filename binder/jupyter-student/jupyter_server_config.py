"""The students' Jupyter server: the lab loads ``custom/custom.css`` beside this file, and a
terminal opens in the folder the lab serves with the student's environment first on PATH.

**The stylesheet.** nbgrader's Validate dialog wraps long lines. ``LabApp.custom_css`` links
``custom/custom.css`` into the lab's page; the server looks for it in ``static_custom_path``,
which is only the user's config folder (``~/.jupyter/custom``) and jupyter_server's own, and
is no option: ``tornado_settings`` sets it.

**The terminal.** ``tinytorch complete 07_training.ipynb``, typed in the lab's terminal, must
find the command and the notebook. A terminal gets the server's environment, where nothing
puts the student environment's ``bin`` on PATH (``make lab`` runs ``.venv-student/bin/jupyter``
without activating anything), and starts in the server's own folder (``make lab``'s is the
repository, not the working copy it serves): jupyter_server_terminals gives a terminal the
folder it was asked for (the Launcher asks for the file browser's), else none, and resolves a
relative one against the server's folder before the served one. So every terminal starts
through ``TERMINAL_START``, which puts this environment's scripts folder (where pip installed
``tinytorch``, ``jupyter`` and ``nbgrader``) first on PATH and moves a terminal that started
outside the served folder, in or under the server's folder, to the same place in the served
one. The shell is then the one JupyterLab would start (``$SHELL``, or a shell command set by
configuration read before this file), as an interactive shell but not a login shell: a login
shell reads ``/etc/profile``, which on Debian sets PATH anew and would lose the student's
commands; the server's environment is already the student's.

What other configuration put in ``tornado_settings`` or ``terminado_settings`` is kept, and
each value is a plain dict: ``.update`` on the config would leave a lazy value that
JupyterHub's single-user server cannot read (its extension fails to load, and no student's
server starts on a hub).
"""

import os
import shlex
import shutil
import sysconfig

#: The terminal's first process (``sh -c``): ``$1`` this environment's scripts folder, ``$2``
#: the folder the server started in (resolved), then the shell's command line. It leaves a
#: terminal inside the served folder (``JUPYTER_SERVER_ROOT``, which jupyter_server_terminals
#: sets) where it is.
TERMINAL_START = r"""
root=$(cd "${JUPYTER_SERVER_ROOT:-.}" && pwd -P) && here=$(pwd -P)
case "$here/" in
"${root%/}"/*) ;;
"${2%/}"/*) cd "$root${here#"${2%/}"}" 2>/dev/null || cd "$root" ;;
esac
PATH="$1:$PATH"
export PATH
shift 2
exec "$@"
"""


def _settings(name: str) -> dict:
    """A copy of ``c.ServerApp.<name>`` as other configuration left it (a plain dict)."""
    return dict(getattr(c.ServerApp, name)) if name in c.ServerApp else {}


def terminal_command(settings: dict) -> list[str]:
    """The terminal's command line: TERMINAL_START, then the shell ``settings`` name (as a
    list) or the user's."""
    shell = settings.get("shell_command") or [os.environ.get("SHELL") or "sh"]
    if isinstance(shell, str):  # as jupyter_server_terminals reads a string
        shell = shlex.split(shell)
    return [shutil.which("sh") or "/bin/sh", "-c", TERMINAL_START, "tinytorch-terminal",
            sysconfig.get_path("scripts"), os.path.realpath(os.getcwd()), *shell]


c = get_config()  # noqa: F821 - Jupyter's config loader provides it
c.LabApp.custom_css = True
_tornado = _settings("tornado_settings")
_tornado["static_custom_path"] = [
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "custom")]
c.ServerApp.tornado_settings = _tornado
if os.name != "nt":  # Windows has no sh; its terminals stay jupyter_server's
    _terminado = _settings("terminado_settings")
    _terminado["shell_command"] = terminal_command(_terminado)
    c.ServerApp.terminado_settings = _terminado

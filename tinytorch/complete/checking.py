"""Checking, before anything is written: every check of ``checks`` (the package installed
beside tinytorch) runs on the assembled module.

The module is imported from a throw-away copy of the student's tinytorch in a separate process
with a time limit: code that crashes, exits or loops cannot stop the command, and the files it
is about to write are not the ones under test (this is not a sandbox: the student's code runs
as the student, as it does in the notebook). The checks' messages name the lines of the answer
cells, not of the throw-away module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tinytorch.complete.assembly import Assembled
from tinytorch.complete.common import BACKUP, MODULE, CompleteError, _shown

#: What the checks take from the module.
IMPLEMENTATIONS = ("CosineSchedule", "clip_grad_norm", "Trainer", "training_memory")
#: Seconds the whole check run may take (the reference needs about one).
DEFAULT_TIMEOUT = 600.0


_RUN_CHECKS = """
import json, os, sys, traceback
result, root = sys.argv[1], os.getcwd()
sys.path.insert(0, root)
from checks import run_all                 # the course's checks, before any student code
from checks.registry import TITLES
def report(data):
    with open(result, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
try:
    import tinytorch.core.training as module
except BaseException:
    report({"import_error": traceback.format_exc()})
    raise SystemExit(0)
expected = os.path.join(root, "tinytorch", "core", "training.py")
if os.path.realpath(module.__file__) != os.path.realpath(expected):
    report({"import_error": f"imported {module.__file__} instead of {expected}"})
    raise SystemExit(0)
names = json.loads(sys.argv[2])
missing = [name for name in names if not hasattr(module, name)]
if missing:
    report({"import_error": "the module does not define " + ", ".join(missing)})
    raise SystemExit(0)
results = run_all({name: getattr(module, name) for name in names})
report({"results": results, "titles": TITLES})
"""


@dataclass
class CheckRun:
    """What the check run found: each check's failure message (None: passed), or why the
    module could not be checked at all."""

    results: dict[str, str | None] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def failed(self) -> dict[str, str]:
        return {check: message for check, message in self.results.items() if message}

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.results) and not self.failed


def _readable(text: str, module: Path, origins: dict[int, tuple[str, int]]) -> str:
    """``text`` with the throw-away module's lines named as the student knows them: a line of
    an answer cell, or a line of the training.py to be written."""
    def name(match: re.Match[str]) -> str:
        line = int(match.group("line"))
        if line in origins:
            cell, cell_line = origins[line]
            return f"answer cell {cell}, line {cell_line}"
        return f"training.py, line {line}"

    for spelling in {str(module), os.path.realpath(module)}:
        text = re.sub(rf'(?:File ")?{re.escape(spelling)}"?, line (?P<line>\d+)', name, text)
    return text


def installed_checks() -> Path:
    """The ``checks`` package installed beside this tinytorch (the student wheel ships both)."""
    spec = importlib.util.find_spec("checks")
    folders = list(spec.submodule_search_locations or []) if spec else []
    if not folders:
        raise CompleteError("the course's checks are not installed in this environment "
                            f"({_shown(Path(sys.prefix))}): reinstall the student wheel")
    return Path(folders[0])


def run_checks(assembled: Assembled, package: Path, *, checks: Path | None = None,
               timeout: float = DEFAULT_TIMEOUT, python: str = sys.executable) -> CheckRun:
    """Run every check on ``assembled`` in a fresh process, in a throw-away copy of the
    tinytorch ``package`` (the one it will be written into) beside the course's ``checks``
    (default: the installed ones)."""
    checks = checks or installed_checks()
    with tempfile.TemporaryDirectory(prefix="complete-checks-") as temp:
        root = Path(temp) / "root"
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", f"*{BACKUP}*")
        shutil.copytree(package, root / "tinytorch", ignore=skip)
        shutil.copytree(checks, root / "checks", ignore=skip)
        module = root / MODULE
        module.write_text(assembled.text, encoding="utf-8")
        result = Path(temp) / "result.json"
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg"}
        with open(Path(temp) / "out", "wb") as out, open(Path(temp) / "err", "wb") as err:
            process = subprocess.Popen(
                [python, "-B", "-c", _RUN_CHECKS, str(result), json.dumps(IMPLEMENTATIONS)],
                cwd=root, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
            )
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return CheckRun(error=f"the checks did not finish within {timeout:g} s: is "
                                      "there an endless loop in your code?")
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        if not result.is_file():
            stderr = (Path(temp) / "err").read_text(encoding="utf-8", errors="replace")[-3000:]
            return CheckRun(error=_readable(
                f"the check run ended without a result (exit status {process.returncode}); "
                f"its last output:\n{stderr}", module, assembled.origins))
        report = json.loads(result.read_text(encoding="utf-8"))
        if "import_error" in report:
            return CheckRun(error=_readable(f"the assembled module does not import:\n"
                                            f"{report['import_error']}", module,
                                            assembled.origins))
        results = {check: None if message is None else _readable(message, module,
                                                                  assembled.origins)
                   for check, message in report["results"].items()}
        return CheckRun(results, report["titles"])

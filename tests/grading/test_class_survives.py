"""One file can only fail itself: attacks on the grading *process* (not on the score), each
graded in one class beside an honest classmate (``course.grading.submission``).

A submission controls its notebook's JSON and every line its sandbox prints, so it can hand the
trusted grader a SystemExit to rebuild, JSON nested 100,000 deep, a number where a source line
belongs, a checkpoint that inflates to gigabytes, thousands of file names, megabytes of
exception text for a regular expression. Each must cost only its own grade: every report is
present, the attack earns at most its honest baseline (0 on the blank release; on the reference
what its honest code earns once the attack breaks its checkpoints or messages), the classmate
keeps 100, and judging each one stays within a bounded time and memory. The measured figures
go to ``build/cheat-table-class.md``.

Also here: ``python -m course.classroom.autograde`` on a class holding malformed notebooks, the pool
that heals when a worker dies, the budgets, and unit tests of the notebook validator and the bounded
line parser (``course.grading.intake``).
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from submissions import answer, from_training_source, with_cell, write

from course.assignment import cells, paths
from course.classroom import autograde
from course.grading import budget, grade, intake, pool, sandbox, submission

pytestmark = pytest.mark.slow

LIMIT = 20.0  # seconds a submission may run in this suite
JUDGE_SECONDS = 15.0  # what judging one attack may take here (an honest one: about 1 s)
MEMORY_MB = 500  # the grading process's resident memory, at most, for any submission
RELEASE: str | None = None  # the blank release notebook, loaded by the fixture
CHECKPOINT_CELLS = 85.0  # the reference without working checkpoints (6.1, 6.2, safety lost)
NAN_MESSAGE_CELLS = 95.0  # the reference whose NaN error names no epoch or batch

# What a cell can write to reach the grader: the observer's copy of stdout (fd 3 in practice).
TO_THE_GRADER = textwrap.dedent("""\
    import os
    def to_the_grader(line):
        for fd in range(3, 10):
            try:
                os.write(fd, line + b"\\n")
            except OSError:
                pass
    """)


def _blank() -> nbformat.NotebookNode:
    assert RELEASE is not None
    return nbformat.reads(RELEASE, as_version=4)


def _reference() -> nbformat.NotebookNode:
    return from_training_source(paths.REFERENCE.read_text())



def _saving(body: str) -> nbformat.NotebookNode:
    """The reference whose save_checkpoint writes ``checkpoint()``'s bytes (built once), and
    whose load_checkpoint refuses every file (so that the sandbox never inflates the bomb: only
    the judge's reading of the file is under attack)."""
    code = (body + "\n_BYTES = []\n"
            "@add_to_class(Trainer)\n"
            "def save_checkpoint(self, path):\n"
            "    import os\n"
            "    if not _BYTES:\n        _BYTES.append(checkpoint())\n"
            "    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)\n"
            "    with open(path, 'wb') as f:\n        f.write(_BYTES[0])\n")
    notebook = answer(_reference(), "answer_Trainer_save_checkpoint", code)
    return answer(notebook, "answer_Trainer_load_checkpoint",
                   "@add_to_class(Trainer)\ndef load_checkpoint(self, path):\n"
                   "    raise ValueError('not read')\n")


# Each attack: name -> (a function giving the notebook, or its JSON text; honest baseline).
def _attacks() -> dict[str, tuple[Any, float]]:
    a: dict[str, tuple[Any, float]] = {}

    def blank(code: str) -> Any:
        return lambda: with_cell(_blank(), code)

    # --- exceptions the judge must not re-raise as such
    a["sys-exit-in-get_lr"] = (lambda: answer(_blank(), "answer_CosineSchedule",
        "import sys\n"
        "class CosineSchedule:\n"
        "    def __init__(self, max_lr=0.1, min_lr=0.01, total_epochs=100): pass\n"
        "    def get_lr(self, epoch):\n        sys.exit('bye')\n"), 0)
    a["forged-KeyboardInterrupt-and-GeneratorExit"] = (blank(
        "import checks.replay as r\n_real = r.encode_error\n_n = [0]\n"
        "def forged(error):\n    d = _real(error)\n    _n[0] += 1\n"
        "    d['type'] = d['base'] = ('KeyboardInterrupt', 'GeneratorExit', 'SystemExit')"
        "[_n[0] % 3]\n    return d\n"
        "r.encode_error = forged\n"), 0)
    # --- JSON that recurses, nests or swells
    a["100000-deep-line"] = (blank(TO_THE_GRADER +
        "to_the_grader(b'[' * 100000 + b']' * 100000)\n"
        "to_the_grader(b'{\"run\": 0, \"events\": ' + b'[' * 100000)\n"), 0)
    a["header-failed-nested-960-deep"] = (blank(TO_THE_GRADER +
        "to_the_grader(b'{\"cells\": 1, \"failed\": ' + b'[' * 960 + b']' * 960 + b'}')\n"), 0)
    a["header-failed-1200-wide"] = (blank(TO_THE_GRADER +
        "import json\n"
        "to_the_grader(json.dumps({'cells': 1, 'failed': [[1, 'E' * 60, 'x' * 100]] * 1200})"
        ".encode())\n"), 0)
    a["run-line-nested-960-deep"] = (blank(TO_THE_GRADER +
        "to_the_grader(b'{\"run\": 0, \"events\": ' + b'[' * 960 + b']' * 960 + b'}')\n"), 0)
    a["run-line-of-64-MiB"] = (blank(TO_THE_GRADER +
        "to_the_grader(b'{\"run\": 0, \"events\": [\"' + b'a' * (64 * 2**20) + b'\"]}')\n"), 0)
    a["run-line-of-8-million-lists"] = (blank(TO_THE_GRADER +
        "to_the_grader(b'{\"run\": 0, \"events\": [' + b'[],' * (8 * 2**20) + b'[]]}')\n"), 0)
    # --- malformed notebooks nbformat or JSON accept
    a["number-in-a-source-list"] = (lambda: _malformed(
        lambda cell: cell.update(source=["x = 1\n", 5])), 0)
    a["grade_id-is-a-list"] = (lambda: _malformed(
        lambda cell: cell["metadata"].setdefault("nbgrader", {}).update(grade_id=["a", "b"])),
        0)
    a["cell-metadata-is-a-list"] = (lambda: _malformed(lambda cell: cell.update(metadata=[])),
                                    0)
    a["notebook-nested-100000-deep"] = (lambda: '{"cells": [], "metadata": {"x": '
                                        + "[" * 100000 + "]" * 100000 + "}}", 0)
    # --- records that make the judge do unbounded work
    a["exception-text-of-120000-characters"] = (blank(
        "import checks.replay as r\n_real = r.encode_error\n"
        "def forged(error):\n    d = _real(error)\n"
        "    d.update(type='TypeError', base='TypeError', text='a' * 120000 + '() takes',\n"
        "             frames=[['cell', 'f' * 100, 's']] * 2000)\n    return d\n"
        "r.encode_error = forged\n"), 0)
    a["nan-error-text-for-the-names-regex"] = (lambda: with_cell(_reference(),
        "import checks.replay as r\n_real = r.encode_error\n"
        "def forged(error):\n    d = _real(error)\n"
        "    if d['type'] == 'TrainingDivergedError':\n"
        "        d['text'] = 'epoch' * 24000\n    return d\n"
        "r.encode_error = forged\n", at=1), NAN_MESSAGE_CELLS)
    a["20000-file-names-per-save"] = (lambda: with_cell(_reference(),
        "import checks.replay as r\n"
        "r._folder_state = lambda folder: {f'f{i}': 'AAAA' for i in range(20000)}\n", at=1),
        CHECKPOINT_CELLS)
    # --- checkpoints that inflate in the judge (check 6.2 searches the archive)
    a["zip-of-130-KB-inflating-to-128-MiB"] = (lambda: _saving(
        "def checkpoint():\n    import io, zipfile, numpy as np\n    buf = io.BytesIO()\n"
        "    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as z:\n"
        "        with z.open('a.npy', 'w', force_zip64=True) as member:\n"
        "            np.lib.format.write_array_header_1_0(member, {'descr': '|u1', "
        "'fortran_order': False, 'shape': (128 * 2**20,)})\n"
        "            for _ in range(128):\n                member.write(bytes(2**20))\n"
        "    return buf.getvalue()\n"), CHECKPOINT_CELLS)
    a["zip-listing-a-32-MiB-member-150-times"] = (lambda: _saving(
        "def checkpoint():\n    import io, struct, zipfile, numpy as np\n    buf = io.BytesIO()\n"
        "    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:\n"
        "        with z.open('a.npy', 'w') as member:\n"
        "            np.save(member, np.zeros(4 * 2**20))\n"
        "    data = buf.getvalue()\n    end = data.rfind(b'PK\\x05\\x06')\n"
        "    start = struct.unpack('<I', data[end + 16:end + 20])[0]\n"
        "    entry = data[start:end]\n"
        "    return (data[:start] + entry * 150 + struct.pack('<4s4H2IH', b'PK\\x05\\x06', 0, 0,"
        " 150, 150, len(entry) * 150, start, 0))\n"), CHECKPOINT_CELLS)
    a["npy-header-declaring-16-GiB"] = (lambda: _saving(
        "def checkpoint():\n    import io, zipfile, numpy as np\n    buf = io.BytesIO()\n"
        "    with zipfile.ZipFile(buf, 'w') as z:\n"
        "        with z.open('a.npy', 'w') as member:\n"
        "            np.lib.format.write_array_header_1_0(member, {'descr': '<f8', "
        "'fortran_order': False, 'shape': (2**31,)})\n"
        "            member.write(bytes(64))\n"
        "    return buf.getvalue()\n"), CHECKPOINT_CELLS)
    return a


def _malformed(edit: Any) -> str:
    """The blank release as JSON, its first code cell edited by ``edit`` (what nbformat's
    schema or plain JSON still lets through)."""
    data = json.loads(nbformat.writes(_blank()))
    cell = next(c for c in data["cells"] if c["cell_type"] == "code")
    edit(cell)
    return json.dumps(data)


@pytest.fixture(scope="module")
def course(copy_course: Callable[[Path], None], tmp_path_factory: pytest.TempPathFactory) -> Path:
    global RELEASE
    root = tmp_path_factory.mktemp("course")
    copy_course(root)
    RELEASE = (root / "release" / paths.ASSIGNMENT / paths.NOTEBOOK).read_text()
    return root


@pytest.fixture(scope="module")
def graded(course: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("class")
    files = {"honest-classmate": write(_reference(), folder / "honest.ipynb")}
    baselines = {"honest-classmate": 100.0}
    for name, (make, baseline) in _attacks().items():
        built = make()
        path = folder / f"{name}.ipynb"
        if isinstance(built, str):
            path.write_text(built)
        else:
            write(built, path)
        files[name], baselines[name] = path, baseline
    import time

    start = time.perf_counter()
    reports = grade.grade(list(files.values()), jobs=2, limits=sandbox.Limits(wall=LIMIT))
    seconds = time.perf_counter() - start
    by_name = dict(zip(files, reports, strict=True))
    _write_table(by_name, baselines, seconds)
    return {"reports": by_name, "baselines": baselines, "seconds": seconds}


def _write_table(reports: dict[str, dict[str, Any]], baselines: dict[str, float],
                 seconds: float) -> None:
    rows = ["| attack | score | baseline | judging (s) | peak memory (MB) | how it ended |",
            "|---|---:|---:|---:|---:|---|"]
    for name, report in reports.items():
        ended = (report["ended"] or "normally").replace(f"{Path(report['file']).parent}/", "")
        ended = ended.replace("|", "/").replace("\n", " ")
        rows.append(f"| {name} | {report['total']:g} | {baselines[name]:g} | "
                    f"{report['judge_seconds']:.2f} | {report['peak_memory_mb']} | "
                    f"{ended[:140]} |")
    out = paths.REPO / "build"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cheat-table-class.md").write_text(
        f"Attacks on the grading process, graded as one class of {len(reports)} "
        f"(`course.grading.grade.grade(..., jobs=2)`) in {seconds:.0f} s:\n\n"
        + "\n".join(rows) + "\n")


def test_the_suite_has_at_least_10_attacks() -> None:
    assert len(_attacks()) >= 10


@pytest.mark.parametrize("name", list(_attacks()))
def test_an_attack_costs_only_its_own_grade(graded: dict[str, Any], name: str) -> None:
    report = graded["reports"][name]
    assert report["max_total"] == 100 and len(report["cells"]) == len(cells.source_graded_cells())
    assert report["total"] <= graded["baselines"][name], json.dumps(report, indent=1)[:3000]
    assert report["judge_seconds"] <= JUDGE_SECONDS, report["judge_seconds"]
    assert report["peak_memory_mb"] is None or report["peak_memory_mb"] <= MEMORY_MB, \
        report["peak_memory_mb"]
    assert report["seconds"] <= LIMIT + JUDGE_SECONDS + 10, report["seconds"]


def test_the_honest_classmate_keeps_100(graded: dict[str, Any]) -> None:
    report = graded["reports"]["honest-classmate"]
    assert report["total"] == 100, json.dumps(report, indent=1)[:2000]
    assert report["ended"] is None and report["gradable"] is True


def test_the_reasons_name_what_was_wrong(graded: dict[str, Any]) -> None:
    reports = graded["reports"]

    def message(name: str, grade_id: str = "cosine_schedule") -> str:
        return next(c["message"] for c in reports[name]["cells"] if c["grade_id"] == grade_id)

    assert "SystemExit" in message("sys-exit-in-get_lr")  # rebuilt as an Exception, named
    # the line is refused when it arrives; the sandbox's reading of so long a line may take
    # the run's whole time limit first (its pump copies the line as it grows), and then the
    # run ends there, as its own loss
    assert "more than the 32 MiB" in message("run-line-of-64-MiB") or \
        "time limit" in reports["run-line-of-64-MiB"]["ended"]
    assert "levels deep" in message("run-line-nested-960-deep")
    assert "arrays and objects" in message("run-line-of-8-million-lists")
    assert "20000 files, more than the 32" in message("20000-file-names-per-save",
                                                      "audit_6_1_resume_is_exact")
    for name, problem in (("number-in-a-source-list", "source holds a number"),
                          ("grade_id-is-a-list", "grade_id is a list"),
                          ("cell-metadata-is-a-list", "metadata is a list"),
                          ("notebook-nested-100000-deep", "levels deep")):
        assert problem in (reports[name]["ended"] or ""), reports[name]["ended"]
        assert name in reports[name]["ended"] and reports[name]["gradable"] is False
    for name in ("zip-of-130-KB-inflating-to-128-MiB", "zip-listing-a-32-MiB-member-150-times",
                 "npy-header-declaring-16-GiB"):
        assert "too large to examine" in message(name, "audit_6_2_checkpoint_is_complete")
    text = message("exception-text-of-120000-characters")
    assert len(text) < 10_000 and "TypeError" in text


def test_forged_headers_give_only_validated_fields(graded: dict[str, Any]) -> None:
    for name in ("header-failed-nested-960-deep", "header-failed-1200-wide"):
        raised = graded["reports"][name]["cells_that_raised"]
        assert len(raised) <= intake.MAX_FAILED_CELLS
        assert all(isinstance(r["cell"], str) and len(r["error"]) <= intake.MAX_ERROR_NAME
                   and len(r["message"]) <= intake.MAX_FAILED_TEXT
                   and (r["line"] is None or type(r["line"]) is int) for r in raised)


def test_every_report_says_how_long_judging_took(graded: dict[str, Any]) -> None:
    figures = {name: r["judge_seconds"] for name, r in graded["reports"].items()}
    assert all(isinstance(s, float) and s >= 0 for s in figures.values()), figures
    assert 0 < figures["honest-classmate"] < JUDGE_SECONDS


# ----------------------------------------------------------------------------- autograde
def test_autograde_writes_every_other_score_and_names_the_bad_notebooks(
        course: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    downloads = tmp_path / "downloads"
    write(_reference(), downloads / "alice.ipynb")
    (downloads / "mallory.ipynb").write_text(
        _malformed(lambda cell: cell.update(source=["x = 1\n", 5])))
    (downloads / "eve.ipynb").write_text(_malformed(
        lambda cell: cell["metadata"].setdefault("nbgrader", {}).update(grade_id=["a"])))
    (downloads / "trudy.ipynb").write_text("{not json")
    (downloads / "oscar.ipynb").write_text(_attacks()["notebook-nested-100000-deep"][0]())

    status = autograde.main([str(downloads), "--course", str(course), "--limit", str(LIMIT)])
    printed = capsys.readouterr()
    assert status == 1, printed
    scores = {student: score for student, score, _ in autograde.scores(course)}
    assert scores["alice"] == 100.0, printed
    for student, reason in (("mallory", "source holds a number"),
                            ("eve", "grade_id is a list"), ("trudy", "is not a notebook"),
                            ("oscar", "levels deep")):
        assert scores.get(student, 0.0) == 0.0
        line = next((ln for ln in printed.err.splitlines() if ln.startswith(f"error: {student}")),
                    "")
        assert reason in line, printed.err
    assert "Traceback" not in printed.out + printed.err


def test_student_text_reaches_the_graders_terminal_inert(
        copy_course: Callable[[Path], None], tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    """An exception class named with terminal escapes (a cleared screen, a forged score) and a
    flood of warnings reach ``make autograde``'s output only as shown escapes, bounded; the
    classmate's line is unchanged."""
    forged = "\x1b[2J\x1b[H\x1b[32mmallory 100.0 / 100"
    course = tmp_path / "course"  # a class of its own: alice and mallory
    course.mkdir()
    copy_course(course)
    downloads = tmp_path / "downloads"
    write(_reference(), downloads / "alice.ipynb")
    write(with_cell(_reference(),
                    "import warnings\n"
                    "warnings.warn('\\x1b[2J' + 'fake score table ' * 200_000)\n"
                    f"raise type({forged!r}, (Exception,), {{}})('\\x1b]0;owned\\x07')\n",
                    at=1), downloads / "mallory.ipynb")
    capfd.readouterr()
    status = autograde.main([str(downloads), "--course", str(course), "--limit", str(LIMIT)])
    printed = capfd.readouterr()
    shown = printed.out + printed.err
    assert status == 0, shown
    assert "\x1b" not in shown and "\x07" not in shown, repr(shown[:2000])
    assert len(shown) < 200_000, len(shown)
    mallory = next(line for line in printed.out.splitlines() if line.startswith("mallory"))
    assert "\\x1b[2J" in mallory, mallory  # shown, not acted on
    alice = next(line for line in printed.out.splitlines() if line.startswith("alice"))
    assert alice.split()[1:3] == ["100.0", "/"], alice
    scores = {student: score for student, score, _ in autograde.scores(course)}
    assert scores["alice"] == 100.0


# ----------------------------------------------------------------------------- the record
def _run_line(index: int, size: int) -> bytes:
    return b'{"run": %d, "events": ["' % index + b"a" * size + b'"]}'


def test_a_run_line_longer_than_the_bound_fails_that_run_only() -> None:
    record = submission._Record(3)
    assert record.on_line(_run_line(0, 33 * 2**20)) is True
    assert record.on_line(_run_line(1, 100)) is True
    assert "line of 33 MiB, more than the 32 MiB" in record.refused[0]
    assert 1 in record.lines and record.first_missing() == 2
    verdict = submission._judge_run("cosine", 0, record.take(0), record.refused.get(0), None)
    assert verdict is not None and "more than the 32 MiB" in verdict


def test_the_records_of_one_submission_have_a_total_bound() -> None:
    record = submission._Record(4)
    for index in range(3):
        record.on_line(_run_line(index, 30 * 2**20))
    assert sorted(record.lines) == [0, 1] and "exceed the 64 MiB" in record.refused[2]
    assert record.on_line(b'{"done": true}') is False  # the observer's last line ends the run


def test_a_run_line_that_is_not_json_fails_its_run_with_the_reason() -> None:
    verdict = submission._judge_run("cosine", 0, b'{"run": 0, "events": [1,', None, None)
    assert verdict is not None and "its record was refused" in verdict


# ----------------------------------------------------------------------------- the pool
def test_a_worker_that_dies_fails_only_its_task() -> None:
    tasks = ["1 + 1", "__import__('os')._exit(3)", "2 + 2", "1 / 0", "3 + 3"]
    results = pool.run_in_pool(eval, tasks, 2,
                                  context=multiprocessing.get_context("forkserver"),
                                  failed=lambda task, why: ("failed", why))
    assert results[0] == 2 and results[2] == 4 and results[4] == 6
    assert results[1][0] == "failed" and "ended abruptly" in results[1][1]
    assert results[3][0] == "failed" and "ZeroDivisionError" in results[3][1]


def test_a_keyboard_interrupt_while_judging_is_the_graders_failure_not_a_score(
        course: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupt (a Ctrl-C reaching the grading process) is no doing of the submission's:
    its report says the grader failed, and is never kept or written as a score."""
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(submission, "judge", interrupted)
    release = course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK
    report = grade.grade([release], jobs=1, limits=sandbox.Limits(wall=LIMIT))[0]
    assert report["total"] == 0 and report["gradable"] is False
    assert report["grader_failed"] is True
    assert report["ended"] == ("grading failed (grader): the grader failed on it: "
                               "KeyboardInterrupt")


def test_judging_past_its_budget_is_the_submissions_own_failure(
        course: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record that makes judging outlast its budget is the submission's: the same bytes
    would do it again, so it is a 0 kept like any score, never the grader's failure."""
    def slow(*args: Any, **kwargs: Any) -> None:
        raise budget.JudgeTimeout("judging took longer than its budget of 60 s")

    monkeypatch.setattr(submission, "judge", slow)
    release = course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK
    report = grade.grade([release], jobs=1, limits=sandbox.Limits(wall=LIMIT))[0]
    assert report["total"] == 0 and report["gradable"] is False
    assert report["grader_failed"] is False
    assert report["ended"] == "not gradable: judging took longer than its budget of 60 s"


def test_judging_past_its_time_budget_raises_in_the_main_thread() -> None:
    import time

    start = time.perf_counter()
    with pytest.raises(budget.JudgeTimeout, match="budget of 0.3 s"):
        with budget.deadline(0.3):
            while True:
                pass
    assert time.perf_counter() - start < 2


def test_the_memory_budget_turns_a_huge_allocation_into_a_memory_error() -> None:
    code = ("from course.grading.budget import Budget, memory_budget\n"
            "import resource\n"
            "before = resource.getrlimit(resource.RLIMIT_AS)\n"
            "try:\n"
            "    with memory_budget(Budget(memory=256 * 2**20)):\n"
            "        block = bytearray(2 * 2**30)\n"
            "    print('allocated')\n"
            "except MemoryError:\n"
            "    print('refused', resource.getrlimit(resource.RLIMIT_AS) == before)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=paths.REPO, timeout=60, check=False)
    assert done.stdout.strip() == "refused True", done.stdout + done.stderr


# ----------------------------------------------------------------------------- intake
@pytest.mark.parametrize("text", [
    b'{"a": [1, {"b": "[[[[\\"]]"}], "c": "\\\\"}', b'[[["\\\\\\"[", []]]]', b"[]", b"3",
    b'"just [ a { string"', b'{"k": "\\\\\\\\"}',
])
def test_the_depth_scan_agrees_with_the_parser(text: bytes) -> None:
    assert intake.nesting_depth(text) == _depth(json.loads(text))


def test_the_depth_scan_agrees_with_the_parser_on_random_json() -> None:
    import random

    rng = random.Random(7)
    alphabet = ['"', "\\", "[", "]", "{", "}", "a", " ", "\n", "é"]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(6)))

    def value(level: int) -> Any:
        kind = rng.randrange(4 if level < 12 else 1)
        if kind == 0:
            return text()
        if kind == 1:
            return [value(level + 1) for _ in range(rng.randrange(4))]
        if kind == 2:  # keys hold brackets, quotes and backslashes too
            return {text(): value(level + 1) for _ in range(rng.randrange(4))}
        return rng.random()

    for _ in range(500):
        data = value(0)
        for line in (json.dumps(data).encode(), json.dumps(data, ensure_ascii=False).encode()):
            assert intake.nesting_depth(line) == _depth(data), line


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@pytest.mark.parametrize(("text", "reason"), [
    (b"[" * 100_000 + b"]" * 100_000, "levels deep"),
    (b'"' + b"[" * 500 + b'"' + b"[" * 60 + b"]" * 60, "nested 60 levels"),  # not the string's
    (b"[" + b"[]," * 300_000 + b"[]]", "arrays and objects"),
    (b"[" + b"0," * (2**20 + 1) + b"0]", "items"),
    (b"[" + b"1" * (33 * 2**20) + b"]", "more than the 32 MiB"),
    (b'["caf\xc3\xa9"]', "not ASCII"),
    (b"[1, 2", "Expecting"),
])
def test_the_line_parser_refuses_what_is_out_of_bounds(text: bytes, reason: str) -> None:
    with pytest.raises(intake.Refused, match=reason):
        intake.parse(text)


def test_the_line_parser_reads_an_honest_line() -> None:
    line = json.dumps({"run": 3, "events": [{"call": "x", "return": {"f": "0x1p-1"}}]}).encode()
    assert intake.parse(line)["events"][0]["return"] == {"f": "0x1p-1"}
    assert intake.run_index(line) == 3
    assert intake.run_index(b'{"events": [], "run": 3}') is None


def test_the_header_keeps_only_the_observers_fields() -> None:
    header = {"cells": 3, "failed": [[1, "ValueError", "x" * 9000], [True, "a", "b"],
                                     ["1", "a", "b"], [2, ["deep"], "b"],
                                     [3, "E", "t", 4, 5], [6, "E", "t", "7"],
                                     [4, "NameError", "n", 12]] + [[5, "E", "t"]] * 5000}
    kept = intake.failed_cells(header)
    assert kept[0] == [1, "ValueError", "x" * intake.MAX_FAILED_TEXT, None]
    assert kept[1] == [6, "E", "t", None]  # a line that is not a number is dropped
    assert kept[2] == [4, "NameError", "n", 12]
    assert len(kept) <= intake.MAX_FAILED_CELLS
    assert intake.failed_cells({"failed": {"1": 2}}) == [] == intake.failed_cells([1])


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda nb: nb.update(cells={"a": 1}), "cells are an object"),
    (lambda nb: nb.pop("cells"), "no list of cells"),
    (lambda nb: nb["cells"].append(3), "a number, not an object"),
    (lambda nb: nb["cells"][0].update(cell_type=None), "cell_type is null"),
    (lambda nb: nb["cells"][0].update(source=["a", None]), "source holds null"),
    (lambda nb: nb["cells"][0].update(source=7), "source holds a number"),
    (lambda nb: nb["cells"][0].update(metadata="x"), "metadata is text"),
    (lambda nb: nb["cells"][0]["metadata"].update(nbgrader=[1]), "nbgrader metadata is a list"),
    (lambda nb: nb["cells"][0]["metadata"].update(nbgrader={"grade_id": 3}), "grade_id"),
    (lambda nb: nb["cells"][0]["metadata"].update(nbgrader={"points": "10"}), "points"),
    (lambda nb: nb["cells"][0]["metadata"].update(nbgrader={"grade": "yes"}), "'grade'"),
    (lambda nb: nb.update(metadata=[]), "notebook's metadata is a list"),
])
def test_the_notebook_validator_names_the_field(tmp_path: Path, edit: Any, problem: str
                                                 ) -> None:
    data = {"cells": [{"cell_type": "code", "metadata": {}, "source": ["x = 1\n"],
                       "outputs": [], "execution_count": None}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(data))
    assert intake.read_notebook(path)[0]["source"] == ["x = 1\n"]
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(intake.Unreadable, match="nb.ipynb") as refused:
        intake.read_notebook(path)
    assert problem in str(refused.value)

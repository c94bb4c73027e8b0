"""The staged release carries its bytecode (``submission.packages_folder``): a sandbox, which
cannot write into it, reads the grader's bytecode instead of compiling tinytorch and checks
again; the bytecode is checked against its source's hash and covered by the release digest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from course.assignment.cells import source_graded_cells
from course.grading import cache, submission

CHECKED_HASH = 0b11  # PEP 552: the pyc's flags word, hash-based and checked


def _pyc(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"


def test_every_staged_module_has_checked_hash_bytecode() -> None:
    with submission.staged() as template:
        sources = sorted(template.rglob("*.py"))
        assert len(sources) > 20, sources
        missing = [str(s.relative_to(template)) for s in sources if not _pyc(s).is_file()]
        assert missing == [], f"staged without bytecode: {missing}"
        flags = {str(s.relative_to(template)): int.from_bytes(_pyc(s).read_bytes()[4:8], "little")
                 for s in sources}
        assert {name for name, flag in flags.items() if flag != CHECKED_HASH} == set(), flags


def test_the_interpreter_reads_the_staged_bytecode_rather_than_compiling() -> None:
    with submission.staged() as template:
        done = subprocess.run(
            [sys.executable, "-I", "-v", "-c",
             f"import sys; sys.path.insert(0, {str(template)!r}); "
             "import checks.catalog, tinytorch"],
            capture_output=True, text=True, check=True, timeout=120)
        for module in ("checks/catalog", "tinytorch/__init__", "checks/__init__"):
            source = template / f"{module}.py"
            assert f"code object from '{_pyc(source)}'" in done.stderr, (
                f"{module}.py was not loaded from its staged bytecode:\n"
                + "\n".join(line for line in done.stderr.splitlines() if module in line))


def test_the_release_digest_moves_when_one_byte_of_bytecode_does() -> None:
    graded = source_graded_cells()
    with submission.staged() as template:
        before = cache.release_digest(template, graded)
        pyc = _pyc(template / "checks" / "catalog.py")
        data = bytearray(pyc.read_bytes())
        data[-1] ^= 1
        pyc.chmod(0o644)
        pyc.write_bytes(bytes(data))
        assert cache.release_digest(template, graded) != before


def test_two_stagings_have_the_same_digest() -> None:
    """The digest is the cache's key: a rerun stages again and must find its reports."""
    graded = source_graded_cells()
    digests = set()
    for _ in range(2):
        with submission.staged() as template:
            digests.add(cache.release_digest(template, graded))
    assert len(digests) == 1, digests

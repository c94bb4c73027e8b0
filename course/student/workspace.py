"""The student's working copy: made once from the release, never overwritten afterwards.

    python -m course.student.workspace                     # prepare work/07_training/, print it
    python -m course.student.workspace --refuse-if-served  # exit 1 if a Jupyter server serves it

``make lab`` opens ``work/07_training/07_training.ipynb``, not the release: ``make release``
regenerates ``notebooks/release/`` with ``--force`` every time, so a notebook edited there
would be erased by the next release. Here every file is copied from the release once, and a
manifest (``.release-manifest.json``) records the digest of each copy. When a later release
brings a different version of a file:

- a file the student never changed (its digest is the manifest's) is updated in place;
- a file the student changed is kept as it is, and the new version is written beside it
  (``07_training.release-<digest>.ipynb``), with a message saying so.

A file the student deleted is restored from the release. Nothing a student may have edited is
ever replaced or removed.

A notebook is written as the student's kernel will describe it: its ``language_info`` records
the Python version of this machine (the release records the students' pinned one, see
``course.authoring.build``), so JupyterLab, which writes the kernel's report into an open notebook,
finds nothing to change and the notebook does not open marked modified. The manifest keeps, per
file, the release's digest and the digest of what was written.

``make lab`` first asks ``--refuse-if-served``: when a Jupyter server of this user already
serves the working copy (a server records itself in Jupyter's runtime folder, which ``jupyter
server list`` reads; its process must be alive and its port must answer), a second one would
open the same notebook in a second kernel on the next port, and the two JupyterLabs would
overwrite each other's saves. The command names the running server (its address and process)
and exits 1 instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course.assignment import paths

WORK = paths.REPO / "work" / paths.ASSIGNMENT
MANIFEST = ".release-manifest.json"
SKIPPED = {"__pycache__", ".ipynb_checkpoints"}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def as_written(source: Path, version: str | None = None) -> bytes:
    """The bytes of ``source`` as the working copy holds them: a notebook whose recorded
    Python version is not this machine's gets this machine's; everything else as released."""
    data = source.read_bytes()
    if source.suffix != ".ipynb":
        return data
    version = version or platform.python_version()
    notebook = json.loads(data)
    info = notebook.get("metadata", {}).get("language_info")
    if not isinstance(info, dict) or info.get("version") in (None, version):
        return data
    info["version"] = version
    return (json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


def released_files(release: Path) -> list[Path]:
    """Every file of the release, relative to it, caches left out."""
    return sorted(
        p.relative_to(release)
        for p in release.rglob("*")
        if p.is_file() and not SKIPPED & set(p.relative_to(release).parts)
        and p.suffix != ".pyc"
    )


def beside(path: Path, release_digest: str) -> Path:
    """Where a release's new version of an edited file goes: ``name.release-<digest>.ext``."""
    return path.with_name(f"{path.stem}.release-{release_digest[:8]}{path.suffix}")


@dataclass
class Outcome:
    """What ``prepare`` did, file by file (paths relative to the working copy)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # edited file -> new version beside it

    def messages(self, work: Path) -> list[str]:
        lines = []
        if self.created and not (self.updated or self.kept):
            lines.append(f"working copy ready: {work} ({len(self.created)} files)")
        if self.updated:
            lines.append(f"updated from the new release (you had not edited them): "
                         f"{', '.join(self.updated)}")
        for mine, new in self.kept.items():
            lines.append(f"the release changed {mine}; your edited copy is kept as it is, and "
                         f"the new version is beside it: {new}")
        return lines


def prepare(release: Path, work: Path = WORK, *, version: str | None = None) -> Outcome:
    """Copy what is new in ``release`` into ``work`` without replacing any edited file
    (``version``: the student's kernel's Python, by default this machine's)."""
    if not (release / paths.NOTEBOOK).is_file():
        raise FileNotFoundError(f"no released notebook at {release / paths.NOTEBOOK}; "
                                "run `make release` first")
    work.mkdir(parents=True, exist_ok=True)
    manifest_path = work / MANIFEST
    manifest: dict[str, dict[str, str]] = {
        key: value if isinstance(value, dict) else {"release": value, "written": value}
        for key, value in (json.loads(manifest_path.read_text()) if manifest_path.is_file()
                           else {}).items()
    }
    outcome = Outcome()
    for relative in released_files(release):
        source, target, key = release / relative, work / relative, relative.as_posix()
        new = digest(source)
        data = as_written(source, version)
        written = hashlib.sha256(data).hexdigest()
        entry = {"release": new, "written": written}
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _write(target, data, source)
            manifest[key] = entry
            outcome.created.append(key)
            continue
        current, known = digest(target), manifest.get(key, {})
        if current == written:  # up to date
            manifest[key] = entry
        elif new == known.get("release"):  # edited, and the release unchanged: nothing to offer
            pass
        elif current == known.get("written"):  # untouched by the student: follow the release
            _write(target, data, source)
            manifest[key] = entry
            outcome.updated.append(key)
        else:  # edited (or of unknown origin): keep it, put the release's version beside it
            copy = beside(target, new)
            if not copy.exists():
                _write(copy, data, source)
            manifest[key] = {"release": new, "written": known.get("written", "")}
            outcome.kept[key] = copy.relative_to(work).as_posix()  # offered once; theirs stays
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return outcome


def _write(target: Path, data: bytes, source: Path) -> None:
    """Write ``data`` to ``target`` with the release file's permissions and times."""
    target.write_bytes(data)
    shutil.copystat(source, target)


def runtime_dir() -> Path:
    """Jupyter's runtime folder, where each running server writes ``jpserver-<pid>.json``."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:  # the same rule, for a Python without Jupyter
        if os.environ.get("JUPYTER_RUNTIME_DIR"):
            return Path(os.environ["JUPYTER_RUNTIME_DIR"])
        data = os.environ.get("JUPYTER_DATA_DIR") or Path(
            os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "jupyter"
        return Path(data) / "runtime"
    return Path(jupyter_runtime_dir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def _answers(host: str, port: int) -> bool:
    host = "127.0.0.1" if host in ("", "0.0.0.0", "*") else "::1" if host == "::" else host
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def running_servers(work: Path = WORK, runtime: Path | None = None) -> list[dict[str, Any]]:
    """The Jupyter servers running now whose root folder is ``work``, as their runtime files
    describe them (a file left by a server that died is ignored)."""
    found = []
    for record in sorted((runtime or runtime_dir()).glob("jpserver-*.json")):
        try:
            info = json.loads(record.read_text())
            root, pid = Path(info["root_dir"]).resolve(), int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if root != work.resolve() or not _alive(pid):
            continue
        if not info.get("sock") and not _answers(str(info.get("hostname", "")),
                                                 int(info.get("port") or 0)):
            continue
        found.append(info)
    return found


def _address(info: dict[str, Any]) -> str:
    url = str(info.get("url") or "").rstrip("/") + "/lab"
    return f"{url}?token={info['token']}" if info.get("token") else url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.student.workspace",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--refuse-if-served", action="store_true",
                        help="only check: exit 1, naming it, if a Jupyter server serves the "
                        "working copy now (make lab asks this first)")
    parser.add_argument("--work", type=Path, default=WORK, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.refuse_if_served:
        servers = running_servers(args.work)
        for info in servers:
            print(f"JupyterLab is already serving your working copy {args.work} (process "
                  f"{info['pid']}): open {_address(info)}\nor stop it first (Ctrl-C twice in "
                  f"its terminal, or `kill {info['pid']}`), then run `make lab` again. A "
                  "second JupyterLab would open the same notebook in a second kernel, and each "
                  "would overwrite the other's saves.", file=sys.stderr)
        return 1 if servers else 0
    release = paths.COURSE / "release" / paths.ASSIGNMENT
    try:
        outcome = prepare(release)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    for line in outcome.messages(WORK):
        print(line, file=sys.stderr)
    print(WORK / paths.NOTEBOOK)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the answer cells are assembled onto: Module 07 as the student was given it, never the
reference solution and never a module this command wrote before.
"""

from __future__ import annotations

from pathlib import Path

from tinytorch.complete.common import BACKUP, HEADER, MODULE, CompleteError

#: Module 07 as the student was given it (stubs raising ``NotImplementedError``), shipped by
#: the student wheel beside ``training.py``, which this command overwrites.
RELEASED = MODULE.with_name("training_released.py")


def given_module(packages: list[Path]) -> str:
    """Module 07 as the student was given it, from what they have: the released module the
    student wheel ships (``RELEASED``) in the first of the tinytorch ``packages`` (this one,
    then the targets' folders) that holds it; else a ``training.py``, or the backup
    ``complete`` made of it, that this command never wrote (a working copy fresh from the
    release). CompleteError when there is none: nothing is assembled from anything else."""
    for package in packages:
        if (package.parent / RELEASED).is_file():
            return (package.parent / RELEASED).read_text(encoding="utf-8")
    for package in packages:
        module = package.parent / MODULE
        for candidate in (module, module.with_name(module.name + BACKUP)):
            if candidate.is_file():
                text = candidate.read_text(encoding="utf-8")
                if not text.startswith(HEADER) and "NotImplementedError" in text:
                    return text
    shown = ", ".join(str(package) for package in packages) or "nowhere"
    raise CompleteError(f"no Module 07 as released ({RELEASED.name}) in the tinytorch at "
                        f"{shown}: reinstall the student wheel")

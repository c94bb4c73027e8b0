"""``tinytorch explain TT103`` (``python -m checks.explain TT103``): what a code means.

A check's message ends with ``likely bug [TT103]: ...``; this prints the cause behind the code
from ``checks.catalog``: what the bug is, what it does to training, and a wrong and a right
line. ``--list`` prints every code with its title.
"""

from __future__ import annotations

import argparse
import sys

from checks import catalog


def listing() -> str:
    """Every code with its title, one per line."""
    return "\n".join(f"{cause.code}  {cause.title}" + ("  (retired)" if cause.retired else "")
                     for cause in catalog.CAUSES)


def main(argv: list[str] | None = None, prog: str = "python -m checks.explain") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Explain a code a check printed: 'likely bug [TT103]: ...'.")
    parser.add_argument("code", nargs="?", help="the code, e.g. TT103")
    parser.add_argument("--list", action="store_true", help="every code with its title")
    args = parser.parse_args(argv)
    if args.list:
        print(listing())
        return 0
    if not args.code:
        parser.error("name a code (e.g. TT103), or --list")
    try:
        print(catalog.explain(args.code))
    except ValueError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

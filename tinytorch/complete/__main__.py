"""``python -m tinytorch.complete [NOTEBOOK]``: the same as ``tinytorch complete``."""

import sys

from tinytorch.complete.command import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tinytorch.complete"))

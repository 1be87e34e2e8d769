"""``python -m fastbce``: the command line (see ``fastbce --help``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

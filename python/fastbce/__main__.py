"""``python -m fastbce``: the built-in demonstration."""

import sys

from ._demo import run

if __name__ == "__main__":
    run(sys.stdout)

"""``python -m mmtutor ...``: the command line (see :mod:`mmtutor.cli`)."""

import sys

from mmtutor.cli import main

if __name__ == "__main__":
    sys.exit(main())

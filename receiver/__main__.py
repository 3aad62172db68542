"""`python -m receiver COMMAND`: the command line of ``receiver.cli``."""

import sys

from receiver.cli import main

if __name__ == "__main__":
    sys.exit(main())

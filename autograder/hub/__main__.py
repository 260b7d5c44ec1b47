"""``python -m autograder.hub``: see launch.py."""

import sys

from .launch import main

sys.exit(main())

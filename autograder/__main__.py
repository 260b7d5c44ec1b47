"""`python -m autograder`: the spamkit command line."""

from .cli import main

raise SystemExit(main())

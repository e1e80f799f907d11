"""`python -m memflops ...` runs the command line."""

import sys

from memflops.cli import main

sys.exit(main())

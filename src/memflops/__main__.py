"""`python -m memflops ...` runs the command line."""

from memflops.cli import run

run()

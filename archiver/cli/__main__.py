"""``python -m archiver.cli``."""

from archiver.cli import run

run()

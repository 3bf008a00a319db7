"""``python -m archiver.demo [--store PATH]``: the walk-through ``archiver demo`` runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from archiver.demo import run_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="archiver demo")
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args(argv)
    return run_demo(Console(highlight=False, soft_wrap=True), args.store)


if __name__ == "__main__":
    sys.exit(main())

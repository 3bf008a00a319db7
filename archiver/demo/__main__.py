"""``python -m archiver.demo [--store PATH]``: the walk-through ``archiver demo`` runs."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from archiver.demo import run_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="archiver demo")
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--serve", action="store_true", help="then serve the demo store in the web app")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    console = Console(highlight=False, soft_wrap=True)

    def serve(root: Path) -> int:
        """The web app over the demo store, while the sample site and the local TSA keep running."""
        console.rule("[bold]Serving the demo store (Ctrl-C to stop)")
        console.print("The link below logs you straight in; the sample site stays up, so the Capture page works too.")
        console.file.flush()
        try:
            return subprocess.run([sys.executable, "-m", "archiver.web", "--store", str(root), "--port",
                                   str(args.port)], check=False).returncode
        except KeyboardInterrupt:
            return 0

    return run_demo(console, args.store, then=serve if args.serve else None)


if __name__ == "__main__":
    sys.exit(main())

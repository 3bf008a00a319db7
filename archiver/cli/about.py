"""The offline demo and the version."""

from __future__ import annotations

import sys

from archiver.cli._common import Exit, StoreOpt, app


@app.command()
def demo(store: StoreOpt = None) -> None:
    """Offline walk-through against the bundled sample site."""
    import subprocess

    # The demo is a front-end of its own: run it, don't import it.
    args = [sys.executable, "-m", "archiver.demo", *(["--store", str(store)] if store else [])]
    code = subprocess.run(args, check=False).returncode
    if code:
        raise Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    from archiver import __version__

    sys.stdout.write(f"archiver {__version__}\n")

"""The offline demo and the version."""

from __future__ import annotations

import sys

from archiver.cli._common import Exit, StoreOpt, _out, app


@app.command()
def demo(store: StoreOpt = None) -> None:
    """Offline walk-through against the bundled sample site."""
    from archiver.demo import run_demo

    code = run_demo(_out(), store)
    if code:
        raise Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    from archiver import __version__

    sys.stdout.write(f"archiver {__version__}\n")

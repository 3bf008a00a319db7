"""The offline demo and the version."""

import sys
from typing import Annotated

import typer

from archiver.cli._common import Exit, StoreOpt, app


@app.command()
def demo(serve: Annotated[bool, typer.Option("--serve", help="Then serve the demo store in the web app, "
                                               "logged in by a printed one-time link.")] = False,
         port: Annotated[int, typer.Option("--port", help="Port for --serve.")] = 8000,
         store: StoreOpt = None) -> None:
    """Offline walk-through against the bundled sample site."""
    import subprocess

    # The demo is a front-end of its own: run it, don't import it.
    args = [sys.executable, "-m", "archiver.demo", *(["--store", str(store)] if store else []),
            *(["--serve", "--port", str(port)] if serve else [])]
    code = subprocess.run(args, check=False).returncode
    if code:
        raise Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    from archiver import __version__

    sys.stdout.write(f"archiver {__version__}\n")

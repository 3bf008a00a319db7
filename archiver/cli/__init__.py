"""The ``archiver`` command: parse, call the API, render, map errors to exit codes. Nothing else.

Exit codes: 0 ok, 1 verification failed, 2 usage/bad input, 3 network/remote failure, 4 store error.
One module per command group; importing this package registers every command on ``app``.
"""

from __future__ import annotations

import sys

import typer

# Importing a module registers its commands; this order is the order of `archiver --help`.
from archiver.cli import stores  # noqa: F401  # isort: skip
from archiver.cli import capture, records, verify, cite, bundles, watch, fleet, server, about, keys  # noqa: F401  # isort: skip
from archiver.cli._common import Exit, _err, app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    from archiver.errors import ArchiverError

    try:
        app(args=argv, standalone_mode=False)
    except Exit as e:
        return e.code
    except ArchiverError as exc:
        from rich.markup import escape

        _err().print(f"[bold red]error:[/] {escape(exc.diagnostics())}")
        return exc.exit_code
    except typer.Abort:
        _err().print("aborted")
        return 2
    except (typer.BadParameter, typer.Exit) as exc:
        if isinstance(exc, typer.Exit):
            return int(exc.exit_code)
        raise
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``archiver`` command: parse, call the API, render, map errors to exit codes. Nothing else.

Exit codes: 0 ok, 1 verification failed, 2 usage/bad input, 3 network/remote failure, 4 store error; ``watch run`` also
10 (something changed) and 11 (a declared selector matched nothing).
One module per command group; importing this package registers every command on ``app``.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any, NoReturn

import typer

# Importing a module registers its commands; this order is the order of `archiver --help`.
from archiver.cli import stores  # noqa: F401  # isort: skip
from archiver.cli import capture, records, verify, cite, bundles, watch, fleet, server, about, keys  # noqa: F401  # isort: skip
from archiver.cli import publish, log, witness, collection, search, provision, alerts, matter, exhibit  # noqa: F401  # isort: skip
from archiver.cli._common import _APP_OPTS, Exit, _err, app

__all__ = ["app", "main", "run"]


def _command_name(info: Any) -> str:
    return str(info.name or info.callback.__name__.replace("_", "-"))


def app_for(argv: list[str]) -> typer.Typer:
    """Only the command being run: Typer builds a click command for every command it holds, which is
    most of the start-up time of `archiver show`; help and unknown names get the whole tree."""
    name = next((a for a in argv if not a.startswith("-")), None)
    if name is None or argv[:1] != [name]:
        return app
    one = typer.Typer(**_APP_OPTS, add_completion=False, help=app.info.help)
    one.registered_commands = [c for c in app.registered_commands if _command_name(c) == name]
    one.registered_groups = [g for g in app.registered_groups if g.name == name]
    if len(one.registered_commands) + len(one.registered_groups) != 1:
        return app
    # click runs a group with a single command as that command only when asked to: keep it a group
    one.callback()(lambda: None)
    return one


def main(argv: list[str] | None = None) -> int:
    from archiver.errors import ArchiverError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app_for(args)(args=args, prog_name="archiver", standalone_mode=False)
    except Exit as e:
        return e.code
    except ArchiverError as exc:
        from archiver.cli._common import safe

        # a message may quote a bundle's names: each line made safe, the hint's own line break kept
        _err().print("[bold red]error:[/] " + "\n".join(safe(line) for line in exc.diagnostics().split("\n")))
        return exc.exit_code
    except typer.Abort:
        _err().print("aborted")
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except Exception as exc:
        ce = _click_exceptions()
        if isinstance(exc, ce.UsageError):
            _usage_error(exc, ce)
            return 2
        if isinstance(exc, ce.ClickException):  # e.g. a file option that cannot be opened
            sys.stderr.write(f"error: {' '.join(exc.format_message().split())}\n")
            return 2
        raise
    return 0


def run() -> NoReturn:
    """The ``archiver`` console script: ``main()``, then leave without tearing the interpreter down.

    Python's own exit frees every module and object one by one: ~40 ms of a command that takes 200
    (measured with everything a capture imports). What exit must do is done first: output flushed,
    the atexit handlers (multiprocessing, logging, coverage, temporary files). Anything unusual (a
    non-daemon thread still running, output that cannot be flushed, a tracer or profiler that
    reports once main() returns) takes the normal way out."""
    code = main()
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if others or sys.flags.dev_mode or sys.gettrace() or sys.getprofile():  # a profiler reports after main()
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # e.g. a closed pipe: let Python report it as it always does
        sys.exit(code)
    os._exit(code)


def _click_exceptions() -> Any:
    """click's exception module (typer ≥ 0.25 carries its own copy of click; we pin the click-based one)."""
    import importlib

    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:  # typer < 0.25, on top of click
        return importlib.import_module("click.exceptions")


def _usage_error(exc: Any, ce: Any) -> None:
    """One line saying what is wrong, then the usage line with where to read more; never a traceback."""
    ctx = exc.ctx
    if isinstance(exc, ce.NoArgsIsHelpError):
        cmd = getattr(ctx, "command", None)
        subs = sorted(getattr(cmd, "commands", {}) or {})
        message = f"missing command (one of: {', '.join(subs)})" if subs else "missing arguments"
    else:
        message = " ".join(exc.format_message().split())
    sys.stderr.write(f"error: {message}\n")
    if ctx is not None:
        usage = " ".join(ctx.get_usage().split())
        sys.stderr.write(f"{usage}  (see '{ctx.command_path} --help')\n")
    else:
        sys.stderr.write("Usage: archiver [OPTIONS] COMMAND [ARGS]...  (see 'archiver --help')\n")

if __name__ == "__main__":
    run()

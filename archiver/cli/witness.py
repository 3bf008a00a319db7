"""``archiver witness``: run a transparency-log witness (c2sp.org/tlog-witness) for other archives' logs.

Thin: :class:`archiver.tlog.witness.Witness` is the protocol and its state; here, options and output.
A witness needs no store: its state directory holds its key and what it cosigned.
"""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from archiver.cli._common import _APP_OPTS, _out, app, safe

witness_app = typer.Typer(**_APP_OPTS, help="Run a witness that cosigns other archives' log checkpoints.")
app.add_typer(witness_app, name="witness")

StateOpt = Annotated[Path, typer.Option("--state", help="The witness's directory: its key and what it cosigned.",
                                        file_okay=False)]
NameOpt = Annotated[str | None, typer.Option("--key-name", help="The witness's name, fixed on first use "
                                             "(a schema-less URL, e.g. witness.example.org/w1).")]


@witness_app.command("serve")
def witness_serve(state: StateOpt, key_name: NameOpt = None,
                  host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
                  port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090) -> None:
    """Answer POST /add-checkpoint for the logs on the allow-list (and GET /<origin hash>/checkpoint)."""
    from archiver.extras import require
    from archiver.tlog.witness import Witness, asgi_app

    uvicorn = require("web", "uvicorn")  # the web server's: a witness needs no framework, only HTTP

    w = Witness(state, key_name)
    if not w.logs():
        sys.stderr.write("warning: no log is allowed yet: every checkpoint is answered 404 "
                         "(archiver witness allow --state DIR VKEY)\n")
    _out().print(f"witness {safe(w.name)} on http://{safe(host)}:{port}/add-checkpoint\nvkey {safe(w.vkey())}",
                 highlight=False)
    sys.stdout.flush()
    config = uvicorn.Config(asgi_app(w), host=host, port=port, lifespan="off", access_log=False,
                            log_level=os.environ.get("ARCHIVER_LOG_LEVEL", "warning"), timeout_keep_alive=30)
    uvicorn.Server(config).run()


@witness_app.command("key")
def witness_key(state: StateOpt, key_name: NameOpt = None) -> None:
    """Print the witness's verifier key (name+hex+base64, type 0x04), making the key on first use."""
    from archiver.tlog.witness import Witness

    sys.stdout.write(Witness(state, key_name).vkey() + "\n")


@witness_app.command("allow")
def witness_allow(state: StateOpt, vkey: Annotated[str, typer.Argument(help="The log's vkey (`archiver log key` "
                                                                       "on the log's side).")]) -> None:
    """Accept checkpoints signed by this log key (its name is the log's origin)."""
    from archiver.tlog.witness import Witness

    v = Witness(state).allow(vkey)
    _out().print(f"checkpoints of {safe(v.name)} signed by key {v.key_id:08x} are accepted", highlight=False)


@witness_app.command("disallow")
def witness_disallow(state: StateOpt, vkey: str) -> None:
    """Stop accepting a log key (what was cosigned for its origin is kept)."""
    from archiver.tlog.witness import Witness

    Witness(state).disallow(vkey)
    _out().print("removed", highlight=False)


@witness_app.command("list")
def witness_list(state: StateOpt) -> None:
    """The logs this witness accepts and the size it last cosigned for each."""
    from archiver.tlog.witness import Witness

    logs = Witness(state).logs()
    out = _out()
    for entry in logs:
        seen = "nothing cosigned yet" if entry.size is None else f"cosigned size {entry.size}"
        out.print(f"{safe(entry.origin)}  {safe(entry.vkey)}  {seen}", highlight=False)

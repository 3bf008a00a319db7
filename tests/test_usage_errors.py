"""Every usage error, for every command and sub-command: one line on stderr, the usage hint, exit 2,
never a traceback. The command tree is walked, so a new command is covered without editing this file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from archiver.cli import app, main

UNKNOWN = "--no-such-option-xyz"


def _walk(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, cmd
    for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
        if not getattr(sub, "hidden", False):
            yield from _walk(sub, (*path, name))


TREE = list(_walk(typer.main.get_command(app)))


def _is_group(cmd: Any) -> bool:
    return bool(getattr(cmd, "commands", None))


def _needs_args(cmd: Any) -> bool:
    return _is_group(cmd) or any(getattr(p, "required", False) for p in cmd.params)


def _usage_shape(err: str, path: tuple[str, ...]) -> None:
    lines = err.splitlines()
    assert "Traceback" not in err, err
    assert len(lines) == 2, err
    assert lines[0].startswith("error: "), err
    assert lines[1].startswith("Usage: archiver" + "".join(f" {p}" for p in path)), err
    assert "--help" in lines[1], err


def test_the_walk_sees_the_whole_tree() -> None:
    names = {" ".join(p) for p, _ in TREE}
    assert {"", "capture", "get", "verify", "keys", "keys trust", "config set", "store", "watch"} <= names
    assert len(names) > 30


@pytest.mark.parametrize("path", [p for p, _ in TREE], ids=lambda p: " ".join(p) or "archiver")
def test_unknown_option_is_a_usage_error(path: tuple[str, ...], cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli(*path, UNKNOWN)
    assert r.code == 2, (r.code, r.err)
    _usage_shape(r.err, path)
    assert UNKNOWN in r.err.splitlines()[0] or "No such command" in r.err, r.err
    assert r.out == ""


@pytest.mark.parametrize("path", [p for p, c in TREE if _needs_args(c)], ids=lambda p: " ".join(p) or "archiver")
def test_missing_arguments_are_a_usage_error(path: tuple[str, ...], cli) -> None:  # type: ignore[no-untyped-def]
    r = cli(*path)
    assert r.code == 2, (r.code, r.err)
    _usage_shape(r.err, path)
    assert r.out == ""


@pytest.mark.parametrize("path", [p for p, c in TREE if _is_group(c)], ids=lambda p: " ".join(p) or "archiver")
def test_unknown_sub_command_is_a_usage_error(path: tuple[str, ...], cli) -> None:  # type: ignore[no-untyped-def]
    r = cli(*path, "nosuchcmd")
    assert r.code == 2, (r.code, r.err)
    _usage_shape(r.err, path)
    assert "nosuchcmd" in r.err.splitlines()[0]


def test_bad_value_is_a_usage_error(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("capture", "--page-timeout", "soon", "https://example.org/")
    assert r.code == 2 and "--page-timeout" in r.err.splitlines()[0], r.err
    _usage_shape(r.err, ("capture",))


def test_as_a_process_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "ARCHIVER_HOME": str(tmp_path / "none")}
    for args in (["nosuchcmd"], ["keys", "show"], ["get"], ["capture", "--nosuchflag", "x"]):
        r = subprocess.run([sys.executable, "-m", "archiver.cli", *args], capture_output=True, text=True, env=env,
                           timeout=60, check=False)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("error: "), (args, r.stderr)
        assert len(r.stderr.splitlines()) == 2, r.stderr


def test_help_still_exits_zero() -> None:
    assert main(["--help"]) == 0
    assert main(["keys", "--help"]) == 0


def test_get_without_o_streams_to_a_pipe_and_refuses_a_terminal(archive, site, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import json
    import pty

    r = cli("capture", site.base_url + "/plain", "--json", "--store", str(archive.root))
    assert r.code == 0, r.err
    rid = json.loads(r.out)["record_id"]
    m = archive.manifest(rid)
    content = m.artifact("content")
    assert content is not None
    env = {**os.environ, "ARCHIVER_HOME": str(archive.root)}
    cmd = [sys.executable, "-m", "archiver.cli", "get", rid, "content"]
    piped = subprocess.run(cmd, capture_output=True, env=env, timeout=60, check=False)
    assert piped.returncode == 0, piped.stderr
    assert hashlib.sha256(piped.stdout).hexdigest() == content.sha256 and piped.stderr == b""
    entries = [e for e in archive.custody.for_record(rid) if e.event == "get"]
    assert entries and entries[-1].detail.get("to") == "stdout"
    main_fd, tty_fd = pty.openpty()
    try:
        at_tty = subprocess.run(cmd, stdout=tty_fd, stderr=subprocess.PIPE, env=env, timeout=60, check=False)
    finally:
        os.close(tty_fd)
        os.close(main_fd)
    assert at_tty.returncode == 2, at_tty.stderr
    err = at_tty.stderr.decode()
    assert err.startswith("error: stdout is a terminal") and "-o FILE" in err and "Traceback" not in err, err
    out = tmp_path / "c.bin"
    assert cli("get", rid, "content", "-o", str(out), "--store", str(archive.root)).code == 0
    assert out.read_bytes() == piped.stdout

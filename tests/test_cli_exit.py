"""The console script leaves without Python's interpreter teardown (``archiver.cli.run``): what a
normal exit does that matters must still happen — exit code, every byte of output through a pipe,
atexit handlers, and waiting for a non-daemon thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ARCHIVER_HOME=str(store), PYTHONPATH=str(ROOT))
    env.pop("PYTHONUNBUFFERED", None)  # stdout block-buffered on a pipe, as for most users
    script = f"import sys\nsys.argv = ['archiver', *{list(args)!r}]\n{code}\nfrom archiver.cli import run\nrun()\n"
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_exit_codes_and_atexit_handlers(tmp_path: Path) -> None:
    hook = "import atexit\natexit.register(lambda: print('atexit ran'))"
    ok = _run(hook, tmp_path / "none", "--help")
    assert ok.returncode == 0 and "Usage" in ok.stdout and ok.stdout.rstrip().endswith("atexit ran")
    usage = _run(hook, tmp_path / "none", "no-such-command")
    assert usage.returncode == 2 and "No such command" in usage.stderr and "atexit ran" in usage.stdout
    missing = _run(hook, tmp_path / "none", "list")
    assert missing.returncode == 4 and "no archiver store" in missing.stderr


def test_output_left_in_the_buffer_arrives_whole(tmp_path: Path) -> None:
    """Small writes nobody flushes (the last few KiB stay in stdout's block buffer on a pipe), made
    by the command and by an atexit handler: nothing may be lost by leaving with os._exit."""
    store = tmp_path / "s"
    assert _run("", store, "init").returncode == 0
    late = ("import atexit\n"
            "atexit.register(lambda: [sys.stdout.write('y' * 10) for _ in range(10_000)] and sys.stdout.write('end'))")
    r = _run(late, store, "config", "list", "--json")
    assert r.returncode == 0
    tail = "y" * 100_000 + "end"
    assert r.stdout.endswith(tail), r.stdout[-200:]
    json.loads(r.stdout[: -len(tail)])  # the command's own report, whole


def test_a_running_non_daemon_thread_is_waited_for(tmp_path: Path) -> None:
    thread = ("import threading, time\n"
              "def late():\n    time.sleep(0.3)\n    print('thread finished', flush=True)\n"
              "threading.Thread(target=late).start()")
    r = _run(thread, tmp_path / "none", "--help")
    assert r.returncode == 0
    assert r.stdout.rstrip().endswith("thread finished")


def test_a_profiler_still_reports(tmp_path: Path) -> None:
    """cProfile prints its table after main() returns: the fast way out would lose it."""
    env = dict(os.environ, ARCHIVER_HOME=str(tmp_path / "none"), PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "cProfile", "-m", "archiver.cli", "--help"], env=env,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and "Usage" in r.stdout
    assert "function calls" in r.stdout and "Ordered by" in r.stdout


def test_starting_the_cli_imports_no_use_case() -> None:
    """Every command imports every CLI module (that is how they register): a module that imported its
    use case at the top would make every command pay for it (start-up is a feature, docs/architecture.md)."""
    code = ("import sys, archiver.cli; print(sorted(m for m in sys.modules if m.startswith('archiver.') and "
            "m.split('.')[1] in {'provisions', 'publication', 'collections', 'matters', 'exhibits', 'fulltext', "
            "'monitor', 'cite', 'verify', 'capture', 'bundle', 'tlog', 'alerts', 'gc', 'evidence'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert out.stdout.strip() == "[]", out.stdout

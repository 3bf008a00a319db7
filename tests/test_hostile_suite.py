"""Issue 28's must-show, run as a recipient meets the bundles: every hostile bundle of ``tests/hostile.py``
(the issue's items 1-9 and the ones it found refused already), each built here from one genuine
bundle, goes through ``archiver verify`` and ``archiver import`` as processes of their own (a fresh
store per case that trusts the exporter's key and TSA, so trust is not what refuses them; HOME and
TMPDIR inside the case's directory) and through the web upload of one real ``archiver serve
--public-verify`` process for the whole module. For each:

- ``verify`` and ``import`` exit 1 or 2, with no traceback, no terminal control bytes and a short
  output (``import``: its one error line and hint), each under 60 s and 1 GB of peak RSS
  (``os.wait4``'s ``ru_maxrss`` of that process);
- nothing is written outside the store (the case's directory, store excepted, is the same after),
  the store is as it was after the refused import, and ``verify --all`` on it exits 0;
- the web answers a 4xx problem or a 200 report whose verdict is not ``verified``, and the server
  and its verification processes stay under 1 GB (``VmHWM`` sampled from ``/proc``).

The genuine bundle goes through the same steps and is accepted (else the refusals prove nothing).
Run with ``-s`` to see the table of time and memory per case.
"""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from archiver.demo.server import SampleSite

from .conftest import store_snapshot
from .hostile import SUITE, Origin
from .recipient import Ran, Sampler, case_env, recipient_setup, run, serve_process, served_store

MAX_SECONDS = 60.0
MAX_RSS = 1 << 30
#: rows of the table printed at the end: case, item, seconds and peak RSS of verify / import, web seconds
TABLE: list[tuple[str, str, float, int, float, int, float, str, str]] = []


@dataclass
class Env:
    origin: Origin
    template: Path
    key_id: str
    base_url: str
    token: str
    sampler: Sampler
    proc: subprocess.Popen[bytes]
    notes: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, site: SampleSite) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("suite")
    setup = recipient_setup(root, site)
    served, token = served_store(setup, root / "served")
    proc, base = serve_process(served, case_env(root / "server"), "--public-verify")
    sampler = Sampler(proc.pid)
    sampler.start()
    e = Env(setup.origin, setup.template, setup.key_id, base, token, sampler, proc)
    try:
        yield e
    finally:
        sampler.stopped.set()
        sampler.join(timeout=5)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        _print_table(root, sampler)


def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MB"


def _print_table(root: Path, sampler: Sampler) -> None:
    lines = [f"{'case':<70} {'item':<5} {'verify':>15} {'import':>15} {'web':>24}  refused by (verify's first FAIL)"]
    for case, item, vs, vr, is_, ir, ws, wr, why in TABLE:
        lines.append(f"{case[:70]:<70} {item:<5} {vs:4.1f} s {_mb(vr):>7} {is_:4.1f} s {_mb(ir):>7} {ws:4.1f} s "
                     f"{wr:<17}  {why}")
    lines.append(f"server peak RSS {_mb(sampler.server)}; its verification processes: {len(sampler.seen)}, peak "
                 f"RSS {_mb(sampler.child)}")
    text = "\n".join(lines)
    (root / "table.txt").write_text(text + "\n")
    print("\n" + text)


def snapshot(top: Path, store: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``top`` but the store: (size, mtime) by path."""
    return {str(p.relative_to(top)): (p.stat().st_size, p.stat().st_mtime_ns) for p in top.rglob("*")
            if p.is_file() and store not in p.parents}


def refused_cleanly(r: Ran, what: str) -> None:
    text = r.out + r.err
    assert r.code in (1, 2), f"{what}: exit {r.code}\n{text[-3000:]}"
    assert "Traceback" not in text, f"{what}: {text[-3000:]}"
    assert not any(c in text for c in "\x1b\x07\x00"), f"{what}: raw control bytes: {text[:500]!r}"
    assert len(text) < 20_000, f"{what}: {len(text)} characters of output"
    assert r.seconds < MAX_SECONDS, f"{what}: {r.seconds:.1f} s"
    assert r.rss < MAX_RSS, f"{what}: peak RSS {_mb(r.rss)}"


def web_upload(e: Env, bundle: Path) -> requests.Response:
    with bundle.open("rb") as fh:
        return requests.post(e.base_url + "/api/v1/verify-bundle", headers={"Authorization": f"Bearer {e.token}"},
                             files={"file": ("upload.wacz", fh, "application/zip")}, timeout=120)


def timed_upload(e: Env, bundle: Path) -> tuple[requests.Response, float]:
    started = time.monotonic()
    return web_upload(e, bundle), time.monotonic() - started


def test_the_genuine_bundle_is_accepted_everywhere(env: Env, tmp_path: Path) -> None:
    """The control: the same steps take the genuine bundle (so each refusal below is the case's own)."""
    store = tmp_path / "store"
    shutil.copytree(env.template, store)
    ce = case_env(tmp_path)
    v = run(["verify", str(env.origin.good), "--trust-key", env.key_id, "--store", str(store)], ce)
    assert v.code == 0, v.out + v.err
    i = run(["import", str(env.origin.good), "--trust-key", env.key_id, "--store", str(store)], ce)
    assert i.code == 0 and env.origin.rid in i.out + i.err, i.out + i.err
    assert run(["verify", "--all", "--store", str(store)], ce).code == 0
    started = time.monotonic()
    resp = web_upload(env, env.origin.good)
    assert resp.status_code == 200 and resp.json()["verdict"] == "verified", resp.text
    TABLE.append(("(control) the genuine bundle", "-", v.seconds, v.rss, i.seconds, i.rss, time.monotonic() - started,
                  "200 verified", ""))


@pytest.mark.parametrize("case", list(SUITE))
def test_hostile_bundle_is_refused_cleanly(case: str, env: Env, tmp_path: Path) -> None:
    item, build = SUITE[case]
    bad = tmp_path / "bad.wacz"
    build(env.origin, bad)
    store = tmp_path / "store"
    shutil.copytree(env.template, store)
    ce = case_env(tmp_path)
    outside = snapshot(tmp_path, store)
    # the web upload runs meanwhile (the server has its own store): the module stays within 3 minutes
    web = concurrent.futures.ThreadPoolExecutor(1)
    upload = web.submit(timed_upload, env, bad)

    v = run(["verify", str(bad), "--trust-key", env.key_id, "--store", str(store)], ce)
    refused_cleanly(v, "verify")
    assert snapshot(tmp_path, store) == outside, "verify wrote outside the store"

    before = store_snapshot(store)
    i = run(["import", str(bad), "--trust-key", env.key_id, "--store", str(store)], ce)
    refused_cleanly(i, "import")
    assert len(i.err.strip().splitlines()) <= 2 and not i.out.strip(), i.out + i.err  # the error and its hint
    assert store_snapshot(store) == before, "a refused import changed the store"
    assert snapshot(tmp_path, store) == outside, "import wrote outside the store"
    after = run(["verify", "--all", "--store", str(store)], ce)
    assert after.code == 0, after.out + after.err

    resp, web_s = upload.result(timeout=120)
    web.shutdown()
    if resp.status_code == 200:
        verdict = resp.json()["verdict"]
        assert verdict != "verified", resp.text[:2000]
        shown = f"200 {verdict}"
    else:
        assert 400 <= resp.status_code < 500, resp.text[:2000]
        assert resp.headers["content-type"].startswith("application/problem+json")
        shown = f"{resp.status_code} {resp.json()['title']}"
    assert web_s < MAX_SECONDS
    assert env.sampler.server < MAX_RSS and env.sampler.child < MAX_RSS, (env.sampler.server, env.sampler.child)
    assert env.proc.poll() is None, "the server died"
    assert not list((env.origin.archive.root.parent / "served" / "tmp").glob("upload-*")), "an upload was left behind"
    why = next((" ".join(ln.split())[:90] for ln in v.out.splitlines() if ln.strip().startswith("FAIL")),
               v.err.strip()[:90])
    TABLE.append((case, item, v.seconds, v.rss, i.seconds, i.rss, web_s, shown, why))
    json.dumps(TABLE[-1])  # plain values only

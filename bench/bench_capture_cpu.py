"""Issue 33, point 4: batch capture's pages/s and CPU per page against `wget --warc-file` in the same run,
and `archiver verify ID`'s median wall time; for this checkout and, with BENCH_BEFORE=<checkout>, for an
older one in the same run.

The machine is shared, so every figure is a ratio to a peer measured beside it: each round captures the
200 corpus pages (-j 8, full provenance, batched RFC 3161 tokens from a local TSA) with each checkout in
turn (the order alternates) and runs wget over the same URLs right after each; a round's ratios are
taken against its own wget runs, and the table gives the median of BENCH_REPEAT (5) rounds. The load
average (`uptime`) is printed before and after. `verify ID` is timed by hyperfine (-N, 3 warm-ups, 15
runs) on a one-record store, bytecode compiled, as bench/bench_startup.py does. Loopback only; asserts
nothing; writes bench/results-capture-cpu-latest.md (BENCH_OUT to write elsewhere); the analysis of the figures
is bench/results-capture-cpu.md.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import bench_speed as speed  # noqa: E402  # the corpus site and stores of the capture benchmark

PAGES = int(os.environ.get("BENCH_SPEED_PAGES", "200"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
BEFORE = os.environ.get("BENCH_BEFORE")
OUT = Path(os.environ.get("BENCH_OUT", str(ROOT / "bench" / "results-capture-cpu-latest.md")))


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _env(src: Path, store: Path) -> dict[str, str]:
    return dict(os.environ, ARCHIVER_ALLOW_PRIVATE="1", ARCHIVER_HOME=str(store), PYTHONWARNINGS="ignore",
                PYTHONPATH=str(src))


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), r.stdout


def _cli(src: Path) -> list[str]:
    return [sys.executable, "-m", "archiver.cli"]


def _store(src: Path, store: Path, tsa: object | None = None) -> dict[str, str]:
    env = _env(src, store)
    subprocess.run([*_cli(src), "init"], env=env, cwd=src, capture_output=True, check=True)
    settings = [("capture.per_host", "16")]
    if tsa is not None:
        settings += [("tsa.urls", tsa.url), ("tsa.certs", str(tsa.ca_pem))]  # type: ignore[attr-defined]
    for k, v in settings:
        subprocess.run([*_cli(src), "config", "set", k, v], env=env, cwd=src, capture_output=True, check=True)
    return env


def capture_round(tmp: Path, base: str, srcs: dict[str, Path], rnd: int) -> dict[str, dict[str, float]]:
    from archiver.demo.tsa import LocalTSA

    urls = tmp / "urls.txt"
    urls.write_text("".join(f"{base}/page/{i}\n" for i in range(PAGES)))
    names = list(srcs) if rnd % 2 == 0 else list(reversed(srcs))
    out: dict[str, dict[str, float]] = {}
    for name in names:
        src = srcs[name]
        with LocalTSA() as tsa:
            env = _store(src, tmp / f"store-{name}-{rnd}", tsa)
            wall, cpu, stdout = _timed([*_cli(src), "capture", "-i", str(urls), "-j", "8", "--json"], env, src)
        ok = sum(1 for line in stdout.splitlines() if line.startswith("{") and json.loads(line).get("record_id"))
        wdir = tmp / f"wget-{name}-{rnd}"
        wdir.mkdir()
        wwall, wcpu, _ = _timed(["wget", "-q", "-O", "/dev/null", f"--warc-file={wdir}/w", "-i", str(urls)], env, wdir)
        out[name] = {"ok": ok, "wall": wall, "cpu": cpu, "wget_wall": wwall, "wget_cpu": wcpu,
                     "pps_ratio": wwall / wall, "cpu_ratio": cpu / wcpu}
    return out


def verify_median(tmp: Path, base: str, src: Path, name: str) -> float:
    env = _store(src, tmp / f"verify-{name}")
    out = subprocess.run([*_cli(src), "capture", f"{base}/page/0", "--json"], env=env, cwd=src, capture_output=True,
                         text=True, check=True).stdout
    rid = json.loads(out)["record_id"]
    archiver = str(Path(sys.executable).parent / "archiver")  # the console script, as bench_startup.py runs it
    report = tmp / f"hf-{name}.json"
    subprocess.run(["hyperfine", "-N", "--warmup", "3", "--runs", "15", "--export-json", str(report),
                    f"{archiver} verify {rid}"], env=env, check=True, capture_output=True)
    return float(json.loads(report.read_text())["results"][0]["median"])


def main() -> None:
    if shutil.which("wget") is None or shutil.which("hyperfine") is None:
        sys.exit("wget and hyperfine are needed (make bench installs them)")
    srcs = {"after": ROOT}
    if BEFORE:
        srcs = {"before": Path(BEFORE).resolve(), "after": ROOT}
    for src in srcs.values():
        speed._bytecode(src)
    files = sorted(speed.CORPUS.glob("*/*/*.html"))
    if not files:
        sys.exit("../shared/corpus is not beside the checkout")
    speed.Site.pages = [f.read_bytes() for f in files]
    base = speed._serve()
    load_before = _uptime()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rounds = [capture_round(tmp, base, srcs, r) for r in range(REPEAT)]
        verify = {name: verify_median(tmp, base, src, name) for name, src in srcs.items()}
    load_after = _uptime()
    lines = ["# Capture CPU and verify start-up (issue 33, point 4; bench/bench_capture_cpu.py)", "",
             f"{started}; {os.cpu_count()} CPUs shared with other work. Load before: `{load_before}`; "
             f"after: `{load_after}`. {PAGES} corpus pages ({len(files)} distinct, "
             f"{sum(map(len, speed.Site.pages)) / len(files) / 1024:.0f} KB on average) from 127.0.0.1, -j 8, "
             f"full provenance and batched RFC 3161 tokens; each ratio against wget run right after it in the "
             f"same round; medians of {REPEAT} rounds (min–max in brackets).", "",
             "| code | pages ok | pages/s | wget pages/s | pages/s ÷ wget's (goal ≥ 1.5) | CPU ms/page | "
             "wget CPU ms/page | CPU/page ÷ wget's (goal ≤ 1.5) | `verify ID` median s (goal ≤ 0.20) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in srcs:
        rs = [r[name] for r in rounds]

        def med(key: str, rs: list[dict[str, float]] = rs) -> float:
            return statistics.median(x[key] for x in rs)

        def span(key: str, rs: list[dict[str, float]] = rs) -> str:
            return f"{min(x[key] for x in rs):.2f}–{max(x[key] for x in rs):.2f}"

        lines.append(f"| {name} ({srcs[name]}) | {min(x['ok'] for x in rs):.0f} | {PAGES / med('wall'):.1f} | "
                     f"{PAGES / med('wget_wall'):.1f} | {med('pps_ratio'):.2f}× ({span('pps_ratio')}) | "
                     f"{med('cpu') * 1000 / PAGES:.1f} | {med('wget_cpu') * 1000 / PAGES:.1f} | "
                     f"{med('cpu_ratio'):.2f}× ({span('cpu_ratio')}) | {verify[name]:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.write_text(text, "utf-8")


if __name__ == "__main__":
    main()

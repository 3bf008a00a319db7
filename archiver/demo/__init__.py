"""``archiver demo``: the main job end to end, offline, against the bundled sample site.

It runs the real CLI commands (shown as ``$ archiver …``) in child processes, so what it prints is what a
user sees; it imports the facade, never the CLI (front-ends do not import each other).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from archiver.demo.server import SampleSite, site_file

if TYPE_CHECKING:
    from rich.console import Console


@contextmanager
def _store_dir(store: Path | None) -> Iterator[Path]:
    if store is not None:
        yield store
        return
    with tempfile.TemporaryDirectory(prefix="archiver-demo-") as tmp:
        yield Path(tmp) / "store"


def run_demo(console: Console, store: Path | None = None, *,
             then: Callable[[Path], int] | None = None) -> int:
    """The walk-through; ``then(store)`` runs before the sample site, TSA and stand-in stop (``--serve``)."""
    problems: list[str] = []

    def step(title: str) -> None:
        console.rule(f"[bold]{title}")

    def run(*args: str, expect: int = 0, quiet: bool = False) -> str:
        """Run the real ``archiver`` command in a child process: the demo shows exactly what a user sees."""
        console.print(f"[dim]$ archiver {' '.join(args)}[/]")
        console.file.flush()
        proc = subprocess.run([sys.executable, "-m", "archiver.cli", *args], check=False,
                              stdout=subprocess.PIPE if quiet else None, text=True)
        if proc.returncode != expect:
            problems.append(f"`archiver {' '.join(args)}` exited {proc.returncode}, expected {expect}")
        return proc.stdout or ""

    from archiver.demo.tsa import LocalTSA
    from archiver.demo.wayback import LocalWayback

    with SampleSite() as site, LocalTSA(label="Archiver demo TSA (local test authority)") as tsa, \
            LocalWayback() as ia, _store_dir(store) as root:
        base = site.base_url
        s = ["--store", str(root)]
        console.print(f"Sample site on {base} (loopback only); store at {root}")
        console.print(f"[yellow]Timestamp authority on {tsa.url}: a LOCAL TEST AUTHORITY (OpenSSL's "
                      "`openssl ts -reply` with a throwaway CA), not a trusted third party.[/]")
        console.print(f"[yellow]Wayback Machine stand-in on {ia.base_url}: speaks the Internet Archive's API "
                      "formats, offline; it is not the real Archive.[/]\n")

        step("1. Create a store and a signing key")
        run("init", *s, "--operator", "Demo Operator", "--organization", "Example Compliance LLP")
        console.print("The sample site is on 127.0.0.1, which captures refuse by default (SSRF guard):")
        run("capture", f"{base}/privacy", *s, expect=2)
        run("config", "set", "capture.allow_private", "true", *s)
        console.print("Use the local TSA for trusted time, and trust its CA for verification:")
        run("config", "set", "tsa.urls", tsa.url, *s)
        shutil.copy(tsa.ca_pem, root.parent / "demo-tsa-ca.pem")
        run("config", "set", "tsa.certs", str(root.parent / "demo-tsa-ca.pem"), *s)
        console.print("Point the Wayback client at the stand-in (configuration only):")
        run("config", "set", "wayback.base_url", ia.base_url, *s)
        run("config", "set", "wayback.availability_url", ia.availability_url, *s)

        step("2. Capture: a chunked HTML policy, a PDF, a redirect and a gzip'd page")
        out = run("capture", f"{base}/privacy", "--entity", "Example Inc.", "--document", "Privacy Policy",
                  *s, "--json", quiet=True)
        captured = json.loads(out) if out.strip() else {}
        privacy = captured.get("record_id", "")
        stamps = captured.get("timestamps", [])
        console.print(f"captured {privacy}; timestamp token: "
                      + (f"genTime {stamps[0]['gen_time']}" if stamps and stamps[0]["ok"] else "[red]none[/]"))
        if not (stamps and stamps[0]["ok"]):
            problems.append("the capture was not timestamped")
        console.print("A batch: three captures, ONE timestamp request for them (a Merkle tree over their manifests), "
                      "and one for the transparency-log checkpoint signed at its end:")
        batch = root.parent / "urls.txt"
        batch.write_text(f"{base}/terms.pdf\tExample Inc.\tTerms of Service\n"
                         f"{base}/old-privacy\tExample Inc.\tPrivacy Policy (old link)\n"
                         f"{base}/news\tExample Inc.\tPolicy updates\n", "utf-8")
        before = tsa.requests
        run("capture", "-i", str(batch), "-j", "3", *s)
        console.print(f"TSA requests for the batch of 3: {tsa.requests - before} (records, then the log checkpoint)")
        if tsa.requests - before != 2:
            problems.append("the batch did not make exactly one TSA request for its records and one for its "
                            "log checkpoint")
        run("list", *s)

        step("2b. The same policy through a real browser: what a person saw")
        from archiver.errors import ConfigError

        try:
            from archiver.capture.browser import find_chromium

            find_chromium()
        except ConfigError as exc:
            console.print(f"[yellow]skipped: {exc.diagnostics()}[/]")
            problems.append("Chromium is missing, so the browser capture was not shown (make demo installs it)")
        else:
            out = run("capture", f"{base}/privacy", "--browser", "--entity", "Example Inc.", "--document",
                      "Privacy Policy", "--page-timeout", "30", *s, "--json", quiet=True)
            rec = json.loads(out) if out.strip() else {}
            shot = next((a for a in rec.get("artifacts", []) if a["name"] == "screenshot"), None)
            if shot is None:
                problems.append("the browser capture made no screenshot")
            else:
                png = root.parent / "privacy-screenshot.png"
                run("get", rec["record_id"], "screenshot", "-o", str(png), *s)
                console.print(f"screenshot of {rec['record_id']}: {png}  sha256:{shot['sha256']}  "
                              f"({rec['capture']['browser']['name']} {rec['capture']['browser']['version']}, "
                              f"{rec['capture']['browser']['viewport']})")

        step("3. Cross-link with the Wayback Machine")
        console.print("The Archive already holds an older copy of the news page (different bytes):")
        news = _record_for(root, f"{base}/news")
        ia.add(f"{base}/news", "20260101000000", b"<html>an older version</html>")
        run("wayback", news, *s)
        console.print("Ask Save Page Now to archive the privacy policy; its crawler fetches the same bytes:")
        os.environ.setdefault("ARCHIVER_IA_ACCESS_KEY", "demo-access")
        os.environ.setdefault("ARCHIVER_IA_SECRET_KEY", "demo-secret")
        out = run("wayback", privacy, "--save", "--json", *s, quiet=True)
        verdict = json.loads(out).get("verdict") if out.strip() else None
        console.print(f"verdict for {privacy}: [bold]{verdict}[/]")
        if verdict != "identical":
            problems.append(f"Save Page Now corroboration gave {verdict!r}, expected 'identical'")

        step("4. Look at one record")
        run("show", privacy, *s)

        step("5. Verify every record")
        run("verify", "--all", *s)

        step("6. Get the document back, byte-exact, and find it by hash")
        dest = root.parent / "policy.html"
        run("get", privacy, "content", "-o", str(dest), *s)
        served = hashlib.sha256(site_file("privacy.html")).hexdigest()
        got = hashlib.sha256(dest.read_bytes()).hexdigest() if dest.exists() else "missing"
        console.print(f"sha256 of what the server meant to serve: {served}")
        console.print(f"sha256 of `archiver get … content`:        {got}  "
                      + ("[green]identical[/]" if got == served else "[red]DIFFERENT[/]"))
        if got != served:
            problems.append("content artifact differs from the served file")
        run("verify-file", str(dest), *s)
        run("lookup", "--sha256", served, *s)

        step("7. Check the signature with plain OpenSSL (no archiver code)")
        _openssl_check(console, root, privacy, run, problems)

        step("8. Check the timestamp token with plain OpenSSL")
        _openssl_ts_check(console, root, privacy, run, problems)

        step("9. Tamper with a copy of the store: verification must fail and name the artifact")
        tampered = root.parent / "tampered-store"
        shutil.copytree(root, tampered)
        from archiver.api import Archive

        warc_sha = Archive.open(tampered).artifact_sha256(privacy, "warc")
        blob = Archive.open(tampered).blobs.path(warc_sha)
        os.chmod(blob, 0o644)
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0x01
        blob.write_bytes(bytes(data))
        console.print(f"flipped one bit in the middle of {blob.relative_to(tampered)}")
        run("verify", privacy, "--store", str(tampered), expect=1)

        step("10. Hand it over: a self-verifying WACZ bundle, checked without the store")
        wacz = root.parent / "evidence.wacz"
        run("export", privacy, _record_for(root, f"{base}/terms.pdf"), "-o", str(wacz), *s)
        from archiver.api import Archive as _Archive
        from archiver.provenance.keys import key_id_of
        opened = _Archive.open(root)
        signer = key_id_of(opened.keys.signing_public_key())
        console.print("Verify it as a third party would, with no store and no pinned key: intact, but nobody "
                      "they trust vouches for it yet:")
        run("verify", str(wacz), "--tsa-certs", str(root.parent / "demo-tsa-ca.pem"),
            "--store", str(root.parent / "no-store-here"), expect=1)
        console.print("Pin the operator's one key id (what `archiver keys list` prints), as a filing would give it:")
        run("verify", str(wacz), "--trust-key", signer, "--tsa-certs", str(root.parent / "demo-tsa-ca.pem"),
            "--store", str(root.parent / "no-store-here"))

        step("11. Watch the policy: a re-capture with no change, then a new version and its diff")
        run("watch", "add", f"{base}/privacy", "--every", "1d", "--entity", "Example Inc.", "--document",
            "Privacy Policy", *s)
        run("watch", "run", *s)
        console.print("Example Inc. publishes a new version of its privacy policy:")
        site.state["privacy_version"] = 2
        run("watch", "run", *s, expect=10)
        run("history", f"{base}/privacy", *s)
        recs = [r.record_id for r in _Archive.open(root).list(url=f"{base}/privacy")]
        run("diff", recs[-2], recs[-1], "--sections", *s)
        run("clauses", recs[-1], *s)

        step("12. Cite it: for a filing, with a pinned quote, and a certificate of authenticity")
        run("cite", privacy, *s)
        run("cite", privacy, "--style", "bluebook", *s)
        run("cite", privacy, "--style", "apa", *s)
        console.print("Pin the sentence a brief relies on (it must occur verbatim in the captured text):")
        run("cite", privacy, "--style", "bluebook", "--quote",
            "Even if you opt-out, we will use Inputs and Outputs for model improvement when", *s)
        console.print("An altered quote is refused, with the closest sentence the document really contains:")
        run("cite", privacy, "--quote", "Even if you opt-out, we will never use Inputs and Outputs", *s, expect=1)
        cert = root.parent / "certificate.pdf"
        run("certificate", privacy, _record_for(root, f"{base}/terms.pdf"), "--declarant", "Demo Operator",
            "--title", "Records Custodian", "--org", "Example Compliance LLP", "--format", "pdf", "-o", str(cert),
            *s)
        if not cert.exists() or not cert.read_bytes().startswith(b"%PDF"):
            problems.append("the certificate PDF was not written")
        if store is None:
            shutil.rmtree(tampered, ignore_errors=True)
        else:
            console.print(f"Everything the demo made is kept in {root.parent}")
        if then is not None:
            _report(console, problems)
            return then(root)

    return _report(console, problems)


def _report(console: Console, problems: list[str]) -> int:
    if problems:
        console.print("[bold red]Demo found problems:[/]")
        for p in problems:
            console.print(f"  - {p}")
        return 1
    console.print("[bold green]Demo finished: every step behaved as expected.[/]")
    return 0


def _openssl_check(console: Console, root: Path, record_id: str, run: object, problems: list[str]) -> None:
    import base64

    import rfc8785

    if shutil.which("openssl") is None:
        console.print("[yellow]openssl not found; skipped[/]")
        return
    work = root.parent
    manifest_path = work / "manifest.json"
    pub = work / "signer.pub.pem"
    run("get", record_id, "manifest", "-o", str(manifest_path), "--store", str(root))  # type: ignore[operator]
    run("keys", "export-public", "-o", str(pub), "--store", str(root))  # type: ignore[operator]
    m = json.loads(manifest_path.read_text("utf-8"))
    sig = m.pop("signature")
    (work / "signed.bin").write_bytes(rfc8785.dumps(m))
    (work / "sig.bin").write_bytes(base64.b64decode(sig["value"]))
    cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
           "-in", str(work / "signed.bin"), "-sigfile", str(work / "sig.bin")]
    console.print(f"[dim]$ {' '.join(c.replace(str(work) + '/', '') for c in cmd)}[/]")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    console.print((proc.stdout + proc.stderr).strip())
    if proc.returncode != 0:
        problems.append("openssl could not verify the manifest signature")



def _openssl_ts_check(console: Console, root: Path, record_id: str, run: object, problems: list[str]) -> None:
    if shutil.which("openssl") is None:
        console.print("[yellow]openssl not found; skipped[/]")
        return
    work = root.parent
    for name, fname in (("manifest", "manifest.json"), ("timestamp", "manifest.tsr"), ("tsa-chain", "tsa-chain.pem")):
        run("get", record_id, name, "-o", str(work / fname), "--store", str(root))  # type: ignore[operator]
    digest = hashlib.sha256((work / "manifest.json").read_bytes()).hexdigest()
    cmd = ["openssl", "ts", "-verify", "-digest", digest, "-in", str(work / "manifest.tsr"),
           "-CAfile", str(work / "tsa-chain.pem")]
    console.print(f"[dim]$ {' '.join(c.replace(str(work) + '/', '') for c in cmd)}[/]")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    console.print(proc.stdout.strip())
    if "Verification: OK" not in proc.stdout:
        problems.append("openssl could not verify the timestamp token")


def _record_for(root: Path, url: str) -> str:
    from archiver.api import Archive

    rows = Archive.open(root).list(url=url)
    return rows[-1].record_id if rows else ""

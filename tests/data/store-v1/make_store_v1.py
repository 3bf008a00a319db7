"""Make the ``store-v1`` fixture with an OLD checkout of archiver (see README.md in this directory).

Run with that checkout first on the path, e.g.::

    PYTHONPATH=/tmp/old-main /work/main/.venv/bin/python tests/data/store-v1/make_store_v1.py OUT

It serves the bundled sample site and a local OpenSSL TSA on 127.0.0.1, then drives the old CLI in
subprocesses (the same interpreter and path), exactly as a user of that release would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-c", "import sys; from archiver.cli import main; sys.exit(main(sys.argv[1:]))"]


def run(*args: str) -> str:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "ARCHIVER_ALLOW_PRIVATE": "1"})
    print("$ archiver", " ".join(args), "->", done.returncode)
    if done.returncode != 0:
        raise SystemExit(f"failed: {done.stdout}\n{done.stderr}")
    return done.stdout


def main(out: Path) -> None:
    import archiver
    from archiver.demo.server import SampleSite, demo_routes
    from archiver.demo.tsa import LocalTSA

    print("archiver from", archiver.__file__, "version", archiver.__version__)
    out.mkdir(parents=True, exist_ok=False)
    store = str(out / "store")
    state = {"privacy_version": 1}
    with SampleSite(demo_routes(state)) as site, LocalTSA() as tsa:
        shutil.copy(tsa.ca_pem, out / "tsa-ca.crt")
        run("init", "--store", store, "--operator", "Fixture Operator", "--organization", "archiver tests")
        run("config", "set", "--store", store, "capture.allow_private", "true")
        run("config", "set", "--store", store, "tsa.urls", tsa.url)
        run("config", "set", "--store", store, "tsa.certs", str(out / "tsa-ca.crt"))
        base = site.base_url
        first = json.loads(run("capture", "--store", store, "--json", base + "/privacy",
                               "--entity", "Example Inc.", "--document", "Privacy Policy"))
        pdf = json.loads(run("capture", "--store", store, "--json", base + "/terms.pdf",
                             "--entity", "Example Inc.", "--document", "Terms of Service"))
        state["privacy_version"] = 2
        second = json.loads(run("capture", "--store", store, "--json", base + "/privacy",
                                "--entity", "Example Inc.", "--document", "Privacy Policy"))
        ids = [first["record_id"], pdf["record_id"], second["record_id"]]
        run("derive", "--store", store, "--json", "--select", "main", ids[0])
        run("timestamp", "--store", store, "--json", "--pending")
        run("watch", "add", "--store", store, base + "/privacy", "--every", "1d", "--entity", "Example Inc.",
            "--document", "Privacy Policy")
        run("tokens", "create", "--store", store, "--role", "viewer", "fixture-viewer")
        run("export", "--store", store, "-o", str(out / "bundle-v1.wacz"), ids[0], ids[2])
        run("verify", "--store", store, "--all")
        run("verify", "--store", store, str(out / "bundle-v1.wacz"))
        (out / "records.json").write_text(json.dumps({"records": ids, "site": base}, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

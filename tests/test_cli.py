"""The CLI as a user drives it: listing, looking up, batches, settings, JSON everywhere."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import archiver
from archiver.api import Archive
from tests.conftest import HTML


def test_public_api_is_curated() -> None:
    assert sorted(archiver.__all__) == sorted([
        "Addendum", "Archive", "ArchiverError", "Artifact", "ArtifactMatch", "BatchItem", "Check", "CitationData",
        "Digest", "Manifest", "RecordSummary", "StampResult", "Status", "TimestampEvidence", "Verification",
        "WaybackEvidence", "__version__", "citation_data", "default_store_path"])
    for name in archiver.__all__:
        assert getattr(archiver, name) is not None


def test_list_show_lookup_verify_file(archive: Archive, cli, site, tmp_path: Path) -> None:
    s = ["--store", str(archive.root)]
    r = cli("capture", site.base_url + "/chunked", "--entity", "Example Inc.", "--document", "Privacy Policy",
            "--json", *s)
    assert r.code == 0, r.err
    rid = json.loads(r.out)["record_id"]
    listed = json.loads(cli("list", "--json", *s).out)
    assert [x["record_id"] for x in listed] == [rid] and listed[0]["entity"] == "Example Inc."
    assert rid in cli("list", *s).out
    shown = cli("show", rid.lower().replace("-", ""), *s)  # IDs are forgiving when retyped
    assert shown.code == 0 and "Privacy Policy" in shown.out and "SHA-256 (content)" in shown.out
    served = hashlib.sha256(HTML).hexdigest()
    hits = json.loads(cli("lookup", "--sha256", f"sha256:{served}", "--json", *s).out)
    assert [(h["record_id"], h["artifact"]) for h in hits] == [(rid, "content")]
    assert cli("lookup", "--sha256", "0" * 64, *s).code == 1
    f = tmp_path / "policy.html"
    f.write_bytes(HTML)
    assert cli("verify-file", str(f), *s).code == 0
    assert cli("verify-file", str(f), "--sha256", served, *s).code == 0
    assert cli("verify-file", str(f), "--sha256", "1" * 64, *s).code == 1
    f.write_bytes(HTML + b" ")
    assert cli("verify-file", str(f), *s).code == 1


def test_batch_one_failure_does_not_stop_the_rest(archive: Archive, cli, site, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# comment\n{site.base_url}/plain\tExample Inc.\tPrivacy Policy\n"
                    f"{site.base_url}/missing\n\nftp://nope/\n{site.base_url}/terms.pdf\n")
    r = cli("capture", "-i", str(urls), "-j", "2", "--json", "--store", str(archive.root))
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert len(lines) == 4 and sum(x["ok"] for x in lines) == 2
    assert r.code == 3  # the worst failure decides the exit code
    assert archive.catalog.count() == 2
    human = cli("capture", "-i", str(urls), "--store", str(archive.root))
    assert "2 captured, 2 failed" in human.out


def test_config_roundtrip(archive: Archive, cli) -> None:
    s = ["--store", str(archive.root)]
    assert cli("config", "set", "operator.name", "Jane Roe", *s).code == 0
    assert cli("config", "get", "operator.name", *s).out.strip() == "Jane Roe"
    assert cli("config", "set", "tsa.urls", "https://a.example/tsr https://b.example/tsr", *s).code == 0
    assert json.loads(cli("config", "list", "--json", *s).out)["tsa.urls"] == [
        "https://a.example/tsr", "https://b.example/tsr"]


def test_get_writes_byte_exact_and_logs_custody(archive: Archive, cli, site, tmp_path: Path) -> None:
    rid = archive.capture(site.base_url + "/br").record_id
    out = tmp_path / "c.html"
    assert cli("get", rid, "content", "-o", str(out), "--store", str(archive.root)).code == 0
    assert out.read_bytes() == HTML
    events = [e.event for e in archive.custody.for_record(rid)]
    assert events == ["capture", "get"]

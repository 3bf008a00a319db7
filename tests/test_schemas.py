"""One presentation model: every ``--json`` output validates against the schema generated from its type.

The schemas under docs/schemas/ are generated (``python -m archiver.models docs/schemas``); the first
test fails when they are stale, the others drive the real CLI and validate what it prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from archiver.api import Archive
from archiver.models import MODELS, schemas

DOCS = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def validate(name: str, value: Any) -> None:
    schema = schemas()[name]
    jsonschema.Draft202012Validator(schema).validate(value)


def test_committed_schemas_are_current() -> None:
    generated = schemas()
    on_disk = {p.stem: json.loads(p.read_text("utf-8")) for p in DOCS.glob("*.json")}
    assert sorted(on_disk) == sorted(generated), "run `python -m archiver.models docs/schemas`"
    for name, schema in generated.items():
        assert on_disk[name] == schema, f"docs/schemas/{name}.json is stale (python -m archiver.models docs/schemas)"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_schema_is_valid_json_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(schemas()[name])


def test_a_wrong_output_is_rejected() -> None:
    """The schemas are strict: an unknown key or a wrong type fails (so the tests below can fail)."""
    with pytest.raises(jsonschema.ValidationError):
        validate("written-file", {"file": "x", "sha256": "a" * 64, "size": 1, "extra": True})
    with pytest.raises(jsonschema.ValidationError):
        validate("written-file", {"file": "x", "sha256": "a" * 64, "size": "1"})
    check = {"name": "previous", "status": "SKIPPED", "category": "context", "detail": "chain partial"}
    validate("verification", {"subject": "X", "verdict": "incomplete", "checks": [check]})
    for bad in ({"subject": "X", "verdict": "fine", "checks": [check]},  # not a verdict
                {"subject": "X", "checks": [{k: v for k, v in check.items() if k != "category"}]}):
        with pytest.raises(jsonschema.ValidationError):
            validate("verification", bad)


def test_cli_json_outputs_validate(wb_archive: Archive, tsa, ia, cli, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = wb_archive
    archive.config.set("tsa.urls", tsa.url)
    archive.config.set("tsa.certs", str(tsa.ca_pem))
    s = ["--store", str(archive.root)]

    def js(*args: str, expect: int = 0) -> Any:
        r = cli(*args, "--json", *s)
        assert r.code == expect, (args, r.err)
        return json.loads(r.out)

    validate("init", js("init"))
    captured = js("capture", site.base_url + "/chunked", "--entity", "Example Inc.", "--document", "Privacy Policy",
                  "--wayback", "lookup")
    validate("capture", captured)
    assert captured["timestamps"] and captured["wayback"]["verdict"]
    rid = captured["record_id"]
    for row in js("list"):
        validate("record-summary", row)
    validate("record", js("show", rid))
    verification = js("verify", rid)
    validate("verification", verification)
    assert verification["verdict"] == "verified"
    assert {c["category"] for c in verification["checks"]} <= {"integrity", "trust", "completeness", "context"}
    for report in js("verify", "--all"):
        validate("verification", report)
    for st in js("timestamp", rid):
        validate("stamp-result", st)
    validate("wayback", js("wayback", rid))
    validate("citation", js("cite", rid))
    for rep in js("publish", rid) + js("unpublish", rid, "--reason", "test"):
        validate("publication", rep)
    validate("record", js("show", rid))  # with its publication addenda
    content_sha = next(a["sha256"] for a in captured["artifacts"] if a["name"] == "content")
    for m in js("lookup", "--sha256", content_sha):
        validate("artifact-match", m)
    out = tmp_path / "content.bin"
    validate("written-file", js("get", rid, "content", "-o", str(out)))
    validate("file-check", js("verify-file", str(out)))
    for k in js("keys", "list"):
        validate("key", k)
    validate("settings", js("config", "list"))
    validate("settings", js("config", "get", "tsa.urls"))
    validate("store-info", js("store", "info"))
    wacz = tmp_path / "e.wacz"
    validate("export", js("export", rid, "-o", str(wacz)))
    bundle = cli("verify", str(wacz), "--json", *s)
    validate("bundle-verification", json.loads(bundle.out))
    assert json.loads(bundle.out)["verdict"] == "verified"

    urls = tmp_path / "urls.txt"
    urls.write_text(f"{site.base_url}/plain\n{site.base_url}/missing\n")
    r = cli("capture", "-i", str(urls), "--json", *s)
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert len(lines) == 3
    for line in lines:
        validate("batch-stamp" if "timestamp" in line and "url" not in line else "batch-item", line)

    validate("watch", js("watch", "add", site.base_url + "/plain", "--every", "1d"))
    for w in js("watch", "list"):
        validate("watch", w)
    run = cli("watch", "run", "--json", *s)
    validate("watch-run", json.loads(run.out))
    validate("history", js("history", site.base_url + "/plain"))
    recs = [x["record_id"] for x in js("list", "--url", site.base_url + "/plain")]
    for c in js("clauses", recs[-1]):
        validate("clause-history", c)
    diff = cli("diff", recs[0], recs[-1], "--format", "json", *s)
    assert diff.code == 0, diff.err
    validate("diff", json.loads(diff.out))
    validate("rebuild-index", js("store", "rebuild-index"))
    # the transparency log (issue 30)
    validate("log-sync", js("log", "sync"))
    checkpoint = js("log", "checkpoint")
    validate("log-checkpoint", checkpoint)
    validate("log-key", js("log", "key"))
    validate("log-proof", js("log", "prove", rid))
    kept = tmp_path / "kept.checkpoint"
    kept.write_text(checkpoint["note"])
    validate("log-consistency", js("log", "verify", "--from", str(kept)))
    validate("log-audit", js("log", "audit"))

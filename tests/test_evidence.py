"""The record page as data: every field traced back to the manifest, addenda, custody or keyring."""

from __future__ import annotations

import hashlib
import json

import jsonschema

from archiver.api import Archive
from archiver.evidence import anchor_for
from archiver.models import schemas
from tests.conftest import HTML


def test_provenance_report_of_a_stamped_corroborated_record(wb_archive: Archive, tsa, cli, site) -> None:  # type: ignore[no-untyped-def]
    a = wb_archive
    a.config.set("tsa.urls", tsa.url)
    a.config.set("tsa.certs", str(tsa.ca_pem))
    s = ["--store", str(a.root)]
    r = cli("capture", site.base_url + "/chunked", "--entity", "Example Inc.", "--document", "Privacy Policy",
            "--wayback", "lookup", "--json", *s)
    assert r.code == 0, r.err
    rid = json.loads(r.out)["record_id"]
    p = a.provenance(rid)
    jsonschema.Draft202012Validator(schemas()["provenance"]).validate(p.to_dict())
    assert p.content_sha256 == hashlib.sha256(HTML).hexdigest()
    assert p.signer_trusted and p.signer_key_id == a.manifest(rid).signature.key_id  # type: ignore[union-attr]
    assert [t.gen_time for t in p.timestamps] and p.timestamps[0].tsa_url == tsa.url
    assert p.wayback is not None and p.wayback.verdict in ("identical", "differs", "no-snapshot")
    assert p.wayback.meaning
    fields = dict((f.label, f.value) for f in p.citation)
    assert [f.label for f in p.citation_record] == ["Entity", "Document", "Record ID", "Captured (UTC)", "SHA-256",
                                                 "URL", "Accessed"]
    assert fields["Record ID"] == rid and fields["Entity"] == "Example Inc." and fields["SHA-256 (content)"] == \
        p.content_sha256
    assert [c.event for c in p.custody][:1] == ["capture"]
    names = {x.name: x.sha256 for x in p.artifacts}
    assert names["manifest"] == a.resolve(rid).manifest_sha256 and "timestamp" in names and "warc" in names
    anchors = [x.anchor for x in p.sections]
    assert len(anchors) == len(set(anchors)) and all(x.startswith("clause-") for x in anchors)
    assert p.timeline is not None and p.timeline.changes == 0 and p.timeline.versions[0].record_ids == (rid,)
    a.keys.untrust(p.signer_key_id or "")
    assert not a.provenance(rid).signer_trusted


def test_anchors_are_unique_and_stable() -> None:
    taken: set[str] = set()
    assert [anchor_for(k, taken) for k in ("2. How we use information", "2. How we use information", "")] == \
        ["clause-2-how-we-use-information", "clause-2-how-we-use-information-2", "clause-preamble"]

"""Property tests (hypothesis): canonical JSON, Merkle proofs, and the WARC round trip."""

from __future__ import annotations

import hashlib
import io
import json

import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.archiveiterator import ArchiveIterator

from archiver.capture.warc import _Writer
from archiver.provenance import merkle

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@given(json_values)
def test_canonical_json_is_stable_and_order_free(value: object) -> None:
    once = rfc8785.dumps(value)
    assert rfc8785.dumps(json.loads(once)) == once  # a fixed point: re-canonicalising changes nothing
    if isinstance(value, dict):
        reordered = dict(reversed(list(value.items())))
        assert rfc8785.dumps(reordered) == once  # key order never changes the signed bytes


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70), st.data())
def test_merkle_inclusion_proofs(leaves: list[bytes], data: st.DataObject) -> None:
    root, paths = merkle.inclusion_proofs(leaves)
    assert root == merkle.root(leaves)
    i = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    assert merkle.verify_inclusion(leaves[i], i, len(leaves), paths[i], root)
    other = data.draw(st.binary(min_size=32, max_size=32))
    if other != leaves[i]:
        assert not merkle.verify_inclusion(other, i, len(leaves), paths[i], root)
    if paths[i]:
        tampered = list(paths[i])
        tampered[0] = bytes(b ^ 1 for b in tampered[0])
        assert not merkle.verify_inclusion(leaves[i], i, len(leaves), tampered, root)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(st.binary(max_size=5000), st.sampled_from(["text/html", "application/pdf", "text/plain; charset=utf-8"]))
def test_warc_round_trip(body: bytes, ctype: str) -> None:
    """What our writer puts in a record comes back byte-exact, and warcio's digest check passes."""
    out = io.BytesIO()
    w = _Writer(out, "<urn:uuid:00000000-0000-4000-8000-000000000000>")
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    w.write("response", "https://example.org/x", date="2026-11-23T00:00:00Z",
            content_type="application/http; msgtype=response", block_head=head, body=io.BytesIO(body),
            body_len=len(body), block_sha256=hashlib.sha256(head + body).hexdigest(),
            payload_sha256=hashlib.sha256(body).hexdigest())
    out.seek(0)
    records = list(_read_all(out))
    assert len(records) == 1
    rtype, payload, passed, digest = records[0]
    assert rtype == "response" and payload == body and passed is not False
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest()


def _read_all(fh: io.BytesIO):  # type: ignore[no-untyped-def]
    for rec in ArchiveIterator(fh, check_digests=True):
        payload = rec.raw_stream.read()
        yield rec.rec_type, payload, rec.digest_checker.passed, rec.rec_headers.get_header("WARC-Payload-Digest")

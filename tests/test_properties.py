"""Property tests (hypothesis): canonical JSON, Merkle proofs, the WARC round trip, and text extraction."""

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


_SOUP = ["<p>", "</p>", "<pre>", "</pre>", "<b hidden>", "<i>", "</i>", "</b>", "<script>", "</script>", "<br>",
         "<li>", "<div>", "</div>", "<table><tr><td>", "<span hidden>", "</span>", "word", "two words", " ", "  ",
         "\n", "\t", "\r\n", "\u00a0", "\u2003", "x\ny", "<h2>", "</h2>", "<!-- c -->", "&nbsp;", "<style>", "</style>"]


@given(st.lists(st.sampled_from(_SOUP), max_size=40))
@settings(max_examples=300, deadline=None)
def test_serialised_text_is_the_walked_text(tokens: list[str]) -> None:
    """Whatever the markup, the C-serialised extraction gives the Python walk's text."""
    from tests.test_extract_corpus import _both_paths

    fast, walked = _both_paths(("<html><body>" + "".join(tokens) + "</body></html>").encode())
    assert fast == walked


def _normalize_reference(raw: str) -> str:
    """The plain statement of the normalisation (one regex for every whitespace run, a loop over lines)."""
    import re
    import unicodedata

    ws = " \t\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000"
    text = unicodedata.normalize("NFC", raw).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00ad", "").replace("\ufeff", "")
    out: list[str] = []
    for line in re.sub(f"[{ws}]+", " ", text).split("\n"):
        line = line.strip()
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + ("\n" if out else "")


@given(st.text(alphabet=st.sampled_from(list("ab é\u0301\n\r\t\f\v\u00a0\u2000\u200b\u200c\u202f\u3000\u00ad\ufeff"
                                              "\u2028\u0085.")), max_size=80))
@settings(max_examples=500, deadline=None)
def test_normalize_text_matches_its_plain_statement(raw: str) -> None:
    from archiver.capture.extract import normalize_text

    assert normalize_text(raw) == _normalize_reference(raw)


_DATE_TEXT = st.lists(st.sampled_from(["Last updated: ", "last  revised ", "Effective date ", "Updated on ", "update",
                                       "date of last revision", " of last revision ", "May 5, 2026", "5th May 2026",
                                       "2026-05-05", "Mai 32, 2026", "x", " ", "\n", "ſ", "DATE", "effective"]),
                      max_size=12).map("".join)


@given(_DATE_TEXT)
@settings(max_examples=400, deadline=None)
def test_document_date_search_matches_a_plain_label_scan(text: str) -> None:
    """The word-search shortcut finds what scanning every position with the label regex finds."""
    import importlib
    from datetime import date

    ex = importlib.import_module("archiver.capture.extract")  # the package re-exports a function of that name

    want = None
    for label in ex._LABEL.finditer(text[:20000]):
        for pat in ex._DATE_PATTERNS:
            m = pat.match(text, label.start())
            g = m.groupdict() if m else None
            month = (int(g["mn"]) if g.get("mn") else ex._month(g["m"])) if g else None
            try:
                want = date(int(g["y"]), month, int(g["d"])).isoformat() if g and month else None
            except ValueError:
                want = None
            if want:
                break
        if want:
            break
    assert ex.find_document_date(text) == want


# keys and strings mostly from characters whose escaping or UTF-16 order is where JCS could differ
_JCS_CHARS = st.sampled_from(list('ab_Z"\\/\x00\x1f\x7f\b\f\n\r\t\u00e9\u2028\ud7ff\ue000\uffff\U0001f600\ud800'))
_JCS_TEXT = st.text(alphabet=_JCS_CHARS, max_size=6) | st.text(max_size=6)
_JCS_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**60), max_value=2**60)
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.floats(allow_nan=False) | _JCS_TEXT,
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
    | st.dictionaries(_JCS_TEXT, children, max_size=5),
    max_leaves=25)


@given(_JCS_VALUES)
@settings(max_examples=500, deadline=None)
def test_canonical_json_is_rfc8785(value: object) -> None:
    """The fast path writes rfc8785's bytes, or rfc8785's error, for any JSON value."""
    from archiver.canonical import canonical

    try:
        want: bytes | type[BaseException] = rfc8785.dumps(value)
    except ValueError as exc:
        want = type(exc)
    try:
        got: bytes | type[BaseException] = canonical(value)
    except ValueError as exc:
        got = type(exc)
    assert got == want


def test_record_dicts_match_the_standard_library() -> None:
    """records.asdict drops only dataclasses.asdict's deep copies, never a value."""
    import dataclasses

    from archiver import records

    m = records.Manifest.from_dict({
        "schema": records.MANIFEST_SCHEMA, "record_id": "ABCD-EFGH", "captured_at": "2026-01-01T00:00:00Z",
        "subject": {"url": "https://e.test/", "final_url": "https://e.test/p", "redirects": ["https://e.test/"]},
        "http": {"status": 200, "reason": "OK", "tls": {"version": "TLSv1.3", "cipher": "x", "peer_cert_sha256": "a",
                                                         "peer_chain_sha256": "b", "verified": True}},
        "artifacts": [{"name": "warc", "sha256": "0" * 64, "size": 1, "media_type": "application/warc"}],
        "digests": {"content_sha256": "1" * 64, "payload_sha256": "2" * 64, "payload_sha1_b32": "A" * 32},
        "tool": {"name": "archiver", "version": "0", "python": "3.11", "platform": "x"},
        "capture": {"user_agent": "ua", "steps": [{"step": "fetch", "status": "ok", "detail": "d"}]},
        "signature": {"alg": "Ed25519", "key_id": "sha256:0", "value": "sig"}})
    for part in (m, m.subject, m.http, m.capture, m.signature):
        assert records.asdict(part) == dataclasses.asdict(part)


@given(st.binary(min_size=32, max_size=32), st.sampled_from(["", "\n", "\r\n", "garbage before\n"]),
       st.sampled_from([64, 76]))
@settings(max_examples=100, deadline=None)
def test_public_key_pem_read_directly_is_cryptographys(raw: bytes, before: str, width: int) -> None:
    """The direct read of an Ed25519 public key PEM gives cryptography's key; any other PEM (another
    wrapping, text around it, another algorithm, damage) still goes through cryptography."""
    import base64

    import pytest
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from archiver.errors import UsageError
    from archiver.provenance.keys import key_id_of, load_public_pem

    key = Ed25519PublicKey.from_public_bytes(raw)
    body = base64.b64encode(key.public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    pem = (before + "-----BEGIN PUBLIC KEY-----\n" + "\n".join(body[i:i + width] for i in range(0, len(body), width))
           + "\n-----END PUBLIC KEY-----\n").encode()
    got = load_public_pem(pem)  # text before the PEM: cryptography reads past it, and so do we
    assert got.public_bytes_raw() == raw
    assert key_id_of(got) == "sha256:" + hashlib.sha256(raw).hexdigest()
    with pytest.raises(UsageError, match="not a PEM public key"):
        load_public_pem(pem.replace(body[:8].encode(), b"A" * 8))  # damaged DER: not the Ed25519 prefix
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(UsageError, match="not an Ed25519 public key"):
        load_public_pem(other)

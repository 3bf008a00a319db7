"""Signed notes, checkpoints and cosignatures: the signed-note spec's own example verifies, our notes
verify with tlog-scales (a third party's reader), and each kind of forgery is refused."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from archiver.errors import IntegrityError, SignatureError, UsageError
from archiver.tlog.note import (
    COSIGNATURE_V1,
    Checkpoint,
    Note,
    NoteSigner,
    Verifier,
    cosign,
    count_cosigned,
    open_checkpoint,
    open_note,
    sign_note,
)

# c2sp.org/signed-note, "Example"
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = ("This is an example message.\n\n"
             "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu"
             "72IneyaQM=\n").encode()


def test_the_spec_example_verifies_and_a_changed_text_does_not() -> None:
    v = Verifier.from_vkey(SPEC_VKEY)
    assert v.vkey() == SPEC_VKEY
    note, good = open_note(SPEC_NOTE, [v])
    assert note.text == "This is an example message.\n" and good[0].verifier == v
    assert note.to_bytes() == SPEC_NOTE
    with pytest.raises(SignatureError):
        open_note(SPEC_NOTE.replace(b"example message", b"example massage"), [v])
    other = Verifier.of("example.com/foo", Ed25519PrivateKey.generate().public_key())
    with pytest.raises(SignatureError, match="not signed by any key"):
        open_note(SPEC_NOTE, [other])  # an unknown key (same name, other ID) is ignored, so nothing verifies


def test_vkeys_are_checked() -> None:
    with pytest.raises(UsageError):
        Verifier.from_vkey(SPEC_VKEY.replace("530d903a", "530d903b"))  # ID not of this name and key
    with pytest.raises(UsageError):
        Verifier.from_vkey("example.com/foo+530d903a")
    with pytest.raises(UsageError):
        NoteSigner("has space", Ed25519PrivateKey.generate())


def test_checkpoint_round_trip_with_cosignatures_and_tlog_scales() -> None:
    from tlog_scales.signing import Vkey
    from tlog_scales.tlog import Checkpoint as ScalesCheckpoint

    key, wkey = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signer = NoteSigner("archive.example.org/evidence", key)
    cp = Checkpoint("archive.example.org/evidence", 1000, bytes(range(32)))
    text = cp.text()
    assert text == "archive.example.org/evidence\n1000\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    witness = Verifier.of("witness.example/w1", wkey.public_key(), COSIGNATURE_V1)
    data = sign_note(text, signer, [cosign(text, "witness.example/w1", wkey, 1_700_000_000)])
    signed = open_checkpoint(data, signer.verifier, [witness])
    assert signed.checkpoint == cp and count_cosigned(signed) == 1
    assert [v.timestamp for v in signed.verified] == [None, 1_700_000_000]
    # a third party's reader: tlog-scales parses our checkpoint and verifies both signatures
    theirs = ScalesCheckpoint.from_text(data.decode())
    theirs.verify(Vkey.from_string(signer.verifier.vkey()))
    theirs.verify(Vkey.from_string(witness.vkey()))
    assert theirs.root_hash == cp.root and theirs.size == 1000
    # a cosignature made for another checkpoint fails the whole note
    other = Checkpoint("archive.example.org/evidence", 1001, bytes(32)).text()
    forged = sign_note(text, signer, [cosign(other, "witness.example/w1", wkey, 1_700_000_000)])
    with pytest.raises(SignatureError):
        open_checkpoint(forged, signer.verifier, [witness])
    # a checkpoint signed by the right key under another origin is refused
    foreign = sign_note(Checkpoint("elsewhere.example/log", 1, bytes(32)).text(), signer)
    with pytest.raises(SignatureError, match="origin"):
        open_checkpoint(foreign, signer.verifier)


@pytest.mark.parametrize("bad", [
    b"no blank line\n\xe2\x80\x94 a AAAAAAA=\n",
    b"text\n\n",
    b"text\n\nnot a signature line\n",
    b"te\x07xt\n\n\xe2\x80\x94 a AAAAAAAA\n",
    b"text\n\n\xe2\x80\x94 a AAAAAAAA",
])
def test_malformed_notes_are_refused(bad: bytes) -> None:
    with pytest.raises(IntegrityError):
        Note.parse(bad)


@pytest.mark.parametrize("text", ["o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "o\n1\nAAAA\n", "o\n1\n",
                                  "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"])
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(IntegrityError):
        Checkpoint.parse(text)

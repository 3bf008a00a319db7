"""Review of issue 30 (R1, R2, R6): the log never signs a fork over what it published, never makes a
second key under its origin, and a witness never cosigns after losing half of itself. Each of these
signed or cosigned a fork before the fix."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.errors import StoreCorruptError
from store.custody import Event

ALPH = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _rid(i: int) -> str:
    s = "".join(ALPH[(i >> (5 * k)) & 31] for k in range(8))[::-1]
    return f"{s[:4]}-{s[4:]}"


def _store(root: Path) -> Archive:
    a, _ = Archive.init(root, operator="Reviewer")
    a.config.set("log.origin", "archive.example.org/evidence")
    return a


def _append(a: Archive, start: int, n: int, tag: str = "") -> None:
    """Capture events for stand-in records (the log reads only the write path's outbox)."""
    a.ledger.commit([Event("capture", _rid(i), hashlib.sha256(f"{tag}{i}".encode()).hexdigest(), {})
                     for i in range(start, start + n)], actor="reviewer")


def test_a_restored_catalog_never_signs_over_the_published_log(tmp_path: Path) -> None:
    """R1: the catalog restored from a backup while log/ kept what was published since; new records;
    the next checkpoint would be a second tree of size 8. Refused, and checkpoints/8 is left alone."""
    a = _store(tmp_path / "s")
    _append(a, 0, 5)
    a.log.checkpoint(stamp=False)
    backup = tmp_path / "backup"
    backup.mkdir()
    for p in a.root.iterdir():
        if p.name.startswith("catalog.sqlite3") or p.name == "custody.log":
            shutil.copy2(p, backup / p.name)
    _append(a, 5, 3, tag="first")
    a.log.checkpoint(stamp=False)
    kept = (a.root / "log" / "checkpoints" / "8").read_bytes()
    for p in backup.iterdir():
        shutil.copy2(p, a.root / p.name)
    b = Archive.open(a.root)
    _append(b, 5, 3, tag="second")
    with pytest.raises(StoreCorruptError, match="fork"):
        b.log.checkpoint(stamp=False)
    assert (a.root / "log" / "checkpoints" / "8").read_bytes() == kept


def test_a_lost_log_key_is_reported_not_replaced(tmp_path: Path) -> None:
    """R2: after a checkpoint, a missing keys/log.key made a new key under the same origin, silently."""
    a = _store(tmp_path / "s")
    _append(a, 0, 3)
    a.log.checkpoint(stamp=False)
    (a.root / "keys" / "log.key").unlink()
    with pytest.raises(StoreCorruptError, match="missing"):
        a.log.vkey()
    with pytest.raises(StoreCorruptError, match="missing"):
        a.log.checkpoint(stamp=False)


def test_a_witness_that_lost_its_state_refuses_to_start(tmp_path: Path) -> None:
    """R6: a witness whose database was lost but whose key survived cosigned a second tree of a size it
    had cosigned before."""
    from archiver.tlog.witness import Witness

    a = _store(tmp_path / "s")
    _append(a, 0, 8)
    note = a.log.checkpoint(stamp=False).note.encode()
    w = Witness(tmp_path / "w", key_name="witness.example/w1")
    w.allow(a.log.vkey())
    assert w.add_checkpoint(b"old 0\n\n" + note).status == 200
    for p in (tmp_path / "w").glob("witness.sqlite3*"):
        p.unlink()
    with pytest.raises(StoreCorruptError, match=r"lost its witness\.sqlite3"):
        Witness(tmp_path / "w", key_name="witness.example/w1")


def test_a_checkpoint_size_over_a_signed_64_bit_integer_is_malformed(tmp_path: Path) -> None:
    """R8: a checkpoint of size >= 2^63 signed by an allowed log made the witness answer 500 (SQLite
    overflow); it is malformed at parsing now (a 400 at the witness)."""
    from archiver.errors import IntegrityError
    from archiver.tlog.note import Checkpoint
    from archiver.tlog.witness import Witness

    with pytest.raises(IntegrityError):
        Checkpoint.parse(f"o\n{1 << 63}\n{'A' * 43}=\n")
    a = _store(tmp_path / "s")
    w = Witness(tmp_path / "w", key_name="witness.example/w1")
    w.allow(a.log.vkey())
    _append(a, 0, 1)
    a.log.checkpoint(stamp=False)
    from archiver.tlog.note import sign_note

    huge = sign_note(Checkpoint("archive.example.org/evidence", (1 << 63) - 1, b"\x01" * 32).text(),
                     a.log.signer()).replace(str((1 << 63) - 1).encode(), str(1 << 63).encode())
    assert w.add_checkpoint(b"old 0\n\n" + huge).status == 400


def test_a_witness_that_cosigned_a_newer_checkpoint_first_is_a_race_not_a_fork(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """R3: checkpoints reaching a witness out of order were reported as "this log is not the one it saw"."""
    from archiver.tlog import cosigning
    from archiver.tlog.witness import Witness

    a = _store(tmp_path / "s")
    w = Witness(tmp_path / "w", key_name="witness.example/w1")
    w.allow(a.log.vkey())
    _append(a, 0, 5)
    a.log.checkpoint(stamp=False)
    cp5 = a.log.latest()
    _append(a, 5, 3)
    a.log.checkpoint(stamp=False)
    assert w.add_checkpoint(b"old 0\n\n" + (a.root / "log" / "checkpoint").read_bytes()).status == 200  # 8 first

    def post(url: str, body: bytes, timeout: float) -> tuple[int, str, bytes]:
        r = w.add_checkpoint(body)
        return r.status, r.content_type, r.body
    monkeypatch.setattr(cosigning, "_post", post)
    cosigning.add_witness(a.log, "https://witness.example", w.vkey())
    assert cp5 is not None
    [late] = cosigning.submit(a.log, cp5)
    assert late.outcome == "superseded", late

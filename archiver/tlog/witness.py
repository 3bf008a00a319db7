"""A transparency-log witness (c2sp.org/tlog-witness): it cosigns a log's checkpoint only when the
checkpoint is consistent with the largest one it cosigned before, so a log cannot show one history to
one party and another to someone else without the witness refusing (and keeping the proof).

Why a witness in an evidence archive: the log's own signature proves only what the operator says.
Two organisations each run ``archiver witness serve`` for the other's archive; a verifier then asks
for a cosignature by the other organisation (a tlog-policy file, :mod:`archiver.tlog.policy`), and a
rewritten log (a record removed, the tree signed again) can no longer collect it.

State (``--state DIR``, 0700): ``witness.key`` (the witness's own Ed25519 key, 0600, never printed),
``witness.sqlite3`` (the key name, the allow-list of log vkeys, and per origin the latest cosigned size,
root and note; refused requests whose log signature verified, as evidence of misbehaviour). One SQLite
transaction per request, opened with ``BEGIN IMMEDIATE``: the check of ``old`` against the stored size
and the update are atomic across threads and processes (the rollback race tlog-witness describes cannot
happen), and it is committed (``synchronous=FULL``) before the answer is sent.

Cosignatures are Ed25519 ``cosignature/v1`` (type 0x04, c2sp.org/tlog-cosignature). The spec says new
deployments SHOULD use ML-DSA-44; Ed25519 cosignatures are the form today's witness network, Go's
``sumdb/note`` and Sigsum verify. (The cryptography release installed here has ML-DSA-44; offering it
as a second cosignature is future work.)

The HTTP side is a bare ASGI callable (:func:`asgi_app`) served by uvicorn (already the web server's
dependency): hardened HTTP/1.1 parsing and keep-alive (which the spec asks for) without a framework,
and the protocol itself is :meth:`Witness.add_checkpoint`, a function of the request body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import os
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archiver.errors import IntegrityError, NotFoundError, SignatureError, StoreCorruptError, UsageError
from archiver.tlog.hashing import EMPTY_ROOT, HASH_SIZE, verify_consistency
from archiver.tlog.log import LogKey
from archiver.tlog.note import COSIGNATURE_V1, ED25519, Checkpoint, Note, Verifier, check_name, cosign, open_note

#: the spec caps a client at 63 proof lines; a note is at most 1 MiB (note.MAX_NOTE_BYTES)
MAX_PROOF_LINES = 63
MAX_BODY = (1 << 20) + 64 * 64
#: refused requests kept per origin as evidence (oldest dropped): bounded, a log cannot fill the disk
MAX_EVIDENCE = 1000
SIZE_TYPE = "text/x.tlog.size"
_OLD = re.compile(rb"old (0|[1-9][0-9]{0,19})")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS logs (vkey TEXT PRIMARY KEY, origin TEXT NOT NULL, added_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS latest (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, "
    "note BLOB NOT NULL, cosigned_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS evidence (id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, "
    "received_at TEXT NOT NULL, status INTEGER NOT NULL, reason TEXT NOT NULL, request BLOB NOT NULL)",
)


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status, content type, body."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class LoggedLog:
    """A log the witness accepts (its vkey) and what it last cosigned for its origin, if anything."""

    origin: str
    vkey: str
    size: int | None
    cosigned_at: int | None


def _text(status: int, message: str) -> Reply:
    return Reply(status, (message + "\n").encode("utf-8"))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Witness:
    """The witness of one state directory. Thread-safe: every call opens its own connection."""

    def __init__(self, state_dir: Path, key_name: str | None = None) -> None:
        self.dir = state_dir
        self.db_path = state_dir / "witness.sqlite3"
        self.key = LogKey(state_dir, "witness.key")
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if state_dir.stat().st_mode & 0o077:
                os.chmod(state_dir, 0o700)  # its key lives here: nobody else lists or reads it
        except OSError as exc:
            raise UsageError(f"cannot use {state_dir} as the witness's state directory: {exc.strerror}") from exc
        # the key and the sizes it cosigned live and die together: a kept key over a fresh database would
        # cosign a fork of a log it already vouched for (and a kept database over a new key, a new witness
        # that claims an old one's history)
        if self.key.exists() != self.db_path.is_file():
            missing = self.db_path.name if self.key.exists() else self.key.path.name
            raise StoreCorruptError(f"the witness in {state_dir} has lost its {missing}: it would cosign without "
                                    "knowing what it cosigned before", hint="restore it from a backup, or start a "
                                    "new witness in an empty directory (with a new name and key)")
        with self._db() as c:
            for stmt in _SCHEMA:
                c.execute(stmt)
            row = c.execute("SELECT value FROM meta WHERE key='name'").fetchone()
            if row is None:
                if key_name is None:
                    raise UsageError(f"the witness in {state_dir} has no name yet",
                                     hint="give --key-name, e.g. witness.example.org/w1 (a schema-less URL)")
                c.execute("INSERT INTO meta(key, value) VALUES ('name', ?)", (check_name(key_name),))
                row = (key_name,)
            elif key_name is not None and key_name != row[0]:
                raise UsageError(f"the witness in {state_dir} is named {row[0]!r}, not {key_name!r}",
                                 hint="its name is part of its vkey: verifiers know it by that name")
        self.name = str(row[0])
        self._private = self.key.load(create=True)
        self.verifier = Verifier.of(self.name, self._private.public_key(), COSIGNATURE_V1)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            yield conn
        finally:
            conn.close()

    def vkey(self) -> str:
        """``name+hex+base64(0x04 || key)``: what a log and a verifier's policy need."""
        return self.verifier.vkey()

    # ---- the allow-list --------------------------------------------------------------------
    def allow(self, vkey: str) -> Verifier:
        """Accept checkpoints signed by ``vkey`` (an Ed25519 log key; its name is the log's origin)."""
        v = Verifier.from_vkey(vkey)
        if v.sig_type != ED25519:
            raise UsageError(f"{v.name}: a log signs checkpoints with an Ed25519 key (type 0x01), not a cosigner key")
        with self._db() as c:
            c.execute("INSERT INTO logs(vkey, origin, added_at) VALUES (?,?,?) ON CONFLICT(vkey) DO NOTHING",
                      (v.vkey(), v.name, _now()))
        return v

    def disallow(self, vkey: str) -> None:
        v = Verifier.from_vkey(vkey)
        with self._db() as c:
            if c.execute("DELETE FROM logs WHERE vkey=?", (v.vkey(),)).rowcount == 0:
                raise NotFoundError(f"{v.name}: this witness does not accept that key")

    def logs(self) -> list[LoggedLog]:
        with self._db() as c:
            rows = c.execute("SELECT l.origin, l.vkey, t.size, t.cosigned_at FROM logs l LEFT JOIN latest t "
                             "ON t.origin = l.origin ORDER BY l.origin, l.vkey").fetchall()
        return [LoggedLog(str(o), str(v), None if s is None else int(s), None if t is None else int(t))
                for o, v, s, t in rows]

    def _keys_for(self, c: sqlite3.Connection, origin: str) -> list[Verifier]:
        return [Verifier.from_vkey(str(r[0])) for r in
                c.execute("SELECT vkey FROM logs WHERE origin=?", (origin,)).fetchall()]

    # ---- the protocol ----------------------------------------------------------------------
    def add_checkpoint(self, body: bytes) -> Reply:
        """POST add-checkpoint (c2sp.org/tlog-witness): the answer, with the status the spec names."""
        if len(body) > MAX_BODY:
            return _text(413, "request too large")
        head, sep, note_bytes = body.partition(b"\n\n")
        lines = head.split(b"\n")
        m = _OLD.fullmatch(lines[0])
        if not sep or m is None:
            return _text(400, "the body must start with an 'old N' line, then proof lines and an empty line")
        old = int(m.group(1))
        if len(lines) - 1 > MAX_PROOF_LINES:
            return _text(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
        proof: list[bytes] = []
        for line in lines[1:]:
            try:
                h = base64.b64decode(line, validate=True)
            except binascii.Error:
                return _text(400, "a consistency proof line is not base64")
            if len(h) != HASH_SIZE:
                return _text(400, "a consistency proof line is not a SHA-256 hash")
            proof.append(h)
        try:
            note = Note.parse(note_bytes)
            cp = Checkpoint.parse(note.text)
        except IntegrityError as exc:
            return _text(400, f"not a checkpoint: {exc.message}")
        with self._db() as c:
            keys = self._keys_for(c, cp.origin)
            if not keys:
                return _text(404, f"unknown log origin {cp.origin}")
            try:
                _, good = open_note(note_bytes, keys)
            except (SignatureError, IntegrityError) as exc:
                return _text(403, exc.message)
            if old > cp.size:
                return _text(400, f"old size {old} is larger than the checkpoint's size {cp.size}")
            c.execute("BEGIN IMMEDIATE")  # check and update as one: no rollback race between two requests
            try:
                reply = self._check_and_cosign(c, cp, note, [g.verifier for g in good], old, proof, body)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")  # persisted before the answer leaves (synchronous=FULL)
            return reply

    def _check_and_cosign(self, c: sqlite3.Connection, cp: Checkpoint, note: Note, log_keys: list[Verifier],
                          old: int, proof: list[bytes], request: bytes) -> Reply:
        row = c.execute("SELECT size, root FROM latest WHERE origin=?", (cp.origin,)).fetchone()
        have_size, have_root = (int(row[0]), bytes(row[1])) if row else (0, EMPTY_ROOT)
        if old != have_size:
            return Reply(409, f"{have_size}\n".encode("ascii"), SIZE_TYPE)
        why: str | None = None
        if cp.size == 0 and cp.root != EMPTY_ROOT:
            why = "a checkpoint of size 0 must have the root of the empty tree"
        elif old == 0 and proof:
            why = "the consistency proof from size 0 must be empty"
        else:
            try:
                verify_consistency(old, cp.size, have_root, cp.root, proof)
            except IntegrityError as exc:
                why = f"not consistent with the checkpoint of size {have_size} this witness cosigned: {exc.message}"
        if why is not None:
            self._keep_evidence(c, cp.origin, 422, why, request)
            return _text(422, why)
        stamp = int(time.time())
        sig = cosign(note.text, self.name, self._private, stamp)
        kept = tuple(s for s in note.signatures if any(k.matches(s) for k in log_keys))
        stored = Note(note.text, (*kept, sig)).to_bytes()
        c.execute("INSERT INTO latest(origin, size, root, note, cosigned_at) VALUES (?,?,?,?,?) ON CONFLICT(origin) "
                  "DO UPDATE SET size=excluded.size, root=excluded.root, note=excluded.note, "
                  "cosigned_at=excluded.cosigned_at", (cp.origin, cp.size, cp.root, stored, stamp))
        return Reply(200, sig.line().encode("utf-8"))

    @staticmethod
    def _keep_evidence(c: sqlite3.Connection, origin: str, status: int, reason: str, request: bytes) -> None:
        """A refused checkpoint whose log signature verified is the log's own signed statement of a second
        history: kept (bounded), as the spec allows, for whoever has to show the fork."""
        c.execute("INSERT INTO evidence(origin, received_at, status, reason, request) VALUES (?,?,?,?,?)",
                  (origin, _now(), status, reason, request))
        c.execute("DELETE FROM evidence WHERE origin=? AND id NOT IN (SELECT id FROM evidence WHERE origin=? "
                  "ORDER BY id DESC LIMIT ?)", (origin, origin, MAX_EVIDENCE))

    def evidence(self, origin: str) -> list[tuple[str, int, str, bytes]]:
        """(received at, status, reason, request body) of refused, log-signed checkpoints, oldest first."""
        with self._db() as c:
            rows = c.execute("SELECT received_at, status, reason, request FROM evidence WHERE origin=? ORDER BY id",
                             (origin,)).fetchall()
        return [(str(t), int(s), str(r), bytes(b)) for t, s, r, b in rows]

    def checkpoint_of(self, origin_hash: str) -> Reply:
        """GET <origin hash>/checkpoint (the spec's monitoring API): the latest cosigned checkpoint."""
        with self._db() as c:
            for origin, note in c.execute("SELECT origin, note FROM latest").fetchall():
                if hashlib.sha256(str(origin).encode("utf-8")).hexdigest() == origin_hash:
                    return Reply(200, bytes(note))
        return _text(404, "this witness has cosigned no checkpoint of that log")


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_MONITOR = re.compile(r"/([0-9a-f]{64})/checkpoint")


def asgi_app(witness: Witness) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The witness over HTTP: ``POST /add-checkpoint`` and ``GET /<sha256(origin)>/checkpoint``."""

    async def respond(send: Send, reply: Reply, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        headers = [(b"content-type", reply.content_type.encode("ascii")),
                   (b"content-length", str(len(reply.body)).encode("ascii")), *extra]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def read_body(receive: Receive) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return None
            chunk = bytes(msg.get("body", b""))
            total += len(chunk)
            if total > MAX_BODY:
                return None
            parts.append(chunk)
            if not msg.get("more_body", False):
                return b"".join(parts)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = str(scope["path"]), str(scope["method"])
        if path == "/add-checkpoint":
            if method != "POST":
                await respond(send, _text(405, "use POST"), ((b"allow", b"POST"),))
                return
            body = await read_body(receive)
            if body is None:
                await respond(send, _text(413, "request too large"))
                return
            # SQLite and Ed25519 block: off the event loop, so one slow disk does not stall other logs
            await respond(send, await asyncio.to_thread(witness.add_checkpoint, body))
            return
        m = _MONITOR.fullmatch(path)
        if m is not None and method in ("GET", "HEAD"):
            await respond(send, await asyncio.to_thread(witness.checkpoint_of, m.group(1)))
            return
        await respond(send, _text(404, "not found"))

    return app


__all__ = ["MAX_PROOF_LINES", "SIZE_TYPE", "LoggedLog", "Reply", "Witness", "asgi_app"]

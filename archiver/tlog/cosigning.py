"""The log's side of c2sp.org/tlog-witness: the witnesses it is configured with (``tlog_witnesses``)
and the submission of each new checkpoint to every one of them with ``add-checkpoint``.

For each witness the log keeps the size it last cosigned (the next request's ``old``). A ``409`` says
the witness holds another size: the log reads it from the ``text/x.tlog.size`` body and tries once more
with the consistency proof from that size (a log that forked is then refused with ``422``, which is the
point). A ``200`` carries cosignature lines; only those by the witness's own key (name and key ID) are
taken, each verified against its vkey, then stored with the checkpoint (:meth:`add_cosignatures`), so
later proof files carry them. Nothing a witness does stops a checkpoint: it is signed before any witness
is asked, and a witness that is down, slow or refuses is one outcome in the report, never an exception.
Each request is bounded by ``log.witness_timeout`` (connect, every read, and the whole answer).
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archiver.errors import ArchiverError, IntegrityError, NotFoundError, SignatureError, UsageError
from archiver.tlog.note import COSIGNATURE_V1, Note, Signature, Verifier
from archiver.tlog.reports import LogWitnessOutcome

if TYPE_CHECKING:
    from archiver.tlog.log import StoredCheckpoint, TransparencyLog

MAX_REPLY = 64 * 1024


@dataclass(frozen=True, slots=True)
class WitnessConfig:
    """A witness the log submits to: its key name, vkey, submission prefix, the size it last cosigned."""

    name: str
    vkey: str
    url: str
    size: int
    added_at: str

    def verifier(self) -> Verifier:
        return Verifier.from_vkey(self.vkey)


def _check_url(url: str) -> str:
    from urllib.parse import urlsplit

    v = url.strip().rstrip("/")
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment \
            or any(c.isspace() or ord(c) < 32 for c in v):
        raise UsageError(f"{url!r} is not an http(s) submission prefix", hint="e.g. https://witness.example.org")
    return v


def add_witness(tlog: TransparencyLog, url: str, vkey: str) -> WitnessConfig:
    """Configure a witness (its cosigner vkey, type 0x04); adding it again updates its URL."""
    v = Verifier.from_vkey(vkey)
    if v.sig_type != COSIGNATURE_V1:
        raise UsageError(f"{v.name}: a witness cosigns with a cosignature/v1 key (type 0x04)",
                         hint="`archiver witness key --state DIR` prints the witness's vkey")
    prefix = _check_url(url)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    with tlog.catalog.db() as d, d.tx():
        row = d.one("SELECT vkey FROM tlog_witnesses WHERE name=?", (v.name,))
        if row is not None and str(row[0]) != v.vkey():
            raise UsageError(f"a witness named {v.name} is configured with another key",
                             hint=f"`archiver log witness remove {v.name}` first if its key changed")
        d.run("INSERT INTO tlog_witnesses(name, vkey, url, size, added_at) VALUES (?,?,?,0,?) "
              "ON CONFLICT(name) DO UPDATE SET url=excluded.url", (v.name, v.vkey(), prefix, now))
    return next(w for w in witnesses(tlog) if w.name == v.name)


def witnesses(tlog: TransparencyLog) -> list[WitnessConfig]:
    with tlog.catalog.db() as d:
        rows = d.rows("SELECT name, vkey, url, size, added_at FROM tlog_witnesses ORDER BY name")
    return [WitnessConfig(str(n), str(v), str(u), int(s), str(a)) for n, v, u, s, a in rows]


def remove_witness(tlog: TransparencyLog, name: str) -> WitnessConfig:
    """Stop submitting to a witness (by key name, vkey or URL); its cosignatures already stored stay."""
    found = [w for w in witnesses(tlog) if name.strip().rstrip("/") in (w.name, w.vkey, w.url)]
    if not found:
        raise NotFoundError(f"no witness {name!r} is configured", hint="archiver log witness list")
    with tlog.catalog.db() as d, d.tx():
        d.run("DELETE FROM tlog_witnesses WHERE name=?", (found[0].name,))
    return found[0]


def _set_size(tlog: TransparencyLog, name: str, size: int) -> None:
    with tlog.catalog.db() as d, d.tx():
        d.run("UPDATE tlog_witnesses SET size=? WHERE name=?", (size, name))


def request_body(tlog: TransparencyLog, old: int, cp: StoredCheckpoint) -> bytes:
    """An add-checkpoint body: ``old N``, the consistency proof from ``old``, an empty line, the note."""
    proof = tlog.consistency_proof(old, cp.size) if 0 < old < cp.size else []
    head = f"old {old}\n" + "".join(base64.b64encode(h).decode("ascii") + "\n" for h in proof)
    return head.encode("ascii") + b"\n" + cp.note


def _post(url: str, body: bytes, timeout: float) -> tuple[int, str, bytes]:
    """POST with every wait bounded: connect, each read, and the whole answer by ``timeout``."""
    import requests

    from archiver._version import __version__

    deadline = time.monotonic() + timeout
    with requests.post(f"{url}/add-checkpoint", data=body, timeout=(timeout, timeout), stream=True,
                       allow_redirects=False, headers={"User-Agent": f"archiver/{__version__}",
                                                       "Content-Type": "text/plain; charset=utf-8"}) as r:
        got = b""
        for chunk in r.iter_content(4096):
            got += chunk
            if len(got) > MAX_REPLY:
                raise IntegrityError(f"the witness answered more than {MAX_REPLY} bytes")
            if time.monotonic() > deadline:
                raise TimeoutError
        return r.status_code, r.headers.get("content-type", ""), got


def _cosignatures(cp: StoredCheckpoint, w: Verifier, reply: bytes) -> list[tuple[Signature, int]]:
    """The witness's own cosignature lines in a 200 answer, each verified (others are ignored)."""
    if not reply.endswith(b"\n") or not reply.startswith("\u2014 ".encode()):
        raise IntegrityError("the answer is not note signature lines")
    note = Note.parse(cp.note + reply)  # the spec's way: the lines appended to the checkpoint
    own = [s for s in note.signatures[len(Note.parse(cp.note).signatures):] if w.matches(s)]
    if not own:
        raise SignatureError("the answer holds no cosignature by the witness's key")
    out = []
    for s in own:
        stamp = w.check(note.text, s)
        if not stamp:
            raise SignatureError("the cosignature has no timestamp")
        out.append((s, stamp))
    return out


def _submit_one(tlog: TransparencyLog, w: WitnessConfig, cp: StoredCheckpoint, timeout: float) -> LogWitnessOutcome:
    import requests

    def outcome(kind: str, reason: str | None = None, status: int | None = None, old: int | None = None,
                stamp: int | None = None) -> LogWitnessOutcome:
        return LogWitnessOutcome(name=w.name, url=w.url, outcome=kind, reason=reason, status=status,
                                 old_size=old, size=cp.size, timestamp=stamp)

    verifier = w.verifier()
    if any(verifier.matches(s) for s in Note.parse(cp.note).signatures):
        return outcome("already", "this checkpoint already carries its cosignature")
    old = min(w.size, cp.size)
    for attempt in (0, 1):
        try:
            status, ctype, reply = _post(w.url, request_body(tlog, old, cp), timeout)
        except (requests.RequestException, TimeoutError, OSError) as exc:
            why = "no answer within log.witness_timeout" if isinstance(exc, (requests.Timeout, TimeoutError)) \
                else f"cannot reach it ({type(exc).__name__})"
            return outcome("unreachable", why, old=old)
        except IntegrityError as exc:
            return outcome("refused", exc.message, old=old)
        if status == 200:
            try:
                sigs = _cosignatures(cp, verifier, reply)
            except (IntegrityError, SignatureError) as exc:
                return outcome("refused", f"its answer was not accepted: {exc.message}", status, old)
            tlog.add_cosignatures(cp.size, [s for s, _ in sigs])
            _set_size(tlog, w.name, cp.size)
            return outcome("cosigned", None, status, old, sigs[0][1])
        text = reply[:300].decode("utf-8", "replace").strip()
        if status == 409 and attempt == 0:
            if not ctype.startswith("text/x.tlog.size") or not text.isdigit() or len(text) > 20:
                return outcome("refused", f"HTTP 409 without a tree size: {text[:120]}", status, old)
            theirs = int(text)
            if theirs > cp.size:
                latest = tlog.latest()
                if latest is not None and latest.size >= theirs:
                    # an ordinary race: a newer checkpoint of ours reached it first; nothing is wrong
                    _set_size(tlog, w.name, max(theirs, w.size))
                    return outcome("superseded", f"it already cosigned a newer checkpoint of this log ({theirs} "
                                                 "entries)", status, old)
                return outcome("refused", f"the witness holds a tree of {theirs} entries, larger than this "
                                          f"checkpoint's {cp.size}: this log is not the one it saw", status, old)
            old = theirs
            _set_size(tlog, w.name, theirs)
            continue
        return outcome("refused", f"HTTP {status}: {text[:200]}" if text else f"HTTP {status}", status, old)
    return outcome("refused", "the witness answered 409 twice", 409, old)


def submit(tlog: TransparencyLog, cp: StoredCheckpoint | None = None) -> tuple[LogWitnessOutcome, ...]:
    """Ask every configured witness to cosign ``cp`` (default: the latest checkpoint); one outcome each."""
    cp = cp if cp is not None else tlog.latest()
    if cp is None:
        return ()
    timeout = tlog.config.float_("log.witness_timeout")
    out = []
    for w in witnesses(tlog):
        try:
            out.append(_submit_one(tlog, w, cp, timeout))
        except (ArchiverError, ValueError) as exc:  # a bad stored vkey, a proof the tree cannot give…
            msg = exc.message if isinstance(exc, ArchiverError) else str(exc)
            out.append(LogWitnessOutcome(name=w.name, url=w.url, outcome="refused", reason=msg, size=cp.size))
        cp = next((c for c in tlog.checkpoints() if c.size == cp.size), cp)  # with the cosignatures so far
    return tuple(out)


__all__ = ["WitnessConfig", "add_witness", "remove_witness", "request_body", "submit", "witnesses"]

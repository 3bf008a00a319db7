"""Frozen, typed records: what a capture produced and what a verification found.

Records validate themselves on construction so a malformed manifest is caught where it is read,
not three calls later. ``to_dict``/``from_dict`` are the only JSON edges.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar

from archiver.errors import IntegrityError, UnknownFormatError, UsageError

MANIFEST_SCHEMA = "archiver.manifest/v1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Digest:
    """A SHA-256 value; its text form is ``sha256:<hex>`` everywhere we print or store one."""

    hex: str

    def __post_init__(self) -> None:
        if not _HEX64.match(self.hex):
            raise UsageError(f"not a SHA-256 hex digest: {self.hex!r}", hint="expected 64 hex characters")

    @classmethod
    def parse(cls, text: str) -> Digest:
        value = text.strip().lower()
        if value.startswith("sha256:"):
            value = value[len("sha256:") :]
        return cls(value)

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        return cls(hashlib.sha256(data).hexdigest())

    def __str__(self) -> str:
        return f"sha256:{self.hex}"


def sha1_b32(raw_sha1: bytes) -> str:
    """The form the Wayback Machine's CDX ``digest`` column uses, so our payload compares with theirs."""
    return base64.b32encode(raw_sha1).decode("ascii")


@dataclass(frozen=True, slots=True)
class Artifact:
    """One stored file of a record, named by its SHA-256 (``file``: its name inside a bundle)."""

    name: str
    sha256: str
    size: int
    media_type: str
    file: str | None = None

    def __post_init__(self) -> None:
        if not _HEX64.match(self.sha256):
            raise IntegrityError(f"artifact {self.name!r} has a malformed sha256 {self.sha256!r}")
        if self.size < 0:
            raise IntegrityError(f"artifact {self.name!r} has a negative size")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "sha256": self.sha256, "size": self.size,
                             "media_type": self.media_type}
        if self.file:
            d["file"] = self.file
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Artifact:
        return cls(name=str(d["name"]), sha256=str(d["sha256"]), size=int(d["size"]),
                   media_type=str(d.get("media_type", "application/octet-stream")), file=d.get("file"))


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """The TLS session a page came over: what an opposing expert asks about first."""

    version: str | None = None
    cipher: str | None = None
    peer_cert_sha256: str | None = None
    peer_chain_sha256: str | None = None
    verified: bool = True


@dataclass(frozen=True, slots=True)
class HTTPInfo:
    """The final response's status line and the headers that date and describe the document."""

    status: int
    reason: str = ""
    date: str | None = None
    last_modified: str | None = None
    etag: str | None = None
    content_type: str | None = None
    content_encoding: str | None = None
    transfer_encoding: str | None = None
    content_length: int | None = None
    server_ip: str | None = None
    tls: TLSInfo | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """What was captured: the URL asked for, where redirects ended, and what the page says it is."""

    url: str
    final_url: str
    redirects: tuple[str, ...] = ()
    entity: str | None = None
    document: str | None = None
    title: str | None = None
    document_date: str | None = None


@dataclass(frozen=True, slots=True)
class Digests:
    """Hashes of the payload in the forms other archives publish (the Wayback CDX uses base32 SHA-1)."""

    content_sha256: str
    payload_sha256: str
    payload_sha1_b32: str
    text_sha256: str | None = None
    # a chunked response only: SHA-1 (base32) of the body as sent, chunk framing included, which is
    # what a crawler that does not de-chunk (heritrix3 over HTTP/1.1) puts in its CDX digest
    payload_sha1_b32_chunked: str | None = None


@dataclass(frozen=True, slots=True)
class PreviousRef:
    """The record captured before this one from the same URL: the chain a history walks."""

    record_id: str
    manifest_sha256: str


@dataclass(frozen=True, slots=True)
class Operator:
    """Who ran the capture, as the operator configured it."""

    name: str | None = None
    organization: str | None = None


def operator_from(name: str, organization: str) -> Operator:
    """The operator named in manifests and custody entries: the setting, else ``user@host``."""
    import getpass
    import socket

    if not name:
        try:
            name = f"{getpass.getuser()}@{socket.gethostname()}"
        except (KeyError, OSError):
            name = socket.gethostname()
    return Operator(name=name or None, organization=organization or None)


@dataclass(frozen=True, slots=True)
class Tool:
    """The software and platform that made the record."""

    name: str
    version: str
    python: str
    platform: str


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """One capture step and how it went; kept on the record instead of only in a log."""

    step: str
    status: str  # "ok" | "skipped" | "failed"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BrowserInfo:
    """How a browser capture was made: which browser, what it was asked to wait for, what it saw."""

    name: str
    version: str
    user_agent: str
    viewport: str
    wait: str
    full_page: bool = True
    partial: bool = False
    resources: int = 0
    blocked: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MainTextInfo:
    """Which rules produced the ``main-text`` artifact: declared CSS rules (Open Terms Archive
    ``select``/``remove``; a range rule is kept as its JSON), or the automatic extractor and its
    version, so anyone can re-derive it."""

    method: str  # "declared" | "automatic"
    select: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    extractor: str = ""


def _main_text_info(d: dict[str, Any]) -> MainTextInfo:
    return MainTextInfo(method=str(d["method"]), select=tuple(d.get("select", ())), remove=tuple(d.get("remove", ())),
                        extractor=str(d.get("extractor", "")))


@dataclass(frozen=True, slots=True)
class CaptureInfo:
    """How the capture was made: options that change what the bytes mean, and each step's outcome."""

    user_agent: str
    insecure: bool = False
    allow_status: bool = False
    allow_private: bool = False
    steps: tuple[StepOutcome, ...] = ()
    browser: BrowserInfo | None = None
    main_text: MainTextInfo | None = None


@dataclass(frozen=True, slots=True)
class Signature:
    """An Ed25519 signature over the JCS bytes of the object without this member."""

    alg: str
    key_id: str
    value: str


def asdict(obj: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` without its deep copy of every value: a record's fields hold only
    immutable values (str, int, bool, None, enums), nested records, tuples and dicts, so the copy bought
    nothing and was most of the cost of writing a manifest."""
    return {f.name: _value(getattr(obj, f.name)) for f in fields(obj)}


def _value(obj: Any) -> Any:
    if hasattr(type(obj), "__dataclass_fields__"):
        return asdict(obj)
    if isinstance(obj, list | tuple):
        return type(obj)(_value(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _value(v) for k, v in obj.items()}
    return obj


def _strip_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list | tuple):
        return [_strip_none(v) for v in obj]
    return obj


@dataclass(frozen=True, slots=True)
class Manifest:
    """The signed statement of one capture (schema ``archiver.manifest/v1``, see DESIGN.md)."""

    record_id: str
    subject: Subject
    captured_at: str
    http: HTTPInfo
    artifacts: tuple[Artifact, ...]
    digests: Digests
    tool: Tool
    capture: CaptureInfo
    operator: Operator = field(default_factory=Operator)
    previous: PreviousRef | None = None
    signature: Signature | None = None
    schema: str = MANIFEST_SCHEMA

    def __post_init__(self) -> None:
        if self.schema != MANIFEST_SCHEMA:
            if self.schema.startswith("archiver.manifest/"):
                raise UnknownFormatError(f"manifest schema {self.schema!r} is newer than this release")
            raise IntegrityError(f"unknown manifest schema {self.schema!r}")
        names = [a.name for a in self.artifacts]
        if len(set(names)) != len(names):
            raise IntegrityError(f"manifest {self.record_id} names an artifact twice")

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def to_dict(self, *, with_signature: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema": self.schema,
            "record_id": self.record_id,
            "subject": asdict(self.subject),
            "captured_at": self.captured_at,
            "http": asdict(self.http),
            "artifacts": [a.to_dict() for a in self.artifacts],
            "digests": asdict(self.digests),
            "operator": asdict(self.operator),
            "tool": asdict(self.tool),
            "capture": asdict(self.capture),
        }
        if self.previous is not None:
            d["previous"] = asdict(self.previous)
        if with_signature and self.signature is not None:
            d["signature"] = asdict(self.signature)
        result: dict[str, Any] = _strip_none(d)
        return result

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        try:
            subj = dict(d["subject"])
            subj["redirects"] = tuple(subj.get("redirects", ()))
            http = dict(d["http"])
            tls = http.pop("tls", None)
            cap = dict(d["capture"])
            cap["steps"] = tuple(StepOutcome(**s) for s in cap.get("steps", ()))
            if cap.get("main_text"):
                cap["main_text"] = _main_text_info(cap["main_text"])
            if cap.get("browser"):
                b = dict(cap["browser"])
                b["blocked"] = tuple(b.get("blocked", ()))
                cap["browser"] = BrowserInfo(**b)
            return cls(
                schema=str(d.get("schema")),
                record_id=str(d["record_id"]),
                subject=Subject(**subj),
                captured_at=str(d["captured_at"]),
                http=HTTPInfo(**http, tls=TLSInfo(**tls) if tls is not None else None),
                artifacts=tuple(Artifact.from_dict(a) for a in d["artifacts"]),
                digests=Digests(**d["digests"]),
                tool=Tool(**d["tool"]),
                capture=CaptureInfo(**cap),
                operator=Operator(**d.get("operator", {})),
                previous=PreviousRef(**d["previous"]) if d.get("previous") else None,
                signature=Signature(**d["signature"]) if d.get("signature") else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IntegrityError(f"malformed manifest: {exc}") from exc


ADDENDUM_SCHEMA = "archiver.addendum/v1"
#: the addendum kinds this release reads (archiver/formats.py says what each one is for)
ADDENDUM_KINDS = ("timestamp", "wayback", "derived", "publish", "unpublish")


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """Where one manifest sits in a batch's RFC 6962 tree; the token stamps SHA-256 of ``root``."""

    root: str
    leaf_index: int
    tree_size: int
    path: tuple[str, ...]

    def __post_init__(self) -> None:
        if not (0 <= self.leaf_index < self.tree_size) or not all(_HEX64.match(h) for h in (self.root, *self.path)):
            raise IntegrityError("malformed Merkle inclusion proof")


@dataclass(frozen=True, slots=True)
class TimestampEvidence:
    """An RFC 3161 token over the manifest (or over the batch root that includes it)."""

    tsa_url: str
    token_sha256: str  # blob: the full DER TimeStampResp (.tsr)
    chain_sha256: str  # blob: PEM chain (trust anchors at stamping time + the token's certificates)
    imprint: str  # hex SHA-256 the TSA signed: of the manifest file bytes, or of the 32-byte Merkle root
    gen_time: str
    serial: str
    tsa_name: str
    policy: str
    merkle: MerkleProof | None = None
    deferred: bool = False  # stamped after the capture (``archiver timestamp``), not during it


@dataclass(frozen=True, slots=True)
class WaybackEvidence:
    """What the Wayback Machine said about our URL, and whether its copy's digest matches ours."""

    verdict: str  # "identical" | "differs" | "no-snapshot"
    checked_at: str
    api: str
    snapshot_url: str | None = None
    snapshot_timestamp: str | None = None
    cdx: tuple[str, ...] | None = None  # the CDX row, as the Archive returned it
    archive_digest: str | None = None
    our_digest: str | None = None
    saved: bool = False
    note: str = ""
    our_digest_chunked: str | None = None  # compared too, for a chunked response
    matched_form: str | None = None  # "de-chunked" | "chunked": which of our digests the Archive's equals


@dataclass(frozen=True, slots=True)
class Publication:
    """A record made public (its permalink answers) or private again, by whom and why. Signed like any
    later fact, so a recipient and the transparency log see when a record became citable by anyone,
    and an unpublished record keeps the trace of having been public."""

    public: bool
    actor: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DerivedText:
    """An artifact derived after the capture from the record's stored content (``archiver derive``):
    what it is, what it was made from, and by which rules, so anyone can make it again."""

    name: str  # "main-text"
    sha256: str
    size: int
    media_type: str
    source_sha256: str  # the content artifact it was derived from
    main_text: MainTextInfo

    def __post_init__(self) -> None:
        if not _HEX64.match(self.sha256) or not _HEX64.match(self.source_sha256) or self.size < 0:
            raise IntegrityError("malformed derived artifact")


@dataclass(frozen=True, slots=True)
class Addendum:
    """A later fact about a record, signed by the operator and naming the manifest's hash.

    Manifests are never rewritten; timestamps, Wayback cross-links and artifacts derived later
    (main-text of a record captured before it existed) arrive as addenda."""

    kind: str  # "timestamp" | "wayback" | "derived" | "publish" | "unpublish"
    record_id: str
    manifest_sha256: str
    created_at: str
    timestamp: TimestampEvidence | None = None
    wayback: WaybackEvidence | None = None
    derived: DerivedText | None = None
    signature: Signature | None = None
    publication: Publication | None = None
    schema: str = ADDENDUM_SCHEMA

    def __post_init__(self) -> None:
        if self.schema != ADDENDUM_SCHEMA:
            if self.schema.startswith("archiver.addendum/"):
                raise UnknownFormatError(f"addendum schema {self.schema!r} is newer than this release")
            raise IntegrityError(f"unknown addendum schema {self.schema!r}")
        body = {"timestamp": self.timestamp, "wayback": self.wayback, "derived": self.derived,
                "publication": self.publication}
        field_of = {"timestamp": "timestamp", "wayback": "wayback", "derived": "derived",
                    "publish": "publication", "unpublish": "publication"}
        if self.kind not in field_of:
            raise UnknownFormatError(f"addendum kind {self.kind!r} is newer than this release")
        if body[field_of[self.kind]] is None or sum(v is not None for v in body.values()) != 1:
            raise IntegrityError(f"addendum of kind {self.kind!r} has a mismatched body")
        if self.publication is not None and self.publication.public is not (self.kind == "publish"):
            raise IntegrityError(f"addendum of kind {self.kind!r} says public={self.publication.public}")
        if not _HEX64.match(self.manifest_sha256):
            raise IntegrityError("addendum names a malformed manifest hash")

    def to_dict(self, *, with_signature: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"schema": self.schema, "kind": self.kind, "record_id": self.record_id,
                             "manifest_sha256": self.manifest_sha256, "created_at": self.created_at}
        if self.timestamp is not None:
            d["timestamp"] = asdict(self.timestamp)
        if self.wayback is not None:
            d["wayback"] = asdict(self.wayback)
        if self.derived is not None:
            d["derived"] = asdict(self.derived)
        if self.publication is not None:
            d["publication"] = asdict(self.publication)
        if with_signature and self.signature is not None:
            d["signature"] = asdict(self.signature)
        result: dict[str, Any] = _strip_none(d)
        return result

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Addendum:
        kind = d.get("kind") if isinstance(d, dict) else None
        if isinstance(kind, str) and kind not in ADDENDUM_KINDS and d.get("schema") == ADDENDUM_SCHEMA:
            raise UnknownFormatError(f"addendum kind {kind!r} is newer than this release")
        try:
            ts = None
            if d.get("timestamp"):
                t = dict(d["timestamp"])
                if t.get("merkle"):
                    mk = dict(t["merkle"])
                    t["merkle"] = MerkleProof(root=str(mk["root"]), leaf_index=int(mk["leaf_index"]),
                                              tree_size=int(mk["tree_size"]), path=tuple(mk["path"]))
                ts = TimestampEvidence(**t)
            wb = None
            if d.get("wayback"):
                w = dict(d["wayback"])
                if w.get("cdx") is not None:
                    w["cdx"] = tuple(str(x) for x in w["cdx"])
                wb = WaybackEvidence(**w)
            dv = None
            if d.get("derived"):
                x = dict(d["derived"])
                x["main_text"] = _main_text_info(x["main_text"])
                dv = DerivedText(**x)
            pub = None
            if d.get("publication"):
                p = dict(d["publication"])
                if not isinstance(p.get("public"), bool):
                    raise ValueError("publication.public is not a boolean")
                pub = Publication(public=p["public"], actor=str(p["actor"]), reason=str(p.get("reason", "")))
            return cls(schema=str(d.get("schema")), kind=str(d["kind"]), record_id=str(d["record_id"]),
                       manifest_sha256=str(d["manifest_sha256"]), created_at=str(d["created_at"]),
                       timestamp=ts, wayback=wb, derived=dv, publication=pub,
                       signature=Signature(**d["signature"]) if d.get("signature") else None)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IntegrityError(f"malformed addendum: {exc}") from exc


@dataclass(frozen=True, slots=True)
class StampResult:
    """How one timestamp request went (one per TSA per batch); failures leave records unstamped."""

    tsa_url: str
    record_ids: tuple[str, ...]
    ok: bool
    gen_time: str | None = None
    error: str | None = None
    batch_root: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Status(str, Enum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    FAIL = "FAIL"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True, slots=True)
class Check:
    """One question a verification answered, and which kind of question it was (``category``): the
    verdict is computed from categories and statuses alone, never from the wording of ``detail``.
    A context check (chain, corroboration) never fails: it cannot make the record itself wrong."""

    name: str
    status: Status
    category: Category
    detail: str = ""

    def __post_init__(self) -> None:
        if self.category is Category.CONTEXT and self.status is Status.FAIL:
            raise ValueError(f"context check {self.name} cannot FAIL: say PASS or SKIPPED with the reason")

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "category": self.category.value,
                "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Verification:
    """The full report: every check, never cut short by the first failure, and its verdict."""

    subject: str
    checks: tuple[Check, ...]
    JSON_EXTRA: ClassVar[dict[str, Any]] = {"ok": {"type": "boolean"}, "verified": {"type": "boolean"},
                                            "verdict": {"enum": ["verified", "intact-untrusted", "incomplete",
                                                                 "tampered"]}}

    @property
    def verdict(self) -> Verdict:
        return Verdict.of(self.checks)

    @property
    def ok(self) -> bool:
        """Verified: nothing failed (a context check never does)."""
        return self.verdict is Verdict.VERIFIED

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status is Status.FAIL)

    def to_dict(self) -> dict[str, Any]:
        # "verified" says the same as "ok" in the word the HTTP API's clients look for
        return {"subject": self.subject, "ok": self.ok, "verified": self.ok, "verdict": self.verdict.value,
                "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """A catalog row: enough to list, look up and find the manifest."""

    record_id: str
    url: str
    final_url: str
    entity: str | None
    document: str | None
    title: str | None
    captured_at: str
    status: int
    manifest_sha256: str
    content_sha256: str
    key_id: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ArtifactMatch:
    """Answer to "which record holds a file with this hash?"."""

    record_id: str
    artifact: str
    sha256: str
    url: str
    captured_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One line of a batch and what became of it; a failure never stops the others."""

    url: str
    entity: str | None = None
    document: str | None = None
    record_id: str | None = None
    error: str | None = None
    exit_code: int = 0
    seconds: float = 0.0
    timestamp: str | None = None  # "stamped", "unstamped: <why>", or None when no TSA is configured
    JSON_EXTRA: ClassVar[dict[str, Any]] = {"ok": {"type": "boolean"}}

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


class Category(str, Enum):
    """What a check asks. integrity: do the bytes, hashes and signatures hold; trust: does a key or
    TSA the verifier trusts vouch for them; completeness: is everything the record names present;
    context: chain, corroboration, drift (information that never makes the record itself wrong)."""

    INTEGRITY = "integrity"
    TRUST = "trust"
    COMPLETENESS = "completeness"
    CONTEXT = "context"


class Verdict(str, Enum):
    """The answer a verification gives, worst first in ``RANK``: ``tampered`` (something does not
    match what was signed), ``incomplete`` (what is there holds, but something the record names is
    absent), ``intact-untrusted`` (everything holds, but no key or TSA you trust vouches for it),
    ``verified``."""

    VERIFIED = "verified"
    INTACT_UNTRUSTED = "intact-untrusted"
    INCOMPLETE = "incomplete"
    TAMPERED = "tampered"

    @classmethod
    def of(cls, checks: tuple[Check, ...] | list[Check]) -> Verdict:
        """integrity FAIL → tampered; else completeness FAIL → incomplete; else trust FAIL →
        intact-untrusted; else verified."""
        failed = {c.category for c in checks if c.status is Status.FAIL}
        if Category.INTEGRITY in failed:
            return cls.TAMPERED
        if Category.COMPLETENESS in failed:
            return cls.INCOMPLETE
        if Category.TRUST in failed:
            return cls.INTACT_UNTRUSTED
        return cls.VERIFIED

    @classmethod
    def worst(cls, verdicts: list[Verdict]) -> Verdict:
        """The verdict of several reports together (a bundle: its package and each record)."""
        order = [cls.TAMPERED, cls.INCOMPLETE, cls.INTACT_UNTRUSTED, cls.VERIFIED]
        return next((v for v in order if v in verdicts), cls.VERIFIED)

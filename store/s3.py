"""Content-addressed blobs on S3-compatible object storage, optionally under Object Lock (WORM).

Same interface as :class:`store.blobs.BlobStore`. Keys mirror the local layout
(``<prefix>objects/sha256/ab/cd/<hex>``); every upload carries ``ChecksumSHA256`` so the server
rejects bytes that do not match their name, and ``If-None-Match: *`` so an existing object is never
uploaded twice. With Object Lock, each object gets a retention mode (COMPLIANCE or GOVERNANCE) and a
retain-until date, optionally a legal hold, and reads pin the object's *oldest* version: a later
PUT or DELETE on the same key only adds a version or a delete marker, which can neither remove nor
replace the locked bytes, and the store keeps reading the locked ones.

Streams are staged in local temp files (``<store>/tmp``) first, because the SHA-256 that names an
object must be known before it is uploaded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from archiver.errors import (
    NotFoundError,
    RetentionError,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
    UsageError,
)
from store.blobs import CHUNK, HoldGuard, hash_file, hash_stream, no_guard, put_concurrently
from store.fsutil import new_temp_in, remove_stale_temps

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_RETAIN = re.compile(r"^(\d+)([dwy])$")
LOCK_MODES = ("compliance", "governance")


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where and how blobs are kept; stored in the store marker (never credentials: those come from
    the usual AWS sources, e.g. ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` or ``~/.aws``)."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str = "us-east-1"
    object_lock: str | None = None  # "compliance" | "governance"
    retain: str | None = None  # "7y", "90d", "2w" or a date "2033-12-31"
    legal_hold: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", self.bucket):
            raise UsageError(f"not a valid S3 bucket name: {self.bucket!r}")
        if self.object_lock is not None and self.object_lock not in LOCK_MODES:
            raise UsageError(f"--object-lock must be compliance or governance, not {self.object_lock!r}")
        if self.object_lock and not self.retain:
            raise UsageError("--object-lock needs --retain (e.g. 7y, 90d or 2033-12-31)")
        if self.retain:
            retain_until(self.retain)  # validate now, not at the first upload

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> S3Settings:
        m = re.fullmatch(r"s3://([^/]+)/?(.*)", url)
        if not m:
            raise UsageError(f"not an s3:// URL: {url!r}", hint="use s3://bucket or s3://bucket/prefix")
        prefix = m.group(2).strip("/")
        return cls(bucket=m.group(1), prefix=prefix + "/" if prefix else "", **kw)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "s3", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> S3Settings:
        return cls(**{k: v for k, v in d.items() if k != "kind"})

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def retain_until(spec: str, now: datetime | None = None) -> datetime:
    """``7y`` / ``90d`` / ``2w`` from now, or an ISO date; always in the future."""
    now = now or datetime.now(UTC)
    m = _RETAIN.match(spec.strip().lower())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if n <= 0:
            raise UsageError(f"--retain must be positive: {spec!r}")
        if unit == "d":
            return now + timedelta(days=n)
        if unit == "w":
            return now + timedelta(weeks=n)
        try:
            return now.replace(year=now.year + n)
        except ValueError:  # 29 February
            return now.replace(year=now.year + n, day=28)
    try:
        day = date.fromisoformat(spec.strip())
    except ValueError as exc:
        raise UsageError(f"--retain must be like 7y, 90d, 2w or YYYY-MM-DD, not {spec!r}") from exc
    until = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if until <= now:
        raise UsageError(f"--retain date {spec} is not in the future")
    return until


class _GuardedBody:
    """An S3 object's body whose read failures are the store's (exit 4, one line naming the backend):
    a connection reset or a stall mid-body used to escape as botocore's IncompleteReadError or
    ResponseStreamingError (a traceback, exit 1 — the code that means "verification failed"), or as a
    socket timeout that the caller blamed on the local disk."""

    def __init__(self, body: Any, what: str) -> None:
        self._body, self._what = body, what

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._body.read() if size is None or size < 0 else self._body.read(size)
        except Exception as exc:
            raise StoreUnavailableError(f"{self._what} broke off: {type(exc).__name__}: {exc}",
                                        hint="the object store or the network failed mid-read; run the "
                                             "command again (s3.read_timeout, s3.max_attempts)") from exc
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()


def _client_error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3BlobStore:
    def __init__(self, root: Path, settings: S3Settings) -> None:
        self.root = root
        self.settings = settings
        self.tmp = root / "tmp"
        self._client: Any = None
        self._lock = threading.Lock()
        self._oldest: dict[str, str] = {}  # key -> locked version: it can never be deleted, so cache it
        #: the store's s3.* settings (connect timeout, read timeout, attempts), read when the client is made
        self.tuning: Callable[[], tuple[float, float, int]] = lambda: (10.0, 60.0, 4)
        self.hold_guard: HoldGuard = no_guard

    # ---- connection --------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from archiver.extras import require

                require("s3", "boto3")
                import boto3
                from botocore.config import Config as BotoConfig

                endpoint = self.settings.endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
                connect_timeout, read_timeout, max_attempts = self.tuning()
                self._client = boto3.session.Session().client(
                    "s3", endpoint_url=endpoint, region_name=self.settings.region,
                    config=BotoConfig(connect_timeout=connect_timeout, read_timeout=read_timeout,
                                      retries={"max_attempts": max_attempts, "mode": "standard"},
                                      s3={"addressing_style": "path"}))
            return self._client

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except NoCredentialsError as exc:
            raise StoreUnavailableError(f"no S3 credentials for {self.settings.url}",
                                        hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from exc
        except ClientError as exc:
            code = _client_error_code(exc)
            if code in ("AccessDenied", "ObjectLocked", "InvalidRequest") and what.startswith(("delete", "put")):
                raise RetentionError(f"{what} refused by {self.settings.url}: {code}") from exc
            if code in ("403", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"):
                raise StoreUnavailableError(f"{what}: access denied by {self.settings.url} ({code})",
                                            hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the "
                                                 "bucket's policy") from exc
            if code in ("NoSuchBucket",):
                raise StoreError(f"bucket {self.settings.bucket} does not exist",
                                 hint="create it with `archiver init --blobs s3://...`") from exc
            raise StoreError(f"{what} failed on {self.settings.url}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailableError(f"{what}: cannot reach the object store (S3 {self.settings.url} at "
                                        f"{self.settings.endpoint or 'AWS'}): {exc}",
                                        hint="check that the object store is running and reachable "
                                             "(s3.connect_timeout, s3.read_timeout, s3.max_attempts)") from exc

    def key(self, hexdigest: str) -> str:
        if not _HEX64.match(hexdigest):
            raise StoreError(f"not a blob name: {hexdigest!r}")
        return f"{self.settings.prefix}objects/sha256/{hexdigest[:2]}/{hexdigest[2:4]}/{hexdigest}"

    def ensure(self) -> None:
        """Create the bucket (with Object Lock when asked) or check an existing one can lock."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        c = self.client
        from botocore.exceptions import ClientError

        with self._errors(f"bucket {self.settings.bucket}"):
            try:
                c.head_bucket(Bucket=self.settings.bucket)
                exists = True
            except ClientError as exc:
                if _client_error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                exists = False
            if not exists:
                kw: dict[str, Any] = {"Bucket": self.settings.bucket}
                if self.settings.object_lock:
                    kw["ObjectLockEnabledForBucket"] = True
                c.create_bucket(**kw)
            elif self.settings.object_lock:
                try:
                    conf = c.get_object_lock_configuration(Bucket=self.settings.bucket)
                    enabled = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
                except ClientError:
                    enabled = False
                if not enabled:
                    raise StoreError(f"bucket {self.settings.bucket} exists without Object Lock",
                                     hint="Object Lock is enabled when a bucket is created: use a new bucket")

    # ---- reading -----------------------------------------------------------------------------
    def _version(self, key: str) -> str | None:
        """With Object Lock, the oldest version of a key: the locked original."""
        if not self.settings.object_lock:
            return None
        if key in self._oldest:
            return self._oldest[key]
        with self._errors(f"list versions of {key}"):
            resp = self.client.list_object_versions(Bucket=self.settings.bucket, Prefix=key)
        versions = [v for v in resp.get("Versions", []) if v.get("Key") == key]
        if not versions:
            return None
        # S3 lists a key's versions newest first; LastModified has only one-second resolution, so
        # the list position breaks ties (two PUTs in the same second).
        oldest = str(min(enumerate(versions), key=lambda iv: (iv[1]["LastModified"], -iv[0]))[1]["VersionId"])
        if self._locked(key, oldest):
            self._oldest[key] = oldest
        return oldest

    def _locked(self, key: str, version: str) -> bool:
        """Only a version under retention is safe to remember (an unlocked one could still vanish)."""
        try:
            with self._errors(f"retention of {key}"):
                got = self.client.get_object_retention(Bucket=self.settings.bucket, Key=key, VersionId=version)
        except StoreError:
            return False
        return bool(got.get("Retention", {}).get("Mode"))

    def _get_kw(self, hexdigest: str) -> dict[str, Any]:
        key = self.key(hexdigest)
        kw: dict[str, Any] = {"Bucket": self.settings.bucket, "Key": key}
        if self.settings.object_lock:
            version = self._version(key)
            if version is None:
                raise NotFoundError(f"blob sha256:{hexdigest} is missing from {self.settings.url}")
            kw["VersionId"] = version
        return kw

    def _head(self, hexdigest: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            kw = self._get_kw(hexdigest)
        except NotFoundError:
            return None
        with self._errors(f"head {kw['Key']}"):
            try:
                return dict(self.client.head_object(**kw, ChecksumMode="ENABLED"))
            except ClientError as exc:
                if _client_error_code(exc) in ("404", "NoSuchKey", "NotFound", "NoSuchVersion"):
                    return None
                raise

    def exists(self, hexdigest: str) -> bool:
        return self._head(hexdigest) is not None

    def size(self, hexdigest: str) -> int:
        head = self._head(hexdigest)
        if head is None:
            raise NotFoundError(f"blob sha256:{hexdigest} is missing from {self.settings.url}")
        return int(head["ContentLength"])

    def retention(self, hexdigest: str) -> tuple[str | None, datetime | None, bool]:
        """(mode, retain-until, legal hold) as the server reports them for the locked version."""
        head = self._head(hexdigest)
        if head is None:
            raise NotFoundError(f"blob sha256:{hexdigest} is missing from {self.settings.url}")
        return (head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate"),
                head.get("ObjectLockLegalHoldStatus") == "ON")

    @contextlib.contextmanager
    def open(self, hexdigest: str) -> Iterator[BinaryIO]:
        from botocore.exceptions import ClientError

        kw = self._get_kw(hexdigest)
        with self._errors(f"get {kw['Key']}"):
            try:
                body = self.client.get_object(**kw)["Body"]
            except ClientError as exc:
                if _client_error_code(exc) in ("404", "NoSuchKey", "NoSuchVersion"):
                    raise NotFoundError(f"blob sha256:{hexdigest} is missing from {self.settings.url}") from exc
                raise
        try:
            yield cast(BinaryIO, _GuardedBody(body, f"reading {kw['Key']} from {self.settings.url}"))
        finally:
            with contextlib.suppress(Exception):
                body.close()

    def read_bytes(self, hexdigest: str) -> bytes:
        with self.open(hexdigest) as fh:
            data: bytes = fh.read()
        return data

    def rehash(self, hexdigest: str) -> tuple[str, int]:
        with self.open(hexdigest) as fh:
            return hash_stream(fh)

    def iter_all(self) -> Iterator[str]:
        base = f"{self.settings.prefix}objects/sha256/"
        with self._errors(f"list {base}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.settings.bucket, Prefix=base)
            names = sorted({obj["Key"].rsplit("/", 1)[-1] for page in pages for obj in page.get("Contents", [])})
        yield from (n for n in names if _HEX64.match(n))

    def path(self, hexdigest: str) -> Path:
        raise StoreError(f"blobs of this store live in {self.settings.url}, not in a local file",
                         hint=f"use `archiver get` to copy one out ({hexdigest[:12]}…)")

    # ---- writing -----------------------------------------------------------------------------
    def new_temp(self, suffix: str = "") -> tuple[BinaryIO, Path]:
        return new_temp_in(self.tmp, suffix)

    def _upload(self, fh: IO[bytes], hexdigest: str, size: int) -> None:
        from botocore.exceptions import ClientError

        if self.exists(hexdigest):
            return  # content-addressed: the same name is the same bytes, never uploaded twice
        kw: dict[str, Any] = {
            "Bucket": self.settings.bucket, "Key": self.key(hexdigest), "Body": fh, "ContentLength": size,
            "ChecksumSHA256": base64.b64encode(bytes.fromhex(hexdigest)).decode("ascii"),
            "ContentType": "application/octet-stream", "IfNoneMatch": "*",
        }
        if self.settings.object_lock and self.settings.retain:
            kw["ObjectLockMode"] = self.settings.object_lock.upper()
            kw["ObjectLockRetainUntilDate"] = retain_until(self.settings.retain)
        if self.settings.legal_hold:
            kw["ObjectLockLegalHoldStatus"] = "ON"
        with self._errors(f"put {kw['Key']}"):
            try:
                self.client.put_object(**kw)
            except ClientError as exc:
                code = _client_error_code(exc)
                if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return  # another worker uploaded the same object first
                if code in ("BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"):
                    raise StoreConflictError(f"S3 rejected sha256:{hexdigest}: bytes changed during upload") from exc
                raise

    def adopt(self, temp_path: Path, hexdigest: str | None = None) -> tuple[str, int]:
        """Upload a finished temp file under its hash (computed if not given), then delete it."""
        try:
            if hexdigest is None:
                hexdigest, size = hash_file(temp_path)
            else:
                size = temp_path.stat().st_size
            with open(temp_path, "rb") as fh:
                self._upload(fh, hexdigest, size)
            return hexdigest, size
        finally:
            temp_path.unlink(missing_ok=True)

    def put_many(self, datas: list[bytes]) -> list[str]:
        return put_concurrently(self.put_bytes, datas)

    def put_bytes(self, data: bytes) -> str:
        hexdigest = hashlib.sha256(data).hexdigest()
        self._upload(io.BytesIO(data), hexdigest, len(data))
        return hexdigest

    def clean_temps(self, older_than_s: float = 3600.0) -> int:
        return remove_stale_temps((self.tmp,), older_than_s)

    # ---- garbage collection and legal holds -----------------------------------------------------
    def modified(self, hexdigest: str) -> float:
        """When the object was written (epoch seconds), from its HEAD."""
        head = self._head(hexdigest)
        if head is None:
            raise NotFoundError(f"blob sha256:{hexdigest} is missing from {self.settings.url}")
        return float(head["LastModified"].timestamp())

    def delete(self, hexdigest: str, still: Callable[[Any], bool] | None = None) -> bool:
        """Remove one object (garbage collection of orphans), every version of it: refused with
        ``HoldError`` when a held record needs it (the store's hold guard, under the catalog's write
        lock), and by the server for a version under Object Lock retention or legal hold
        (``RetentionError``). ``still(d)``, under that lock: is it still garbage (see ``BlobStore.delete``).
        False if absent or kept."""
        key = self.key(hexdigest)
        with self.hold_guard(hexdigest) as d:
            if still is not None and not still(d):
                return False
            with self._errors(f"delete {key}"):
                resp = self.client.list_object_versions(Bucket=self.settings.bucket, Prefix=key)
                versions = [v for v in resp.get("Versions", []) + resp.get("DeleteMarkers", [])
                            if v.get("Key") == key]
                if not versions:
                    return False
                for v in versions:
                    kw: dict[str, Any] = {"Bucket": self.settings.bucket, "Key": key}
                    if v.get("VersionId") not in (None, "null"):
                        kw["VersionId"] = v["VersionId"]
                    self.client.delete_object(**kw)
            self._oldest.pop(key, None)
        return True

    def legal_hold(self, hexdigest: str) -> bool | None:
        """Whether the server reports an Object Lock legal hold ON for the object's locked version (None
        when the bucket has no Object Lock, where legal holds do not exist)."""
        if not self.settings.object_lock:
            return None
        from botocore.exceptions import ClientError

        kw = self._get_kw(hexdigest)
        with self._errors(f"legal hold of {kw['Key']}"):
            try:
                got = self.client.get_object_legal_hold(**kw)
            except ClientError as exc:
                if _client_error_code(exc) == "NoSuchObjectLegalHold":  # never had one
                    return False
                raise
        return str(got.get("LegalHold", {}).get("Status", "")) == "ON"

    def set_legal_hold(self, hexdigest: str, on: bool) -> bool:
        """Put (or lift) the Object Lock legal hold on the object's locked version; False when the bucket
        has no Object Lock (our own refusal is then the only guard). A store that puts a legal hold on
        every object (``legal_hold``) never lifts one here."""
        if not self.settings.object_lock or (not on and self.settings.legal_hold):
            return False
        kw = self._get_kw(hexdigest)
        with self._errors(f"put legal hold on {kw['Key']}"):
            self.client.put_object_legal_hold(**kw, LegalHold={"Status": "ON" if on else "OFF"})
        return True


__all__ = ["CHUNK", "LOCK_MODES", "S3BlobStore", "S3Settings", "retain_until"]

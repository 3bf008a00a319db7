"""Every error the library raises, rooted in one class so the CLI catches exactly one thing.

::

    ArchiverError                      exit 2 unless a subclass says otherwise
    ├── UsageError                     2  bad input from the user
    │   ├── InvalidURLError
    │   ├── UnsupportedSchemeError
    │   ├── ConfigError
    │   ├── MissingExtraError             (a feature whose optional extra is not installed)
    │   └── NotFoundError              (record, artifact or key that does not exist)
    ├── AccessError                    2  who may do what (the web API: 401 / 403 / 429)
    │   ├── AuthenticationError           (no token, an unknown, revoked or expired one)
    │   ├── PermissionDeniedError         (the token's role does not allow it)
    │   └── RateLimitError                (too many captures; ``retry_after`` seconds)
    ├── PolicyError                    2  refused on purpose (SSRF guard, a legal hold)
    │   ├── BlockedAddressError
    │   └── HoldError                     (a matter's legal hold forbids it: names the matter and reason)
    ├── CaptureError                   3  the remote side or the transfer failed
    │   ├── NetworkError
    │   │   ├── DNSError
    │   │   ├── ConnectError
    │   │   ├── CaptureTimeoutError
    │   │   └── TLSError
    │   ├── RedirectError
    │   │   ├── TooManyRedirectsError
    │   │   └── RedirectLoopError
    │   ├── BodyTooLargeError
    │   ├── DecompressionBombError
    │   └── HTTPStatusError
    ├── RemoteServiceError             3  a third-party service (TSA, Wayback Machine) failed
    │   ├── TimestampError
    │   └── WaybackError
    │       └── RateLimitedError
    ├── KeyError_                      2  signing keys
    │   └── PassphraseError
    ├── IntegrityError                 1  something does not match its recorded hash
    │   ├── SignatureError
    │   └── NotCertifiableError           (a record that does not verify cannot be certified)
    ├── UnknownFormatError             1  a record or addendum written by a newer release (reported,
    │                                     never skipped: upgrade archiver to check it)
    ├── QuoteNotFoundError             1  the excerpt does not occur in the record
    └── StoreError                     4  the store is missing, locked or damaged
        ├── StoreNotFoundError
        ├── StoreWriteError               (disk full, quota, read-only, permission denied: never exit 3)
        ├── StoreCorruptError
        ├── StoreConflictError            (a row or object that must be unique already exists)
        ├── StoreUnavailableError         (PostgreSQL or the S3 endpoint cannot be reached)
        └── RetentionError                (the object store refused: Object Lock, permissions)

Each error carries a ``hint`` so ``diagnostics()`` can tell the user what to do next.
"""

from __future__ import annotations

import errno


class ArchiverError(Exception):
    """Root of the tree; ``exit_code`` is what the CLI returns for it."""

    exit_code: int = 2
    default_hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def diagnostics(self) -> str:
        """One line saying what happened, and a second saying what to do, when we know."""
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(ArchiverError):
    exit_code = 2


class InvalidURLError(UsageError):
    default_hint = "give an absolute http:// or https:// URL with a host name"


class UnsupportedSchemeError(UsageError):
    default_hint = "only http:// and https:// documents can be captured"


class ConfigError(UsageError):
    default_hint = "see `archiver config list` for the known keys and their types"


class MissingExtraError(UsageError):
    """A feature needs an optional dependency group (``pip install 'archiver[browser]'``)."""


class NotFoundError(UsageError):
    default_hint = "see `archiver list` for the records in this store"


class AccessError(ArchiverError):
    """Access to the server's API and pages."""


class AuthenticationError(AccessError):
    default_hint = "send `Authorization: Bearer <token>`; `archiver tokens create NAME` makes one"


class PermissionDeniedError(AccessError):
    pass


class RateLimitError(AccessError):
    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class PolicyError(ArchiverError):
    exit_code = 2


class BlockedAddressError(PolicyError):
    default_hint = (
        "private, loopback and link-local targets are refused to prevent SSRF; allow them with "
        "--allow-private, ARCHIVER_ALLOW_PRIVATE=1 or `archiver config set capture.allow_private true`"
    )


class HoldError(PolicyError):
    """A legal hold forbids the act (unpublish, garbage collection, removal from a collection, deleting a
    blob). Exit 2, like every refusal on purpose; the message names each hold (matter and reason) so the
    person refused knows whom to ask, and ``holds`` carries them for programs."""

    default_hint = "the matter's owner can lift it with `archiver release MATTER` (a custody entry)"

    def __init__(self, message: str, *, holds: tuple[tuple[str, str], ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.holds = holds


class CaptureError(ArchiverError):
    exit_code = 3


class NetworkError(CaptureError):
    pass


class DNSError(NetworkError):
    default_hint = "check the host name and your DNS resolver"


class ConnectError(NetworkError):
    default_hint = "the server did not accept the connection; check the host and port"


class CaptureTimeoutError(NetworkError):
    default_hint = "raise capture.timeout or capture.deadline with `archiver config set` if the server is slow"


class TLSError(NetworkError):
    default_hint = (
        "the server's certificate could not be verified; set capture.ca_bundle to a trusted CA file, "
        "or pass --insecure (recorded in the manifest)"
    )


class RedirectError(CaptureError):
    pass


class TooManyRedirectsError(RedirectError):
    default_hint = "raise capture.max_redirects if the chain is legitimate"


class RedirectLoopError(RedirectError):
    default_hint = "the server redirects in a circle; capture the final URL directly if there is one"


class BodyTooLargeError(CaptureError):
    default_hint = "raise capture.max_bytes (bytes on the wire) if the document is legitimately this large"


class DecompressionBombError(CaptureError):
    default_hint = "raise capture.max_decoded_bytes if the document legitimately decodes to this size"


class HTTPStatusError(CaptureError):
    default_hint = "pass --allow-status to keep a non-2xx response as evidence"


class RemoteServiceError(ArchiverError):
    exit_code = 3


class TimestampError(RemoteServiceError):
    default_hint = "check tsa.urls (archiver config get tsa.urls); the record stays valid and can be stamped later"


class WaybackError(RemoteServiceError):
    default_hint = "the Wayback Machine may be slow or down; try again later (wayback.base_url sets the endpoint)"


class RateLimitedError(WaybackError):
    default_hint = "the Internet Archive asked us to slow down; wait a few minutes before retrying"


class KeyError_(ArchiverError):
    exit_code = 2
    default_hint = "create a signing key with `archiver keys generate`"


class PassphraseError(KeyError_):
    default_hint = "set ARCHIVER_KEY_PASSPHRASE or type the passphrase the key was created with"


class IntegrityError(ArchiverError):
    exit_code = 1


class SignatureError(IntegrityError):
    pass


class NotCertifiableError(IntegrityError):
    default_hint = "run `archiver verify ID` to see which check failed"


class UnknownFormatError(ArchiverError):
    """A schema or addendum kind this release does not know: a newer release wrote it. It is not damage
    (so not an IntegrityError): readers report it and go on, and never drop it silently."""

    exit_code = 1
    default_hint = "upgrade archiver to a release that knows this format (docs/formats.md)"


class QuoteNotFoundError(ArchiverError):
    exit_code = 1


class StoreError(ArchiverError):
    exit_code = 4


class StoreWriteError(StoreError):
    """Writing the store failed on the local side: disk full, quota, file too large, read-only or
    permission denied, I/O error. Never a network failure, whatever was being fetched at the time."""

    default_hint = ("free space (or fix permissions) on the store's filesystem and retry; nothing partial "
                    "was kept, and `archiver verify --all` checks what is there")


# errno values that can only mean "the local filesystem refused", never "the network failed"
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
# ...and those that mean the same when the failing call wrote the store (a socket may raise them too)
STORE_ERRNOS = DISK_ERRNOS | {errno.EACCES, errno.EPERM, errno.EIO, errno.ENOENT, errno.ENOTDIR}


def store_write_error(exc: OSError, what: str = "writing the store") -> StoreWriteError:
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return StoreWriteError(f"{what} failed: {reason}{where}")


class StoreNotFoundError(StoreError):
    default_hint = "create one with `archiver init`, or point --store / ARCHIVER_HOME at an existing store"


class StoreCorruptError(StoreError):
    default_hint = "run `archiver verify --all`; `archiver store rebuild-index` rebuilds the catalog from blobs"


class StoreConflictError(StoreError):
    default_hint = "another process wrote the same record or job first; nothing was duplicated"


class StoreUnavailableError(StoreError):
    default_hint = "check that the catalog database / object store is running and reachable, and its credentials"


class RetentionError(StoreError):
    default_hint = "objects under Object Lock cannot be deleted or overwritten until their retain-until date"

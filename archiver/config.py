"""Settings kept in the store (``config.json``), typed and validated on every ``set``.

Unknown keys are refused so a typo never silently does nothing.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from archiver.errors import ConfigError, StoreCorruptError
from store.fsutil import atomic_write_bytes

Value = str | int | float | bool | list[str]


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    type: type
    default: Value
    help: str
    check: Callable[[str], str] | None = None  # normalises a text value or raises ValueError saying why
    #: a credential: never listed (``items`` shows that it is set, not what it is), and the settings file
    #: is written 0600 while one is set
    secret: bool = False


#: What ``Config.items`` shows for a secret that is set.
HIDDEN = "(set, hidden)"


def http_base(text: str) -> str:
    """An absolute http(s) base URL without query or fragment, no trailing slash (links are built on it:
    a bad one would print unusable links into court filings). Empty unsets it."""
    v = text.strip().rstrip("/")
    if not v:
        return ""
    parts = urllib.parse.urlsplit(v)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    host = parts.hostname or ""
    # printed into every citation and page: no credentials, a real port, a host made of host characters,
    # and nothing a browser and Python would read differently (a backslash) or that breaks out of HTML
    if parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment or "@" in parts.netloc \
            or not port_ok or not all(c.isalnum() or c in ".-[]:" for c in host) \
            or any(c.isspace() or ord(c) < 32 or c in "\\\"'<>`^{}|" for c in v):
        raise ValueError(f"{text!r} is not an absolute http(s) URL without credentials, query or fragment "
                         "(e.g. https://evidence.example.org)")
    return v


SETTINGS: dict[str, Setting] = {s.key: s for s in (
    Setting("operator.name", str, "", "who operates the captures (in every manifest and custody entry)"),
    Setting("operator.organization", str, "", "the operator's organisation"),
    Setting("capture.timeout", float, 30.0, "seconds to connect and between received bytes"),
    Setting("capture.deadline", float, 300.0, "seconds for a whole capture, redirects and body included"),
    Setting("capture.max_bytes", int, 200_000_000, "largest response body accepted on the wire, in bytes"),
    Setting("capture.max_decoded_bytes", int, 1_000_000_000,
            "largest decoded (decompressed) body, in bytes: the decompression-bomb cap"),
    Setting("capture.max_redirects", int, 10, "redirect hops followed before giving up"),
    Setting("capture.max_text_bytes", int, 50_000_000, "largest decoded body we extract text from"),
    Setting("capture.allow_private", bool, False, "allow private, loopback and link-local targets (SSRF guard)"),
    Setting("capture.user_agent", str, "", "User-Agent header; empty means archiver/<version> (+url)"),
    Setting("capture.ca_bundle", str, "", "PEM file of CAs to trust instead of the system store"),
    Setting("capture.main_content", bool, False,
            "every HTML capture also keeps the document's own text (main-text), found automatically when "
            "nothing is declared; watches always do"),
    Setting("capture.per_host", int, 2, "most concurrent fetches to one host in a batch"),
    Setting("s3.connect_timeout", float, 10.0, "seconds to connect to the S3 endpoint of a store's blobs"),
    Setting("s3.read_timeout", float, 60.0,
            "seconds an S3 request may wait for the next bytes (a stalled read then fails with exit 4)"),
    Setting("s3.max_attempts", int, 4, "attempts per S3 request (retried with backoff on throttling and 5xx)"),
    Setting("verify.max_record_bytes", int, 1 << 30,
            "largest WARC record (its declared block, once inflated) verification or import reads; a bundle "
            "declaring more is refused before anything is inflated"),
    Setting("verify.max_warc_bytes", int, 4 << 30, "most bytes one record's WARC may inflate to, all records together"),
    Setting("verify.max_warc_records", int, 100_000,
            "most records one record's WARC may hold (a browser capture has hundreds; each costs time however small)"),
    Setting("verify.max_bundle_bytes", int, 16 << 30,
            "most bytes verifying or importing one bundle may inflate from its members, each read counted (a "
            "bundle whose members declare more is refused before anything is inflated)"),
    Setting("verify.max_bundle_members", int, 10_000, "most members a bundle may have (refused before any is read)"),
    Setting("log.origin", str, "",
            "the transparency log's origin: the first line of its checkpoints and its key's name, e.g. "
            "archive.example.org/evidence (empty: archiver.invalid/<log key hash>); never change it once "
            "checkpoints are signed"),
    Setting("log.witness_timeout", float, 10.0,
            "seconds a witness may take to answer a checkpoint (connect, each read, the whole answer); one "
            "that is slower is reported unreachable and the checkpoint stands without its cosignature"),
    Setting("log.policy", str, "",
            "a tlog-policy file (c2sp.org/tlog-policy): the witnesses, and how many, whose cosignatures "
            "`log verify-proof` requires when no --policy is given; empty: none required"),
    Setting("log.public", bool, False,
            "`archiver serve` answers /log/checkpoint and /log/tile/... (the transparency log as tlog-tiles: "
            "record IDs and hashes, never URLs or titles) without login; off: every /log/ path is a 404"),
    Setting("tsa.urls", list, [], "RFC 3161 timestamp authority URLs"),
    Setting("tsa.certs", str, "", "PEM file of TSA trust anchors (root and intermediate certificates)"),
    Setting("tsa.timeout", float, 10.0, "seconds to wait for a TSA's answer"),
    Setting("tsa.retries", int, 2, "extra attempts after a TSA times out, refuses the connection or answers 5xx"),
    Setting("tsa.tolerance", int, 600, "seconds genTime may lie after captured_at (authsign uses 10 minutes)"),
    Setting("wayback.base_url", str, "https://web.archive.org",
            "Wayback Machine endpoint (CDX, Save Page Now, replay)"),
    Setting("wayback.availability_url", str, "https://archive.org/wayback/available",
            "Wayback availability API endpoint"),
    Setting("cite.archive_base_url", str, "",
            "public base URL where you publish bundles; citations then link <base>/<record id>"),
    Setting("wayback.timeout", float, 30.0, "seconds to wait for each Wayback Machine answer"),
    Setting("wayback.save_deadline", float, 300.0, "seconds to wait for a Save Page Now job to finish"),
    Setting("wayback.poll_interval", float, 5.0, "seconds between Save Page Now status polls"),
    Setting("queue.host_interval", float, 1.0,
            "seconds between the starts of two captures of one host, across every worker of the queue"),
    Setting("queue.max_attempts", int, 5, "tries of a queued capture that fails on the network before it fails"),
    Setting("queue.retry_wait", int, 2, "base of the exponential backoff between tries, in seconds"),
    Setting("queue.batch_timestamps", bool, False,
            "workers leave records unstamped; `archiver timestamp --pending` then stamps them all with one "
            "RFC 3161 request (Merkle batch) instead of one request per capture"),
    Setting("queue.heartbeat", float, 10.0, "seconds between a worker's heartbeats"),
    Setting("web.captures_per_minute", int, 30, "captures one token may request per minute from `archiver serve`"),
    Setting("web.max_upload_bytes", int, 1_000_000_000, "largest file `archiver serve` accepts for verification"),
    Setting("web.verify_workers", int, 2,
            "bundle verifications `archiver serve` runs at once, each in its own process; one more is answered "
            "503 with Retry-After, never queued"),
    Setting("web.verify_memory", int, 1 << 30,
            "address space (bytes) a web bundle verification's process may use; past it the upload is refused "
            "(0: no cap)"),
    Setting("web.verify_seconds", float, 60.0,
            "seconds a web bundle verification may run before its process is killed and the upload refused"),
    Setting("web.session_hours", int, 12, "how long a browser session of `archiver serve` lasts"),
    Setting("web.token_cache_seconds", float, 5.0,
            "seconds each `archiver serve` process reuses a successful token check instead of querying the "
            "catalog; a token revoked elsewhere is still accepted by a server for at most this long (0: every "
            "request checks)"),
    Setting("web.job_lease_seconds", float, 30.0,
            "seconds a capture job claimed by an `archiver serve` process stays its own without a heartbeat "
            "(sent every third of it); a process killed mid-job loses its jobs to the others after this long"),
    Setting("web.public_url", str, "", "public base URL of `archiver serve`: a public record's permalink is "
            "<web.public_url>/r/<record id>", http_base),
    Setting("web.replay_url", str, "", "public base URL of the replay origin (`archiver serve --replay-port`): "
            "captured pages replay only there; on a public server put it on another registrable domain than "
            "web.public_url. Empty: http://<host>:<replay port>", http_base),
    Setting("replay.cache_dir", str, "", "where `archiver replay setup` keeps ReplayWeb.page's files (outside "
            "the store and the repository); empty: ~/.cache/archiver/replaywebpage"),
    Setting("alerts.smtp.host", str, "", "SMTP server that alert mail and digests go through (empty: no mail)"),
    Setting("alerts.smtp.port", int, 587, "its port (587: submission with STARTTLS)"),
    Setting("alerts.smtp.user", str, "", "SMTP login name (empty: no login)"),
    Setting("alerts.smtp.password", str, "", "SMTP password (kept 0600, never listed)", secret=True),
    Setting("alerts.smtp.from", str, "", "the From address of alert mail"),
    Setting("alerts.smtp.to", list, [], "who receives alert mail and digests"),
    Setting("alerts.smtp.starttls", bool, True,
            "upgrade the SMTP connection with STARTTLS before logging in (refused if the server cannot)"),
    Setting("alerts.smtp.ca_bundle", str, "", "PEM file of CAs to trust for the SMTP server instead of the system "
            "store"),
    Setting("alerts.timeout", float, 10.0, "seconds a webhook receiver or the SMTP server may take to answer"),
    Setting("alerts.max_attempts", int, 8, "attempts to deliver one alert before it is logged as given up"),
    Setting("alerts.retry_base", float, 30.0,
            "seconds before the second attempt of a failed delivery; each later wait doubles (exponential backoff)"),
    Setting("alerts.retry_max", float, 21600.0, "longest wait between two attempts of a delivery, in seconds"),
    Setting("alerts.feeds_public", bool, False,
            "`archiver serve` answers the Atom feeds (/feeds/...) without a token; off: a viewer token is needed"),
    Setting("queue.stalled_after", float, 30.0,
            "seconds without a heartbeat after which a worker is presumed dead and its jobs are retried; "
            "`status` counts as alive only the workers heard from within it"),
    Setting("queue.pool_timeout", float, 10.0,
            "seconds a worker waits for a connection to the catalog before it counts the catalog unreachable"),
    Setting("queue.reconnect_max_delay", float, 30.0,
            "longest wait, in seconds, between a worker's attempts to reach a lost catalog again (the wait "
            "starts at 1 s and doubles)"),
)}


def parse_value(key: str, text: str) -> Value:
    setting = SETTINGS.get(key)
    if setting is None:
        raise ConfigError(f"unknown setting {key!r}")
    try:
        if setting.type is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true or false, got {text!r}")
        if setting.type is int:
            value_i = int(text.replace("_", ""))
            if value_i < 0:
                raise ValueError("must not be negative")
            return value_i
        if setting.type is float:
            value_f = float(text)
            if value_f <= 0:
                raise ValueError("must be positive")
            return value_f
        if setting.type is list:
            return [part for part in text.replace(",", " ").split() if part]
        return setting.check(text) if setting.check is not None else text
    except ValueError as exc:
        raise ConfigError(f"bad value for {key}: {exc}") from exc


class SharedSettings(Protocol):
    """Settings every machine of a fleet must agree on (the catalog's ``meta`` table)."""

    def shared_settings(self) -> dict[str, Any]: ...

    def put_shared_setting(self, key: str, value: Any | None) -> None: ...


#: Keys kept in the shared catalog when there is one: a politeness limit that one machine could
#: loosen on its own would not be a limit.
SHARED_PREFIX = "queue."


class Config:
    def __init__(self, path: Path, shared: SharedSettings | None = None) -> None:
        self.path = path
        self.shared = shared
        # the parsed file and the (inode, size, mtime) it was read at: a capture asks a dozen settings,
        # and a stat costs a tenth of reading and parsing the file; a rewrite (a new inode) is seen
        self._cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None

    def _load(self) -> dict[str, Any]:
        data = self._load_file()
        if self.shared is not None:
            data = {k: v for k, v in data.items() if not k.startswith(SHARED_PREFIX)}
            data.update(self.shared.shared_settings())
        return data

    def _load_file(self) -> dict[str, Any]:
        """The file's settings (a fresh dict: callers may change it)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._cache
        if cached is not None and cached[0] == key:
            return dict(cached[1])
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except ValueError as exc:
            raise StoreCorruptError(f"config file {self.path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise StoreCorruptError(f"config file {self.path} is not a JSON object")
        self._cache = (key, data)
        return dict(data)

    def get(self, key: str) -> Value:
        setting = SETTINGS.get(key)
        if setting is None:
            raise ConfigError(f"unknown setting {key!r}")
        value: Value = self._load().get(key, setting.default)
        return value

    def set(self, key: str, text: str) -> Value:
        value = parse_value(key, text)
        if self.shared is not None and key.startswith(SHARED_PREFIX):
            self.shared.put_shared_setting(key, value)
            return value
        data = self._load_file()
        data[key] = value
        self._write(data)
        return value

    def _write(self, data: dict[str, Any]) -> None:
        """The settings file, 0600 while it holds a secret (an SMTP password), else 0644."""
        secret = any(SETTINGS[k].secret and v for k, v in data.items() if k in SETTINGS)
        atomic_write_bytes(self.path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"),
                           mode=0o600 if secret else 0o644)

    def unset(self, key: str) -> None:
        if key not in SETTINGS:
            raise ConfigError(f"unknown setting {key!r}")
        if self.shared is not None and key.startswith(SHARED_PREFIX):
            self.shared.put_shared_setting(key, None)
            return
        data = self._load_file()
        if data.pop(key, None) is not None:
            self._write(data)

    def items(self) -> list[tuple[str, Value, bool]]:
        """(key, value, is_default) for every known setting; a secret that is set shows as ``HIDDEN``."""
        data = self._load()
        return [(k, HIDDEN if s.secret and data.get(k) else data.get(k, s.default), k not in data)
                for k, s in SETTINGS.items()]

    def str_(self, key: str) -> str:
        return str(self.get(key))

    def int_(self, key: str) -> int:
        return int(self.get(key))  # type: ignore[arg-type]

    def float_(self, key: str) -> float:
        return float(self.get(key))  # type: ignore[arg-type]

    def bool_(self, key: str) -> bool:
        return bool(self.get(key))

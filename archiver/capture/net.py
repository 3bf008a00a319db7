"""Transport for captures: requests/urllib3 connections that record the bytes on the wire.

``requests`` gives us redirects, TLS and proxies-off sessions, but not the raw bytes a WARC
needs, so the connection classes below wrap the connected socket: everything sent is kept for
the ``request`` record, everything received is teed to a temp file for the ``response`` record.
The same hook enforces the SSRF guard (before connecting, on every resolved address, and again
on the peer actually connected, which defeats DNS rebinding), the total deadline, and the cap on
bytes received.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from archiver.errors import BlockedAddressError, BodyTooLargeError, CaptureTimeoutError, DNSError

MAX_REQUEST_RECORD = 1 << 20


def address_is_public(ip_text: str) -> bool:
    """True only for globally routable unicast addresses (IPv4-mapped IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(ip_text.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_global) and not ip.is_multicast


@dataclass(slots=True)
class ConnInfo:
    server_ip: str
    server_port: int
    tls_version: str | None = None
    cipher: str | None = None
    peer_chain_der: list[bytes] = field(default_factory=list)
    tls_verified: bool = False


MAX_HEAD_BYTES = 16 << 20  # far above what http.client parses (100 headers of at most 64 KiB)


@dataclass(slots=True)
class HopRecorder:
    """One request/response exchange as it crosses the wire: the bytes sent, and digests of the
    bytes received taken as they arrive. Only the start of the response is kept (``head``, until the
    headers are parsed); the body goes to its spool file through http.client."""

    sent: bytearray = field(default_factory=bytearray)
    received: int = 0
    wire_hash: Any = field(default_factory=hashlib.sha256)  # of every byte received
    head: bytearray | None = field(default_factory=bytearray)  # bytes received until the head is parsed
    as_sent: Any = None  # once the head is parsed: SHA-1 of the body bytes exactly as sent (chunked)
    conn: ConnInfo | None = None
    started: float = field(default_factory=time.time)


@dataclass(slots=True)
class CaptureState:
    """Shared by all connections of one capture (one thread): limits and the current hop."""

    deadline: float  # time.monotonic() value
    read_timeout: float
    max_wire_bytes: int
    allow_private: bool
    verify_tls: bool
    current: HopRecorder | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check_deadline(self, what: str) -> None:
        if self.remaining() <= 0:
            raise CaptureTimeoutError(f"capture deadline passed while {what}")


class _TeeRaw(io.RawIOBase):
    """Raw reader over a socket that copies every received byte into the current hop's file."""

    def __init__(self, sock: socket.socket, state: CaptureState) -> None:
        super().__init__()
        self._sock = sock
        self._state = state

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        # Like socket.SocketIO: the socket's fd stays open while a reader holds it, even after
        # http.client closes the connection object (responses with "Connection: close").
        if not self.closed:
            self._sock._decref_socketios()  # type: ignore[attr-defined]
        super().close()

    def readinto(self, buf: Any) -> int:
        state = self._state
        state.check_deadline("receiving the response")
        self._sock.settimeout(max(0.05, min(state.read_timeout, state.remaining())))
        try:
            n = self._sock.recv_into(buf)
        except TimeoutError as exc:
            if state.remaining() <= 0:
                raise CaptureTimeoutError("capture deadline passed while receiving the response") from exc
            raise
        rec = state.current
        if rec is not None and n:
            got = memoryview(buf)[:n]
            if rec.head is not None:
                rec.head += got
                if len(rec.head) > MAX_HEAD_BYTES:
                    raise BodyTooLargeError(f"response headers exceed {MAX_HEAD_BYTES:,} bytes")
            elif rec.as_sent is not None:
                rec.as_sent.update(got)
            rec.wire_hash.update(got)
            rec.received += n
            if rec.received > state.max_wire_bytes:
                raise BodyTooLargeError(
                    f"response exceeds the size cap of {state.max_wire_bytes:,} bytes on the wire")
        return n


class _RecordingSocket:
    """Proxy for a connected socket; only ``sendall`` and ``makefile`` behave differently."""

    def __init__(self, sock: socket.socket, state: CaptureState, info: ConnInfo) -> None:
        self._sock = sock
        self._state = state
        self._info = info

    def sendall(self, data: Any, *args: Any) -> None:
        rec = self._state.current
        if rec is not None:
            rec.conn = self._info
            if len(rec.sent) < MAX_REQUEST_RECORD:
                rec.sent += bytes(data)
        self._state.check_deadline("sending the request")
        self._sock.sendall(data, *args)

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode == "rb":
            self._sock._io_refs += 1  # type: ignore[attr-defined]
            return io.BufferedReader(_TeeRaw(self._sock, self._state), buffer_size=65536)
        return self._sock.makefile(mode, *args, **kwargs)  # type: ignore[call-overload]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _check_host(host: str, port: int, state: CaptureState) -> None:
    """Resolve before connecting and refuse if any answer is non-public (unless allowed)."""
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DNSError(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    if state.allow_private:
        return
    for info in infos:
        ip = str(info[4][0])
        if not address_is_public(ip):
            raise BlockedAddressError(f"refusing to connect to {host} ({ip}): not a public address")


def _conn_info(sock: Any, state: CaptureState) -> ConnInfo:
    peer = sock.getpeername()
    info = ConnInfo(server_ip=str(peer[0]), server_port=int(peer[1]))
    if not state.allow_private and not address_is_public(info.server_ip):
        sock.close()
        raise BlockedAddressError(f"connected peer {info.server_ip} is not a public address")
    if isinstance(sock, ssl.SSLSocket):
        info.tls_version = sock.version()
        cipher = sock.cipher()
        info.cipher = cipher[0] if cipher else None
        info.tls_verified = state.verify_tls
        sslobj = getattr(sock, "_sslobj", None)
        chain = []
        getter = getattr(sslobj, "get_unverified_chain", None)
        if getter is not None:
            chain = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in (getter() or [])]  # type: ignore[attr-defined]
        if not chain:
            leaf = sock.getpeercert(binary_form=True)
            chain = [leaf] if leaf else []
        info.peer_chain_der = chain
    return info


def is_interim(status: int) -> bool:
    """A 1xx response that precedes the answer (100 Continue, 102, 103 Early Hints, …); 101 Switching
    Protocols is itself the answer."""
    return 100 <= status < 200 and status != 101


class FinalResponse(http.client.HTTPResponse):
    """http.client passes over 100 Continue only, so a 103 Early Hints would be taken for the answer
    (an empty "HTTP 103" record over the real response's bytes). Every interim response is passed
    over here, as browsers do; the recorded head (``fetch.response_head_span``) skips the same ones."""

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if status == http.client.CONTINUE or not is_interim(status):
                return version, status, reason  # ``begin`` passes over a 100 itself
            http.client.parse_headers(self.fp)  # the interim response's headers: read and dropped


def _recording_connection_classes(state: CaptureState) -> tuple[type[HTTPConnection], type[HTTPSConnection]]:
    class RecHTTPConnection(HTTPConnection):
        response_class = FinalResponse

        def connect(self) -> None:
            state.check_deadline("connecting")
            _check_host(self.host, self.port, state)
            super().connect()
            self.sock = _RecordingSocket(self.sock, state, _conn_info(self.sock, state))

    class RecHTTPSConnection(HTTPSConnection):
        response_class = FinalResponse

        def connect(self) -> None:
            state.check_deadline("connecting")
            _check_host(self.host, self.port, state)
            super().connect()
            self.sock = _RecordingSocket(self.sock, state, _conn_info(self.sock, state))

    return RecHTTPConnection, RecHTTPSConnection


class RecordingAdapter(HTTPAdapter):
    """An adapter whose pools build recording connections bound to one capture's state."""

    def __init__(self, state: CaptureState) -> None:
        self._state = state
        super().__init__(max_retries=0, pool_connections=2, pool_maxsize=2)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kw: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **kw)
        http_cls, https_cls = _recording_connection_classes(self._state)

        class Pool(HTTPConnectionPool):
            ConnectionCls = http_cls

        class SPool(HTTPSConnectionPool):
            ConnectionCls = https_cls

        self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SPool}


def recording_session(state: CaptureState) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or netrc from the environment: we record the direct exchange
    adapter = RecordingAdapter(state)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

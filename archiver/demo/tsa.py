"""A real RFC 3161 timestamp authority on 127.0.0.1 for the demo and the tests.

It is OpenSSL's own TSA (``openssl ts -reply``) behind a tiny HTTP handler, with a throwaway CA
and a TSA certificate carrying the critical timeStamping EKU. It is a *local test authority*:
its tokens are real cryptography but prove nothing to a third party, because nobody else trusts
its CA. ``mode`` lets tests make it misbehave the ways real TSAs do.

The TSA's config deliberately has no ``certs =`` line: with a chain, OpenSSL may write the
certificate SET out of DER order, which rfc3161-client refuses (``InvalidSetOrdering``). Tokens
therefore carry only the TSA certificate; verifiers supply the CA (``ca_pem``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from archiver.demo.server import LoopbackService

MODES = ("ok", "http500", "reject", "garbage", "wrong-imprint", "wrong-nonce", "slow")

_CNF = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55555.1.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""

# A TimeStampResp whose PKIStatusInfo says "rejection" (2) and carries no token.
REJECTION_DER = bytes.fromhex("3005300302" "0102")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "archiver local test authority")])


def make_tsa_certs(directory: Path, *, label: str = "Archiver local test TSA",
                   expired: bool = False) -> tuple[Path, Path, Path]:
    """Write ca.crt, tsa.crt, tsa.key (EC P-256) into ``directory``; returns their paths."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{label} root CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    not_after = now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=3650)
    tsa = (x509.CertificateBuilder().subject_name(_name(label)).issuer_name(ca_name)
           .public_key(tsa_key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now - dt.timedelta(days=20)).not_valid_after(not_after)
           .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
           .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                        data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                        crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
           .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.crt", directory / "tsa.crt", directory / "tsa.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    fd = os.open(paths[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(tsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return paths


class LocalTSA(LoopbackService):
    """OpenSSL TSA on a free loopback port. Use as a context manager; ``requests`` counts POSTs."""

    def __init__(self, *, label: str = "Archiver local test TSA", expired: bool = False,
                 openssl: str = "openssl") -> None:
        self.openssl = shutil.which(openssl) or openssl
        self._tmp = tempfile.TemporaryDirectory(prefix="archiver-tsa-")
        self.dir = Path(self._tmp.name)
        self.ca_pem, self.tsa_pem, _ = make_tsa_certs(self.dir, label=label, expired=expired)
        (self.dir / "serial").write_text("01\n")
        (self.dir / "tsa.cnf").write_text(_CNF.format(dir=self.dir))
        self.mode = "ok"
        self.delay = 5.0
        #: seconds the TSA's clock is off (a real TSA can be): its tokens' genTime moves by this much.
        #: Needs ``faketime`` (Debian package faketime) around ``openssl ts -reply``.
        self.clock_offset = 0.0
        self.requests = 0
        self._lock = threading.Lock()
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                query = self.rfile.read(min(length, 1 << 16))
                with tsa._lock:
                    tsa.requests += 1
                status, body = tsa.answer(query)
                self.send_response(status)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._serve(Handler)

    @property
    def url(self) -> str:
        return f"{self.base_url}/tsr"

    def reply(self, query: bytes) -> bytes:
        """Run ``openssl ts -reply`` on a DER TimeStampReq; one at a time (shared serial file)."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.dir) as work:
            qf, rf = Path(work) / "q.tsq", Path(work) / "r.tsr"
            qf.write_bytes(query)
            clock = ["faketime", "-f", f"{self.clock_offset:+.0f}s"] if self.clock_offset else []
            subprocess.run([*clock, self.openssl, "ts", "-reply", "-config", str(self.dir / "tsa.cnf"),
                            "-queryfile", str(qf), "-out", str(rf)], check=True, capture_output=True, timeout=30)
            return rf.read_bytes()

    def _query_for(self, digest_hex: str) -> bytes:
        out = subprocess.run([self.openssl, "ts", "-query", "-digest", digest_hex, "-sha256", "-cert"],
                             check=True, capture_output=True, timeout=30)
        return out.stdout

    def answer(self, query: bytes) -> tuple[int, bytes]:
        mode = self.mode
        if mode == "http500":
            return 500, b"internal error"
        if mode == "reject":
            return 200, REJECTION_DER
        if mode == "garbage":
            return 200, b"\x30\x82garbage that is not DER at all"
        if mode == "slow":
            time.sleep(self.delay)
        if mode == "wrong-imprint":
            return 200, self.reply(self._query_for("ab" * 32))
        if mode == "wrong-nonce":
            # the same imprint, asked again with a fresh nonce: a replayed or mixed-up answer
            from rfc3161_client._rust import parse_timestamp_request

            req = parse_timestamp_request(query)
            return 200, self.reply(self._query_for(req.message_imprint.message.hex()))
        try:
            return 200, self.reply(query)
        except subprocess.CalledProcessError:
            return 400, b"bad request"

    def close(self) -> None:
        super().close()
        self._tmp.cleanup()

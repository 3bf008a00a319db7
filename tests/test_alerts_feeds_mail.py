"""Alerts as Atom feeds (parsed by `feedparser`), e-mail through SMTP with STARTTLS (received by an
`aiosmtpd` server in the test), a server that refuses the login, digests, and the delivery log page."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import feedparser
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi.testclient import TestClient

from archiver.access import create_token
from archiver.alerts import deliver_due, deliveries, emit_run
from archiver.alerts.feeds import watch_key
from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.web.app import create_app

from .conftest import STATE, TLSMaterial


@pytest.fixture(autouse=True)
def _reset_state() -> None:
    STATE.update(policy=1, vanishing=1)


def _watch_and_change(archive: Archive, site: SampleSite) -> list[Any]:
    """Two real watches over the local site; one document changes, one is removed (HTTP 410):
    two change events."""
    policy, vanishing = site.base_url + "/policy", site.base_url + "/vanishing"
    archive.watches.add(policy, entity="Example Inc.", document="Privacy Policy", every="1d", actor="tester")
    archive.watches.add(vanishing, entity="Other Ltd", document="Terms", every="1d", actor="tester")
    urls = [policy, vanishing]
    first = archive.watches.run(passphrase=lambda: None, actor="tester", urls=urls)
    assert emit_run(archive, first, actor="tester") == []  # new documents are not alerts
    STATE.update(policy=2, vanishing=2)
    summary = archive.watches.run(passphrase=lambda: None, actor="tester", urls=urls)
    events = emit_run(archive, summary, actor="tester")
    assert sorted(e.type for e in events) == ["document.changed", "document.removed"]
    return events


def test_atom_feeds_one_entry_per_change_public_or_token(archive: Archive, site: SampleSite) -> None:
    archive.config.set("web.public_url", "https://evidence.example.org")
    events = _watch_and_change(archive, site)
    viewer = create_token(archive, "feed-reader", "viewer", actor="tester")
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        # off by default: a viewer's read (a browser is sent to log in, a feed reader gets 401)
        assert client.get("/feeds/all.atom", follow_redirects=False).status_code in (303, 401)
        auth = {"Authorization": f"Bearer {viewer.token}"}
        r = client.get("/feeds/all.atom", headers=auth)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
        feed = feedparser.parse(r.content)
        assert not feed.bozo, feed.get("bozo_exception")
        assert feed.version == "atom10" and feed.feed.id == "https://evidence.example.org/feeds/all.atom"
        assert feed.feed.author and feed.feed.updated
        assert len(feed.entries) == 2  # one entry per change
        by_type = {e.tags[0].term: e for e in feed.entries}
        changed = next(ev for ev in events if ev.type == "document.changed")
        entry = by_type["document.changed"]
        assert entry.id.startswith("tag:evidence.example.org,") and entry.id.endswith(changed.event_id)
        assert entry.title == "Example Inc. — Privacy Policy: changed" and entry.updated == changed.occurred_at
        assert entry.link == (f"https://evidence.example.org/diff/{changed.previous_record_id}/"
                              f"{changed.record_id}")
        assert f"https://evidence.example.org/records/{changed.record_id}" in [x.href for x in entry.links]
        assert "Sections changed: 2. How we use information" in entry.summary
        assert "HTTP status: 410" in by_type["document.removed"].summary
        # an entity's and a watch's feed hold theirs only
        ent = feedparser.parse(client.get("/feeds/entity/Example%20Inc..atom", headers=auth).content)
        assert [e.tags[0].term for e in ent.entries] == ["document.changed"]
        key = watch_key(site.base_url + "/vanishing")
        one = feedparser.parse(client.get(f"/feeds/watch/{key}.atom", headers=auth).content)
        assert [e.tags[0].term for e in one.entries] == ["document.removed"] and not one.bozo
        assert client.get("/feeds/entity/Nobody.atom", headers=auth).status_code == 404
        assert client.get("/feeds/watch/0000000000000000.atom", headers=auth).status_code == 404
        # public per setting
        archive.config.set("alerts.feeds_public", "true")
        anon = client.get("/feeds/all.atom")
        assert anon.status_code == 200 and len(feedparser.parse(anon.content).entries) == 2
        # the delivery log page and its JSON twin are an admin's
        assert client.get("/alerts", headers=auth).status_code == 403
        admin = create_token(archive, "boss", "admin", actor="tester")
        page = client.get("/alerts", headers={"Authorization": f"Bearer {admin.token}"})
        assert page.status_code == 200 and "Delivery log" in page.text and "/feeds/all.atom" in page.text
        assert "/feeds/entity/Example%20Inc..atom" in page.text
        twin = client.get("/api/v1/alerts/deliveries", headers={"Authorization": f"Bearer {admin.token}"})
        assert twin.status_code == 200 and twin.json() == []  # no webhook, no SMTP: nothing to deliver


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    starttls_seen: list[bool] = field(default_factory=list)
    port: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def smtp_server(tls_material: TLSMaterial) -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1 that requires STARTTLS (certificate from the test's own CA) and a login:
    alice / right-password is accepted, anything else refused with 535."""
    box = Mailbox()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.starttls_seen.append(session.ssl is not None)
            box.messages.append(message_from_bytes(envelope.content))
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        box.logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"alice" and auth_data.password == b"right-password"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_material.cert_pem, tls_material.key_pem)
    box.port = _free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=box.port, tls_context=ctx, require_starttls=True,
                     authenticator=authenticator, auth_required=True)
    ctl.start()
    try:
        yield box
    finally:
        ctl.stop()


def _smtp(archive: Archive, box: Mailbox, tls: TLSMaterial, password: str) -> None:
    for key, value in (("alerts.smtp.host", "127.0.0.1"), ("alerts.smtp.port", str(box.port)),
                       ("alerts.smtp.user", "alice"), ("alerts.smtp.password", password),
                       ("alerts.smtp.from", "archiver@example.org"), ("alerts.smtp.to", "legal@example.org"),
                       ("alerts.smtp.ca_bundle", str(tls.ca_pem)), ("web.public_url", "https://ev.example.org")):
        archive.config.set(key, value)


def test_mail_over_starttls_with_a_structured_summary(archive: Archive, site: SampleSite, smtp_server: Mailbox,
                                                      tls_material: TLSMaterial, cli) -> None:  # type: ignore[no-untyped-def]
    _smtp(archive, smtp_server, tls_material, "right-password")
    # the password is a secret: never listed, the settings file 0600
    listed = cli("config", "list", "--store", str(archive.root))
    assert "right-password" not in listed.out and "(set, hidden)" in listed.out
    assert (archive.root / "config.json").stat().st_mode & 0o777 == 0o600
    events = _watch_and_change(archive, site)
    rnd = deliver_due(archive)
    assert rnd.delivered == 1, rnd
    [msg] = smtp_server.messages
    assert smtp_server.starttls_seen == [True] and smtp_server.logins == [(b"alice", b"right-password")]
    assert msg["To"] == "legal@example.org" and msg["From"] == "archiver@example.org"
    assert msg["Subject"].startswith("[archiver] 2 alert(s):") and "Example Inc." in msg["Subject"]
    body = msg.get_payload(decode=True).decode()
    changed = next(e for e in events if e.type == "document.changed")
    assert "Document: Example Inc. — Privacy Policy" in body and "Document: Other Ltd — Terms" in body
    assert "Sections changed:\n  - 2. How we use information" in body
    assert f"Diff: https://ev.example.org/diff/{changed.previous_record_id}/{changed.record_id}" in body
    assert f"Record page: https://ev.example.org/records/{changed.record_id}" in body
    # the digest of the week goes the same way; --json says to whom
    r = cli("alerts", "digest", "--since", "7d", "--json", "--store", str(archive.root))
    assert r.code == 0 and json.loads(r.out)["mailed_to"] == ["legal@example.org"]
    from .test_alerts_webhooks import valid

    valid("alert-digest", json.loads(r.out))
    assert json.loads(r.out)["counts"] == {"document.changed": 1, "document.removed": 1}
    assert smtp_server.messages[-1]["Subject"].startswith("[archiver] digest: 2 alert(s)")
    printed = cli("alerts", "digest", "--since", "7d", "--no-mail", "--store", str(archive.root))
    assert "Alerts digest" in printed.out and "2. How we use information" in printed.out


def test_smtp_login_refused_is_logged_retried_and_the_run_unaffected(
        archive: Archive, site: SampleSite, smtp_server: Mailbox, tls_material: TLSMaterial, cli) -> None:  # type: ignore[no-untyped-def]
    _smtp(archive, smtp_server, tls_material, "wrong-password")
    _watch_and_change(archive, site)
    t0 = dt.datetime.now(dt.UTC)
    rnd = deliver_due(archive, now=t0)
    assert (rnd.delivered, rnd.retrying) == (0, 1) and smtp_server.messages == []
    [d] = rnd.deliveries
    assert d.status == "pending" and d.channel == "email"
    assert f"SMTP server 127.0.0.1:{smtp_server.port} refused the login of 'alice': 535" in str(d.last_error)
    log = cli("alerts", "log", "--store", str(archive.root))
    assert "refused the login" in log.out and "pending" in log.out
    # a digest asked for by hand says the same in one line, exit 3
    r = cli("alerts", "digest", "--since", "1d", "--store", str(archive.root))
    assert r.code == 3 and "refused the login of 'alice'" in r.err and "Traceback" not in r.err
    # fixed password: the retry (once due) delivers
    archive.config.set("alerts.smtp.password", "right-password")
    assert deliver_due(archive, now=t0 + dt.timedelta(seconds=1)).deliveries == ()  # backoff: not due yet
    later = deliver_due(archive, now=t0 + dt.timedelta(hours=1))
    assert later.delivered == 1 and len(smtp_server.messages) == 1
    [d] = deliveries(archive)
    assert [a.ok for a in d.history] == [False, True]
    # the captures and the run are unaffected
    assert len(archive.list()) == 4 and all(archive.verify(r.record_id, log=False).ok for r in archive.list())


def test_smtp_without_starttls_is_refused_before_login(archive: Archive, site: SampleSite) -> None:
    """A server that offers no STARTTLS never sees the password."""
    from aiosmtpd.handlers import Sink

    port = _free_port()
    ctl = Controller(Sink(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        archive.config.set("alerts.smtp.host", "127.0.0.1")
        archive.config.set("alerts.smtp.port", str(port))
        archive.config.set("alerts.smtp.user", "alice")
        archive.config.set("alerts.smtp.password", "secret")
        archive.config.set("alerts.smtp.to", "legal@example.org")
        _watch_and_change(archive, site)
        [d] = deliver_due(archive).deliveries
        assert d.status == "pending" and "does not offer STARTTLS" in str(d.last_error)
    finally:
        ctl.stop()


def test_hostile_names_in_a_feed_and_a_mail_subject() -> None:
    """Entity names and section headings come from people and pages: a feed stays well-formed XML with
    markup as text, and a mail subject stays one header line."""
    from archiver.alerts.events import AlertEvent, AlertLinks
    from archiver.alerts.feeds import atom
    from archiver.alerts.mail import compose

    ev = AlertEvent(event_id="evt_1", seq=1, type="document.changed", occurred_at="2026-12-06T08:00:00.000Z",
                    url="https://example.org/p?a=1&b=2", entity="Evil\x1b[2J </title><script>x</script>",
                    document="Terms\r\nBcc: victim@example.org", record_id="AAAA-BBBB", previous_record_id="CCCC-DDDD",
                    provision_id=None, label=None, http_status=200, sections=("1. <b>Data</b>\x00\x07",),
                    selector=None, detail=None, links=AlertLinks(record="/records/AAAA-BBBB"), actor="t")
    feed = feedparser.parse(atom([ev], title="t", feed_url="https://x.example/feeds/all.atom", base="https://x.example"))
    assert not feed.bozo, feed.get("bozo_exception")
    [entry] = feed.entries
    assert "<script>x</script>" in entry.title and "1. <b>Data</b>" in entry.summary
    assert entry.link == "https://x.example/records/AAAA-BBBB"
    subject, body = compose([ev])
    assert "\n" not in subject and "\r" not in subject and "Terms Bcc: victim@example.org" in subject
    assert "Sections changed:\n  - 1. <b>Data</b>" in body

"""Alerts over Standard Webhooks: events from real watch runs, signatures checked by the `standardwebhooks`
package in a receiver on 127.0.0.1, retries with backoff, the delivery log, the SSRF guard."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from archiver.alerts import deliver_due, deliveries, emit_run, list_events, notify_run
from archiver.api import Archive
from archiver.demo.server import QuietHTTPServer, SampleSite
from archiver.monitor import RunSummary

from .conftest import STATE


@pytest.fixture(autouse=True)
def _reset_state() -> Iterator[None]:
    STATE.update(policy=1, vanishing=1)
    yield
    import gc

    # collect this test's garbage (a PostgreSQL catalog's per-thread connections among it) here, where a
    # leak would fail this test, instead of at a random point of a later one (seen: psycopg's
    # ResourceWarning raised inside the job-pool test when the collector happened to run there)
    gc.collect()


def valid(name: str, value: Any) -> Any:
    """``value`` checked against the published JSON Schema ``name`` (docs/schemas/)."""
    import jsonschema

    from archiver.models import schemas

    jsonschema.Draft202012Validator(schemas()[name]).validate(value)
    return value


@dataclass
class Receiver:
    """A webhook receiver: answers ``codes`` in turn (then 204), keeps every request it got."""

    codes: list[int] = field(default_factory=list)
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    secret: str | None = None
    verified: list[Any] = field(default_factory=list)
    url: str = ""


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    rx = Receiver()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k: v for k, v in self.headers.items()}
            rx.got.append((headers, body))
            code = rx.codes.pop(0) if rx.codes else 204
            if code < 300 and rx.secret:
                try:  # what a real receiver does: refuse what does not verify
                    rx.verified.append(Verifier(rx.secret).verify(body, headers))
                except WebhookVerificationError:
                    code = 401
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = QuietHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    rx.url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    try:
        yield rx
    finally:
        httpd.shutdown()
        httpd.server_close()


def _changed_run(archive: Archive, site: SampleSite, path: str = "/policy") -> RunSummary:
    """A real watch over the local site: first run (new), the policy changes, second run (changed)."""
    archive.watches.add(site.base_url + path, entity="Example Inc.", document="Privacy Policy", every="1d",
                        actor="tester", allow_private=True)
    only = [site.base_url + path]
    archive.watches.run(passphrase=lambda: None, actor="tester", urls=only)
    STATE["policy"] = 2
    summary = archive.watches.run(passphrase=lambda: None, actor="tester", urls=only)
    assert [r.outcome for r in summary.results] == ["changed"]
    return summary


def test_signed_delivery_verified_by_standardwebhooks_and_tampering_rejected(
        archive: Archive, site: SampleSite, receiver: Receiver, cli) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(archive.root)]
    r = cli("alerts", "webhook", "add", receiver.url, "--json", *s)
    assert r.code == 0, r.err
    made = valid("new-webhook", json.loads(r.out))
    assert made["secret"].startswith("whsec_") and made["id"].startswith("wh_")
    receiver.secret = made["secret"]
    # the secret is kept like other secrets (0600 in the store) and never shown again
    listed = cli("alerts", "webhook", "list", "--json", *s)
    assert made["secret"] not in listed.out and json.loads(listed.out)[0]["id"] == made["id"]
    secret_file = archive.root / "alerts" / "webhooks" / f"{made['id']}.secret"
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    assert made["secret"] not in cli("alerts", "log", *s).out

    summary = _changed_run(archive, site)
    events = emit_run(archive, summary, actor="tester")
    assert [e.type for e in events] == ["document.changed"]
    assert events[0].sections == ("2. How we use information",) and events[0].entity == "Example Inc."
    r = cli("alerts", "deliver", "--json", *s)
    assert r.code == 0 and valid("alert-delivery-round", json.loads(r.out))["delivered"] == 1
    assert len(receiver.got) == 1 and len(receiver.verified) == 1
    valid("alert-event", receiver.verified[0]["data"])
    payload = receiver.verified[0]
    assert payload["type"] == "document.changed"
    assert payload["data"]["record_id"] == summary.results[0].record_id
    assert payload["data"]["previous_record_id"] == summary.results[0].previous_record_id
    assert payload["data"]["links"]["diff"].endswith(f"/diff/{summary.results[0].previous_record_id}/"
                                                     f"{summary.results[0].record_id}")
    headers, body = receiver.got[0]
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-signature"].startswith("v1,")
    # a tampered body, or a signature made with another secret, is rejected by the reference package
    tampered = body.replace(b"document.changed", b"document.removed")
    with pytest.raises(WebhookVerificationError):
        Verifier(receiver.secret).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Verifier("whsec_" + "A" * 43 + "=").verify(body, headers)
    # delivered once: a second round sends nothing
    assert deliver_due(archive).delivered == 0 and len(receiver.got) == 1
    log = json.loads(cli("alerts", "log", "--json", *s).out)
    for d in log:
        valid("alert-delivery", d)
    for w in json.loads(listed.out):
        valid("webhook", w)
    assert [(d["status"], d["attempts"], d["channel"]) for d in log] == [("delivered", 1, "webhook")]
    custody = [e.event for e in archive.custody.entries()]
    assert "webhook-add" in custody
    assert cli("alerts", "webhook", "remove", made["id"], *s).code == 0
    assert not secret_file.exists() and json.loads(cli("alerts", "webhook", "list", "--json", *s).out) == []


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"], indirect=True)
def test_receiver_500_then_down_is_retried_with_backoff_and_the_run_is_unaffected(
        archive: Archive, site: SampleSite, receiver: Receiver) -> None:
    from archiver.alerts import webhooks

    archive.config.set("alerts.retry_base", "60")
    archive.config.set("alerts.max_attempts", "4")
    made = webhooks.add(archive, receiver.url, actor="tester")
    receiver.secret = made.secret
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"  # nothing listens there
    down = webhooks.add(archive, dead, actor="tester")
    receiver.codes = [500, 503]
    summary = _changed_run(archive, site)
    [event] = emit_run(archive, summary, actor="tester")
    t0 = dt.datetime.now(dt.UTC)
    first = deliver_due(archive, now=t0)
    assert (first.delivered, first.retrying) == (0, 2)
    by = {d.target: d for d in first.deliveries}
    assert by[made.id].history[0].http_status == 500 and by[made.id].last_error == "HTTP 500"
    assert "refused" in (by[down.id].last_error or "").lower()
    nxt = dt.datetime.fromisoformat(str(by[made.id].next_attempt_at).replace("Z", "+00:00"))
    assert 55 <= (nxt - t0).total_seconds() <= 65  # retry_base
    # not due yet: nothing is sent again
    assert deliver_due(archive, now=t0 + dt.timedelta(seconds=30)).deliveries == ()
    assert len(receiver.got) == 1
    second = deliver_due(archive, now=t0 + dt.timedelta(seconds=61))
    by = {d.target: d for d in second.deliveries}
    assert by[made.id].history[-1].http_status == 503
    nxt2 = dt.datetime.fromisoformat(str(by[made.id].next_attempt_at).replace("Z", "+00:00"))
    assert 110 <= (nxt2 - dt.datetime.now(dt.UTC)).total_seconds() <= 125  # doubled
    third = deliver_due(archive, now=t0 + dt.timedelta(seconds=400))
    by = {d.target: d for d in third.deliveries}
    assert by[made.id].status == "delivered" and by[made.id].attempts == 3
    assert len(receiver.verified) == 1 and receiver.verified[0]["data"]["event_id"] == event.event_id
    # every attempt carried the same webhook-id (receivers drop duplicates by it)
    assert len({h["webhook-id"] for h, _ in receiver.got}) == 1
    deliver_due(archive, now=t0 + dt.timedelta(days=1))
    [gone] = [d for d in deliveries(archive) if d.target == down.id]
    assert gone.status == "failed" and gone.attempts == 4 and len(gone.history) == 4  # given up, logged
    # the captures and the run are unaffected: every record is there and verifies, the next run works
    urls = [r.url for r in archive.list()]
    assert len(urls) == 2
    assert all(archive.verify(r.record_id, log=False).ok for r in archive.list())
    again = archive.watches.run(passphrase=lambda: None, actor="tester")
    assert [r.outcome for r in again.results] == ["unchanged"]


def test_webhook_to_a_private_address_is_refused_unless_allowed(archive: Archive, site: SampleSite,
                                                                receiver: Receiver, cli) -> None:  # type: ignore[no-untyped-def]
    from archiver.alerts import webhooks

    s = ["--store", str(archive.root)]
    archive.config.set("capture.allow_private", "false")
    for url in (receiver.url, "http://10.1.2.3/hook", "http://[::1]:9/hook", "http://169.254.169.254/latest"):
        r = cli("alerts", "webhook", "add", url, *s)
        assert r.code == 2 and "not a public address" in r.err and "allow" in r.err, (url, r.err)
    assert cli("alerts", "webhook", "add", "ftp://example.org/hook", *s).code == 2
    assert cli("alerts", "webhook", "add", receiver.url, "--events", "nonsense.*", *s).code == 2
    assert webhooks.list_all(archive) == []
    # allowed per webhook, as a capture is per command
    r = cli("alerts", "webhook", "add", receiver.url, "--allow-private", "--json", *s)
    assert r.code == 0
    # the guard runs again on every delivery's DNS answer: allowed by the store's setting when added,
    # refused once the setting is off
    archive.config.set("capture.allow_private", "true")
    later = webhooks.add(archive, receiver.url, actor="tester")
    archive.config.set("capture.allow_private", "false")
    summary = _changed_run(archive, site)
    emit_run(archive, summary, actor="tester")
    rnd = deliver_due(archive)
    by = {d.target: d for d in rnd.deliveries}
    assert by[json.loads(r.out)["id"]].status == "delivered"
    assert by[later.id].status == "pending" and "not a public address" in str(by[later.id].last_error)
    assert len(receiver.got) == 1


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"], indirect=True)
def test_event_filters_unreachable_once_and_events_not_yet_made_elsewhere(
        archive: Archive, site: SampleSite, receiver: Receiver) -> None:
    """Filters pick event types; a dead URL is news once; a `selector-missed` outcome and provision
    checks (made by other subsystems) become their events from plain objects."""
    from archiver.alerts import webhooks

    provisions_only = webhooks.add(archive, receiver.url + "?p", events=("provision.*",), actor="tester")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/policy"
    archive.watches.add(dead, entity="Gone Inc.", document="Terms", every="1d", actor="tester")
    kinds = []
    for _ in range(3):
        run = archive.watches.run(passphrase=lambda: None, actor="tester")
        kinds.append([e.type for e in emit_run(archive, run, actor="tester")])
    assert kinds == [["document.unreachable"], [], []]
    summary = _changed_run(archive, site, "/policy")
    result = next(r for r in summary.results if r.url.endswith("/policy"))
    missed = dataclasses.replace(result, outcome="selector-missed", error="selector '#terms' matched nothing")
    setattr_free = type("Check", (), {})  # a provision check as another subsystem hands it over
    checks = []
    for pid, status in (("P1", "unchanged"), ("P2", "changed"), ("P3", "moved"), ("P4", "removed")):
        c = setattr_free()
        c.provision_id, c.url, c.status, c.label = pid, result.url, status, f"clause {pid}"
        c.record_ids = (result.previous_record_id, result.record_id)
        checks.append(c)
    events = emit_run(archive, RunSummary(summary.started, (missed,)), checks, actor="tester")
    assert [(e.type, e.provision_id) for e in events] == [
        ("declaration.unmatched", None), ("provision.changed", "P2"), ("provision.moved", "P3"),
        ("provision.removed", "P4")]
    again = emit_run(archive, RunSummary(summary.started, (missed,)), checks, actor="tester")
    assert [e.event_id for e in again] == [e.event_id for e in events]  # one run's summary is stored once
    assert events[0].selector == "selector '#terms' matched nothing"
    assert events[1].record_id == result.record_id and events[1].label == "clause P2"
    deliver_due(archive)
    got = sorted(json.loads(b)["type"] for _, b in receiver.got)
    assert got == ["provision.changed", "provision.moved", "provision.removed"]  # the filter
    assert {d.target for d in deliveries(archive)} == {provisions_only.id} and len(deliveries(archive)) == 3
    assert len(list_events(archive)) == 5


def test_notify_url_is_a_one_off_standard_webhook(archive: Archive, site: SampleSite, receiver: Receiver) -> None:
    from archiver.alerts import webhooks

    summary = _changed_run(archive, site)
    assert notify_run(archive, receiver.url, summary) == "sent (HTTP 204)"
    headers, body = receiver.got[0]
    assert json.loads(body)["counts"] == {"changed": 1} and json.loads(body)["type"] == "watch.run"
    assert "webhook-id" in headers and "webhook-signature" not in headers  # no secret for a bare URL
    made = webhooks.add(archive, receiver.url, actor="tester")  # a registered URL: signed with its secret
    receiver.secret = made.secret
    assert notify_run(archive, receiver.url, summary) == "sent (HTTP 204)"
    assert receiver.verified and receiver.verified[0]["counts"] == {"changed": 1}
    receiver.codes = [500, 500, 500]
    assert notify_run(archive, receiver.url, summary) == "failed: HTTP 500"
    archive.config.set("capture.allow_private", "false")
    assert "not a public address" in notify_run(archive, receiver.url, summary)


def test_after_run_stores_events_and_delivers_without_touching_the_run(
        archive: Archive, site: SampleSite, receiver: Receiver) -> None:
    """What `watch run` calls at its end: events stored, delivered in the same breath; a receiver that
    answers 500 leaves the delivery queued and the run as it was."""
    from archiver.alerts import after_run, webhooks

    made = webhooks.add(archive, receiver.url, actor="tester")
    receiver.secret = made.secret
    receiver.codes = [500]
    summary = _changed_run(archive, site)
    events = after_run(archive, summary, actor="tester")
    assert [e.type for e in events] == ["document.changed"] and len(receiver.got) == 1
    [d] = deliveries(archive)
    assert d.status == "pending" and d.attempts == 1 and d.last_error == "HTTP 500"
    assert summary.results[0].outcome == "changed" and archive.resolve(summary.results[0].record_id)
    # the catalog gone mid-way: nothing raised to the run
    broken = type("Broken", (), {"catalog": None, "config": archive.config})()
    assert after_run(broken, summary, actor="tester") == []  # type: ignore[arg-type]


def test_the_server_delivers_on_its_job_pool(archive: Archive, site: SampleSite, receiver: Receiver,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from archiver.alerts import webhooks
    from archiver.web import app as app_mod

    receiver.secret = webhooks.add(archive, receiver.url, actor="tester").secret
    emit_run(archive, _changed_run(archive, site), actor="tester")
    monkeypatch.setattr(app_mod, "DELIVER_EVERY", 0.1)
    app = app_mod.create_app(archive, start_jobs=True, refresh_every=3600)
    try:
        deadline = time.monotonic() + 15
        while not receiver.verified and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        app.state.web.runner.shutdown(wait=True)
    assert len(receiver.verified) == 1 and [d.status for d in deliveries(archive)] == ["delivered"]


def test_a_round_with_a_time_budget_leaves_the_rest_due(archive: Archive, site: SampleSite,
                                                        receiver: Receiver) -> None:
    """The end of a watch run spends a bounded time delivering: what it does not reach stays due."""
    from archiver.alerts import webhooks

    for i in range(3):
        webhooks.add(archive, f"{receiver.url}?{i}", actor="tester")
    emit_run(archive, _changed_run(archive, site), actor="tester")
    rnd = deliver_due(archive, budget_s=0.0)
    assert len(rnd.deliveries) == 1 and len(receiver.got) == 1  # the first, then the budget was spent
    assert sorted(d.status for d in deliveries(archive)) == ["delivered", "pending", "pending"]
    assert deliver_due(archive).delivered == 2  # not claimed any more: the next round sends them


def test_watch_run_on_the_cli_sends_document_and_provision_events(
        archive: Archive, site: SampleSite, receiver: Receiver, cli) -> None:  # type: ignore[no-untyped-def]
    """The wiring end to end: `archiver watch run` re-finds the provisions, stores the run's events and
    delivers them, signed, with no other command; a selector that stops matching is its own event."""
    s = ["--store", str(archive.root)]
    receiver.secret = json.loads(cli("alerts", "webhook", "add", receiver.url, "--allow-private", "--json", *s).out)[
        "secret"]
    url = site.base_url + "/policy"
    archive.watches.add(url, entity="Example Inc.", document="Privacy Policy", every="1d", actor="tester",
                        allow_private=True)
    assert cli("watch", "run", *s).code == 10  # new
    first = archive.catalog.records_for_url(url)[-1][0]
    from archiver.monitor import record_sections

    used = next(sec for sec in record_sections(archive, first) if sec.heading == "2. How we use information")
    clause = next(line for line in used.text.splitlines()[1:] if len(line.split()) > 4).strip()
    pid = archive.provisions.add(first, clause.split(". ")[0], actor="tester").provision_id
    STATE["policy"] = 2
    r = cli("watch", "run", *s)
    assert r.code == 10, r.out + r.err
    types = sorted(p["type"] for p in receiver.verified)
    assert "document.changed" in types and any(t.startswith("provision.") for t in types), (types, clause)
    prov = next(p for p in receiver.verified if p["type"].startswith("provision."))
    assert prov["data"]["provision_id"] == pid and prov["data"]["url"] == url
    assert len(receiver.got) == len(receiver.verified)  # every delivery verified with standardwebhooks


def test_alerts_page_in_chromium_for_an_admin_only(archive: Archive, site: SampleSite, receiver: Receiver,
                                                    cli) -> None:  # type: ignore[no-untyped-def]
    """The delivery log in the web app: the admin's nav shows it, with each delivery and no secret; axe."""
    import shutil
    from pathlib import Path

    pw_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from axe_playwright_python.sync_playwright import Axe

    from archiver.access import create_token
    from archiver.web import create_app
    from tests.live_server import LiveServer

    made = json.loads(cli("alerts", "webhook", "add", receiver.url, "--allow-private", "--json",
                          "--store", str(archive.root)).out)
    receiver.codes = [500]
    emit_run(archive, _changed_run(archive, site), actor="tester")
    cli("alerts", "deliver", "--store", str(archive.root))
    admin = create_token(archive, "boss", "admin", actor="tester").token
    viewer = create_token(archive, "v", "viewer", actor="tester").token
    with LiveServer(create_app(archive, start_jobs=False)) as srv, pw_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for token, sees in ((viewer, False), (admin, True)):
            page = browser.new_context().new_page()
            page.goto(srv.base_url + "/login")
            page.get_by_label("Access token").fill(token)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(srv.base_url + "/")
            assert page.get_by_role("link", name="Alerts", exact=True).count() == int(sees)
            if not sees:
                assert page.goto(srv.base_url + "/alerts").status == 403  # type: ignore[union-attr]
                continue
            page.get_by_role("link", name="Alerts", exact=True).click()
            page.wait_for_load_state()
            body = page.content()
            assert receiver.url in body and "500" in body and made["secret"] not in body
            violations = [f"{v['id']} ({v['impact']})" for v in Axe().run(page).response["violations"]
                          if v.get("impact") in ("serious", "critical")]
            assert violations == []
        browser.close()

"""Alert mail through SMTP (``alerts.smtp.*``), with STARTTLS before any login.

One message per watch run (its events together) and one per digest: a subject naming what changed,
and a plain-text body that is a structured change summary — per event the document, the sections
changed, the provisions affected, and links to the diff and the records. Plain text on purpose: it
reads the same in every client, quotes cleanly into a filing, and carries no remote content.

A server that refuses the login (or the STARTTLS upgrade, or the recipients) is a
``RemoteServiceError`` naming the server, the user and the server's own reply; the delivery that met
it is logged as a failed attempt and retried like a webhook.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from archiver.errors import RemoteServiceError, UsageError

if TYPE_CHECKING:
    from archiver.alerts.events import AlertEvent
    from archiver.ports import Store


def _context(core: Store) -> ssl.SSLContext:
    ca = core.config.str_("alerts.smtp.ca_bundle")
    return ssl.create_default_context(cafile=ca or None)


def send(core: Store, subject: str, text: str, *, message_id: str | None = None) -> None:
    """Send one plain-text message to ``alerts.smtp.to``; raises ``RemoteServiceError`` saying what the
    server refused (``UsageError`` when SMTP is not configured)."""
    cfg = core.config
    host, port = cfg.str_("alerts.smtp.host"), cfg.int_("alerts.smtp.port")
    to = [str(x) for x in (cfg.get("alerts.smtp.to") or [])]  # type: ignore[union-attr]
    sender = cfg.str_("alerts.smtp.from") or f"archiver@{host or 'localhost'}"
    user, password = cfg.str_("alerts.smtp.user"), cfg.str_("alerts.smtp.password")
    if not host or not to:
        raise UsageError("SMTP is not configured", hint="archiver config set alerts.smtp.host HOST; "
                                                         "archiver config set alerts.smtp.to ADDRESS")
    msg = EmailMessage()
    msg["Subject"] = " ".join(subject.split())  # one line, whatever a document's name holds
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(idstring=message_id) if message_id else make_msgid()
    msg.set_content(text)
    where = f"SMTP server {host}:{port}"
    try:
        with smtplib.SMTP(host, port, timeout=cfg.float_("alerts.timeout")) as smtp:
            smtp.ehlo()
            if cfg.bool_("alerts.smtp.starttls"):
                if not smtp.has_extn("starttls"):
                    raise RemoteServiceError(f"{where} does not offer STARTTLS",
                                             hint="use a server that does, or (on a trusted network only) "
                                                  "archiver config set alerts.smtp.starttls false")
                smtp.starttls(context=_context(core))
                smtp.ehlo()
            if user:
                _login(smtp, user, password)
            smtp.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:
        raise RemoteServiceError(f"{where} refused the login of {user!r}: {exc.smtp_code} {_said(exc.smtp_error)}",
                                 hint="check alerts.smtp.user and alerts.smtp.password") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise RemoteServiceError(f"{where} refused the recipients {', '.join(exc.recipients)}",
                                 hint="check alerts.smtp.to") from exc
    except smtplib.SMTPResponseException as exc:
        raise RemoteServiceError(f"{where} answered {exc.smtp_code} {_said(exc.smtp_error)}") from exc
    except smtplib.SMTPException as exc:
        raise RemoteServiceError(f"{where}: {exc}") from exc
    except ssl.SSLError as exc:
        raise RemoteServiceError(f"{where}: TLS failed: {exc.reason or exc}",
                                 hint="alerts.smtp.ca_bundle names the CA of a private server") from exc
    except OSError as exc:
        raise RemoteServiceError(f"cannot reach {where}: {exc.strerror or exc}") from exc


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """Log in with one mechanism, PLAIN when offered (under TLS by now), else LOGIN: ``smtplib.login``
    tries each mechanism in turn after a refusal, which turns a clear 535 into whatever the next
    attempt meets (some servers then wait out the timeout)."""
    offered = str(smtp.esmtp_features.get("auth", "")).upper().split()
    smtp.user, smtp.password = user, password
    if "PLAIN" in offered:
        smtp.auth("PLAIN", smtp.auth_plain)
    elif "LOGIN" in offered:
        smtp.auth("LOGIN", smtp.auth_login)
    else:
        smtp.login(user, password)


def _said(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:300]


def compose(events: list[AlertEvent]) -> tuple[str, str]:
    """(subject, body) of the mail about a run's events: the structured change summary."""
    docs = {" — ".join(x for x in (e.entity, e.document) if x) or e.url for e in events}
    subject = f"[archiver] {len(events)} alert(s): " + "; ".join(sorted(docs))[:160] if len(events) != 1 \
        else f"[archiver] {events[0].title()}"
    subject = " ".join(subject.split())  # one header line, whatever a document's name holds
    parts = [f"{len(events)} alert(s) from the watch run.", ""]
    by_doc: dict[str, list[AlertEvent]] = {}
    for e in events:
        by_doc.setdefault(e.url, []).append(e)
    for url, evs in by_doc.items():
        first = evs[0]
        parts.append("=" * 72)
        parts.append("Document: " + (" — ".join(x for x in (first.entity, first.document) if x) or url))
        parts.append(f"URL: {url}")
        changed = [s for e in evs for s in e.sections]
        if changed:
            parts.append("Sections changed:")
            parts += [f"  - {s}" for s in dict.fromkeys(changed)]
        provisions = [e for e in evs if e.type.startswith("provision.")]
        if provisions:
            parts.append("Provisions affected:")
            parts += [f"  - {e.label or e.provision_id} ({e.provision_id}): {e.type.split('.', 1)[1]}"
                      for e in provisions]
        for e in evs:
            parts.append("")
            parts.append(e.summary())
        parts.append("")
    return subject, "\n".join(parts)


def send_events(core: Store, message_id: str, events: list[AlertEvent]) -> tuple[bool, int | None, str | None, int]:
    """A delivery of the ``email`` channel: (ok, status, error, ms); the error is the server's refusal."""
    started = time.monotonic()
    if not events:
        return False, None, "the events of this message are not in the store", 0
    subject, body = compose(events)
    try:
        send(core, subject, body, message_id=message_id)
    except (RemoteServiceError, UsageError) as exc:
        return False, None, exc.message, int((time.monotonic() - started) * 1000)
    return True, None, None, int((time.monotonic() - started) * 1000)


__all__ = ["compose", "send", "send_events"]

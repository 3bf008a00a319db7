"""Alerts: webhooks, the delivery log, deliveries on demand, events and digests (``archiver.alerts``)."""

from typing import Annotated

import typer

from archiver.cli._common import _APP_OPTS, JsonOpt, StoreOpt, _emit_json, _open, _out, app, safe

alerts_app = typer.Typer(**_APP_OPTS, help="Alerts: Standard Webhooks, the delivery log, e-mail digests.")
webhook_app = typer.Typer(**_APP_OPTS, help="Webhooks that receive alert events, signed per standardwebhooks.com.")
alerts_app.add_typer(webhook_app, name="webhook")
app.add_typer(alerts_app, name="alerts")


@webhook_app.command("add")
def webhook_add(url: Annotated[str, typer.Argument(help="The receiver's http(s) URL.")],
                events: Annotated[list[str] | None, typer.Option("--events", help="Event types or globs to send "
                                                                 "(repeatable or comma-separated; default: all), "
                                                                 "e.g. document.changed,provision.*")] = None,
                allow_private: Annotated[bool, typer.Option("--allow-private", help="Allow a private or loopback "
                                                            "receiver.")] = False,
                store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Register a webhook; prints its signing secret once (it is never shown again)."""
    from archiver.alerts import webhooks

    archive = _open(store)
    made = webhooks.add(archive, url, events=tuple(events or ()), allow_private=allow_private,
                        actor=archive.default_actor())
    if as_json:
        _emit_json(made)
        return
    out = _out()
    out.print(f"webhook {made.id} -> {safe(made.url)}  events: {', '.join(made.events) or 'all'}")
    out.print(f"signing secret (shown once, keep it in the receiver): {made.secret}")


@webhook_app.command("list")
def webhook_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The registered webhooks (never their secrets)."""
    from archiver.alerts import webhooks

    hooks = webhooks.list_all(_open(store))
    if as_json:
        _emit_json(hooks)
        return
    out = _out()
    for h in hooks:
        out.print(f"{h.id}  {safe(h.url)}  events: {', '.join(h.events) or 'all'}  added {h.created_at} by "
                  f"{safe(h.created_by)}")
    if not hooks:
        out.print("no webhooks")


@webhook_app.command("remove")
def webhook_remove(webhook_id: Annotated[str, typer.Argument(help="The webhook's ID (wh_…).")],
                   store: StoreOpt = None) -> None:
    """Stop sending to a webhook (its pending deliveries are cancelled; the log stays)."""
    from archiver.alerts import webhooks

    archive = _open(store)
    h = webhooks.remove(archive, webhook_id, actor=archive.default_actor())
    _out().print(f"removed webhook {h.id} ({safe(h.url)})")


@alerts_app.command("deliver")
def deliver(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Send the deliveries that are due now (failed ones are retried later, with backoff)."""
    from archiver.alerts import deliver_due

    r = deliver_due(_open(store))
    if as_json:
        _emit_json(r)
        return
    _out().print(f"{r.delivered} delivered, {r.retrying} to retry, {r.gave_up} given up")
    for d in r.deliveries:
        if d.status != "delivered":
            _out().print(f"  {d.channel} {safe(d.target)} {d.message_id}: {safe(d.last_error or '')}"
                         + (f" (next attempt {d.next_attempt_at})" if d.next_attempt_at else ""))


@alerts_app.command("log")
def delivery_log(status: Annotated[str | None, typer.Option("--status", help="pending, delivered, failed or "
                                                            "cancelled.")] = None,
                 limit: Annotated[int, typer.Option("--limit", help="Newest deliveries shown.")] = 50,
                 store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The delivery log: each message, its channel and every attempt."""
    from archiver.alerts import deliveries

    found = deliveries(_open(store), status=status, limit=limit)
    if as_json:
        _emit_json(found)
        return
    out = _out()
    for d in found:
        out.print(f"#{d.delivery_id} {d.status:<9} {d.channel:<7} {safe(d.target)}  {d.message_id}  "
                  f"{d.attempts} attempt(s)" + (f", next {d.next_attempt_at}" if d.next_attempt_at else ""))
        for a in d.history:
            what = "ok" if a.ok else f"failed: {a.error or ''}"
            code = f" HTTP {a.http_status}" if a.http_status else ""
            out.print(f"    {a.attempt}. {a.at}{code} {safe(what)} ({a.duration_ms} ms)")
    if not found:
        out.print("no deliveries")


@alerts_app.command("events")
def events_list(limit: Annotated[int, typer.Option("--limit", help="Newest events shown.")] = 50,
                entity: Annotated[str | None, typer.Option("--entity", help="Only this entity's.")] = None,
                store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The alert events, newest first."""
    from archiver.alerts import list_events

    found = list_events(_open(store), entity=entity, limit=limit)
    if as_json:
        _emit_json(found)
        return
    for e in found:
        _out().print(f"{e.occurred_at}  {e.type:<22} {safe(e.title())}  {e.record_id or '-'}")


@alerts_app.command("digest")
def digest(since: Annotated[str, typer.Option("--since", help="Period: 1d for a daily digest, 7d for a weekly "
                                              "one.")] = "1d",
           no_mail: Annotated[bool, typer.Option("--no-mail", help="Print it even when SMTP is "
                                                 "configured.")] = False,
           store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The alerts of a period in one summary: mailed when SMTP is configured, else printed."""
    import sys

    from archiver.alerts import digest as digest_mod
    from archiver.monitor import parse_interval

    d = digest_mod.run(_open(store), parse_interval(since), mail=False if no_mail else None)
    if as_json:
        _emit_json(d)
        return
    if d.mailed_to:
        _out().print(f"digest of {len(d.events)} alert(s) mailed to {safe(', '.join(d.mailed_to))}")
    else:
        sys.stdout.write(d.text)

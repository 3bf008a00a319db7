"""Watch documents over time: re-capture, change detection, versions, clause history, diffs.

Change detection compares the *document's own text* (``main-text``: by the watch's Open Terms Archive
rules, else found automatically, without navigation, cookie banners or footers) with the previous
version of the same URL; a record from before main-text gets its own derived first (a signed
addendum, ``archiver.derive``). Markup, scripts, nonces and CSRF tokens never reach the text.
Every capture is kept as evidence and chains to the previous record through its manifest's
``previous``; an unchanged one is a *verification event* (the version is still there: "last
verified" moves), a changed one starts a new version. Versions are derived from the records, so
they survive ``rebuild-index``.

Declarations stay true (``declarations``): a watch's rules change with ``watch update`` (or an OTA
history), each version kept with when and by whom; the previous version's text is made again under
new rules so a change of rules alone is never a new version; a declared selector that matches
nothing makes the run say so (``selector-missed``) instead of comparing something that is not the
document.

The package: ``watches`` (the list and its declarations), ``declarations`` (rules, their history,
like-for-like texts, misses), ``runs`` (capture and classify), ``history`` (versions, sections,
diffs, clauses and their reports).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archiver.errors import NotFoundError
from archiver.monitor.declarations import DeclarationVersion, declaration_history
from archiver.monitor.history import (
    ClauseHistory,
    DiffReport,
    FailedRun,
    HistoryReport,
    Version,
    WordOp,
    clause_history,
    clauses,
    compared_texts,
    diff_records,
    diff_report,
    history,
    paired_sections,
    record_sections,
    versions,
)
from archiver.monitor.runs import RunResult, RunSummary, notify, run_lock, run_watches
from archiver.monitor.watches import (
    Watch,
    WatchUpdate,
    add_watch,
    get_watch,
    import_ota,
    list_watches,
    parse_interval,
    remove_watch,
    update_watch,
)
from archiver.monitor.watches import _iso as _iso
from archiver.monitor.watches import _now as _now
from archiver.monitor.watches import _parse as _parse

if TYPE_CHECKING:
    from archiver.ports import Capturer
    from archiver.provenance.keys import PassphraseSource


class Watches:
    """The watch list of one store (``archive.watches``): what is watched, runs, versions and history.
    Adding, changing and removing are custody events naming ``actor``."""

    def __init__(self, core: Capturer) -> None:
        self.core = core

    def add(self, url: str, *, entity: str | None, document: str | None, every: str, actor: str,
            allow_private: bool = False, insecure: bool = False, select: tuple[str, ...] = (),
            remove: tuple[str, ...] = ()) -> Watch:
        return add_watch(self.core, url, entity=entity, document=document, every=every, actor=actor,
                         allow_private=allow_private, insecure=insecure, select=select, remove=remove)

    def update(self, url: str, *, actor: str, passphrase: PassphraseSource | None = None,
               select: tuple[str, ...] | None = None, remove: tuple[str, ...] | None = None,
               every: str | None = None, entity: str | None = None, document: str | None = None) -> WatchUpdate:
        return update_watch(self.core, url, actor=actor, passphrase=passphrase, select=select, remove=remove,
                            every=every, entity=entity, document=document)

    def remove(self, url: str, *, actor: str) -> None:
        remove_watch(self.core, url, actor=actor)

    def import_ota(self, declaration: Any, *, actor: str, every: str = "1d", history: Any = None) -> list[Watch]:
        return import_ota(self.core, declaration, actor=actor, every=every, history=history)

    def all(self) -> list[Watch]:
        return list_watches(self.core)

    def get(self, url: str) -> Watch:
        return get_watch(self.core, url)

    def declarations(self, url: str) -> list[DeclarationVersion]:
        """Every version of the URL's declaration, oldest first (kept after the watch is removed)."""
        found = declaration_history(self.core, url)
        if not found:
            raise NotFoundError(f"{url} has never been watched", hint="`archiver watch list` shows the watches")
        return found

    def run(self, *, passphrase: PassphraseSource, actor: str, due_only: bool = False, jobs: int = 4,
            on_result: Callable[[RunResult], None] | None = None, urls: list[str] | None = None) -> RunSummary:
        from archiver.tlog.checkpoints import checkpoint_at_end

        summary = run_watches(self.core, due_only=due_only, jobs=jobs, passphrase=passphrase, on_result=on_result,
                              urls=urls, actor=actor)
        checkpoint_at_end(self.core.log)  # the run's records under a signed tree head
        return summary

    def versions(self, url: str) -> list[Version]:
        return versions(self.core, url)

    def history(self, url: str) -> HistoryReport:
        return history(self.core, url)


__all__ = [
    "ClauseHistory",
    "DeclarationVersion",
    "DiffReport",
    "FailedRun",
    "HistoryReport",
    "RunResult",
    "RunSummary",
    "Version",
    "Watch",
    "WatchUpdate",
    "Watches",
    "WordOp",
    "add_watch",
    "clause_history",
    "clauses",
    "compared_texts",
    "declaration_history",
    "diff_records",
    "diff_report",
    "get_watch",
    "history",
    "import_ota",
    "list_watches",
    "notify",
    "paired_sections",
    "parse_interval",
    "record_sections",
    "remove_watch",
    "run_lock",
    "run_watches",
    "update_watch",
    "versions",
]

"""Provisions: pinned clauses of a watched document, each with its own ID, re-found on every watch run.

A provision is an excerpt of a record's main-text (matched as ``cite --quote`` matches) given a stable
ID of its own (``P-XXXX-XXXX``: :mod:`archiver.provisions.ids`), with the entity, document and section
it belongs to and when it was first tracked. After each watch run of its URL it is looked for in the
new record (:func:`recheck`, called at the end of the run) and the observation is appended:
unchanged (last verified moves), changed (new text, word diff, new record), moved (same words, other
section) or removed (:mod:`archiver.provisions.matching` says exactly how). ``show`` lists every
version of the clause text with the record holding it.

Layout: ``ids`` (the ID form), ``matching`` (pure text functions), ``model`` (the reports),
``service`` (the use cases over the catalog; tables in ``store/migrations/provisions.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archiver.provisions.ids import is_provision_id, new_provision_id, normalize_provision_id
from archiver.provisions.model import ClauseEdit, Provision, ProvisionCheck, ProvisionReport, ProvisionVersion
from archiver.provisions.service import MAX_LABEL, MAX_QUOTE, add, check_record, get, list_all, recheck, remove, show

if TYPE_CHECKING:
    from archiver.ports import Store

ListOf = list  # the class below defines a method named list


class Provisions:
    """The provisions of one store (``archive.provisions``)."""

    def __init__(self, core: Store) -> None:
        self.core = core

    def add(self, record_id: str, quote: str, *, label: str | None = None, actor: str) -> Provision:
        return add(self.core, record_id, quote, label=label, actor=actor)

    def remove(self, provision_id: str, *, actor: str) -> Provision:
        return remove(self.core, provision_id, actor=actor)

    def get(self, provision_id: str) -> Provision:
        return get(self.core, provision_id)

    def list(self, *, entity: str | None = None, url: str | None = None,
             include_untracked: bool = False) -> ListOf[Provision]:
        return list_all(self.core, entity=entity, url=url, include_untracked=include_untracked)

    def show(self, provision_id: str) -> ProvisionReport:
        return show(self.core, provision_id)

    def recheck(self, summary: Any, *, actor: str) -> ListOf[ProvisionCheck]:
        return recheck(self.core, summary, actor=actor)


__all__ = ["MAX_LABEL", "MAX_QUOTE", "ClauseEdit", "Provision", "ProvisionCheck", "ProvisionReport",
           "ProvisionVersion", "Provisions", "add", "check_record", "get", "is_provision_id", "list_all",
           "new_provision_id", "normalize_provision_id", "recheck", "remove", "show"]

"""The bundle subsystem bound to one store: ``archive.bundles``.

Why a bound object: front-ends (CLI, web) reach each subsystem through the facade's attribute instead
of importing use-case functions and passing the store along; the facade only composes subsystems, and
a new one (the transparency log, the public side, provisions, matters) is added the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archiver.bundle.export import ExportResult
    from archiver.bundle.read import BundleTrust
    from archiver.ports import Store
    from archiver.provenance.keys import PassphraseSource
    from archiver.records import Verification


class Bundles:
    """Export records as a WACZ bundle, verify a bundle, import one (each act logged with its actor)."""

    def __init__(self, core: Store) -> None:
        self.core = core

    def export(self, record_ids: list[str], dest: Path, *, passphrase: PassphraseSource, actor: str,
               sign_checkpoint: bool = True) -> ExportResult:
        from archiver.bundle.export import export

        return export(self.core, record_ids, dest, passphrase=passphrase, actor=actor,
                      sign_checkpoint=sign_checkpoint)

    def trust(self, trust_keys: list[str], tsa_certs: Path | None = None, *,
              trust_log_keys: list[str] | None = None) -> BundleTrust:
        """This store's keyring, log keys and TSA anchors, plus the keys pinned for this one bundle."""
        from archiver.bundle.importing import default_trust

        return default_trust(self.core, trust_keys, tsa_certs, trust_log_keys)

    def verify(self, path: Path, trust: BundleTrust) -> list[Verification]:
        from archiver.bundle.read import verify_bundle

        return verify_bundle(path, trust)

    def import_(self, path: Path, trust: BundleTrust, *, actor: str,
                force: bool = False) -> tuple[list[Verification], list[str]]:
        from archiver.bundle.importing import import_bundle

        return import_bundle(self.core, path, trust, actor=actor, force=force)


__all__ = ["Bundles"]

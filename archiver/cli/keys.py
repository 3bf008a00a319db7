"""Signing keys, the keyring, and settings."""

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from archiver.cli._common import (
    JsonOpt,
    StoreOpt,
    _emit_json,
    _open,
    _out,
    _passphrase_source,
    config_app,
    keys_app,
)

if TYPE_CHECKING:
    pass


@keys_app.command("generate")
def keys_generate(replace: Annotated[bool, typer.Option("--replace", help="Retire the current key.")] = False,
                  passphrase: Annotated[bool, typer.Option("--passphrase", help="Protect it with a passphrase.")]
                  = False, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Create a new Ed25519 signing key (0600). With --replace the old key is retired (kept, still
    trusted) and signs a rotation statement vouching for the new one, which bundles carry."""
    secret = None
    if passphrase:
        secret = os.environ.get("ARCHIVER_KEY_PASSPHRASE") or typer.prompt(
            "New key passphrase", hide_input=True, confirmation_prompt=True)
    # the old key signs the rotation statement that vouches for the new one (same passphrase source as signing)
    key_id = _open(store).generate_key(secret, replace=replace, old_passphrase=_passphrase_source())
    if as_json:
        from archiver.reports import KeyReport

        _emit_json(KeyReport(key_id=key_id, trusted=True, signing=True, encrypted=secret is not None))
    else:
        _out().print(f"New signing key {key_id}" + (" (the retired key vouches for it in a rotation statement)"
                                                     if replace else ""))


@keys_app.command("list")
def keys_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The signing key and every trusted public key."""
    infos = _open(store).keys.list()
    if as_json:
        from archiver.reports import KeyReport

        _emit_json([KeyReport(key_id=i.key_id, trusted=i.trusted, signing=i.signing, encrypted=i.encrypted,
                              path=i.path) for i in infos])
        return
    out = _out()
    for i in infos:
        flags = ", ".join(f for f, on in (("signing", i.signing), ("trusted", i.trusted),
                                          ("passphrase", i.encrypted)) if on)
        out.print(f"{i.key_id}  \\[{flags}]")  # escaped: rich would take [signing, trusted] for markup


@keys_app.command("export-public")
def keys_export_public(output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
                       store: StoreOpt = None) -> None:
    """Print (or write) the signing key's public half as PEM."""
    from archiver.provenance.keys import public_pem
    from store.fsutil import atomic_write_bytes

    pem = public_pem(_open(store).keys.signing_public_key())
    if output:
        atomic_write_bytes(output, pem)
    else:
        sys.stdout.write(pem.decode("ascii"))


@keys_app.command("trust")
def keys_trust(key: Annotated[str, typer.Argument(help="A public key PEM file, or the key id (sha256:…) of a "
                                                  "key this store has seen in an imported bundle.")],
               store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Add a public key to the keyring of trusted signers."""
    import re

    from archiver.errors import UsageError

    path = Path(key)
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
        key_id = _open(store).trust_key(data, source=str(path))
    elif re.fullmatch(r"(sha256:)?[0-9a-fA-F]{64}", key.strip()):
        key_id = _open(store).trust_key(key_id=key, source="keys trust (a key seen in an imported bundle)")
    else:
        raise UsageError(f"{key} is neither a readable PEM file nor a key id (sha256:<64 hex>)")
    if as_json:
        from archiver.reports import KeyReport

        _emit_json(KeyReport(key_id=key_id, trusted=True))
    else:
        _out().print(f"trusted {key_id}")


@keys_app.command("untrust")
def keys_untrust(key_id: str, store: StoreOpt = None) -> None:
    """Remove a public key from the keyring."""
    if not _open(store).keys.untrust(key_id):
        from archiver.errors import NotFoundError

        raise NotFoundError(f"{key_id} is not in the keyring", hint="see `archiver keys list`")
    _out().print(f"no longer trusted: {key_id}")


@config_app.command("get")
def config_get(key: str, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    value = _open(store).config.get(key)
    if as_json:
        from archiver.reports import Settings

        _emit_json(Settings({key: value}))
    else:
        sys.stdout.write((" ".join(value) if isinstance(value, list) else str(value)) + "\n")


@config_app.command("set")
def config_set(key: str, value: Annotated[list[str], typer.Argument(help="Value (several for a list setting).")],
               store: StoreOpt = None) -> None:
    """Set a setting; list settings (tsa.urls) take several values."""
    from archiver.config import SETTINGS
    from archiver.errors import ConfigError

    setting = SETTINGS.get(key)
    if setting is not None and setting.type is not list and len(value) != 1:
        raise ConfigError(f"{key} takes one value, got {len(value)}")
    stored = _open(store).config.set(key, " ".join(value))
    _out().print(f"{key} = {stored!r}")


@config_app.command("unset")
def config_unset(key: str, store: StoreOpt = None) -> None:
    _open(store).config.unset(key)
    _out().print(f"{key} reset to its default")


@config_app.command("list")
def config_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    from archiver.config import SETTINGS

    items = _open(store).config.items()
    if as_json:
        from archiver.reports import Settings

        _emit_json(Settings({k: v for k, v, _ in items}))
        return
    out = _out()
    for k, v, is_default in items:
        out.print(f"{k:<28} {v!r:<30} {'(default) ' if is_default else ''}[dim]{SETTINGS[k].help}[/]")

"""ReplayWeb.page's files for the replay origin: fetched at setup, pinned, checked, never vendored.

Why fetched and not shipped: ReplayWeb.page (the npm package ``replaywebpage``) is AGPL-3.0-or-later.
This project neither commits it nor puts it in the wheel; ``archiver replay setup`` runs ``npm pack``
for exactly :data:`VERSION`, refuses the tarball unless its SHA-512 is the :data:`INTEGRITY` the npm
registry lists for that version (``npm view replaywebpage@<VERSION> dist.integrity``), and unpacks only
what replay needs (:data:`FILES`) into a cache directory outside the repository, next to a
``SOURCE.json`` naming the version, the licence and where the source is, which the replay origin
serves beside the files. The same function fetches the files for the tests, so there is one path.

Layout of the cache: ``<cache>/replaywebpage-<VERSION>.tgz`` (kept, re-checked before each unpack) and
``<cache>/<VERSION>/`` holding :data:`FILES` and ``SOURCE.json`` (made in a temporary directory and
renamed into place, so a reader sees all of it or none).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archiver.errors import IntegrityError, RemoteServiceError, UsageError
from archiver.schema import Report

if TYPE_CHECKING:
    from archiver.config import Config

PACKAGE = "replaywebpage"
#: The pinned release (its embed checks our bundles' signatures: tests/test_replaywebpage.py).
VERSION = "2.4.6"
#: ``npm view replaywebpage@2.4.6 dist.integrity``: the SHA-512 of the registry's tarball.
INTEGRITY = "sha512-uG50jESRld0p+fY7+nUxIWl7hvfimreNjSmaNkc/a9a8gBdmb7PH4J42Iib+vgk9KrHd0HLScVT++LgqV5fwpQ=="
LICENSE = "AGPL-3.0-or-later"
SOURCE_URL = f"https://github.com/webrecorder/replayweb.page/tree/v{VERSION}"
TARBALL_URL = f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
#: What replay needs from the package: the web component, the service worker, and what the licence
#: asks us to pass on with them.
FILES = ("ui.js", "sw.js", "LICENSE", "package.json")
MANIFEST = "SOURCE.json"
#: ``npm pack`` of a 10 MB package on a slow link.
NPM_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class ReplayAssets(Report):
    """ReplayWeb.page's files ready to serve: where they are and what they are (from ``SOURCE.json``)."""

    directory: str
    package: str
    version: str
    license: str
    source: str
    tarball: str
    integrity: str
    files: dict[str, str]  # name -> sha256 hex of the unpacked file

    def path(self, name: str) -> Path:
        return Path(self.directory) / name


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/archiver/replaywebpage`` (``~/.cache/…``): per user, outside any repository."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "archiver" / PACKAGE


def cache_dir(config: Config | None) -> Path:
    """The ``replay.cache_dir`` setting of a store, else :func:`default_cache`."""
    value = config.str_("replay.cache_dir") if config is not None else ""
    return Path(value).expanduser() if value else default_cache()


def integrity_of(data: bytes) -> str:
    """An npm ``dist.integrity`` string (Subresource Integrity form) of ``data``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def _sha256(path: Path) -> str:
    from store.blobs import hash_file

    return hash_file(path)[0]


def installed(cache: Path) -> ReplayAssets | None:
    """The unpacked pinned files in ``cache``, or None when setup has not run (or ran for another
    version). Each file is hashed against ``SOURCE.json``: a file changed since setup is an error,
    not something to serve."""
    folder = cache / VERSION
    try:
        meta = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("version") != VERSION or meta.get("integrity") != INTEGRITY:
        return None
    files = meta.get("files")
    if not isinstance(files, dict) or sorted(files) != sorted(FILES):
        return None
    for name, digest in files.items():
        try:
            actual = _sha256(folder / name)
        except OSError:
            return None
        if actual != digest:
            raise IntegrityError(f"{folder / name} changed since `archiver replay setup` unpacked it",
                                 hint=f"remove {folder} and run `archiver replay setup` again")
    return ReplayAssets(directory=str(folder), package=PACKAGE, version=VERSION, license=LICENSE,
                        source=str(meta.get("source", SOURCE_URL)), tarball=str(meta.get("tarball", TARBALL_URL)),
                        integrity=INTEGRITY, files={str(k): str(v) for k, v in files.items()})


def _npm_pack(cache: Path, npm: str | None) -> Path:
    npm = npm or shutil.which("npm")
    if npm is None:
        raise UsageError("npm is not installed: it fetches ReplayWeb.page from the npm registry",
                         hint="install Node.js and npm (Debian: apt install npm), then run `archiver replay setup`")
    tmp = Path(tempfile.mkdtemp(prefix=".pack-", dir=cache))
    try:
        try:
            r = subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(tmp)],
                               capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RemoteServiceError(f"npm pack {PACKAGE}@{VERSION} did not finish in {NPM_TIMEOUT:.0f} s",
                                     hint="check the network and npm's registry setting") from exc
        made = sorted(tmp.glob(f"{PACKAGE}-*.tgz"))
        if r.returncode != 0 or len(made) != 1:
            last = (r.stderr.strip().splitlines() or ["no output"])[-1][:300]
            raise RemoteServiceError(f"npm pack {PACKAGE}@{VERSION} failed: {last}",
                                     hint="check the network and npm's registry setting")
        dest = cache / f"{PACKAGE}-{VERSION}.tgz"
        os.replace(made[0], dest)
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def setup(cache: Path, *, npm: str | None = None) -> ReplayAssets:
    """Fetch (``npm pack``), check (SHA-512 against :data:`INTEGRITY`) and unpack :data:`FILES` of the
    pinned release into ``cache``; a tarball already in the cache is checked the same way and reused.
    Idempotent: an intact installation is returned as it is."""
    cache.mkdir(parents=True, exist_ok=True)
    done = installed(cache)
    if done is not None:
        return done
    tgz = cache / f"{PACKAGE}-{VERSION}.tgz"
    if not tgz.is_file():
        tgz = _npm_pack(cache, npm)
    data = tgz.read_bytes()
    got = integrity_of(data)
    if got != INTEGRITY:
        tgz.unlink(missing_ok=True)  # never leave a bad tarball to be reused
        raise IntegrityError(f"{PACKAGE}-{VERSION}.tgz has {got}, not the pinned {INTEGRITY}",
                             hint="the registry (or a proxy) served other bytes; the tarball was deleted")
    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache))
    try:
        os.chmod(work, 0o755)  # noqa: S103 - public files, readable by whichever user runs the server
        hashes: dict[str, str] = {}
        with tarfile.open(tgz, "r:gz") as tf:
            for name in FILES:
                try:
                    member = tf.getmember(f"package/{name}")
                except KeyError as exc:
                    raise IntegrityError(f"{tgz.name} has no package/{name}") from exc
                src = tf.extractfile(member) if member.isfile() else None
                if src is None:
                    raise IntegrityError(f"{tgz.name}: package/{name} is not a regular file")
                with src, (work / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                hashes[name] = _sha256(work / name)
        pkg = json.loads((work / "package.json").read_text("utf-8"))
        if pkg.get("version") != VERSION or pkg.get("license") != LICENSE:
            raise IntegrityError(f"{tgz.name}: package.json says {pkg.get('name')} {pkg.get('version')} "
                                 f"({pkg.get('license')}), not {PACKAGE} {VERSION} ({LICENSE})")
        meta = {"package": PACKAGE, "version": VERSION, "license": LICENSE, "source": SOURCE_URL,
                "tarball": TARBALL_URL, "integrity": INTEGRITY, "files": hashes}
        (work / MANIFEST).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", "utf-8")
        for p in work.iterdir():
            with p.open("rb") as fh:
                os.fsync(fh.fileno())
        target = cache / VERSION
        if target.exists():  # an incomplete or stale earlier unpack: replaced whole
            stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=cache))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = installed(cache)
    if result is None:  # pragma: no cover - we just wrote it
        raise IntegrityError(f"{cache / VERSION} is not readable after unpacking")
    return result


__all__ = ["FILES", "INTEGRITY", "LICENSE", "PACKAGE", "SOURCE_URL", "TARBALL_URL", "VERSION", "ReplayAssets",
           "cache_dir", "default_cache", "installed", "integrity_of", "setup"]

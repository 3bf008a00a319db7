"""The import rule of docs/architecture.md, checked on the source tree.

Every import counts: top-level, inside functions, and under ``if TYPE_CHECKING:`` (a type-only
dependency is still a dependency). A module that no layer names fails the test, so a new module
has to be placed deliberately.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lower numbers sit lower; a module may import its own layer and any layer below it.
LAYERS: dict[str, int] = {
    "archiver._version": 0,
    "archiver.errors": 0,
    "archiver.records": 0,
    "archiver.reports": 0,
    "archiver.schema": 0,
    "archiver.canonical": 0,
    "archiver.formats": 0,
    "archiver.options": 0,
    "store": 1,
    "archiver.config": 2,
    "archiver.location": 2,
    "archiver.provenance": 2,
    "archiver.tlog": 2,  # the transparency log: provenance-level (records, store, provenance)
    "archiver.ports": 3,
    "archiver.core": 3,
    "archiver.capture": 4,
    "archiver.verify": 4,
    "archiver.wayback": 4,
    "archiver.cite": 4,
    "archiver.monitor": 4,
    "archiver.bundle": 4,
    "archiver.queue": 4,
    "archiver.textdiff": 4,
    "archiver.decode": 4,
    "archiver.stamping": 4,
    "archiver.batchstamps": 4,
    "archiver.evidence": 4,
    "archiver.extras": 0,
    "archiver.api": 5,
    "archiver.migrate": 5,
    "archiver.pool": 5,
    "archiver.models": 5,
    "archiver": 5,  # the package itself: the public API re-exports the facade
    "archiver.cli": 6,
    "archiver.demo": 6,
    "archiver.web": 6,
    "archiver.access": 4,
    "archiver.jobs": 4,
    "archiver.derive": 4,
    "archiver.maintenance": 4,
    "archiver.publication": 4,
    "archiver.memento": 4,
    "archiver.collections": 4,
    "archiver.provisions": 4,
    "archiver.exhibits": 4,
    "archiver.matters": 4,
    "archiver.gc": 4,
    "archiver.replayassets": 4,
    "archiver.fulltext": 4,
    "archiver.alerts": 4,  # events, webhooks, feeds, mail, digest, delivery
}
FRONT_ENDS = ("archiver.cli", "archiver.demo", "archiver.web")
LAYER_NAMES = {0: "records/errors", 1: "store", 2: "provenance", 3: "core/ports", 4: "use cases", 5: "facade",
               6: "front-ends"}
MAX_LINES = 700


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    return sorted(p for pkg in ("archiver", "store") for p in (ROOT / pkg).rglob("*.py"))


def is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement in the file, resolved to a module name."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.append((node.lineno, sub if is_module(sub) else base))
    return found


def layer_of(name: str) -> tuple[str, int] | None:
    """The most specific LAYERS entry covering ``name``; None for a third-party module."""
    parts = name.split(".")
    if parts[0] not in ("archiver", "store"):
        return None
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in LAYERS:
            return key, LAYERS[key]
    raise AssertionError(f"{name} is in no layer: add it to LAYERS in tests/test_architecture.py")


def violations() -> list[str]:
    bad: list[str] = []
    for path in source_files():
        me = module_name(path)
        mine = layer_of(me)
        assert mine is not None
        _, my_layer = mine
        my_front = next((f for f in FRONT_ENDS if me == f or me.startswith(f + ".")), None)
        for line, target in imports_of(path):
            theirs = layer_of(target)
            if theirs is None:
                continue
            _, their_layer = theirs
            where = f"{path.relative_to(ROOT)}:{line}: {me} ({LAYER_NAMES[my_layer]}) imports {target}"
            if their_layer > my_layer:
                bad.append(f"{where} ({LAYER_NAMES[their_layer]}), a layer above it")
            their_front = next((f for f in FRONT_ENDS if target == f or target.startswith(f + ".")), None)
            if my_front and their_front and my_front != their_front:
                bad.append(f"{where}: front-ends do not import each other")
    return bad


def test_imports_run_one_way() -> None:
    assert violations() == []


def test_every_module_has_a_layer() -> None:
    for path in source_files():
        layer_of(module_name(path))


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_files_stay_readable(path: Path) -> None:
    lines = path.read_text("utf-8").count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it (limit {MAX_LINES})"


def test_the_rule_catches_an_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself: an upward import planted in a copy of a use case is reported."""
    fetch = ROOT / "archiver" / "capture" / "fetch.py"
    planted = fetch.read_text("utf-8") + "\nfrom archiver.api import Archive  # planted\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: planted if self == fetch
                        else Path.read_bytes(self).decode("utf-8"))
    assert any("archiver.capture.fetch (use cases) imports archiver.api" in v for v in violations())

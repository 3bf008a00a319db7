"""JSON for reports, and JSON Schema generated from the same types: one presentation model.

Every ``--json`` output of the CLI (and every body of the HTTP API) is a typed record's ``to_dict()``.
``plain()`` is the one serialisation rule (dataclass fields by name, enums by value, tuples as
arrays, ``None`` as null unless the record drops it); ``json_schema()`` derives the schema from the
type hints under the same rule, so the schema cannot drift from the output. ``flatten`` in a field's
metadata merges that field's object into its parent (a capture report *is* a manifest plus extras).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from typing import Any, ClassVar, Protocol

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
FLATTEN = {"flatten": True}


def plain(obj: Any) -> Any:
    """The JSON value of a record: what ``to_dict`` of a report returns."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        own = getattr(obj, "to_dict", None)
        if own is not None and not isinstance(obj, Report):
            return own()
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = plain(getattr(obj, f.name))
            if f.metadata.get("flatten"):
                if value is not None:
                    out.update(value)
            else:
                out[f.name] = value
        return out
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    return obj


class JsonRecord(Protocol):
    """Anything with a ``to_dict()``: every record and report."""

    def to_dict(self) -> Any: ...


class Report:
    """Base of report records: ``to_dict`` is ``plain`` of the fields, matching ``json_schema``."""

    __slots__ = ()
    #: extra top-level properties a subclass's to_dict adds beyond its fields (name -> schema)
    JSON_EXTRA: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = plain(self)
        return result


def json_schema(cls: type, *, title: str | None = None) -> dict[str, Any]:
    """A JSON Schema (2020-12) document for the ``to_dict()`` of ``cls`` (or a list of them)."""
    defs: dict[str, Any] = {}
    body = _schema_of(cls, defs)
    doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return {"$schema": SCHEMA_DIALECT, "$id": f"https://archiver.invalid/schemas/{title or cls.__name__}.json",
            "title": title or cls.__name__, "description": doc, **body, "$defs": defs}


def list_schema(cls: type, *, title: str) -> dict[str, Any]:
    """A schema for a JSON array of ``cls`` records (``list --json``, ``verify --all --json``…)."""
    defs: dict[str, Any] = {}
    item = _schema_of(cls, defs)
    return {"$schema": SCHEMA_DIALECT, "$id": f"https://archiver.invalid/schemas/{title}.json", "title": title,
            "type": "array", "items": item, "$defs": defs}


def _schema_of(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return {}
    if tp is type(None):
        return {"type": "null"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string"}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema_of(a, defs) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple) or tp in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return {"type": "array", "prefixItems": [_schema_of(a, defs) for a in args],
                    "minItems": len(args), "maxItems": len(args)}
        return {"type": "array", "items": _schema_of(args[0], defs) if args else {}}
    if origin is dict or tp is dict:
        return {"type": "object", "additionalProperties": _schema_of(args[1], defs) if args else {}}
    if isinstance(tp, type) and issubclass(tp, Enum):
        return {"enum": [m.value for m in tp]}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder: recursion-safe
            defs[name] = _object_schema(tp, defs)
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"no JSON Schema for type {tp!r}")


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if f.metadata.get("flatten"):
            inner = tp
            if typing.get_origin(tp) in (typing.Union, types.UnionType):
                inner = next(a for a in typing.get_args(tp) if a is not type(None))
            if typing.get_origin(inner) is dict:
                return {"type": "object", "additionalProperties": _schema_of(typing.get_args(inner)[1], defs)}
            _schema_of(inner, defs)
            sub = defs[inner.__name__]
            props.update(sub["properties"])
            if inner is tp:  # a flattened optional contributes no required keys
                required += [r for r in sub.get("required", []) if r not in required]
            continue
        props[f.name] = _schema_of(tp, defs)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and \
                not _drops_none(cls, tp):
            required.append(f.name)
    props.update(getattr(cls, "JSON_EXTRA", {}))
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def _drops_none(cls: type, tp: Any) -> bool:
    """Records with their own to_dict may leave out a null field; only Report subclasses always keep it."""
    optional = typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)
    return optional and not issubclass(cls, Report)


__all__ = ["FLATTEN", "JsonRecord", "Report", "json_schema", "list_schema", "plain"]

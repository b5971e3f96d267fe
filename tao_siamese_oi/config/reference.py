"""Descriptions of the schema for people and programs: the spec-key table of docs/spec_reference.md and the JSON
Schema an action's ``get-job-schema`` prints (types, defaults, allowed values, ranges, help), both generated.

Run ``python -m tao_siamese_oi.config.reference`` to print the table.
"""

import dataclasses
import json
import types
import typing

from tao_siamese_oi.config.schema import ExperimentConfig

BEGIN, END = "<!-- spec-reference:begin -->", "<!-- spec-reference:end -->"


def _rows(schema, prefix: str = ""):
    for f in dataclasses.fields(schema):
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(f.type):
            yield from _rows(f.type, key + ".")
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        meta = f.metadata
        rule = ", ".join(map(str, meta["choices"])) if meta.get("choices") else ""
        if meta.get("min") is not None or meta.get("max") is not None:
            rule = f"{meta.get('min', '')} .. {meta.get('max') if meta.get('max') is not None else ''}".strip()
        yield key, json.dumps(default), rule, meta.get("help", "")


def spec_reference_markdown() -> str:
    lines = ["| key | default | allowed | notes |", "|---|---|---|---|"]
    lines += [f"| `{k}` | `{d}` | {r} | {h} |" for k, d, r, h in _rows(ExperimentConfig)]
    return "\n".join([BEGIN, *lines, END])


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}


def json_schema(schema=ExperimentConfig, keys=None) -> dict:
    """A JSON Schema (draft 2020-12 vocabulary) of ``schema``'s fields, or only of ``keys`` at the top."""
    properties = {}
    for f in dataclasses.fields(schema):
        if keys is not None and f.name not in keys:
            continue
        if dataclasses.is_dataclass(f.type):
            properties[f.name] = json_schema(f.type)
        else:
            properties[f.name] = _field_schema(f)
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _field_schema(f) -> dict:
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    meta = f.metadata
    node: dict = {"type": _json_type(f.type), "default": default}
    for key, name in (("choices", "enum"), ("min", "minimum"), ("max", "maximum")):
        if meta.get(key) is not None:
            node[name] = list(meta[key]) if key == "choices" else meta[key]
    if "enum" in node and "null" in node["type"]:
        node["enum"].append(None)  # an optional choice may be left unset
    if meta.get("help"):
        node["description"] = meta["help"]
    if meta.get("path"):
        node["format"] = "path"
    return node


def _json_type(annotation):
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType):  # X | None
        return sorted({_json_type(arg) if arg is not type(None) else "null" for arg in args}, key=str)
    origin = typing.get_origin(annotation) or annotation
    if origin is typing.Any:
        return ["string", "number", "integer", "boolean", "object", "array", "null"]
    return _JSON_TYPES[origin]


if __name__ == "__main__":
    print(spec_reference_markdown())

"""Pydantic JSON schema -> Kubernetes structural OpenAPI v3 schema.

Structural means: every node has a `type`, `$ref`s are inlined, there is no `anyOf` with null
(an optional field is simply not required), no `title`, and `additionalProperties` is either a
schema (maps) or absent. Descriptions, defaults, enums, bounds, patterns and
`x-kubernetes-*` extensions are kept.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

_DROP = {"title"}
_KEEP_FROM_OUTER = ("description", "default", "x-kubernetes-validations", "x-kubernetes-list-type")


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline a $ref or unwrap an optional (anyOf [X, null]), keeping the outer annotations."""
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        outer = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **outer}, defs)
    if "anyOf" in node:
        options = [opt for opt in node["anyOf"] if opt.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"union types cannot be expressed structurally: {node}")
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        if outer.get("default", ...) is None:
            del outer["default"]
        inner = _resolve(copy.deepcopy(options[0]), defs)
        # The field's own description wins over the referenced model's docstring.
        return {**inner, **outer}
    return node


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _convert(value, defs)
            # `false` is implied: the API server prunes unknown fields.
        elif key == "default" and value is None:
            continue
        else:
            out[key] = value
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    if "type" not in out and "x-kubernetes-preserve-unknown-fields" not in out:
        raise ValueError(f"schema node without a type: {node}")
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("default") == {} and "properties" in out:
        # The API server checks a default against the CEL rules as written, without defaulting inside
        # it: `{}` failed `self.type != 'postgres' || ...` with "no such key: type". Spelled out, the
        # default is the object the server's nested defaulting would make of `{}` anyway.
        out["default"] = {name: sub["default"] for name, sub in out["properties"].items() if "default" in sub}
    return out


def strict_copy(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields rejected: what `kubectl apply` (strict field validation) enforces."""
    out = copy.deepcopy(schema)

    def walk(node: dict[str, Any]) -> None:
        if "properties" in node:
            node["additionalProperties"] = False
            for sub in node["properties"].values():
                walk(sub)
        if isinstance(node.get("items"), dict):
            walk(node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"])

    walk(out)
    return out

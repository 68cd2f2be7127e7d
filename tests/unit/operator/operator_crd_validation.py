"""Validate objects the way the API server would: structural schema (jsonschema) + CEL rules (cel-python).

jsonschema checks the generated openAPIV3Schema (draft 2020-12 semantics cover everything a
structural schema uses: types, enums, bounds, patterns, required, defaults are not applied).
`x-kubernetes-validations` rules are evaluated with cel-python with `self` bound to the node they
sit on, as the API server does; on an update, transition rules also get `oldSelf`. Unknown fields
are rejected (kubectl's strict field validation).
"""

from __future__ import annotations

from typing import Any

import celpy
import jsonschema
from kubelabel_operator.crdgen import KINDS_BY_NAME, build_crd
from kubelabel_operator.schema import strict_copy

_env = celpy.Environment()


def schema_for(kind: str) -> dict[str, Any]:
    crd = build_crd(KINDS_BY_NAME[kind])
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting, as the API server does before CEL rules run."""
    if isinstance(value, dict) and "properties" in schema:
        out = dict(value)
        for name, sub in schema["properties"].items():
            if name not in out and "default" in sub:
                out[name] = sub["default"]
            if name in out:
                out[name] = apply_defaults(sub, out[name])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], v) for v in value]
    return value


_ABSENT = object()


def _cel_errors(schema: dict[str, Any], value: Any, path: str, old: Any = _ABSENT) -> list[str]:
    """Rules of the node and below; a transition rule (oldSelf) runs only where an old value exists."""
    errors: list[str] = []
    for rule in schema.get("x-kubernetes-validations", []):
        activation = {"self": celpy.json_to_cel(value)}
        if "oldSelf" in rule["rule"]:
            if old is _ABSENT:
                continue  # a create, or a node the old object did not have: the API server skips it
            activation["oldSelf"] = celpy.json_to_cel(old)
        program = _env.program(_env.compile(rule["rule"]))
        result = program.evaluate(activation)
        if isinstance(result, Exception) or not bool(result):
            errors.append(f"{path}{rule.get('fieldPath', '')}: {rule['message']}")
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                old_sub = old[name] if isinstance(old, dict) and name in old else _ABSENT
                errors += _cel_errors(sub, value[name], f"{path}.{name}", old_sub)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        # Items of plain lists have no correlated old value (only map-type lists do).
        for i, item in enumerate(value):
            errors += _cel_errors(schema["items"], item, f"{path}[{i}]")
    return errors


def validate(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Readable reasons the API server would reject `obj` with (empty: accepted).

    With `old`, `obj` is an update of it: transition rules compare the two (both defaulted).
    """
    schema = schema_for(obj["kind"])
    obj = apply_defaults(schema, obj)
    validator = jsonschema.Draft202012Validator(strict_copy(schema))
    errors = [
        f"{'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if errors:
        return errors
    spec_schema = schema["properties"]["spec"]
    old_spec = apply_defaults(schema, old).get("spec", _ABSENT) if old is not None else _ABSENT
    return _cel_errors(spec_schema, obj.get("spec", {}), "spec", old_spec)

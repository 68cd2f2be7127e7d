"""The OpenAPI document tells the truth about errors.

Every error is the project's JSON body (`ErrorBody`) and validation errors are 400s (app.py), so
FastAPI's default 422 with its own body is never answered. `document_errors` gives each API route
the 4xx statuses it can answer, from what the route is: any route checks its input (400), an
authenticated one answers 401 and 403, one that names objects (path ids, a body, id filters)
404, one that changes state 409, one that takes a body 413, and one that reads its raw body by
Content-Type 415. `truthful` drops the 422s from the generated document and writes the input
limits' integer bounds into it.
"""

from __future__ import annotations

from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from api_server.common.inputs import INT32_FIELDS, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN


class ErrorBody(BaseModel):
    """Every error: `detail` is a sentence; `validation_errors` maps each field (or `row N`) to its messages."""

    model_config = ConfigDict(extra="allow")

    status_code: int
    detail: str
    validation_errors: dict[str, list[str]] | None = Field(default=None)


DESCRIPTIONS = {
    400: "Invalid input: a field, parameter or row breaks a rule (named in validation_errors)",
    401: "No API token, or an unknown one",
    403: "The token's user may not do this",
    404: "An object named by the request does not exist (or is not visible to the user)",
    409: "The change conflicts with the object's state",
    413: "The request body is larger than the upload limit",
    415: "The body's Content-Type is not one this endpoint reads",
}
_CHANGES = {"POST", "PUT", "PATCH", "DELETE"}


def _walk(dependant: Dependant) -> list[Dependant]:
    out = [dependant]
    for sub in dependant.dependencies:
        out.extend(_walk(sub))
    return out


def error_statuses(route: APIRoute) -> list[int]:
    dependants = _walk(route.dependant)
    authenticated = any(getattr(d.call, "__name__", "") == "current_user" for d in dependants)
    path_params = any(d.path_params for d in dependants)
    id_filters = any(
        "int" in str(p.field_info.annotation) and p.name != "page" and p.name != "page_size"
        for d in dependants
        for p in d.query_params
    )
    methods = route.methods or set()  # APIRoute always sets them; the attribute is typed optional
    raw_body = route.body_field is None and any(d.request_param_name for d in dependants) and "POST" in methods
    statuses = [400]
    if authenticated:
        statuses += [401, 403]
    if path_params or route.body_field is not None or id_filters or raw_body:
        statuses.append(404)
    if authenticated and methods & _CHANGES:
        statuses.append(409)
    if route.body_field is not None or raw_body:
        statuses.append(413)
    if raw_body:
        statuses.append(415)
    return statuses


def document_errors(route: APIRoute) -> None:
    for status in error_statuses(route):
        route.responses.setdefault(status, {"model": ErrorBody, "description": DESCRIPTIONS[status]})


def truthful(schema: dict[str, Any]) -> dict[str, Any]:
    """The generated document without FastAPI's 422 (the server answers 400 with ErrorBody), and with
    the integer bounds of the input limits on every integer parameter and property."""
    components = schema.get("components", {}).get("schemas", {})
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
                for parameter in operation.get("parameters", []):
                    _bound(parameter["name"], parameter.get("schema", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for model in components.values():
        for name, prop in model.get("properties", {}).items():
            _bound(name, prop)
    return schema


def _bound(name: str, schema: dict[str, Any]) -> None:
    """minimum/maximum (where not declared already) on an integer schema, or its integer branch."""
    low, high = (INT32_MIN, INT32_MAX) if name in INT32_FIELDS else (INT64_MIN, INT64_MAX)
    for branch in [schema, *schema.get("anyOf", [])]:
        if branch.get("type") == "integer":
            branch.setdefault("minimum", low)
            branch.setdefault("maximum", high)

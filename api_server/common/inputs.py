"""Input limits: what a request may carry, checked once at the edge, the same way on both databases.

Each rule lives here and is applied in two places: `GuardedRoute` (every API route's path and
query parameters and its JSON body, parsed once) and the import path (`imports.validation`,
row by row; imported task data keeps its integers, see `check_value`). `UpdateBody` refuses an
explicit null in partial updates. A value outside them used to reach the database or a JSON
encoder and fail there as a 500, or be stored and break every later export of its project:

- a NUL character (U+0000) in any string or key: PostgreSQL's text and JSONB cannot hold it;
- an unpaired UTF-16 surrogate (`"\\ud800"`): not encodable as UTF-8;
- a float that is not finite (`NaN`, `Infinity`, `1e999`): JSON has no such number;
- an integer outside 64 bits, or outside 32 bits where the column is INTEGER on PostgreSQL
  (`INT32_FIELDS`);
- JSON nested deeper than `MAX_DEPTH` (orjson, which stores and exports it, stops at 255).

Each refusal is a 400 naming the field (`data.text`, `query.title`, `row 3`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from fastapi import Request
from fastapi.params import Form
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from api_server.common.errors import BadRequest, field_error

MAX_DEPTH = 100
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)

# Parameters and top-level body fields stored in INTEGER columns on PostgreSQL (ids of projects,
# users, tokens, webhooks, storages and ML backends; a project's counts); tasks, annotations,
# predictions, drafts and deliveries have BIGINT ids. tests/unit/api/test_inputs.py checks the
# names against the models.
INT32_FIELDS = frozenset(
    {
        "project",
        "project_id",
        "task__project",
        "user",
        "user_id",
        "completed_by",
        "updated_by",
        "token_id",
        "webhook_id",
        "backend_id",
        "storage_id",
        "maximum_annotations",
        "overlap_cohort_percentage",
        "task_lock_ttl",
        "min_annotations_to_start_training",
    }
)

_INTEGER = re.compile(r"-?\d+")


class InputError(ValueError):
    """A value outside the limits: `field` names where it is, `message` what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        # The name itself may hold the offending character, or be as deep as the value.
        field = field.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")
        if len(field) > 120:
            field = field[:120] + "..."
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_text(text: str, field: str) -> None:
    if "\x00" in text:
        raise InputError(field, "must not contain the NUL character (\\u0000)")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise InputError(field, "contains an unpaired UTF-16 surrogate (not valid Unicode)") from None


def check_value(value: Any, field: str = "", depth: int = 0, ints: bool = True) -> None:
    """Raise `InputError` for the first value in `value` (parsed JSON) that breaks a rule.

    `ints=False` leaves integers alone: imported task data is stored as JSON, where any integer
    orjson reads (up to 2^64-1; bigger ones it reads as floats) is kept and exported as it is.
    """
    kind = type(value)
    if kind is str:
        check_text(value, field or "body")
    elif kind is int:
        if ints and not INT64_MIN <= value <= INT64_MAX:
            raise InputError(field or "body", f"integer out of range ({INT64_MIN} to {INT64_MAX})")
    elif kind is float:
        if not math.isfinite(value):
            raise InputError(field or "body", "must be a finite number (not NaN or Infinity)")
    elif kind is dict or kind is list:
        if depth >= MAX_DEPTH:
            raise InputError(field or "body", f"JSON is nested deeper than {MAX_DEPTH} levels")
        if kind is dict:
            for key, item in value.items():
                where = _join(field, key)
                check_text(key, where)
                check_value(item, where, depth + 1, ints)
        else:
            for i, item in enumerate(value):
                check_value(item, f"{field or 'body'}[{i}]", depth + 1, ints)


def may_break_rules(text: str) -> bool:
    """Whether a JSON text as orjson writes it could hold a string or nesting `check_value` refuses.

    Cheap enough for every imported row: orjson escapes only control characters as `\\u` (a NUL
    shows as one; a lone surrogate it refuses outright), and nesting past the limit needs that many
    brackets.
    """
    return "\\u" in text or (len(text) > 2 * MAX_DEPTH and text.count("{") + text.count("[") > MAX_DEPTH)


def check_int32_fields(body: Any) -> None:
    if type(body) is dict:
        for name in INT32_FIELDS.intersection(body):
            value = body[name]
            if type(value) is int and not INT32_MIN <= value <= INT32_MAX:
                raise InputError(name, f"integer out of range ({INT32_MIN} to {INT32_MAX})")


class _Suspect(Exception):
    """A number past the rules met while parsing: the body is walked to name its field."""


def _integer(text: str) -> int:
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _Suspect
    return value


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Suspect
    return value


_DECODER = json.JSONDecoder(parse_int=_integer, parse_float=_number, parse_constant=_number)


def parse_json(body: bytes) -> Any:
    """A JSON request body, checked: malformed JSON or a value breaking a rule is a 400.

    The parse stops at a number past the rules; the body is then walked field by field (to name
    the field) only when it did, or a `\\u` escape (the only way valid UTF-8 JSON holds a NUL or a
    surrogate) or that many brackets is in it: a fraction of the walk's cost per request.
    """
    try:
        # As json.loads reads bytes: UTF-8, or UTF-16/32 (a zero byte; then the escape is spelt otherwise).
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        try:
            value = _DECODER.decode(text)
            walk = b"\\u" in body or b"\x00" in body or body.count(b"[") + body.count(b"{") > MAX_DEPTH
        except _Suspect:
            value, walk = json.loads(text), True
    except RecursionError:
        raise field_error("body", f"JSON is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        where = f" at char {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise field_error("body", f"malformed JSON{where}: {exc}") from None
    try:
        if walk:
            check_value(value)
        check_int32_fields(value)
    except InputError as exc:
        raise field_error(exc.field, exc.message) from None
    return value


def check_parameters(request: Request) -> None:
    """NUL characters anywhere in the path or query; integers the database could not compare."""
    for name, value in request.path_params.items():
        _check_parameter(name, str(value), f"path.{name}")
    for name, value in request.query_params.multi_items():
        _check_parameter(name, value, f"query.{name}")


def _check_parameter(name: str, value: str, field: str) -> None:
    try:
        check_text(name, field)
        check_text(value, field)
    except InputError as exc:
        raise field_error(exc.field, exc.message) from None
    if len(value) > 9 and _INTEGER.fullmatch(value):
        low, high = (INT32_MIN, INT32_MAX) if name in INT32_FIELDS else (INT64_MIN, INT64_MAX)
        if not low <= int(value) <= high:
            raise field_error(field, f"integer out of range ({low} to {high})")


def _without_null(schema: dict[str, Any]) -> None:
    """The JSON schema of an UpdateBody: its fields take no null (a None default only means "left out")."""
    for prop in schema.get("properties", {}).values():
        if "anyOf" in prop:
            branches = [b for b in prop["anyOf"] if b.get("type") != "null"]
            if len(branches) == 1:
                del prop["anyOf"]
                prop.update(branches[0])
            else:
                prop["anyOf"] = branches
        if "default" in prop and prop["default"] is None:
            del prop["default"]


class UpdateBody(BaseModel):
    """A partial update: a field may be left out, but one given must not be null (its column is NOT NULL)."""

    model_config = ConfigDict(json_schema_extra=_without_null)

    @field_validator("*", mode="before")
    @classmethod
    def _given_not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            raise ValueError("must not be null (leave the field out to keep its value)")
        return value


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or media == "application/json" or media.endswith("+json")


class GuardedRoute(APIRoute):
    """An API route whose parameters and JSON body are checked against the limits before FastAPI
    validates them. The body is parsed once here; FastAPI reads the parsed value back."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()
        json_body = self.body_field is not None and not _is_form(self)

        async def guarded(request: Request) -> Any:
            check_parameters(request)
            if json_body and _is_json(request):
                body = await request.body()
                if body:
                    request._json = parse_json(body)  # read back by Request.json() in FastAPI
            return await handler(request)

        return guarded


def _is_form(route: APIRoute) -> bool:
    field = route.body_field
    return field is not None and isinstance(field.field_info, Form)


def id_list(request: Request, name: str = "ids") -> list[int] | None:
    """Task ids of a query parameter (the task list and the export take them): `?ids=1,2`,
    `?ids=1&ids=2` or `?ids[]=1&ids[]=2`; None when absent."""
    raw = request.query_params.getlist(name) + request.query_params.getlist(f"{name}[]")
    if not raw:
        return None
    out: list[int] = []
    for value in raw:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if not part.lstrip("-").isdigit():
                raise BadRequest(f"{name}: '{part}' is not a task id", validation_errors={name: ["must be integers"]})
            if not INT64_MIN <= int(part) <= INT64_MAX:
                raise BadRequest(f"{name}: {part} is out of range", validation_errors={name: ["integer out of range"]})
            out.append(int(part))
    return out

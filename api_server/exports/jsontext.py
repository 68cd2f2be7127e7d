"""Stored JSON read and written for export, whatever a row holds.

orjson is the fast path. Rows it cannot take (a number past 64 bits or past a double such as
1e999, nesting past its 255 levels: rows written before the input limits, or by other paths)
go through the standard library instead, with non-finite numbers written as null, so one stored
row never breaks an export in the middle of its stream.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _finite(json.loads(text))


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False).encode()


def _finite(value: Any) -> Any:
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is dict:
        return {k: _finite(v) for k, v in value.items()}
    if type(value) is list:
        return [_finite(v) for v in value]
    return value

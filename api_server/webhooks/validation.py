"""Checks on what a webhook may be: a plain http(s) URL the outbound-address policy allows, sane custom headers."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from api_server.common import egress
from api_server.common.errors import BadRequest

MAX_HEADERS = 10
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers the delivery sets itself; a webhook cannot override them.
RESERVED = {"content-type", "content-length", "host", "transfer-encoding", "connection", "user-agent"}


def check_url(url: str) -> str:
    url = url.strip()
    problems: list[str] = []
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise BadRequest(f"url: not a valid URL ({exc})", validation_errors={"url": ["not a valid URL"]}) from None
    if parts.scheme.lower() not in {"http", "https"}:
        problems.append("the scheme must be http or https")
    if parts.username is not None or parts.password is not None:
        problems.append("credentials in the URL are not allowed (send them as a custom header)")
    if not parts.hostname:
        problems.append("a host is required")
    if any(c.isspace() for c in url):
        problems.append("whitespace is not allowed")
    if problems:
        raise BadRequest(f"url: {'; '.join(problems)}", validation_errors={"url": problems})
    try:
        egress.check_url(url, "webhook", unresolved_ok=True)  # checked again at each delivery
    except egress.EgressRefused as exc:
        raise BadRequest(f"url: {exc.reason}", validation_errors={"url": [exc.reason]}) from None
    return url


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    problems: list[str] = []
    if len(headers) > MAX_HEADERS:
        problems.append(f"at most {MAX_HEADERS} custom headers")
    for name, value in headers.items():
        if not _TOKEN.match(name):
            problems.append(f"{name!r} is not a valid header name")
        elif name.lower() in RESERVED or name.lower().startswith("x-kubelabel-"):
            problems.append(f"{name!r} is set by kubelabel itself")
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            problems.append(f"the value of {name!r} must be a single-line string")
    if problems:
        raise BadRequest(f"headers: {'; '.join(problems)}", validation_errors={"headers": problems})
    return headers

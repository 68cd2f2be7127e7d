"""How a stored secret is shown: never its value, only that one is set.

Secrets are write-only. A response shows a password inside a URL (an ML backend registered
as `http://user:pass@host`) and the value of a webhook's custom header as `MASK`. A client
that reads an object, changes one field and sends the whole object back sends `MASK`
unchanged; that means "keep the stored value", so a round trip never overwrites a secret
with the mask.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "********"


def _netloc(user: str | None, password: str | None, host: str) -> str:
    if user is None and password is None:
        return host
    return f"{user or ''}:{password}@{host}" if password is not None else f"{user}@{host}"


def _host(url: str) -> tuple[str, str | None, str | None]:
    """(host[:port] as written, user, password) of a URL's authority."""
    netloc = urlsplit(url).netloc
    userinfo, sep, host = netloc.rpartition("@")
    if not sep:
        return netloc, None, None
    user, colon, password = userinfo.partition(":")
    return host, user, password if colon else None


def masked_url(url: str) -> str:
    """The URL with the password of its user:password@ part replaced by MASK (the user stays)."""
    return _redacted(url, keep_user=True)


def unmasked_url(sent: str, stored: str | None) -> str:
    """`sent`, its password MASK replaced by the stored URL's password when the user is the same."""
    try:
        host, user, password = _host(sent)
        _, stored_user, stored_password = _host(stored or "")
    except ValueError:
        return sent
    if password != MASK or stored_password is None or user != stored_user:
        return sent
    parts = urlsplit(sent)
    return urlunsplit((parts.scheme, _netloc(user, stored_password, host), parts.path, parts.query, parts.fragment))


def masked_headers(headers: dict[str, str] | None) -> dict[str, str]:
    """Header names with every value MASK."""
    return {name: MASK for name in headers or {}}


def unmasked_headers(sent: dict[str, str], stored: dict[str, str] | None) -> dict[str, str]:
    """`sent`, with a MASK value meaning that header's stored value (a header not stored stays MASK)."""
    stored = stored or {}
    return {name: stored[name] if value == MASK and name in stored else value for name, value in sent.items()}


def without_credentials(url: str) -> str:
    """The URL without its user:password@ part (an ML backend registered as http://u:p@host is
    called with those as its auth, and named without them)."""
    return _redacted(url, keep_user=False)


def _redacted(url: str, *, keep_user: bool) -> str:
    """The one URL redactor: the password masked (the user kept), or the whole user:password@ dropped."""
    try:
        host, user, password = _host(url)
    except ValueError:
        return url
    if password is None and (keep_user or user is None):
        return url
    parts = urlsplit(url)
    netloc = _netloc(user, MASK, host) if keep_user else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def url_password(url: str | None) -> str | None:
    try:
        return _host(url or "")[2] or None
    except ValueError:
        return None


def scrubbed(text: str | None, *secrets: str | None) -> str | None:
    """`text` with every occurrence of each secret (and its percent-decoded form) replaced by MASK."""
    if not text:
        return text
    for secret in secrets:
        for form in {secret, unquote(secret)} if secret else ():
            if form:
                text = text.replace(form, MASK)
    return text

"""Request signing: HMAC-SHA256 over the exact body bytes.

The body carries the delivery's id and timestamp (`"delivery": {"id", "timestamp"}`), so
the signature covers them too: a receiver that checks the signature and rejects stale
timestamps or already-seen ids is safe from replays, while verifying stays one line:

    hmac.compare_digest(header, "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest())
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Kubelabel-Signature"
EVENT_HEADER = "X-Kubelabel-Event"
DELIVERY_HEADER = "X-Kubelabel-Delivery"
TIMESTAMP_HEADER = "X-Kubelabel-Timestamp"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature or "")


def new_secret() -> str:
    return secrets.token_urlsafe(32)

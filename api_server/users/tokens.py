"""API tokens: random keys shown once, stored as SHA-256 digests.

Tokens are 160-bit random values, so a fast hash is enough (no salt or slow KDF needed:
there is nothing to brute-force), and a lookup is a single indexed equality.
"""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_hex(20)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

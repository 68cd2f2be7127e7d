"""Password hashing: Argon2id through argon2-cffi (RFC 9106's low-memory profile, its default).

A password is only ever held in memory while it is hashed or checked; the database keeps the
encoded hash (algorithm, parameters, salt and digest in one string). Checking a user who has no
password (or does not exist) still runs a full verification against a fixed dummy hash, so the
answer takes as long either way and its timing tells nothing about which usernames exist.
"""

from __future__ import annotations

import secrets
import threading
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
# Hashing cost does not grow with the length (Argon2 pre-hashes it), but the request does.
MAX_LENGTH = 1024

_HASHER = PasswordHasher()
# Each hash or check takes 64 MiB and a few CPU-tenths of a second: a burst of sign-ins (or of
# guesses) queues here instead of taking a pod's memory limit (1 GiB by default) or all its threads.
AT_ONCE = 2
_CHECKS = threading.BoundedSemaphore(AT_ONCE)


def hash_password(password: str) -> str:
    with _CHECKS:
        return _HASHER.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(16))


def verify(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash; None (no password set) never matches."""
    encoded = stored or _dummy_hash()
    try:
        with _CHECKS:
            return _HASHER.verify(encoded, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """The hash was made with weaker parameters than today's: replace it at the next sign-in."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def problem(password: str) -> str | None:
    """Why this password cannot be set, or None."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    return None

"""Password hashing with Argon2id (argon2-cffi's defaults, RFC 9106's low-memory
profile), never a home-made hash. Verifying takes the same time whether or not the user
exists (`verify_or_waste`), so sign-in does not tell which emails have accounts."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _decoy() -> str:
    return hasher().hash("a password no account has")


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash; a missing hash (no password set yet)
    still costs one verification."""
    try:
        return hasher().verify(stored or _decoy(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a hash was made with weaker parameters than today's."""
    return hasher().check_needs_rehash(stored)

"""Password hashing (bcrypt) and Keystone's security-compliance rules.

bcrypt reads at most 72 bytes, so the password is first reduced to a base64
SHA-256 digest (44 bytes): long passwords keep all their entropy and none is
silently truncated. Hashing costs ~0.25 s at the default cost of 12, so callers
hash outside transactions, in worker threads (bcrypt releases the GIL).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import re

import bcrypt

from stackbox import rest
from stackbox.identity import runtime

MAX_LENGTH = 4096


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str, rounds: int | None = None) -> str:
    if rounds is None:
        rounds = runtime.get().settings.bcrypt_rounds
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode()


def check_password(password: str, hashed: str | None) -> bool:
    if not hashed or len(password) > MAX_LENGTH:
        return False
    try:
        return bcrypt.checkpw(_prehash(password), hashed.encode())
    except ValueError:
        return False


def validate_new(password: str) -> None:
    """Length and the configured regex; 400 with the configured description."""
    if len(password) > MAX_LENGTH:
        raise rest.BadRequest(
            f"Invalid input for field 'password': the password is longer than {MAX_LENGTH} "
            "characters"
        )
    settings = runtime.get().settings
    if settings.password_regex and not re.match(settings.password_regex, password):
        detail = settings.password_regex_description or "it does not match the required pattern"
        raise rest.BadRequest(
            f"Password validation error: The password does not meet the requirements: {detail}."
        )


def expires_at(now: datetime.datetime, ignore_expiry: bool) -> datetime.datetime | None:
    days = runtime.get().settings.password_expires_days
    if not days or ignore_expiry:
        return None
    return now + datetime.timedelta(days=days)

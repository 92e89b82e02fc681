"""Fernet token payloads: what a token carries, packed small.

A token holds only identifiers and times; names, roles and the catalog are
looked up when it is validated, so they are always current. Unlike Keystone's
payloads, ``issued_at`` keeps microseconds, so a token issued in the same second
as a revocation (a password change, say) is not mistaken for an older one.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import secrets

import msgpack
from cryptography.fernet import InvalidToken, MultiFernet

VERSION = 1

METHODS = ("password", "token", "application_credential", "oauth1", "totp", "mapped")


class MalformedToken(Exception):
    """The token is not one of ours: bad encoding, bad signature, or unknown layout."""


@dataclasses.dataclass(frozen=True)
class TokenPayload:
    user_id: str
    methods: tuple[str, ...]
    issued_at: datetime.datetime
    expires_at: datetime.datetime
    audit_ids: tuple[str, ...]
    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None
    trust_id: str | None = None
    app_cred_id: str | None = None

    @property
    def scope(self) -> str | None:
        if self.system:
            return "system"
        if self.project_id:
            return "project"
        if self.domain_id:
            return "domain"
        return None


def new_audit_id() -> str:
    """22 URL-safe characters, as Keystone's audit ids look."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()


def _pack_id(value: str | None) -> bytes | str | None:
    # Keystone-style ids are 32 hex digits: 16 bytes instead of 32 characters.
    if value is not None and len(value) == 32:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            return value
        if raw.hex() == value:
            return raw
    return value


def _unpack_id(value: bytes | str | None) -> str | None:
    if isinstance(value, bytes):
        return value.hex()
    return value


def _pack_audit(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "==")


def _unpack_audit(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def _to_micros(moment: datetime.datetime) -> int:
    return int(moment.replace(tzinfo=datetime.UTC).timestamp() * 1_000_000)


def _from_micros(value: int) -> datetime.datetime:
    seconds, micros = divmod(value, 1_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None)
    return moment.replace(microsecond=micros)


def _methods_bits(methods: tuple[str, ...]) -> int:
    bits = 0
    for name in methods:
        bits |= 1 << METHODS.index(name)
    return bits


def _methods_from_bits(bits: int) -> tuple[str, ...]:
    return tuple(name for i, name in enumerate(METHODS) if bits & (1 << i))


def encode(payload: TokenPayload, fernet: MultiFernet) -> str:
    packed = msgpack.packb(
        [
            VERSION,
            _pack_id(payload.user_id),
            _methods_bits(payload.methods),
            _to_micros(payload.issued_at),
            int(payload.expires_at.replace(tzinfo=datetime.UTC).timestamp()),
            [_pack_audit(a) for a in payload.audit_ids],
            _pack_id(payload.project_id),
            _pack_id(payload.domain_id),
            payload.system,
            _pack_id(payload.trust_id),
            _pack_id(payload.app_cred_id),
        ],
        use_bin_type=True,
    )
    # Fernet tokens are URL-safe base64; the padding adds nothing, as in Keystone.
    return fernet.encrypt(packed).decode().rstrip("=")


def decode(token: str, fernet: MultiFernet) -> TokenPayload:
    if not token or len(token) > 1024:
        raise MalformedToken("bad length")
    padded = token + "=" * (-len(token) % 4)
    try:
        packed = fernet.decrypt(padded.encode())
        fields = msgpack.unpackb(packed, raw=False)
    except (InvalidToken, ValueError, TypeError, msgpack.UnpackException) as exc:
        raise MalformedToken(str(exc) or type(exc).__name__) from None
    if not isinstance(fields, list) or len(fields) < 11 or fields[0] != VERSION:
        raise MalformedToken("unknown payload layout")
    (_, user, bits, issued, expires, audits, project, domain, system, trust, app_cred) = fields[:11]
    return TokenPayload(
        user_id=_unpack_id(user) or "",
        methods=_methods_from_bits(bits),
        issued_at=_from_micros(issued),
        expires_at=datetime.datetime.fromtimestamp(expires, datetime.UTC).replace(tzinfo=None),
        audit_ids=tuple(_unpack_audit(a) for a in audits),
        project_id=_unpack_id(project),
        domain_id=_unpack_id(domain),
        system=system,
        trust_id=_unpack_id(trust),
        app_cred_id=_unpack_id(app_cred),
    )

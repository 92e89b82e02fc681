"""Token payloads and the Fernet key repository, without a server."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from stackbox.identity import keys, tokens


def payload(**changes: object) -> tokens.TokenPayload:
    base = {
        "user_id": "0123456789abcdef0123456789abcdef",
        "methods": ("password",),
        "issued_at": datetime.datetime(2026, 11, 22, 1, 2, 3, 456789),
        "expires_at": datetime.datetime(2026, 11, 22, 2, 2, 3),
        "audit_ids": (tokens.new_audit_id(),),
        "project_id": "fedcba9876543210fedcba9876543210",
    }
    base.update(changes)
    return tokens.TokenPayload(**base)  # type: ignore[arg-type]


def test_round_trip_keeps_microseconds_and_every_field(tmp_path: Path) -> None:
    repo = keys.KeyRepository(tmp_path / "k")
    repo.ensure()
    original = payload(
        methods=("password", "token"),  # stored as a bit set, in METHODS order
        audit_ids=(tokens.new_audit_id(), tokens.new_audit_id()),
        trust_id="default-not-hex",
        system=None,
    )
    token = tokens.encode(original, repo.fernet())
    assert "=" not in token and len(token) < 255
    assert tokens.decode(token, repo.fernet()) == original


def test_tampered_or_foreign_tokens_are_malformed(tmp_path: Path) -> None:
    repo = keys.KeyRepository(tmp_path / "a")
    repo.ensure()
    other = keys.KeyRepository(tmp_path / "b")
    other.ensure()
    token = tokens.encode(payload(), repo.fernet())
    with pytest.raises(tokens.MalformedToken):
        tokens.decode(token, other.fernet())
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    with pytest.raises(tokens.MalformedToken):
        tokens.decode(flipped, repo.fernet())
    with pytest.raises(tokens.MalformedToken):
        tokens.decode("", repo.fernet())


def test_rotation_follows_keystone_scheme(tmp_path: Path) -> None:
    repo = keys.KeyRepository(tmp_path / "k", max_active_keys=3)
    repo.ensure()
    assert sorted(int(p.name) for p in repo.path.iterdir()) == [0, 1]
    staged = (repo.path / "0").read_bytes()
    assert repo.rotate() == 2
    # The staged key became the primary; a new key is staged.
    assert (repo.path / "2").read_bytes() == staged
    assert (repo.path / "0").read_bytes() != staged
    repo.rotate()
    assert sorted(int(p.name) for p in repo.path.iterdir()) == [0, 2, 3]
    assert all(p.stat().st_mode & 0o077 == 0 for p in repo.path.iterdir())


def test_staged_key_already_decrypts(tmp_path: Path) -> None:
    """A token made right after another node promoted its staged key still validates here."""
    repo = keys.KeyRepository(tmp_path / "k")
    repo.ensure()
    before = repo.fernet()
    copy = keys.KeyRepository(tmp_path / "copy")
    copy.path.mkdir()
    for item in repo.path.iterdir():
        (copy.path / item.name).write_bytes(item.read_bytes())
    copy.rotate()
    token = tokens.encode(payload(), copy.fernet())
    assert tokens.decode(token, before).user_id == payload().user_id

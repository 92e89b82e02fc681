"""Settings precedence and request validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackbox import config, rest, validation


def test_precedence_defaults_file_env_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stackbox.toml").write_text(
        'port = 9000\nregion = "FileRegion"\n[identity]\nbcrypt_rounds = 10\ntoken_expiration = 7\n'
    )
    monkeypatch.setenv("STACKBOX_IDENTITY_BCRYPT_ROUNDS", "6")
    monkeypatch.setenv("STACKBOX_REGION", "EnvRegion")
    settings = config.load({"state_dir": tmp_path, "region": "FlagRegion"})
    assert settings.port == 9000  # file
    assert settings.identity.token_expiration == 7  # file
    assert settings.identity.bcrypt_rounds == 6  # env beats file
    assert settings.region == "FlagRegion"  # flag beats env
    assert settings.identity.lockout_duration == 1800  # default


def test_bad_settings_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKBOX_IDENTITY_BCRYPT_ROUNDS", "many")
    with pytest.raises(config.ConfigError, match=r"identity\.bcrypt_rounds"):
        config.load({"state_dir": tmp_path})
    monkeypatch.delenv("STACKBOX_IDENTITY_BCRYPT_ROUNDS")
    (tmp_path / "stackbox.toml").write_text("[identity]\nno_such_thing = 1\n")
    with pytest.raises(config.ConfigError, match=r"unknown setting identity\.no_such_thing"):
        config.load({"state_dir": tmp_path})


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "nested": {
            "type": "object",
            "properties": {"flag": {"type": "boolean"}},
            "additionalProperties": False,
        },
    },
    "required": ["name"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "'name'"),
        ({"name": 1}, "'name'"),
        ({"name": "x", "other": 1}, "'other'"),
        ({"name": "x", "nested": {"flag": "yes"}}, "'nested/flag'"),
        ({"name": "x", "nested": {"extra": True}}, "'nested/extra'"),
    ],
)
def test_errors_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(rest.BadRequest) as caught:
        validation.check(SCHEMA, body)
    assert f"Invalid input for field {field}" in caught.value.message


def test_out_of_range_values_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKBOX_IDENTITY_BCRYPT_ROUNDS", "3")
    with pytest.raises(config.ConfigError, match=r"identity\.bcrypt_rounds: 3"):
        config.load({"state_dir": tmp_path})
    monkeypatch.delenv("STACKBOX_IDENTITY_BCRYPT_ROUNDS")
    with pytest.raises(config.ConfigError, match="not a TCP port"):
        config.load({"state_dir": tmp_path, "port": 70000})

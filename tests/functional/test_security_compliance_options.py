"""Security-compliance options that need a cloud of their own (one per test)."""

from __future__ import annotations

from pathlib import Path

from tests import cloudfixture
from tests.functional.test_security_compliance import change, login, make_user


def test_change_password_upon_first_use(tmp_path: Path) -> None:
    with (
        cloudfixture.in_process(tmp_path, change_password_upon_first_use=True) as cloud,
        cloud.http() as http,
    ):
        user = make_user(http, cloud, "newbie", "given-by-admin")
        refused = login(http, user["id"], "given-by-admin")
        assert refused.status_code == 401
        assert "expired" in refused.json()["error"]["message"]
        assert change(http, user["id"], "given-by-admin", "chosen-by-me").status_code == 204
        assert login(http, user["id"], "chosen-by-me").status_code == 201


def test_minimum_password_age(tmp_path: Path) -> None:
    with cloudfixture.in_process(tmp_path, minimum_password_age=1) as cloud, cloud.http() as http:
        user = make_user(http, cloud, "settled", "pw-one")
        # The admin-set password may be changed at once; the self-chosen one may not.
        assert change(http, user["id"], "pw-one", "pw-two").status_code == 204
        early = change(http, user["id"], "pw-two", "pw-three")
        assert early.status_code == 400
        assert "minimum password age" in early.json()["error"]["message"]

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import cloudfixture


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cloudfixture.Cloud]:
    """A fresh cloud per test module (identity settings at their defaults, cheap bcrypt)."""
    with cloudfixture.in_process(Path(tmp_path_factory.mktemp("cloud"))) as running:
        yield running


@pytest.fixture(scope="module")
def admin(cloud: cloudfixture.Cloud):  # type: ignore[no-untyped-def]
    return cloud.sdk("stackbox-admin")

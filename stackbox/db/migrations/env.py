"""Alembic environment: the engine comes from the caller (stackbox.db.migrate)."""

from __future__ import annotations

from alembic import context

from stackbox.compute import models as compute_models
from stackbox.db.base import Base
from stackbox.identity import models as identity_models
from stackbox.image import models as image_models
from stackbox.network import models as network_models

# Imported so their tables are on Base.metadata.
del compute_models, identity_models, image_models, network_models

target_metadata = Base.metadata


def run() -> None:
    engine = context.config.attributes.get("engine")
    if engine is None:
        raise RuntimeError("stackbox runs migrations with an engine (stackbox.db.migrate)")
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
        )
        context.run_migrations()


run()

"""Process-wide image service state: settings, stores and the staging area."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stackbox.config import ImageSettings
from stackbox.image import stores as filestores

# Import methods this build can run; the settings choose among them.
IMPLEMENTED_IMPORTS = ("glance-direct", "web-download", "copy-image", "glance-download")


@dataclasses.dataclass
class ImageRuntime:
    settings: ImageSettings
    state_dir: Path
    base_url: str
    stores: dict[str, filestores.FileStore]
    staging: filestores.FileStore

    @property
    def default_store(self) -> filestores.FileStore:
        return next(iter(self.stores.values()))

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "image-cache"

    def store(self, name: str) -> filestores.FileStore:
        if name == filestores.STAGING:
            return self.staging
        return self.stores[name]

    def import_methods(self) -> list[str]:
        """The configured import methods that this build implements."""
        wanted = [m.strip() for m in self.settings.import_methods.split(",") if m.strip()]
        return [m for m in wanted if m in IMPLEMENTED_IMPORTS]


_runtime: ImageRuntime | None = None


def init(settings: ImageSettings, state_dir: Path, base_url: str) -> ImageRuntime:
    global _runtime
    found = filestores.parse(settings.stores, state_dir)
    staging = filestores.FileStore(
        name=filestores.STAGING,
        root=state_dir / "images" / filestores.STAGING,
        description="staging area of image imports",
    )
    for store in (*found.values(), staging):
        store.ensure()
    _runtime = ImageRuntime(settings, state_dir, base_url.rstrip("/"), found, staging)
    return _runtime


def get() -> ImageRuntime:
    if _runtime is None:
        raise RuntimeError("image runtime is not initialised")
    return _runtime

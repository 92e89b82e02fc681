"""Process-wide identity state: settings, key repositories and the caches.

Token validation is the hottest path of every service, so what a token resolves
to (user, scope, roles, catalog) is cached. Every committed identity write
bumps ``generation``, which empties the caches; this is exact because one
process serves the API and owns every write to the identity tables.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from stackbox.config import IdentitySettings
from stackbox.db import session as db_session
from stackbox.identity import keys


@dataclasses.dataclass
class IdentityRuntime:
    settings: IdentitySettings
    base_url: str
    region: str
    token_keys: keys.KeyRepository
    credential_keys: keys.KeyRepository
    state_dir: Path
    generation: int = 0
    # facts key -> (generation, value)
    facts: dict[Any, tuple[int, Any]] = dataclasses.field(default_factory=dict)
    # token string -> (generation, context)
    contexts: OrderedDict[str, tuple[int, Any]] = dataclasses.field(default_factory=OrderedDict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def identity_url(self) -> str:
        return f"{self.base_url}/identity"

    def bump(self) -> None:
        with self.lock:
            self.generation += 1
            self.facts.clear()
            self.contexts.clear()

    def cache_facts(self, key: Any, generation: int, value: Any) -> None:
        with self.lock:
            if generation == self.generation:
                if len(self.facts) > 50_000:
                    self.facts.clear()
                self.facts[key] = (generation, value)

    def cached_facts(self, key: Any) -> Any | None:
        found = self.facts.get(key)
        if found is not None and found[0] == self.generation:
            return found[1]
        return None

    def cache_context(self, token: str, generation: int, ctx: Any) -> None:
        with self.lock:
            if generation != self.generation:
                return
            self.contexts[token] = (generation, ctx)
            if len(self.contexts) > 20_000:
                self.contexts.popitem(last=False)

    def cached_context(self, token: str) -> Any | None:
        found = self.contexts.get(token)
        if found is not None and found[0] == self.generation:
            return found[1]
        return None


_runtime: IdentityRuntime | None = None


def init(runtime: IdentityRuntime) -> None:
    global _runtime
    _runtime = runtime


def get() -> IdentityRuntime:
    if _runtime is None:
        raise RuntimeError("identity runtime is not initialised")
    return _runtime


def changed(session: Session) -> None:
    """Mark this unit of work as an identity write: caches drop once it commits."""
    db_session.after_commit(session, get().bump)

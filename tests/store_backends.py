"""The store backends every protocol test runs against.

A new store joins the whole suite (``tests/test_store_protocol.py``) by adding
one entry to :data:`BACKENDS`: a name and an async context manager that
yields a fresh, opened store (and a way to open the same data again, for the
tests that restart a store).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

from sips_async.stores import MemoryStore, RedisStore, SqliteStore, Store
from tests._redis_server import shared_server


class Backend(Protocol):
    """Makes stores of one kind that share their data (the same file, server)."""

    name: str
    durable: bool

    def make(self, **options: Any) -> Store:
        """A new store object over this backend's data (not opened yet)."""
        ...


class MemoryBackend:
    name = "memory"
    durable = False

    def __init__(self, tmp: Path) -> None:
        del tmp

    def make(self, **options: Any) -> Store:
        return MemoryStore(**options)


class SqliteBackend:
    name = "sqlite"
    durable = True

    def __init__(self, tmp: Path) -> None:
        self.path = tmp / "orders.db"

    def make(self, **options: Any) -> Store:
        return SqliteStore(self.path, **options)


class RedisBackend:
    """The session's redis-server (tests/_redis_server.py), a prefix per backend."""

    name = "redis"
    durable = True

    def __init__(self, tmp: Path) -> None:
        del tmp
        self.prefix = f"t{uuid.uuid4().hex[:12]}:"

    def make(self, **options: Any) -> Store:
        return RedisStore(shared_server().url, prefix=self.prefix, **options)


BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "memory": MemoryBackend,
    "sqlite": SqliteBackend,
    "redis": RedisBackend,
}


@contextlib.asynccontextmanager
async def opened(backend: Backend, **options: Any) -> AsyncIterator[Store]:
    """A store of ``backend``, opened, closed on exit."""
    store = backend.make(**options)
    await store.open()
    try:
        yield store
    finally:
        await store.close()

"""Stores: where orders and their updates are kept.

* :class:`MemoryStore`: one process, nothing survives it (the default);
* :class:`SqliteStore`: one process (one host) that must survive crashes
  and restarts;
* :class:`RedisStore` (extra ``redis``): several processes or hosts behind a
  load balancer, a waiter on one woken by an update that landed on another.

``SipsClient(store=...)`` and the CLI's ``--store`` take a :class:`Store` or
a URL, read by :func:`open_store`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ..errors import SipsConfigError
from ._base import (
    DEFAULT_MAX_UNKNOWN,
    DEFAULT_MAX_UPDATES,
    DEFAULT_RETENTION,
    EVERYTHING,
    Change,
    ChangeListener,
    OrderState,
    Recorded,
    Store,
    TrackedOrder,
)
from ._memory import MemoryStore
from ._sqlite import SqliteStore

if TYPE_CHECKING:
    from ._redis import RedisStore

__all__ = [
    "DEFAULT_MAX_UNKNOWN",
    "DEFAULT_MAX_UPDATES",
    "DEFAULT_RETENTION",
    "EVERYTHING",
    "Change",
    "ChangeListener",
    "MemoryStore",
    "OrderState",
    "Recorded",
    "RedisStore",
    "SqliteStore",
    "Store",
    "TrackedOrder",
    "open_store",
]

_SCHEMES = (
    "memory://, sqlite:///relative.db, sqlite:////abs/path.db, "
    "redis://, rediss://, unix://"
)


def open_store(url: str | os.PathLike[str] | Store, **options: Any) -> Store:
    """A store for ``url`` (no I/O happens until the store is opened).

    ``memory://``; ``sqlite:///relative.db`` or ``sqlite:////abs/path.db``
    (SQLAlchemy's convention; ``?synchronous=FULL`` for power-loss safety);
    ``redis://host:6379/0``, ``rediss://...`` or ``unix:///path/redis.sock``.
    A :class:`Store` is returned as it is. ``options`` go to the store's
    constructor (``retention=``, ``max_updates=``...).

    Raises:
        SipsConfigError: an unknown scheme, a missing path, or the
            ``redis`` extra not installed for a Redis URL.
    """
    if isinstance(url, Store):
        return url
    text = os.fspath(url).strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path:
            raise SipsConfigError(f"memory:// takes no path, got {text!r}")
        return MemoryStore(**options)
    if scheme == "sqlite":
        if parts.netloc:
            raise SipsConfigError(
                f"sqlite URL {text!r} has a host: use sqlite:///relative.db "
                "or sqlite:////abs/path.db"
            )
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path or path.endswith("/"):
            raise SipsConfigError(f"sqlite URL {text!r} names no file")
        query = parse_qs(parts.query)
        if "synchronous" in query:
            options.setdefault("synchronous", query["synchronous"][-1].upper())
        return SqliteStore(path, **options)
    if scheme in ("redis", "rediss", "unix"):
        return _redis_store()(text, **options)
    shown = text if "@" not in text else f"{scheme}://..."
    raise SipsConfigError(f"unknown store {shown!r}: use one of {_SCHEMES}")


def _redis_store() -> type[RedisStore]:
    """The RedisStore class, imported on first use (the extra is optional)."""
    try:
        from ._redis import RedisStore
    except ImportError:
        raise SipsConfigError(
            "a Redis store needs the redis extra: pip install 'sips-async[redis]'"
        ) from None
    return RedisStore


def __getattr__(name: str) -> Any:
    # ``RedisStore`` without importing redis (an optional extra) up front.
    if name == "RedisStore":
        from ._redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

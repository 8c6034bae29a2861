"""The store seam: where received updates and tracked orders are kept.

The tracker only talks to a :class:`Store`. :class:`MemoryStore` is the
default; a SQLite or Redis store implements the same few coroutines.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import OrderedDict
from typing import Final, Protocol, runtime_checkable

from ..models import OrderUpdate

__all__ = ["MemoryStore", "Store", "replay_key"]

logger: Final = logging.getLogger("sips_async")


def replay_key(update: OrderUpdate) -> tuple[str, str, str | None, object]:
    """What makes two deliveries the same event: id, type, status and time."""
    return (
        update.event_id,
        update.event_type,
        update.event_status,
        update.occurred_at,
    )


@runtime_checkable
class Store(Protocol):
    """Persistence for tracked orders and their updates, keyed by order key.

    An order key is the order's ``transactionID``; updates that carry only
    SRS's order id are kept under ``order:<id>`` until :meth:`link` ties that
    id to a transaction.
    """

    async def claim(self, key: str) -> list[OrderUpdate]:
        """Mark ``key`` as awaited (exempt from the bound); return its history."""
        ...

    async def release(self, key: str) -> None:
        """Let ``key`` be dropped again under the unclaimed bound."""
        ...

    async def append(self, key: str, update: OrderUpdate) -> bool:
        """Add ``update`` to ``key``'s history; ``False`` if it is a replay."""
        ...

    async def history(self, key: str) -> list[OrderUpdate]:
        """Every update recorded for ``key``, in arrival order."""
        ...

    async def link(self, key: str, order_id: str) -> list[OrderUpdate]:
        """Tie SRS ``order_id`` to ``key``, merging updates kept under it.

        Returns the updates that moved into ``key``'s history (replays
        excluded), empty when the id was linked already. The merged history
        stays in arrival order.
        """
        ...

    async def find(self, order_id: str) -> str | None:
        """The key ``order_id`` was linked to, if any."""
        ...

    async def close(self) -> None:
        """Release resources."""
        ...


class MemoryStore:
    """The in-process store: dictionaries, bounded for unclaimed orders.

    Orders nobody waits on keep at most ``max_unclaimed`` histories; past
    that, the oldest is dropped with a WARNING. Claimed orders are never
    dropped until released.
    """

    __slots__ = (
        "_alias_of",
        "_aliases",
        "_claimed",
        "_histories",
        "_max_unclaimed",
        "_unclaimed",
    )

    def __init__(self, *, max_unclaimed: int = 10_000) -> None:
        self._max_unclaimed = max_unclaimed
        self._histories: dict[str, list[OrderUpdate]] = {}
        self._claimed: set[str] = set()
        # key -> whether someone had waited on it (then dropping is routine)
        self._unclaimed: OrderedDict[str, bool] = OrderedDict()
        self._aliases: dict[str, str] = {}  # SRS order id -> key
        # key -> its SRS order ids (a queued order has two: the queue GUID
        # from the enqueue answer and the ERP id in later webhooks); a tuple,
        # since a set would cost 216 bytes per pending order
        self._alias_of: dict[str, tuple[str, ...]] = {}

    def __repr__(self) -> str:
        return (
            f"<MemoryStore claimed={len(self._claimed)} "
            f"unclaimed={len(self._unclaimed)}>"
        )

    async def claim(self, key: str) -> list[OrderUpdate]:
        return list(self.claim_nowait(key))

    def claim_nowait(self, key: str) -> list[OrderUpdate] | tuple[()]:
        """:meth:`claim` without a suspension point (in-process only).

        Returns a copy of the history, or an empty tuple (no allocation).
        """
        self._claimed.add(key)
        self._unclaimed.pop(key, None)
        history = self._histories.get(key)
        return list(history) if history else ()

    async def release(self, key: str) -> None:
        self.release_nowait(key)

    def release_nowait(self, key: str) -> None:
        """:meth:`release` without a suspension point (in-process only)."""
        if key in self._claimed:
            self._claimed.discard(key)
            if key in self._histories:
                self._keep_unclaimed(key, awaited=True)
            else:
                self._forget_aliases(key)

    async def append(self, key: str, update: OrderUpdate) -> bool:
        history = self._histories.get(key)
        if history is None:
            self._histories[key] = [update]
            if key not in self._claimed:
                self._keep_unclaimed(key)
            return True
        marker = replay_key(update)
        if any(replay_key(seen) == marker for seen in history):
            return False
        history.append(update)
        return True

    async def history(self, key: str) -> list[OrderUpdate]:
        return list(self._histories.get(key, ()))

    async def link(self, key: str, order_id: str) -> list[OrderUpdate]:
        if self._aliases.get(order_id) == key:
            return []
        self._aliases[order_id] = key
        self._alias_of[key] = (*self._alias_of.get(key, ()), order_id)
        orphan = f"order:{order_id}"
        self._unclaimed.pop(orphan, None)
        moved = [
            u for u in self._histories.pop(orphan, ()) if await self.append(key, u)
        ]
        if moved:
            self._histories[key].sort(key=_arrival)
        return moved

    async def find(self, order_id: str) -> str | None:
        return self._aliases.get(order_id)

    async def close(self) -> None:
        return None

    def _keep_unclaimed(self, key: str, *, awaited: bool = False) -> None:
        self._unclaimed[key] = awaited
        self._unclaimed.move_to_end(key)
        while len(self._unclaimed) > self._max_unclaimed:
            dropped, was_awaited = self._unclaimed.popitem(last=False)
            self._histories.pop(dropped, None)
            self._forget_aliases(dropped)
            # Updates nobody ever waited for are lost: that deserves a
            # WARNING. A history someone already followed is routine.
            logger.log(
                logging.DEBUG if was_awaited else logging.WARNING,
                "dropped updates of %s order %s (more than %d kept)",
                "released" if was_awaited else "untracked",
                dropped,
                self._max_unclaimed,
            )

    def _forget_aliases(self, key: str) -> None:
        for order_id in self._alias_of.pop(key, ()):
            if self._aliases.get(order_id) == key:
                del self._aliases[order_id]


def _arrival(update: OrderUpdate) -> dt.datetime:
    return update.received_at

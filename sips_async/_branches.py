"""``client.branches``: branch locations, a customer's branches, active products.

Active branch products are reference data (srs-api.md 6: "batch-downloaded
and stored locally, refreshed periodically"), so they are cached per branch
for ``ttl`` seconds; concurrent callers for one branch share one request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from ._config import Endpoints
from ._resource import Resource, list_from_wire, segment
from ._retry import Requester
from .errors import SipsConfigError
from .models import ActiveProduct, BranchLocation, CustomerBranch

__all__ = ["DEFAULT_REFERENCE_TTL", "BranchesResource"]

#: Seconds active branch products stay cached (SRS caches prices 4 h).
DEFAULT_REFERENCE_TTL: Final = 3600.0
#: Branches kept in the cache at most (the oldest entry goes first).
_MAX_CACHED: Final = 512


def _retrieve(task: asyncio.Future[tuple[ActiveProduct, ...]]) -> None:
    # Mark a failure as seen even if every waiter was cancelled meanwhile.
    if not task.cancelled():
        task.exception()


class BranchesResource(Resource):
    """SIPS's Branches section, reached as ``client.branches``.

    Args:
        ttl: seconds :meth:`active_products` answers from its cache.
        clock: the cache's monotonic clock (a seam for tests).
    """

    __slots__ = ("_cache", "_clock", "_inflight", "_ttl")

    def __init__(
        self,
        *,
        requester: Requester,
        endpoints: Endpoints,
        timeout: float,
        ttl: float = DEFAULT_REFERENCE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(requester=requester, endpoints=endpoints, timeout=timeout)
        if not ttl >= 0:
            raise SipsConfigError(f"reference ttl must be >= 0, got {ttl!r}")
        self._ttl = float(ttl)
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[ActiveProduct, ...]]] = {}
        self._inflight: dict[str, asyncio.Future[tuple[ActiveProduct, ...]]] = {}

    async def locations(
        self,
        *,
        branch_code: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
        timeout: float | None = None,
    ) -> list[BranchLocation]:
        """SRS's branches (``GET /branches/v2/branchLocations``).

        Integrators report the call may need a branch code or a position;
        both are optional here.
        """
        params: dict[str, str] = {}
        if branch_code is not None:
            params["branchCode"] = segment(branch_code, "branchCode")
        if latitude is not None and longitude is not None:
            params["latitude"] = repr(float(latitude))
            params["longitude"] = repr(float(longitude))
        doc = await self._get_json(
            self._endpoints.branch_locations, params=params or None, timeout=timeout
        )
        return list_from_wire(
            doc, BranchLocation, "branch locations", keys=("branches",)
        )

    async def for_customer(
        self,
        customer_code: str,
        *,
        branch_code: str | None = None,
        timeout: float | None = None,
    ) -> list[CustomerBranch]:
        """The branches a customer orders from, each with its job accounts.

        ``GET /branches/v2/customerBranchLocations/{customerCode}``: choose a
        branch and its numeric ``jobAccountNumber`` here (srs-api.md 3.0 step 4).
        """
        code = segment(customer_code, "customerCode")
        params = None
        if branch_code is not None:
            params = {"branchCode": segment(branch_code, "branchCode")}
        doc = await self._get_json(
            self._endpoints.customer_branch_locations.replace("{customerCode}", code),
            params=params,
            timeout=timeout,
        )
        return list_from_wire(doc, CustomerBranch, "customer branch locations")

    async def active_products(
        self,
        branch_code: str,
        *,
        refresh: bool = False,
        timeout: float | None = None,
    ) -> list[ActiveProduct]:
        """The products a branch stocks (``activeBranchProducts``), cached.

        Args:
            refresh: skip the cache and ask SRS again.

        Raises:
            SipsNotFoundError: SRS does not know the branch.
        """
        code = segment(branch_code, "branchCode")
        key = code.upper()
        hit = self._cache.get(key)
        if hit is not None and not refresh and hit[0] > self._clock():
            return list(hit[1])
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(code, key, timeout))
            task.add_done_callback(_retrieve)
            task.add_done_callback(lambda done: self._forget(key, done))
            self._inflight[key] = task
        return list(await asyncio.shield(task))

    def clear_cache(self) -> None:
        """Forget every cached branch (the next call asks SRS)."""
        self._cache.clear()

    def _forget(
        self, key: str, task: asyncio.Future[tuple[ActiveProduct, ...]]
    ) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _fetch(
        self, code: str, key: str, timeout: float | None
    ) -> tuple[ActiveProduct, ...]:
        doc = await self._get_json(
            self._endpoints.active_branch_products.replace("{branchCode}", code),
            timeout=timeout,
        )
        products = tuple(
            list_from_wire(
                doc, ActiveProduct, "active branch products", keys=("products",)
            )
        )
        if self._ttl > 0:
            self._cache.pop(key, None)
            while len(self._cache) >= _MAX_CACHED:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = (self._clock() + self._ttl, products)
        return products

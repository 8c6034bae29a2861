"""memory: bytes held per pending order, SDK vs a bare dict of futures.

Each measurement runs in a fresh spawned process with ``tracemalloc``:
100,000 keys (uuid4 strings) and, for the SDK, the orders and SRS's 100,000
answers (as bytes, the way they come off the wire) are made before tracing
starts; then the traced growth is measured while the pending orders are
built, after a ``gc.collect()``:

* ``sdk``: what ``client.orders.enqueue(order)`` leaves behind for each
  order, measured by running the real ``enqueue`` with the HTTP layer
  replaced by a stub that returns SRS's answer (``Order Queued``, ``orderID``
  = ``queueID``): the tracker entry and the store's claim
  (``tracker.expect``), the alias ``tracker.link`` records, the decoded
  ``SubmitResult`` and the ``PendingOrder`` holding it all, kept in a list as
  a caller would;
* ``sdk-sqlite``: the same with a ``SqliteStore`` (a file in a temporary
  directory): the Python heap only, since SQLite's page cache is allocated
  outside Python (bounded by its ``cache_size``, 2 MiB by default);
* ``bare``: ``dict[str, asyncio.Future]`` with the same keys.

The target (<= 2x bare) is for the default ``MemoryStore``.

The two run alternately in their own processes; the table shows medians.
"""

from __future__ import annotations

import asyncio
import gc
import linecache
import tempfile
import tracemalloc
import uuid
from functools import partial
from pathlib import Path
from typing import Any, Final, cast

import msgspec
from multidict import CIMultiDict, CIMultiDictProxy

from sips_async import Endpoints, PendingOrder
from sips_async._orders import OrdersResource
from sips_async._retry import Requester
from sips_async._transport import Response
from sips_async.stores import MemoryStore, SqliteStore, Store
from sips_async.webhooks import Tracker
from tests.factories import make_order

from ._harness import Options, Worker, interleave, median
from ._report import ROOT, Outcome, Table, Target, ratios

__all__ = ["Measure", "run"]

SIDES: Final = ("sdk", "sdk-sqlite", "bare")
#: Allocation sites listed for the SDK side.
SITES: Final = 12


class _Answers:
    """Stands in for the SDK's Requester: SRS's next pre-encoded answer."""

    def __init__(self, answers: list[bytes]) -> None:
        self._answers = iter(answers)
        self._headers = CIMultiDictProxy(CIMultiDict[str]())

    async def request(self, method: str, path: str, **kwargs: Any) -> Response:
        return Response(200, self._headers, next(self._answers))


async def _sdk(keys: list[str], store: Store | None = None) -> tuple[int, object]:
    orders = [make_order(transaction_id=key) for key in keys]
    answers = [
        msgspec.json.encode(
            {
                "message": "Order Queued",
                "transactionID": key,
                "orderID": (queue_id := str(uuid.uuid4())),
                "queueID": queue_id,
            }
        )
        for key in keys
    ]
    tracker = Tracker(store or MemoryStore())
    await tracker.open()
    resource = OrdersResource(
        requester=cast(Requester, _Answers(answers)),
        endpoints=Endpoints(),
        timeout=30.0,
        submit_timeout=60.0,
        tracker=tracker,
    )
    enqueue = resource.enqueue
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held: list[PendingOrder] = []
    for order in orders:
        held.append(await enqueue(order))
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    sites = _sites(tracemalloc.take_snapshot(), len(keys))
    tracemalloc.stop()
    return used, (held, tracker, orders, answers, sites)


def _sites(snapshot: tracemalloc.Snapshot, count: int) -> list[dict[str, Any]]:
    """Where the traced bytes were allocated: the top lines, per order."""
    rows = []
    for stat in snapshot.statistics("lineno")[:SITES]:
        frame = stat.traceback[0]
        path = Path(frame.filename)
        if path.is_relative_to(ROOT):
            path = path.relative_to(ROOT)
        elif "sips_async" not in path.parts:
            path = Path(*path.parts[-2:])
        code = linecache.getline(frame.filename, frame.lineno).strip()
        rows.append(
            {
                "site": f"{path}:{frame.lineno}",
                "code": code[:70],
                "per_order": stat.size / count,
                "blocks_per_order": stat.count / count,
            }
        )
    return rows


async def _bare(keys: list[str]) -> tuple[int, object]:
    loop = asyncio.get_running_loop()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    futures: dict[str, asyncio.Future[object]] = {}
    for key in keys:
        futures[key] = loop.create_future()
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used, futures


class Measure:
    """Worker role: one measurement, in a process that is used once."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._side: str = config["side"]
        self._count: int = config["count"]

    async def start(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        return None

    async def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name != "measure":
            raise ValueError(f"unknown command {name!r}")
        keys = [str(uuid.uuid4()) for _ in range(self._count)]
        with tempfile.TemporaryDirectory() as tmp:
            if self._side == "sdk-sqlite":
                store = SqliteStore(Path(tmp) / "orders.db")
                used, kept = await _sdk(keys, store)
                await store.close()
            elif self._side == "sdk":
                used, kept = await _sdk(keys)
            else:
                used, kept = await _bare(keys)
        sites = kept[-1] if isinstance(kept, tuple) else []
        del kept
        return {"bytes": used, "per_order": used / self._count, "sites": sites}


def _measure(side: str, count: int) -> dict[str, Any]:
    worker = Worker(
        "benchmarks.memory:Measure",
        loop="asyncio",
        config={"side": side, "count": count},
    )
    try:
        worker.ready()
        return worker.call("measure")
    finally:
        worker.stop()


def run(opts: Options) -> Outcome:
    """Measure both sides in fresh processes, alternately."""
    count = opts.size(100_000, 20_000)
    print(f"  memory pending orders={count}")
    trials = interleave(
        {side: partial(_measure, side, count) for side in SIDES},
        rounds=opts.processes,
        warmup=0,
    )
    per_order = ratios(trials["sdk"], trials["bare"], "per_order")
    table = Table(
        f"memory: traced bytes at {count:,} pending orders (median of "
        f"{opts.processes} fresh processes per side)",
        ["side", "bytes per order", "total MiB", "SDK/bare"],
    )
    for side in SIDES:
        values = [float(t["per_order"]) for t in trials[side]]
        total = median([float(t["bytes"]) for t in trials[side]])
        table.rows.append(
            [
                side,
                f"{median(values):,.0f}",
                f"{total / 2**20:.1f}",
                f"{median(ratios(trials[side], trials['bare'], 'per_order')):.2f}"
                if side != "bare"
                else "",
            ]
        )
    sites = Table(
        "memory: where the SDK's bytes are (tracemalloc, top lines, one run)",
        ["allocated at", "code", "bytes per order", "blocks per order"],
    )
    for row in trials["sdk"][0]["sites"]:
        sites.rows.append(
            [
                f"`{row['site']}`",
                f"`{row['code'].replace('|', '/')}`",
                f"{row['per_order']:.1f}",
                f"{row['blocks_per_order']:.2f}",
            ]
        )
    return Outcome(
        name="memory",
        title="bytes per pending order vs a dict of futures",
        method=__doc__ or "",
        tables=[table, sites],
        targets=[
            Target("bytes per pending order vs bare", median(per_order), 2.0, False)
        ],
        data={"count": count, "pair_ratios": per_order, "trials": trials},
    )

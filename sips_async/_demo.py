"""``sips-async demo``: sandbox, client and receiver in one process.

Enqueues a batch of sample orders against the bundled sandbox, a little
apart, and shows one progress bar per stage (redrawn in place on a terminal,
printed once at the end otherwise), then a summary table. By default it
lasts a few seconds so a person can watch; ``--fast`` is for CI. Exit code 0
only if every order reached a final status.

The run is a list of steps over one :class:`_World` (sandbox + client);
drawing lives in :mod:`sips_async._demo_view`. New flags go in
:func:`DemoSettings.from_args`, new steps in :func:`run_demo`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final, TextIO

from ._client import SipsClient
from ._config import RetryConfig, WebhookConfig
from ._demo_view import (
    STAGES,
    LiveView,
    Row,
    fit,
    progress_lines,
    summary_table,
    terminal_width,
)
from ._flow import demo_flow
from ._poll import PollConfig
from .errors import SipsError
from .models import (
    LineItem,
    OrderRequest,
    OrderStatus,
    PoDetails,
    ShipTo,
)
from .sandbox import Sandbox, SandboxConfig

__all__ = ["DemoReport", "DemoSettings", "run_demo", "sample_order"]

#: Seconds between redraws of the progress bars.
REFRESH: Final = 0.1
#: The stage (index into ``STAGES``) each status puts an order at.
_STAGE_OF: Final = {
    OrderStatus.PLACED: 2,
    OrderStatus.PROCESSED: 3,
    OrderStatus.SHIPMENT_CREATED: 4,
    OrderStatus.DELIVERED: 5,
}

_PRODUCTS: Final = (
    (75664, "CertainTeed Presidential Solaris Shingles", "Country Gray", "SQ"),
    (81230, "GAF Timberline HDZ Shingles", "Charcoal", "SQ"),
    (40112, "Owens Corning Starter Strip", "N/A", "BD"),
    (55001, "Synthetic Underlayment 10 SQ", "N/A", "RL"),
)


def sample_order(number: int, *, branch: str = "BRRIV") -> OrderRequest:
    """A realistic order for the sandbox; ``number`` makes its PO unique."""
    product_id, name, option, uom = _PRODUCTS[number % len(_PRODUCTS)]
    return OrderRequest(
        source_system="SIPSDEMO",
        customer_code="DEMO001",
        branch_code=branch,
        job_account_number=78,
        account_number="DEMO001",
        notes="sips-async demo order",
        ship_to=ShipTo(
            name="Demo Roofing",
            address_line1="1234 COUNTY LINE ROAD",
            city="ONTARIO",
            state="NY",
            zip_code="14519",
        ),
        po_details=PoDetails(
            po_number=f"DEMO-{number:04d}",
            order_type="WHSE",
            shipping_method="Ground Drop",
            expected_delivery_time="Anytime",
        ),
        order_line_item_details=[
            LineItem(
                product_id=product_id,
                product_name=name,
                option=option,
                quantity=1 + number % 5,
                uom=uom,
            )
        ],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSettings:
    """What one demo run does; built from the ``demo`` command's flags."""

    orders: int = 20
    concurrency: int = 20
    error_rate: float = 0.05
    duplicate_rate: float = 0.1
    reorder_rate: float = 0.1
    step_delay: float = 0.5
    pace: float = 0.1
    seed: int | None = None
    timeout: float = 120.0
    json: bool = False
    store: str | None = None
    #: Fraction of webhooks the sandbox loses for good (polling recovers them).
    lose: float = 0.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DemoSettings:
        """Settings from parsed flags; ``--fast`` changes the unset pacing.

        Raises:
            ValueError: a flag is out of range (named in the message).
        """
        fast = bool(getattr(args, "fast", False))
        step_delay = getattr(args, "step_delay", None)
        pace = getattr(args, "pace", None)
        settings = cls(
            orders=args.orders,
            concurrency=args.concurrency,
            error_rate=args.error_rate,
            duplicate_rate=args.duplicate_rate,
            reorder_rate=args.reorder_rate,
            step_delay=(0.01 if fast else 0.5) if step_delay is None else step_delay,
            pace=(0.0 if fast else 0.1) if pace is None else pace,
            seed=args.seed,
            timeout=args.timeout,
            json=args.json,
            store=getattr(args, "store", None),
            lose=getattr(args, "lose", 0.0),
        )
        if settings.orders < 1:
            raise ValueError("--orders must be at least 1")
        if settings.concurrency < 1:
            raise ValueError("--concurrency must be at least 1")
        if not settings.pace >= 0:
            raise ValueError("--pace must be a number of seconds >= 0")
        if not settings.timeout > 0:
            raise ValueError("--timeout must be a positive number of seconds")
        if not 0.0 <= settings.lose <= 1.0:
            raise ValueError("--lose must be a fraction between 0 and 1")
        return settings


@dataclass
class DemoReport:
    """What the demo saw, order by order."""

    orders: int
    acknowledged: int = 0
    delivered: int = 0
    rejected: int = 0
    failed: int = 0
    updates: int = 0
    duplicates: int = 0
    final: int = 0
    #: Orders whose final status came from a poll (its webhook was lost).
    recovered: int = 0
    delivered_after: list[float] = field(default_factory=list)
    #: Per order, the furthest stage (index into ``STAGES``) it reached; -1: none.
    stage: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if not self.stage:
            self.stage = [-1] * self.orders

    def reach(self, index: int, stage: int) -> None:
        """Order ``index`` got to ``stage`` (never moves back)."""
        self.stage[index] = max(self.stage[index], stage)

    def reached(self) -> list[int]:
        """How many orders reached each stage (or a later one)."""
        return [sum(1 for s in self.stage if s >= i) for i in range(len(STAGES))]

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started

    def percentile(self, q: float) -> float | None:
        """Enqueue-to-delivered seconds at quantile ``q`` (0..1)."""
        data = sorted(self.delivered_after)
        if not data:
            return None
        if len(data) == 1:
            return data[0]
        return statistics.quantiles(data, n=100, method="inclusive")[
            min(98, max(0, round(q * 100) - 1))
        ]

    def as_dict(self) -> dict[str, object]:
        """The summary as a JSON-ready dict."""
        return {
            "orders": self.orders,
            "acknowledged": self.acknowledged,
            "delivered": self.delivered,
            "rejected": self.rejected,
            "failed": self.failed,
            "final": self.final,
            "recovered_by_polling": self.recovered,
            "updates": self.updates,
            "duplicates_dropped": self.duplicates,
            "p50_enqueue_to_delivered_s": self.percentile(0.50),
            "p95_enqueue_to_delivered_s": self.percentile(0.95),
        }

    def rows(self, *, lose: bool = False) -> list[Row]:
        """The summary table's rows (``lose``: with the polling row)."""

        def seconds(value: float | None) -> str:
            return f"{value:.3f} s" if value is not None else "-"

        return [
            Row("orders", str(self.orders)),
            Row("acknowledged", str(self.acknowledged)),
            Row("delivered", str(self.delivered)),
            Row("rejected", str(self.rejected)),
            Row("failed to enqueue", str(self.failed)),
            Row("updates received", str(self.updates)),
            Row("duplicates dropped", str(self.duplicates)),
            *([Row("recovered by polling", str(self.recovered))] if lose else []),
            Row("p50 enqueue->delivered", seconds(self.percentile(0.50))),
            Row("p95 enqueue->delivered", seconds(self.percentile(0.95))),
            Row("run time", f"{self.elapsed():.1f} s"),
        ]


def _bars(report: DemoReport, width: int) -> list[str]:
    extra = [
        ("rejected", str(report.rejected)),
        ("failed", str(report.failed)),
        ("elapsed", f"{report.elapsed():.1f} s"),
    ]
    return progress_lines(report.reached(), report.orders, width=width, extra=extra)


@dataclass
class _World:
    """What the steps of a run share."""

    settings: DemoSettings
    sandbox: Sandbox
    client: SipsClient
    report: DemoReport
    view: LiveView
    width: int


@contextlib.asynccontextmanager
async def _world(
    settings: DemoSettings, view: LiveView, width: int
) -> AsyncIterator[_World]:
    """Sandbox and client (with its receiver), wired to each other."""
    config = SandboxConfig(
        error_rate=settings.error_rate,
        duplicate_rate=settings.duplicate_rate,
        reorder_rate=settings.reorder_rate,
        step_delay=settings.step_delay,
        seed=settings.seed,
        lose_rate=settings.lose,
    )
    # Lost webhooks are recovered by asking SRS once an order goes quiet.
    quiet = max(0.2, 4 * settings.step_delay)
    poll = PollConfig(after=quiet, every=quiet) if settings.lose else None
    hook_secret = secrets.token_urlsafe(24)
    async with (
        Sandbox(config, host="127.0.0.1", port=0) as sandbox,
        SipsClient(
            client_id=config.client_id,
            client_secret=config.client_secret,
            base_url=sandbox.url,
            webhook=WebhookConfig(host="127.0.0.1", port=0, secret=hook_secret),
            retry=RetryConfig(initial_delay=0.05, max_delay=0.5),
            store=settings.store,
            poll=poll,
        ) as client,
    ):
        sandbox.webhook_url = client.webhook_url
        yield _World(
            settings, sandbox, client, DemoReport(orders=settings.orders), view, width
        )


def _header(world: _World) -> str:
    s, w = world.settings, world.width - 1
    lines = [
        f"sips-async demo: {s.orders} orders -> sandbox {world.sandbox.url}",
        f"webhooks -> {world.client.webhook_url_safe}",
        f"faults: {s.error_rate:.0%} 5xx, {s.duplicate_rate:.0%} duplicate, "
        f"{s.reorder_rate:.0%} reordered"
        + (f", {s.lose:.0%} lost for good (polled)" if s.lose else " deliveries"),
    ]
    return "\n".join(fit(line, w) for line in lines) + "\n"


async def _run_order(world: _World, index: int, gate: asyncio.Semaphore) -> None:
    report = world.report
    await asyncio.sleep(index * world.settings.pace)  # orders arrive a bit apart
    started = time.perf_counter()
    try:
        async with gate:
            pending = await world.client.orders.enqueue(sample_order(index + 1))
    except SipsError as exc:
        report.failed += 1
        world.view.write(fit(f"  order {index + 1}: {exc}", world.width - 1))
        return
    report.reach(index, 0)
    acknowledged = finished = False
    async for update in pending.updates():
        if not acknowledged and update.accepted:
            acknowledged = True
            report.acknowledged += 1
            report.reach(index, 1)
        status = update.status
        stage = _STAGE_OF.get(status) if isinstance(status, OrderStatus) else None
        if stage is not None:
            report.reach(index, stage)
        # A poll and a late webhook may both bring the final status: once.
        if update.is_final and not finished:
            finished = True
            report.final += 1
            if update.status == OrderStatus.DELIVERED:
                report.delivered += 1
                report.delivered_after.append(time.perf_counter() - started)
            if update.source == "poll":
                report.recovered += 1
    if pending.rejection is not None:
        report.rejected += 1


async def _redraw(world: _World, stop: asyncio.Event) -> None:
    while not stop.is_set():
        world.view.draw(_bars(world.report, world.width))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), REFRESH)


async def _enqueue_all(world: _World) -> bool:
    """Run every order to its end; ``False`` if the run timed out."""
    gate = asyncio.Semaphore(world.settings.concurrency)
    stop = asyncio.Event()
    painter = asyncio.create_task(_redraw(world, stop))
    try:
        async with asyncio.timeout(world.settings.timeout):
            await asyncio.gather(
                *(_run_order(world, i, gate) for i in range(world.settings.orders))
            )
            # Late (reordered) deliveries still count in the summary.
            await world.sandbox.wait_idle()
    except TimeoutError:
        return False
    finally:
        stop.set()
        await painter
        world.view.finish(_bars(world.report, world.width))
        receiver = world.client.receiver
        if receiver is not None:
            world.report.duplicates = receiver.tracker.duplicates
            world.report.updates = receiver.tracker.received
    return True


class _Fitted:
    """A text stream that cuts every line to the terminal's width."""

    def __init__(self, out: TextIO, width: int) -> None:
        self._out, self._width = out, width

    def write(self, text: str) -> int:
        lines = text.split("\n")
        self._out.write("\n".join(fit(line, self._width - 1) for line in lines))
        return len(text)

    def flush(self) -> None:
        self._out.flush()


async def run_demo(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the demo described by the parsed ``demo`` arguments."""
    out = out or sys.stdout
    if getattr(args, "crash", False):
        from ._demo_crash import run_crash_demo

        return await run_crash_demo(args, out)
    settings = DemoSettings.from_args(args)
    width = terminal_width(out)
    view = LiveView(out, lines=len(STAGES) + 3)
    async with _world(settings, view, width) as world:
        view.write(_header(world))
        flow_ok = await demo_flow(
            world.client, _Fitted(out, width), timeout=settings.timeout
        )
        finished = await _enqueue_all(world)
        report = world.report
    if settings.json:
        out.write(json.dumps(report.as_dict()) + "\n")
    else:
        out.write(
            summary_table(report.rows(lose=bool(settings.lose)), width=width - 1) + "\n"
        )
    if not finished:
        out.write(fit(f"gave up after {settings.timeout} s", width - 1) + "\n")
    ok = report.final == report.orders and report.failed == 0 and finished and flow_ok
    verdict = "all orders reached a final status" if ok else "INCOMPLETE"
    out.write(fit(verdict, width - 1) + "\n")
    out.flush()
    return 0 if ok else 1

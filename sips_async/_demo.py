"""``sips-async demo``: sandbox, client and receiver in one process.

Enqueues a batch of sample orders against the bundled sandbox, shows each
webhook as it arrives (a counter updated in place on a terminal, one plain
line per update otherwise), then prints a summary. Exit code 0 only if every
order reached a final status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Final, TextIO

from ._client import SipsClient
from ._config import RetryConfig, WebhookConfig
from ._poll import PollConfig
from .errors import SipsError
from .models import (
    LineItem,
    OrderRequest,
    OrderStatus,
    OrderUpdate,
    PoDetails,
    ShipTo,
)

__all__ = ["DemoReport", "run_demo", "sample_order"]

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


class _Progress:
    """Live progress: a counter redrawn in place on a TTY, plain lines otherwise."""

    def __init__(self, report: DemoReport, out: TextIO) -> None:
        self._report = report
        self._out = out
        self._tty = out.isatty()

    def update(self, index: int, update: OrderUpdate) -> None:
        r = self._report
        if self._tty:
            width = 24
            done = width * r.final // max(1, r.orders)
            bar = "#" * done + "-" * (width - done)
            self._out.write(
                f"\r  [{bar}] acknowledged {r.acknowledged}/{r.orders}  "
                f"delivered {r.delivered}/{r.orders}  rejected {r.rejected}  "
                f"updates {r.updates}"
            )
        else:
            self._out.write(
                f"  order {index + 1:>3}  {update.po_number or '-':<10} "
                f"{update.event_type:<3} {update.event_status or '-'}\n"
            )
        self._out.flush()

    def close(self) -> None:
        if self._tty:
            self._out.write("\n")
            self._out.flush()


def _summary_table(report: DemoReport) -> str:
    def seconds(value: float | None) -> str:
        return f"{value:.3f} s" if value is not None else "-"

    rows = [
        ("orders", str(report.orders)),
        ("acknowledged", str(report.acknowledged)),
        ("delivered", str(report.delivered)),
        ("rejected", str(report.rejected)),
        ("failed to enqueue", str(report.failed)),
        ("updates received", str(report.updates)),
        ("duplicates dropped", str(report.duplicates)),
        ("recovered by polling", str(report.recovered)),
        ("p50 enqueue->delivered", seconds(report.percentile(0.50))),
        ("p95 enqueue->delivered", seconds(report.percentile(0.95))),
    ]
    width = max(len(name) for name, _ in rows)
    line = "+-" + "-" * width + "-+-" + "-" * 10 + "-+"
    body = [f"| {name:<{width}} | {value:>10} |" for name, value in rows]
    return "\n".join([line, *body, line])


async def _run_order(
    client: SipsClient,
    index: int,
    report: DemoReport,
    progress: _Progress,
    gate: asyncio.Semaphore,
) -> None:
    started = time.perf_counter()
    try:
        async with gate:
            pending = await client.orders.enqueue(sample_order(index + 1))
    except SipsError as exc:
        report.failed += 1
        print(f"  order {index + 1}: enqueue failed: {exc}", file=sys.stderr)
        return
    acknowledged = finished = False
    async for update in pending.updates():
        report.updates += 1
        if not acknowledged and update.accepted:
            acknowledged = True
            report.acknowledged += 1
        # A poll and a late webhook may both report the final status: the
        # order counts once, by the first.
        if update.status == OrderStatus.DELIVERED and not finished:
            report.delivered += 1
            report.delivered_after.append(time.perf_counter() - started)
        if update.is_final and not finished:
            finished = True
            report.final += 1
            report.recovered += update.source == "poll"
        progress.update(index, update)
    if pending.rejection is not None:
        report.rejected += 1


async def run_demo(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the demo described by the parsed ``demo`` arguments."""
    out = out or sys.stdout
    if args.orders < 1:
        raise ValueError("--orders must be at least 1")
    if args.concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    from .sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(
        error_rate=args.error_rate,
        duplicate_rate=args.duplicate_rate,
        reorder_rate=args.reorder_rate,
        step_delay=args.step_delay,
        seed=args.seed,
        lose_rate=getattr(args, "lose", 0.0),
    )
    # Lost webhooks are recovered by asking SRS once an order goes quiet.
    quiet = max(0.2, 4 * args.step_delay)
    poll = PollConfig(after=quiet, every=quiet) if config.lose_rate else None
    report = DemoReport(orders=args.orders)
    hook_secret = secrets.token_urlsafe(24)
    async with (
        Sandbox(config, host="127.0.0.1", port=0) as sandbox,
        SipsClient(
            client_id=config.client_id,
            client_secret=config.client_secret,
            base_url=sandbox.url,
            webhook=WebhookConfig(host="127.0.0.1", port=0, secret=hook_secret),
            retry=RetryConfig(initial_delay=0.05, max_delay=0.5),
            poll=poll,
        ) as client,
    ):
        sandbox.webhook_url = client.webhook_url
        out.write(
            f"sips-async demo: {args.orders} orders -> sandbox {sandbox.url}\n"
            f"webhooks -> {client.webhook_url_safe} "
            f"(faults: {args.error_rate:.0%} 5xx, {args.duplicate_rate:.0%} "
            f"duplicate, {args.reorder_rate:.0%} reordered deliveries)\n"
        )
        progress = _Progress(report, out)
        gate = asyncio.Semaphore(args.concurrency)
        timed_out = False
        try:
            async with asyncio.timeout(args.timeout):
                await asyncio.gather(
                    *(
                        _run_order(client, i, report, progress, gate)
                        for i in range(args.orders)
                    )
                )
                # Late (reordered) deliveries still count in the summary.
                await sandbox.wait_idle()
        except TimeoutError:
            timed_out = True
        progress.close()
        receiver = client.receiver
        if receiver is not None:
            report.duplicates = receiver.tracker.duplicates
            report.updates = receiver.tracker.received
    if args.json:
        out.write(json.dumps(report.as_dict()) + "\n")
    else:
        out.write(_summary_table(report) + "\n")
    if timed_out:
        out.write(f"gave up after {args.timeout} s\n")
    ok = report.final == report.orders and report.failed == 0 and not timed_out
    out.write("all orders reached a final status\n" if ok else "INCOMPLETE\n")
    out.flush()
    return 0 if ok else 1

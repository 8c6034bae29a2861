"""The ``sips-async`` command: demo, sandbox, listen, submit and get.

Credentials come from flags or from ``SIPS_CLIENT_ID``, ``SIPS_CLIENT_SECRET``
and ``SIPS_BASE_URL``. Bad input ends with a one-line error on stderr and a
non-zero exit code, never a traceback: 1 for a failure reported by SRS or the
network, 2 for bad input, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp

from ._client import SipsClient
from ._codec import decode_order, encode
from ._config import DEFAULT_BASE_URL, WebhookConfig
from ._version import __version__
from .errors import FieldsMissingError, SipsError, SipsValidationError
from .models import OrderUpdate, SalesOrder, SubmitResult

__all__ = ["build_parser", "main", "update_to_json"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

logger: Final = logging.getLogger("sips_async")


class UsageError(Exception):
    """Bad input from the command line (exit code 2)."""


# --------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def update_to_json(update: OrderUpdate) -> dict[str, Any]:
    """The JSON object ``listen`` prints for one update (one line each)."""
    return {
        "eventId": update.event_id,
        "eventType": update.event_type,
        "eventStatus": update.event_status,
        "status": str(update.status) if update.status is not None else None,
        "transactionId": update.transaction_id,
        "orderId": update.order_id,
        "poNumber": update.po_number,
        "occurredAt": _iso(update.occurred_at),
        "receivedAt": _iso(update.received_at),
        "accepted": update.accepted,
        "rejected": update.rejected,
        "final": update.is_final,
        "errorCode": update.error_code,
    }


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=str), flush=True)


def _result_json(result: SubmitResult) -> dict[str, Any]:
    return {
        "message": result.message,
        "transactionId": result.transaction_id,
        "orderId": result.order_id,
        "queueId": result.queue_id,
        "queued": result.queued,
    }


def _sales_order_text(order: SalesOrder) -> str:
    customer = order.customer.display_name if order.customer else None
    lines = [
        f"order {order.id} ({order.order_no or '-'}) dated {order.date or '-'}",
        f"  status:   {order.status or '-'}",
        f"  customer: {customer or '-'}",
        f"  billable: {order.billable_amount}",
        f"  products: {len(order.products)}, invoices: {len(order.invoices)}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _add_credentials(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("credentials (flags or environment)")
    group.add_argument("--client-id", help="SRS client id (or SIPS_CLIENT_ID)")
    group.add_argument(
        "--client-secret",
        help="SRS client secret (or SIPS_CLIENT_SECRET; the environment is safer)",
    )
    group.add_argument(
        "--base-url", help=f"SIPS host (or SIPS_BASE_URL; default {DEFAULT_BASE_URL})"
    )


def _add_webhook(parser: argparse.ArgumentParser, *, port: int) -> None:
    group = parser.add_argument_group("webhook receiver")
    group.add_argument("--host", default="127.0.0.1", help="interface to bind")
    group.add_argument("--port", type=_port, default=port, help="port (0: any free)")
    group.add_argument("--path", default="/srs/webhook", help="URL path SRS posts to")
    group.add_argument(
        "--secret",
        help="shared secret (URL segment or X-SIPS-Webhook-Secret header); "
        "or SIPS_WEBHOOK_SECRET",
    )
    group.add_argument(
        "--signing-secret",
        action="append",
        default=[],
        help="Standard Webhooks HMAC secret (repeat for rotation)",
    )
    group.add_argument(
        "--allow-ip", action="append", default=[], help="allowed network (repeat)"
    )
    group.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        help="proxy whose X-Forwarded-For is believed (repeat)",
    )
    group.add_argument(
        "--max-body", type=int, default=64 * 1024, help="body size cap in bytes"
    )
    group.add_argument(
        "--public-url", help="the URL SRS reaches this receiver at, if proxied"
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        help="accept unauthenticated posts (no guard at all)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sips-async``."""
    parser = argparse.ArgumentParser(
        prog="sips-async",
        description="SRS Integration Partner Services from the command line.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (to stderr)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="run sandbox, client and receiver together and watch orders flow"
    )
    demo.add_argument("--orders", type=int, default=20, help="orders to enqueue")
    demo.add_argument("--concurrency", type=int, default=20, help="enqueues at once")
    demo.add_argument("--error-rate", type=float, default=0.05, help="5xx fraction")
    demo.add_argument(
        "--duplicate-rate", type=float, default=0.1, help="replayed webhooks"
    )
    demo.add_argument(
        "--reorder-rate", type=float, default=0.1, help="reordered webhooks"
    )
    demo.add_argument(
        "--step-delay", type=float, default=0.05, help="seconds between updates"
    )
    demo.add_argument("--seed", type=int, default=None, help="seed for the faults")
    demo.add_argument(
        "--lose", type=float, default=0.0, help="webhooks lost for good (polled)"
    )
    demo.add_argument(
        "--timeout", type=float, default=120.0, help="give up after this long"
    )
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")

    sandbox = sub.add_parser("sandbox", help="run the fake SIPS server")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=_port, default=8700)
    sandbox.add_argument("--client-id", default="sandbox")
    sandbox.add_argument("--client-secret", default="sandbox-secret")
    sandbox.add_argument("--token-lifetime", type=float, default=3600.0)
    sandbox.add_argument("--latency", type=float, default=0.0)
    sandbox.add_argument("--error-rate", type=float, default=0.0)
    sandbox.add_argument("--drop-rate", type=float, default=0.0)
    sandbox.add_argument("--duplicate-rate", type=float, default=0.0)
    sandbox.add_argument("--reorder-rate", type=float, default=0.0)
    sandbox.add_argument("--lose-rate", type=float, default=0.0)
    sandbox.add_argument("--step-delay", type=float, default=0.5)
    sandbox.add_argument("--webhook-url", help="where to POST order updates")
    sandbox.add_argument("--webhook-secret", help="sent as X-SIPS-Webhook-Secret")
    sandbox.add_argument("--signing-secret", help="sign updates (Standard Webhooks)")
    sandbox.add_argument("--seed", type=int, default=None)

    listen = sub.add_parser(
        "listen", help="run the webhook receiver; print one JSON line per update"
    )
    _add_webhook(listen, port=8080)
    listen.add_argument(
        "--forward",
        metavar="URL",
        help="also POST each accepted update's original body to URL (best effort)",
    )

    submit = sub.add_parser("submit", help="submit an order from a JSON file")
    submit.add_argument("order_file", metavar="ORDER.json", help="order, SRS wire form")
    submit.add_argument(
        "--queue", action="store_true", help="use SRS's queue (asynchronous mode)"
    )
    submit.add_argument(
        "--wait",
        action="store_true",
        help="with --queue: run a receiver and wait for the acknowledgement",
    )
    submit.add_argument("--timeout", type=float, default=60.0, help="wait this long")
    submit.add_argument("--json", action="store_true", help="print JSON")
    _add_credentials(submit)
    _add_webhook(submit, port=0)

    get = sub.add_parser("get", help="fetch a sales order by id")
    get.add_argument("order_id", metavar="ORDER_ID")
    get.add_argument("--json", action="store_true", help="print JSON")
    _add_credentials(get)

    reconcile = sub.add_parser(
        "reconcile", help="ask SRS once about every outstanding order in a store"
    )
    reconcile.add_argument(
        "--store", required=True, metavar="URL", help="e.g. sqlite:///orders.db"
    )
    reconcile.add_argument(
        "--concurrency", type=int, default=8, help="orders asked about at once"
    )
    reconcile.add_argument("--json", action="store_true", help="print JSON")
    _add_credentials(reconcile)
    return parser


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def _client(
    args: argparse.Namespace,
    webhook: WebhookConfig | None = None,
    store: str | None = None,
) -> SipsClient:
    """A client from flags or environment; raises UsageError when incomplete."""
    client_id = args.client_id or os.environ.get("SIPS_CLIENT_ID")
    secret = args.client_secret or os.environ.get("SIPS_CLIENT_SECRET")
    base_url = args.base_url or os.environ.get("SIPS_BASE_URL") or DEFAULT_BASE_URL
    missing = [
        name
        for name, value in (
            ("--client-id/SIPS_CLIENT_ID", client_id),
            ("--client-secret/SIPS_CLIENT_SECRET", secret),
        )
        if not value
    ]
    if missing:
        raise UsageError("missing credentials: " + ", ".join(missing))
    assert client_id is not None and secret is not None
    return SipsClient(
        client_id=client_id,
        client_secret=secret,
        base_url=base_url,
        webhook=webhook,
        store=store,
    )


def _webhook_config(args: argparse.Namespace) -> WebhookConfig:
    return WebhookConfig(
        host=args.host,
        port=args.port,
        path=args.path,
        secret=args.secret or os.environ.get("SIPS_WEBHOOK_SECRET") or None,
        signing_secrets=tuple(args.signing_secret),
        allowed_ips=tuple(args.allow_ip),
        trusted_proxies=tuple(args.trusted_proxy),
        max_body_size=args.max_body,
        public_url=args.public_url,
        insecure=args.insecure,
    )


def _read_order_file(name: str) -> bytes:
    path = Path(name)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such file: {name}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None


async def _run_until_signal(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def cmd_listen(args: argparse.Namespace) -> int:
    """Run the receiver alone, printing one JSON line per accepted update."""
    from .webhooks import WebhookReceiver

    receiver = WebhookReceiver(_webhook_config(args))
    receiver.on_update(lambda update: _print_json(update_to_json(update)))
    forward_to: str | None = args.forward
    if forward_to is not None and not forward_to.startswith(("http://", "https://")):
        raise UsageError("--forward takes an http:// or https:// URL")
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        if forward_to is not None:
            session = await stack.enter_async_context(
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            )
            receiver.on_update(_forwarder(session, forward_to))
        await stack.enter_async_context(receiver)
        print(f"listening on {receiver.safe_url}", file=sys.stderr, flush=True)
        await _run_until_signal(stop)
    print("stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def _forwarder(
    session: aiohttp.ClientSession, url: str
) -> Callable[[OrderUpdate], Coroutine[Any, Any, None]]:
    async def forward(update: OrderUpdate) -> None:
        try:
            async with session.post(
                url, data=update.raw, headers={"Content-Type": "application/json"}
            ) as resp:
                if resp.status >= 300:
                    logger.warning(
                        "forwarding update %s: HTTP %d", update.event_id, resp.status
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning(
                "forwarding update %s failed: %s", update.event_id, type(exc).__name__
            )

    return forward


async def cmd_submit(args: argparse.Namespace) -> int:
    """Submit an order file synchronously or to the queue."""
    order = decode_order(_read_order_file(args.order_file))
    if args.wait and not args.queue:
        raise UsageError("--wait needs --queue (a synchronous submit needs no wait)")
    webhook = _webhook_config(args) if args.wait else None
    async with _client(args, webhook) as client:
        if not args.queue:
            result = await client.orders.submit(order)
            _show_result(result, args.json)
            return EXIT_OK
        if client.webhook_url:
            print(f"webhook: {client.webhook_url_safe}", file=sys.stderr, flush=True)
        pending = await client.orders.enqueue(order)
        _show_result(pending.result, args.json)
        if args.wait:
            update = await pending.wait(timeout=args.timeout)
            if args.json:
                _print_json(update_to_json(update))
            else:
                print(f"acknowledged: {update.event_type} {update.event_status}")
    return EXIT_OK


def _show_result(result: SubmitResult | None, as_json: bool) -> None:
    if result is None:
        return
    if as_json:
        _print_json(_result_json(result))
    else:
        print(
            f"{result.message or 'ok'}: transactionID={result.transaction_id} "
            f"orderID={result.order_id} queued={result.queued}"
        )


async def cmd_get(args: argparse.Namespace) -> int:
    """Fetch one sales order."""
    async with _client(args) as client:
        order = await client.orders.get(args.order_id)
    if args.json:
        print(encode(order).decode(), flush=True)
    else:
        print(_sales_order_text(order))
    return EXIT_OK


async def cmd_reconcile(args: argparse.Namespace) -> int:
    """Ask SRS once about every outstanding order of a store; print the report."""
    from ._poll import ReconcileReport

    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            end = "\n" if done == total else ""
            print(f"\rreconciled {done}/{total}", end=end, file=sys.stderr, flush=True)
        elif done == total or done % max(1, total // 10) == 0:
            print(f"reconciled {done}/{total}", file=sys.stderr, flush=True)

    async with _client(args, store=args.store) as client:
        report: ReconcileReport = await client.orders.reconcile(
            concurrency=args.concurrency, progress=progress
        )
    groups = {
        "resolved": report.resolved,
        "pending": report.pending,
        "not_found": report.not_found,
        "failed": report.failed,
    }
    if args.json:
        counts = {name: len(rows) for name, rows in groups.items()}
        print(encode({**counts, "orders": groups}).decode(), flush=True)
    else:
        for name, rows in groups.items():
            for row in rows:
                print(
                    f"{name:<9} {row.transaction_id}  PO {row.po_number or '-'}  "
                    f"{row.status or '-'}  ({row.detail})"
                )
        print(
            f"{report.total} outstanding: {len(report.resolved)} resolved, "
            f"{len(report.pending)} pending, {len(report.not_found)} not found, "
            f"{len(report.failed)} failed"
        )
    return EXIT_FAILED if report.failed else EXIT_OK


async def cmd_sandbox(args: argparse.Namespace) -> int:
    """Run the fake SIPS server until interrupted."""
    from .sandbox import Sandbox, SandboxConfig, serve

    cfg = SandboxConfig(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime=args.token_lifetime,
        latency=args.latency,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        duplicate_rate=args.duplicate_rate,
        reorder_rate=args.reorder_rate,
        lose_rate=args.lose_rate,
        step_delay=args.step_delay,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        signing_secret=args.signing_secret,
        seed=args.seed,
    )
    stop = asyncio.Event()

    def ready(sandbox: Sandbox) -> None:
        print(f"sandbox listening on {sandbox.url}", file=sys.stderr, flush=True)

    server = asyncio.ensure_future(serve(cfg, args.host, args.port, ready=ready))
    server.add_done_callback(lambda _: stop.set())
    await _run_until_signal(stop)
    if server.done():
        server.result()  # re-raises why the server stopped on its own
    else:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    print("stopped", file=sys.stderr, flush=True)
    return EXIT_OK


async def cmd_demo(args: argparse.Namespace) -> int:
    """Run the end-to-end demo on the bundled sandbox."""
    from ._demo import run_demo

    return await run_demo(args)


_COMMANDS: Final[
    dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]]
] = {
    "demo": cmd_demo,
    "sandbox": cmd_sandbox,
    "listen": cmd_listen,
    "submit": cmd_submit,
    "get": cmd_get,
    "reconcile": cmd_reconcile,
}


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("sips_async")
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.verbose)
    try:
        return asyncio.run(_COMMANDS[args.command](args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except FieldsMissingError as exc:
        print(
            "error: the order is missing required fields: " + ", ".join(exc.fields),
            file=sys.stderr,
        )
        return EXIT_USAGE
    except SipsValidationError as exc:
        where = f" (at {exc.field_path})" if exc.field_path else ""
        kind = "SRS refused the order" if exc.status else "invalid order"
        print(f"error: {kind}: {exc.description}{where}", file=sys.stderr)
        return EXIT_USAGE if exc.status is None else EXIT_FAILED
    except (UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SipsError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # the last line of defence: never a traceback
        logger.debug("unexpected failure", exc_info=True)
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED

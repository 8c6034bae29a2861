"""The ``sips-async`` command: demo, sandbox, listen, submit, get and trigger,
and the reference calls ``customers validate``, ``branches`` and ``products price``.

Credentials come from flags or from ``SIPS_CLIENT_ID``, ``SIPS_CLIENT_SECRET``
and ``SIPS_BASE_URL`` (or ``--sandbox URL``: a running ``sips-async sandbox``
and its default credentials). Errors name the flags to fix. Bad input ends
with a one-line error on stderr and a non-zero exit code, never a traceback:
1 for a failure reported by SRS or the network, 2 for bad input, 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

import aiohttp
import msgspec

from ._client import SipsClient
from ._codec import decode_order, encode
from ._config import DEFAULT_BASE_URL, WebhookConfig
from ._version import __version__
from .errors import (
    FieldsMissingError,
    OrderRejectedError,
    OrderWaitTimeout,
    SipsConfigError,
    SipsError,
    SipsValidationError,
)
from .models import OrderUpdate, PriceItem, SalesOrder, SubmitResult

__all__ = ["build_parser", "main", "update_line", "update_to_json"]

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
        "transactionID": update.transaction_id,
        "orderID": update.order_id,
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
    """SRS's answer under SRS's own wire names (``transactionID``...)."""
    return {
        "message": result.message,
        "transactionID": result.transaction_id,
        "orderID": result.order_id,
        "queueID": result.queue_id,
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
    group.add_argument(
        "--sandbox",
        metavar="URL",
        help="talk to the sandbox at URL: its base URL and, unless given, its "
        "default credentials; submit --wait also registers its receiver there",
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


#: ``trigger`` events: (eventType, default eventStatus, extra fields).
TRIGGER_EVENTS: Final[dict[str, tuple[str, str, dict[str, str]]]] = {
    "OA": ("OA", "Accepted", {}),
    "OU": ("OU", "Processed", {}),
    "DU": ("DU", "Delivered", {}),
    "OC": ("OC", "Cancelled", {}),
    "rejected": (
        "OA",
        "Rejected",
        {
            "errorCode": "Orders_GeneralError",
            "errorMessage": "Rejected by sips-async trigger",
        },
    ),
    "duplicate": ("OU", "Processed", {}),
}


def _add_trigger(sub: argparse._SubParsersAction[Any]) -> None:
    trigger = sub.add_parser(
        "trigger",
        help="POST one synthetic SRS update to a webhook URL (like stripe trigger)",
        description="POST one synthetic SRS update to a webhook URL. 'rejected' "
        "is an OA Rejected with an errorCode; 'duplicate' posts the same body "
        "twice (the second answer should say duplicate).",
    )
    trigger.add_argument(
        "event", choices=list(TRIGGER_EVENTS), help="which update to send"
    )
    trigger.add_argument("url", metavar="URL", help="the receiver's URL")
    trigger.add_argument(
        "--transaction-id",
        help="subscriberReferenceNum3 (default: a fresh trigger-... id)",
    )
    trigger.add_argument("--order-id", help="subscriberReferenceNum2")
    trigger.add_argument("--po-number", help="subscriberReferenceNum")
    trigger.add_argument("--status", help="eventStatus instead of the event's own")
    trigger.add_argument(
        "--secret",
        help="send it in X-SIPS-Webhook-Secret (or SIPS_WEBHOOK_SECRET)",
    )
    trigger.add_argument(
        "--signing-secret", help="sign the post (Standard Webhooks headers)"
    )
    trigger.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait per answer"
    )
    trigger.add_argument("--json", action="store_true", help="print JSON")


class _HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: ...)`` to every option that has a real default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or not action.option_strings
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
            or isinstance(action, argparse._CountAction)
        ):
            return text
        return f"{text} (default: %(default)s)"


def _finish_subcommands(sub: argparse._SubParsersAction[Any]) -> None:
    """What every subcommand shares: defaults in --help, and -v after it."""
    for parser in sub.choices.values():
        parser.formatter_class = _HelpFormatter
        parser.add_argument(
            "-v",
            "--verbose",
            dest="sub_verbose",
            action="count",
            default=0,
            help="log more (to stderr), here or before the subcommand",
        )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sips-async``."""
    parser = argparse.ArgumentParser(
        prog="sips-async",
        description="SRS Integration Partner Services from the command line.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (to stderr)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run sandbox, client and receiver together and watch orders flow",
    )
    demo.add_argument("--orders", type=int, default=20, help="orders to enqueue")
    demo.add_argument("--concurrency", type=int, default=20, help="enqueues at once")
    demo.add_argument(
        "--error-rate", type=float, default=0.05, help="fraction answered 5xx"
    )
    demo.add_argument(
        "--duplicate-rate", type=float, default=0.1, help="replayed webhooks"
    )
    demo.add_argument(
        "--reorder-rate", type=float, default=0.1, help="reordered webhooks"
    )
    demo.add_argument(
        "--step-delay",
        type=float,
        default=None,
        help="seconds between an order's updates (default: 0.5; --fast: 0.01)",
    )
    demo.add_argument(
        "--pace",
        type=float,
        default=None,
        help="seconds between enqueues (default: 0.1; --fast: 0)",
    )
    demo.add_argument(
        "--fast", action="store_true", help="no pacing: done in well under a second"
    )
    demo.add_argument("--seed", type=int, default=None, help="seed for the faults")
    demo.add_argument(
        "--lose", type=float, default=0.0, help="webhooks lost for good (polled)"
    )
    demo.add_argument(
        "--timeout", type=float, default=120.0, help="give up after this long"
    )
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="where orders and updates are kept (memory://, sqlite:///demo.db; "
        "default: memory, or sqlite:///sips-demo.db with --crash)",
    )
    demo.add_argument(
        "--crash",
        action="store_true",
        help="run the service in a child process, SIGKILL it mid-run and restart "
        "it on the same store: every order must still end final, 0 updates lost",
    )

    sandbox = sub.add_parser("sandbox", help="run the fake SIPS server")
    sandbox.add_argument("--host", default="127.0.0.1", help="loopback interface")
    sandbox.add_argument(
        "--port", type=_port, default=8700, help="port (0: any free one)"
    )
    sandbox.add_argument(
        "--client-id", default="sandbox", help="the client id the sandbox accepts"
    )
    sandbox.add_argument(
        "--client-secret",
        default="sandbox-secret",
        help="the client secret the sandbox accepts",
    )
    sandbox.add_argument(
        "--token-lifetime", type=float, default=3600.0, help="token lifetime, seconds"
    )
    sandbox.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every answer"
    )
    sandbox.add_argument(
        "--error-rate", type=float, default=0.0, help="fraction answered 503"
    )
    sandbox.add_argument(
        "--drop-rate",
        type=float,
        default=0.0,
        help="fraction of connections closed after the order was recorded",
    )
    sandbox.add_argument(
        "--duplicate-rate",
        type=float,
        default=0.0,
        help="fraction of webhook deliveries sent twice",
    )
    sandbox.add_argument(
        "--reorder-rate",
        type=float,
        default=0.0,
        help="fraction of webhook steps delivered after the next one",
    )
    sandbox.add_argument(
        "--step-delay",
        type=float,
        default=0.5,
        help="seconds between an order's webhook updates",
    )
    sandbox.add_argument(
        "--webhook-url",
        help="where to POST order updates (more: POST /_sandbox/webhooks, "
        "or sips-async listen --sandbox URL)",
    )
    sandbox.add_argument(
        "--webhook-secret", help="sent in the X-SIPS-Webhook-Secret header"
    )
    sandbox.add_argument(
        "--signing-secret", help="sign every update (Standard Webhooks)"
    )
    sandbox.add_argument(
        "--lose-rate",
        type=float,
        default=0.0,
        help="fraction of webhook updates lost for good (never redelivered)",
    )
    sandbox.add_argument(
        "--seed", type=int, default=None, help="random seed for reproducible faults"
    )

    listen = sub.add_parser(
        "listen",
        help="run the webhook receiver; print one line per update and refusal",
    )
    _add_webhook(listen, port=8080)
    listen.add_argument(
        "--forward",
        metavar="URL",
        help="also POST each accepted update's original body to URL (best effort)",
    )
    listen.add_argument(
        "--store",
        metavar="URL",
        help="where updates are kept (or SIPS_STORE): memory:// (default), "
        "sqlite:///orders.db, redis://host:6379/0 (several listeners behind a "
        "load balancer share one Redis)",
    )
    listen.add_argument(
        "--sandbox",
        metavar="URL",
        help="register this receiver with the sandbox at URL (sips-async sandbox)",
    )
    listen.add_argument(
        "--json",
        action="store_true",
        help="one JSON line per accepted update on stdout; refusals on stderr",
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
    get.add_argument("order_id", metavar="ORDER_ID", help="SRS's order id, e.g. 874")
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
    _add_reference_commands(sub)
    _add_trigger(sub)
    _finish_subcommands(sub)
    return parser


def _item(text: str) -> PriceItem:
    """``PRODUCT_ID:QUANTITY:UOM[:OPTION]`` for ``products price --item``."""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(
            f"--item takes PRODUCT_ID:QUANTITY:UOM[:OPTION], got {text!r}"
        )
    try:
        product_id, quantity = int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"product id and quantity must be whole numbers in {text!r}"
        ) from None
    options = [parts[3]] if len(parts) == 4 and parts[3] else []
    return PriceItem(
        product_id=product_id, quantity=quantity, uom=parts[2], product_options=options
    )


def _add_reference_commands(sub: Any) -> None:
    """``customers validate``, ``branches`` and ``products price``."""
    customers = sub.add_parser("customers", help="SRS customers")
    customers_sub = customers.add_subparsers(dest="customers_command", metavar="ACTION")
    validate = customers_sub.add_parser(
        "validate", help="may this customer order? (exit 1 if not)"
    )
    validate.add_argument("account_number", metavar="ACCOUNT")
    validate.add_argument(
        "--integration-key",
        help="the customer's RoofHub integration key (or SIPS_INTEGRATION_KEY)",
    )
    validate.add_argument("--json", action="store_true", help="print JSON")
    _add_credentials(validate)

    branches = sub.add_parser(
        "branches",
        help="branch locations; a customer's branches and job accounts; "
        "a branch's active products",
    )
    branches.add_argument("--customer", help="list this customer's branches")
    branches.add_argument(
        "--products", metavar="BRANCH", help="list the products active at BRANCH"
    )
    branches.add_argument("--json", action="store_true", help="print JSON")
    _add_credentials(branches)

    products = sub.add_parser("products", help="SRS products")
    products_sub = products.add_subparsers(dest="products_command", metavar="ACTION")
    price = products_sub.add_parser("price", help="customer-specific prices")
    price.add_argument("--customer", required=True, help="customer code")
    price.add_argument("--branch", required=True, help="branch code")
    price.add_argument(
        "--job-account", type=int, required=True, help="numeric job account number"
    )
    price.add_argument(
        "--item",
        type=_item,
        action="append",
        required=True,
        help="PRODUCT_ID:QUANTITY:UOM[:OPTION] (repeat)",
    )
    price.add_argument("--source-system", default="", help="your SRS source system")
    price.add_argument("--json", action="store_true", help="print JSON")
    _add_credentials(price)


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def _client(
    args: argparse.Namespace,
    webhook: WebhookConfig | None = None,
    store: str | None = None,
) -> SipsClient:
    """A client from flags or environment; raises UsageError when incomplete.

    With ``--sandbox URL`` the sandbox's URL and default credentials are
    used (flags still win), never the environment's.
    """
    sandbox: str | None = getattr(args, "sandbox", None)
    if sandbox is not None:
        client_id = args.client_id or "sandbox"
        secret = args.client_secret or "sandbox-secret"
        base_url = _http_url(sandbox, "--sandbox")
    else:
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
        raise UsageError(
            "missing credentials: " + ", ".join(missing) + " (or --sandbox URL)"
        )
    assert client_id is not None and secret is not None
    return SipsClient(
        client_id=client_id,
        client_secret=secret,
        base_url=base_url,
        webhook=webhook,
        store=store,
    )


def _http_url(value: str, flag: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise UsageError(f"{flag} takes an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _webhook_config(args: argparse.Namespace) -> WebhookConfig:
    """The receiver's configuration from flags; a guard is required.

    Raises:
        UsageError: no guard and no ``--insecure``, in flag names.
    """
    secret = args.secret or os.environ.get("SIPS_WEBHOOK_SECRET") or None
    guarded = bool(secret or args.signing_secret or args.allow_ip)
    if not guarded and not args.insecure:
        if getattr(args, "sandbox", None) is None:
            raise UsageError(
                "the webhook receiver needs a guard: --secret SECRET (or the "
                "SIPS_WEBHOOK_SECRET environment variable), --signing-secret or "
                "--allow-ip; or --insecure to accept unauthenticated posts"
            )
        # Registered with the sandbox by URL: a fresh secret rides in it.
        secret = secrets.token_urlsafe(24)
    return WebhookConfig(
        host=args.host,
        port=args.port,
        path=args.path,
        secret=secret,
        signing_secrets=tuple(args.signing_secret),
        allowed_ips=tuple(args.allow_ip),
        trusted_proxies=tuple(args.trusted_proxy),
        max_body_size=args.max_body,
        public_url=args.public_url,
        insecure=args.insecure,
    )


@contextlib.asynccontextmanager
async def _registered(sandbox: str | None, url: str | None) -> AsyncIterator[None]:
    """Register ``url`` as a webhook with the sandbox for the block's duration."""
    if sandbox is None or url is None:
        yield
        return
    endpoint = _http_url(sandbox, "--sandbox") + "/_sandbox/webhooks"
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10)
    ) as session:
        try:
            async with session.post(endpoint, json={"url": url}) as resp:
                await resp.read()
                if resp.status != 201:
                    raise UsageError(
                        f"--sandbox {sandbox}: registering the webhook answered "
                        f"HTTP {resp.status} (is it a sips-async sandbox?)"
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UsageError(
                f"--sandbox {sandbox}: cannot reach it ({type(exc).__name__})"
            ) from None
        print(f"registered with the sandbox at {sandbox}", file=sys.stderr, flush=True)
        try:
            yield
        finally:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.delete(endpoint, json={"url": url}) as resp:
                    await resp.read()


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


def _clock(value: dt.datetime | None = None) -> str:
    return (value or dt.datetime.now(dt.UTC)).astimezone().strftime("%H:%M:%S")


def update_line(update: OrderUpdate) -> str:
    """The human line ``listen`` prints for one accepted update."""
    status = update.event_status or (str(update.status) if update.status else "-")
    parts = [
        _clock(update.received_at),
        f"{update.event_type:<2}",
        f"{status:<16}",
        f"txn={update.transaction_id or '-'}",
    ]
    if update.order_id:
        parts.append(f"order={update.order_id}")
    if update.po_number:
        parts.append(f"po={update.po_number}")
    if update.rejected:
        parts.append(f"REJECTED ({update.error_code or status})")
    elif update.is_final:
        parts.append("(final)")
    return "  ".join(parts)


class _RefusalLines(logging.Handler):
    """Turns the receiver's "webhook refused" log records into one human line."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.INFO)
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        if not str(record.msg).startswith("webhook refused"):
            return
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 2:
            text = f"refused {args[0]}: {args[1]}"
        else:
            text = record.getMessage().replace("webhook refused", "refused", 1)
        try:
            self._stream.write(f"{_clock()}  {text}\n")
            self._stream.flush()
        except (OSError, ValueError):
            self.handleError(record)


async def cmd_listen(args: argparse.Namespace) -> int:
    """Run the receiver alone: one line per accepted update and per refusal."""
    from .webhooks import WebhookReceiver

    store = args.store or os.environ.get("SIPS_STORE") or None
    receiver = WebhookReceiver(_webhook_config(args), store=store)
    if args.json:
        receiver.on_update(lambda update: _print_json(update_to_json(update)))
    else:
        receiver.on_update(lambda update: print(update_line(update), flush=True))
    forward_to: str | None = args.forward
    if forward_to is not None:
        forward_to = _http_url(forward_to, "--forward")
    stop = asyncio.Event()
    log = logging.getLogger("sips_async")
    refusals: logging.Handler | None = None
    if not (args.json and args.verbose):  # -v --json logs them already
        refusals = _RefusalLines(sys.stderr if args.json else sys.stdout)
        log.addHandler(refusals)
        if log.getEffectiveLevel() > logging.INFO:
            log.setLevel(logging.INFO)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if forward_to is not None:
                session = await stack.enter_async_context(
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
                )
                receiver.on_update(_forwarder(session, forward_to))
            await stack.enter_async_context(receiver)
            print(f"listening on {receiver.safe_url}", file=sys.stderr, flush=True)
            await stack.enter_async_context(_registered(args.sandbox, receiver.url))
            await _run_until_signal(stop)
    finally:
        if refusals is not None:
            log.removeHandler(refusals)
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
            _show_result(result, None, args)
            return EXIT_OK
        if client.webhook_url:
            print(f"webhook: {client.webhook_url_safe}", file=sys.stderr, flush=True)
        async with _registered(args.sandbox if args.wait else None, client.webhook_url):
            pending = await client.orders.enqueue(order)
            if not args.wait:
                _show_result(pending.result, None, args)
                return EXIT_OK
            failure: SipsError | None = None
            update: OrderUpdate | None = None
            try:
                update = await pending.wait(timeout=args.timeout)
            except OrderRejectedError as exc:
                update, failure = exc.update, exc
            except OrderWaitTimeout as exc:
                failure = exc
        _show_result(pending.result, update, args)
    if failure is not None:
        raise failure
    return EXIT_OK


def _show_result(
    result: SubmitResult | None, update: OrderUpdate | None, args: argparse.Namespace
) -> None:
    """One JSON document (``--json``) or text lines: SRS's answer, then the wait."""
    waited = bool(getattr(args, "wait", False))
    if args.json:
        doc: dict[str, Any] = _result_json(result) if result is not None else {}
        if waited:
            doc["acknowledgement"] = (
                update_to_json(update) if update is not None else None
            )
        _print_json(doc)
        return
    if result is not None:
        print(
            f"{result.message or 'ok'}: transactionID={result.transaction_id} "
            f"orderID={result.order_id} queueID={result.queue_id} "
            f"queued={result.queued}"
        )
    if update is not None:
        word = "rejected" if update.rejected else "acknowledged"
        print(f"{word}: {update.event_type} {update.event_status}", flush=True)


async def cmd_trigger(args: argparse.Namespace) -> int:
    """POST one synthetic update (twice for ``duplicate``); 1 unless all 2xx."""
    from .testing import event_json
    from .webhooks import SECRET_HEADER, sign_headers

    url = _http_url(args.url, "URL")
    if not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    event_type, status, fields = TRIGGER_EVENTS[args.event]
    extra: dict[str, Any] = dict(fields)
    txn = args.transaction_id or f"trigger-{secrets.token_hex(4)}"
    event_id = f"evt-{secrets.token_hex(8)}"  # unique across trigger runs
    body = event_json(
        transaction_id=txn,
        event_id=event_id,
        event_type=event_type,
        status=args.status or status,
        order_id=args.order_id,
        po_number=args.po_number,
        **extra,
    )
    headers = {"Content-Type": "application/json"}
    secret = args.secret or os.environ.get("SIPS_WEBHOOK_SECRET") or None
    if secret is not None:
        headers[SECRET_HEADER] = secret
    posts = 2 if args.event == "duplicate" else 1
    ok = True
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=args.timeout)
    ) as session:
        for _ in range(posts):
            sent = dict(headers)
            if args.signing_secret:
                sent.update(sign_headers(args.signing_secret, body))
            try:
                async with session.post(
                    url, data=body, headers=sent, allow_redirects=False
                ) as resp:
                    answer = (await resp.read()).decode(errors="replace")
                    code = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                print(
                    f"error: cannot post to URL {url} ({type(exc).__name__})",
                    file=sys.stderr,
                )
                return EXIT_FAILED
            ok = ok and 200 <= code < 300
            if args.json:
                _print_json(
                    {
                        "event": args.event,
                        "eventId": event_id,
                        "eventType": event_type,
                        "eventStatus": args.status or status,
                        "transactionID": txn,
                        "status": code,
                        "answer": answer[:500],
                    }
                )
            else:
                print(
                    f"{args.event}: {event_type} {args.status or status} "
                    f"txn={txn} -> HTTP {code} {answer[:200]}",
                    flush=True,
                )
    return EXIT_OK if ok else EXIT_FAILED


async def cmd_get(args: argparse.Namespace) -> int:
    """Fetch one sales order."""
    async with _client(args) as client:
        order = await client.orders.get(args.order_id)
    if args.json:
        print(encode(order).decode(), flush=True)
    else:
        print(_sales_order_text(order))
    return EXIT_OK


async def cmd_customers(args: argparse.Namespace) -> int:
    """``customers validate ACCOUNT``: exit 0 if SRS lets it order, else 1."""
    if args.customers_command != "validate":
        raise UsageError("usage: sips-async customers validate ACCOUNT")
    key = args.integration_key or os.environ.get("SIPS_INTEGRATION_KEY") or None
    async with _client(args) as client:
        found = await client.customers.validate(
            args.account_number, integration_key=key
        )
    if args.json:
        _print_json({**msgspec.to_builtins(found), "valid": found.valid})
    else:
        verdict = "valid" if found.valid else "NOT valid"
        print(
            f"{args.account_number}: {verdict} (validIndicator="
            f"{found.valid_indicator!r}) {found.customer_name or ''}".rstrip()
        )
    return EXIT_OK if found.valid else EXIT_FAILED


async def cmd_branches(args: argparse.Namespace) -> int:
    """``branches``: locations, or a customer's branches, or active products."""
    if args.customer and args.products:
        raise UsageError("give --customer or --products, not both")
    async with _client(args) as client:
        if args.products:
            products = await client.branches.active_products(args.products)
            if args.json:
                _print_json([_without_raw(p) for p in products])
            for p in [] if args.json else products:
                variants = ", ".join(
                    f"{v.option} [{'/'.join(v.uoms)}; default {v.default_uom}]"
                    for v in p.product_variant
                )
                print(f"{p.product_id:>8}  {p.product_name or '-'}  {variants}")
            return EXIT_OK
        if args.customer:
            branches = await client.branches.for_customer(args.customer)
            if args.json:
                _print_json(msgspec.to_builtins(branches))
            for b in [] if args.json else branches:
                accounts = ", ".join(
                    f"{j.job_account_number} {j.job_account_name or ''}".strip()
                    for j in b.job_accounts
                )
                print(
                    f"{b.branch_code:<8} {b.branch_name or '-'}  job accounts: "
                    f"{accounts or '-'}"
                )
            return EXIT_OK
        locations = await client.branches.locations()
    if args.json:
        _print_json([_without_raw(b) for b in locations])
    for loc in [] if args.json else locations:
        where = ", ".join(x for x in (loc.city, loc.state) if x)
        print(f"{loc.branch_code or '-':<8} {loc.branch_name or '-'}  {where}")
    return EXIT_OK


def _without_raw(model: Any) -> Any:
    doc = msgspec.to_builtins(model)
    if isinstance(doc, dict):
        doc.pop("raw", None)
    return doc


async def cmd_products(args: argparse.Namespace) -> int:
    """``products price``: one line per item; price 0 reads "call branch"."""
    if args.products_command != "price":
        raise UsageError("usage: sips-async products price --customer ... --item ...")
    async with _client(args) as client:
        lines = await client.products.price(
            customer_code=args.customer,
            branch_code=args.branch,
            job_account_number=args.job_account,
            items=args.item,
            source_system=args.source_system,
        )
    if args.json:
        _print_json(
            [
                {**msgspec.to_builtins(line), "callBranch": line.call_branch}
                for line in lines
            ]
        )
        return EXIT_OK
    for line in lines:
        note = f"  ({line.message})" if line.message else ""
        print(
            f"{line.product_id or '-':>8}  {line.display:<40} per "
            f"{line.price_uom or '-'}  {line.available_status or ''}{note}".rstrip()
        )
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
    "trigger": cmd_trigger,
    "customers": cmd_customers,
    "branches": cmd_branches,
    "products": cmd_products,
    "reconcile": cmd_reconcile,
}


def _configure_logging(verbosity: int) -> logging.Handler:
    """One stderr handler on ``sips_async``, however often ``main()`` runs.

    Propagation is left alone: an application that embeds ``main()`` keeps
    its own handlers.
    """
    log = logging.getLogger("sips_async")
    handler = next((h for h in log.handlers if getattr(h, "_sips_cli", False)), None)
    if not isinstance(handler, logging.StreamHandler):
        handler = logging.StreamHandler(sys.stderr)
        handler._sips_cli = True  # type: ignore[attr-defined]
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        )
        log.addHandler(handler)
    handler.stream = sys.stderr  # a test may have swapped (and closed) the old
    level = logging.WARNING if verbosity == 0 else logging.DEBUG
    handler.setLevel(level)
    log.setLevel(level)
    return handler


#: Python keyword names in configuration errors, and the flags that set them.
_FLAG_ALIASES: Final = {
    "signing_secrets": "--signing-secret",
    "allowed_ips": "--allow-ip",
    "trusted_proxies": "--trusted-proxy",
    "max_body_size": "--max-body",
    "insecure=True": "--insecure",
    "webhook secret": "--secret",
    "webhook path": "--path",
    "webhook port": "--port",
    "signing secrets": "--signing-secret",
    "signing secret": "--signing-secret",
}


def _with_flag_names(message: str, parser: argparse.ArgumentParser | None) -> str:
    """Rewrite a configuration error in the command's flag names.

    Python names (``error_rate``) become flags (``--error-rate``) wherever
    they appear; a plain word that is also a flag (``latency``) only where it
    is what the message is about (``latency must be ...``).
    """
    names = dict(_FLAG_ALIASES)
    if parser is not None:
        for action in parser._actions:
            longs = [o for o in action.option_strings if o.startswith("--")]
            if longs and action.dest not in names:
                names[action.dest] = longs[0]
    for name in sorted(names, key=len, reverse=True):
        plain = name.isalpha() and name.islower()
        tail = r"(?= must)" if plain else r"(?![\w-])"
        message = re.sub(rf"(?<![\w-]){re.escape(name)}{tail}", names[name], message)
    return message


def _subparser(
    parser: argparse.ArgumentParser, name: str
) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found = action.choices.get(name)
            return found if isinstance(found, argparse.ArgumentParser) else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    args.verbose += getattr(args, "sub_verbose", 0)
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
    except SipsConfigError as exc:
        command = _subparser(parser, args.command)
        print(f"error: {_with_flag_names(str(exc), command)}", file=sys.stderr)
        return EXIT_USAGE
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

"""The fake SIPS server: an aiohttp application on loopback that acts like SRS.

Routes (each also under SRS's documented capitalisation, ``/Authentication``
and ``/orders/v2/Submit``):

* ``POST /authentication/token``: client-credentials token (form or JSON).
* ``POST /orders/v2/submit``: synchronous submit, "Order Submitted".
* ``POST /orders/v2/submit/async``: queued submit, "Order Queued", then
  webhooks ``OA`` Accepted, ``OU`` Placed, Processed, Shipment Created and
  ``DU`` Delivered (or one ``OA`` Rejected).
* ``GET /orders/{id}``: the seed's sales-order document, by ERP id or queue id.
* ``GET /_sandbox/stats``: counters as JSON (no token needed).
* The rest of SIPS (customers, branches, products, invoices, Order List)
  from one small data set: see :mod:`._reference` and :mod:`._catalog`.

A queued order that SRS is reported to drop without a webhook (placeholder
job account 1, a product not active at the branch, a bad unit of measure, a
missing option) is answered "Order Queued" and then dropped the same way;
:attr:`SandboxStats.dropped` counts it (``SandboxConfig.silent_drops``).
* ``POST /_sandbox/webhooks`` ``{"url": ...}``: also deliver every update to
  ``url`` (answers 201); ``DELETE`` with the same body stops it. This is how
  ``sips-async listen --sandbox URL`` registers itself with a running
  sandbox. No token needed: the sandbox listens on loopback only.

A fresh sandbox already knows one delivered order, id 874 (the README's
example).

Errors use the seed's envelope ``{"error": {"code", "description",
"source", "status_code"}}``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hmac
import logging
import math
import random
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Self

import msgspec
from aiohttp import web

from .._codec import decode_order, encode, missing_fields
from ..errors import SipsConfigError, SipsValidationError
from ..models import OrderRequest
from ._catalog import drop_reasons
from ._config import SandboxConfig, check_loopback, check_webhook_url
from ._examples import example_record
from ._orders import (
    QUEUED_STEPS,
    REJECTED_STEPS,
    SUBMITTED_STEPS,
    OrderRecord,
    Step,
    build_event,
    sales_order_document,
)
from ._reference import ReferenceRoutes
from ._stats import FAULT_KINDS, SandboxStats, WebhookRecord
from ._walker import Walker, chance

__all__ = ["Sandbox", "serve"]

logger: Final = logging.getLogger("sips_async.sandbox")

_JSON: Final = "application/json"
#: The first ERP order number handed out (SRS's own example is 35818786).
_FIRST_ERP_ID: Final = 35_818_786
_NUMERIC: Final = re.compile(r"[0-9]{1,18}")
_GUID: Final = re.compile(r"[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")
#: Webhook URLs that may be registered at runtime (``POST /_sandbox/webhooks``).
MAX_WEBHOOKS: Final = 32
#: Seconds the server waits for in-flight requests when it stops.
_SHUTDOWN_TIMEOUT: Final = 2.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(status: int, doc: object) -> web.Response:
    return web.Response(status=status, body=encode(doc), content_type=_JSON)


def _error(
    request: web.Request, status: int, code: str, description: str
) -> web.Response:
    """An error answer in the seed's envelope."""
    return _json(
        status,
        {
            "error": {
                "code": code,
                "description": description,
                "source": str(request.url),
                "status_code": status,
            }
        },
    )


def _unauthorized(request: web.Request) -> web.Response:
    return _error(request, 401, "AUTHENTICATION_ERROR", "Invalid credential or token.")


class Sandbox:
    """A fake SIPS server on loopback, for demos, tests and benchmarks.

    It issues tokens, takes synchronous and queued orders, serves order
    details, answers errors in the seed's shape, POSTs order updates to
    ``webhook_url`` and injects the faults its :class:`SandboxConfig` asks
    for. It counts every ``transactionID`` it records, so a test can prove
    that retries never placed an order twice.

    Args:
        config: behaviour and fault knobs (defaults: no faults).
        host: loopback interface to bind (``127.0.0.1``, ``::1`` or
            ``localhost``).
        port: TCP port; 0 picks a free one (read it from :attr:`url`).

    Attributes:
        config: the :class:`SandboxConfig` in force (its ``client_id`` and
            ``client_secret`` are the credentials to give the client).

    Raises:
        SipsConfigError: ``host`` is not a loopback address.

    Example::

        async with Sandbox(SandboxConfig(error_rate=0.2, seed=7)) as sb:
            async with SipsClient(client_id="sandbox",
                                  client_secret="sandbox-secret",
                                  base_url=sb.url,
                                  webhook=WebhookConfig(secret=hook_secret)) as client:
                sb.webhook_url = client.webhook_url
                pending = await client.orders.enqueue(order)
                await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
            print(sb.stats().transactions)
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not 0 <= port <= 65535:
            raise SipsConfigError("port must be 0..65535")
        self.config: Final[SandboxConfig] = config or SandboxConfig()
        self._host = check_loopback(host)
        self._port = port
        self._webhook_url = self.config.webhook_url
        self._registered: list[str] = []
        self._rng = random.Random(self.config.seed)
        self._tokens: dict[str, float] = {}
        self._orders: dict[str, OrderRecord] = {}
        self._by_id: dict[str, OrderRecord] = {}
        self._customers: dict[str, int] = {}
        self._transactions: collections.Counter[str] = collections.Counter()
        self._dropped: dict[str, tuple[str, ...]] = {}
        self._faults: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self._tokens_issued = 0
        self._requests = 0
        example = example_record(self._customers.setdefault("DEMO001", 1))
        self._by_id[str(example.erp_id)] = example
        self._walker = Walker(
            self.config,
            urls=self._webhook_targets,
            rng=self._rng,
            faults=self._faults,
        )
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._closed = False

    def __repr__(self) -> str:
        where = self._url or "not started"
        return f"<Sandbox {where} orders={len(self._orders)}>"

    # -- properties ----------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to give ``SipsClient(base_url=...)``.

        Raises:
            RuntimeError: the sandbox is not started.
        """
        if self._url is None:
            raise RuntimeError("the sandbox is not started (use 'async with')")
        return self._url

    @property
    def webhook_url(self) -> str | None:
        """Where order updates are POSTed; settable at any time (``None``: nowhere)."""
        return self._webhook_url

    @webhook_url.setter
    def webhook_url(self, value: str | None) -> None:
        self._webhook_url = check_webhook_url(value)

    def add_webhook(self, url: str) -> None:
        """Also deliver every update to ``url`` (idempotent).

        What ``POST /_sandbox/webhooks`` does; :attr:`webhook_url` stays.

        Raises:
            SipsConfigError: not an ``http(s)://`` URL, or
                :data:`MAX_WEBHOOKS` are registered already.
        """
        check_webhook_url(url)
        if url in self._registered:
            return
        if len(self._registered) >= MAX_WEBHOOKS:
            raise SipsConfigError(f"at most {MAX_WEBHOOKS} webhooks can be registered")
        self._registered.append(url)

    def remove_webhook(self, url: str) -> bool:
        """Stop delivering to a URL :meth:`add_webhook` added; ``False`` if unknown."""
        if url not in self._registered:
            return False
        self._registered.remove(url)
        return True

    def _webhook_targets(self) -> tuple[str, ...]:
        first = (self._webhook_url,) if self._webhook_url is not None else ()
        return tuple(dict.fromkeys((*first, *self._registered)))

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> str:
        """Start listening; return :attr:`url`.

        Raises:
            RuntimeError: already started, or closed.
        """
        if self._closed:
            raise RuntimeError("a closed Sandbox cannot be restarted")
        if self._runner is not None:
            raise RuntimeError("the sandbox is already started")
        await self._walker.open()
        runner = web.AppRunner(
            self._app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        try:
            await runner.setup()
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._walker.aclose()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        host = f"[{host}]" if ":" in str(host) else str(host)
        self._url = f"http://{host}:{int(port)}"
        logger.info("sandbox listening on %s", self._url)
        return self._url

    async def aclose(self) -> None:
        """Stop listening, cancel pending deliveries, close the HTTP session.

        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                await runner.cleanup()
        finally:
            await self._walker.aclose()
        logger.info("sandbox stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- controls for tests and demos ----------------------------------------

    def stats(self) -> SandboxStats:
        """A snapshot of what the sandbox received, delivered and injected."""
        return SandboxStats(
            transactions=dict(self._transactions),
            webhooks=list(self._walker.records),
            orders=len(self._orders),
            tokens_issued=self._tokens_issued,
            requests=self._requests,
            faults=dict(self._faults),
            dropped={txn: list(why) for txn, why in self._dropped.items()},
        )

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Return when no webhook delivery is scheduled or in flight.

        Args:
            timeout: seconds to wait at most (``None``: no limit).

        Raises:
            TimeoutError: still busy after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            await self._walker.wait_idle()

    def expire_tokens(self) -> None:
        """Make every token issued so far expire now (the next call gets 401)."""
        for token in self._tokens:
            self._tokens[token] = -math.inf

    async def push(
        self,
        transaction_id: str,
        event_type: str = "OU",
        status: str = "Processed",
        *,
        order_id: str | None = None,
        po_number: str | None = None,
        event_id: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        when: dt.datetime | None = None,
    ) -> WebhookRecord | None:
        """Deliver one chosen update now, to :attr:`webhook_url` and every
        URL :meth:`add_webhook` registered.

        For an order the sandbox knows, the order id, PO number and a strictly
        later ``eventDateTime`` are filled in, and a known status moves the
        order (``GET /orders/{id}``) to it. No fault knob applies; a non-2xx
        answer is redelivered like any update.

        Args:
            transaction_id: ``subscriberReferenceNum3``.
            event_type: ``OA``, ``OU``, ``OC``, ``DU``, ``IU``...
            status: the ``eventStatus`` text.
            order_id: ``subscriberReferenceNum2`` (default: the known order's).
            po_number: ``subscriberReferenceNum`` (default: the known order's).
            event_id: ``eventId`` (default: a fresh unique id; reuse one to
                send a replay).
            error_code: ``errorCode``, making the update a rejection.
            error_message: ``errorMessage``.
            when: ``eventDateTime`` (naive UTC; default: now).

        Returns:
            The record of the last delivery attempt.

        Raises:
            RuntimeError: no webhook URL is set or registered, or the sandbox
                is not running.
        """
        if not self._webhook_targets():
            raise RuntimeError("no webhook_url is set: set sb.webhook_url first")
        if self._runner is None:
            raise RuntimeError("the sandbox is not running")
        record = self._orders.get(transaction_id)
        if record is not None:
            record.advance(status)
            if order_id is None:
                order_id = record.webhook_order_id
            if po_number is None and record.order.po_details is not None:
                po_number = record.order.po_details.po_number
            if when is None:
                when = record.next_event_time()
        body = build_event(
            event_type=event_type,
            status=status,
            when=when or dt.datetime.now(dt.UTC).replace(tzinfo=None),
            po_number=po_number,
            order_id=order_id,
            transaction_id=transaction_id,
            event_id=event_id,
            error_code=error_code,
            error_message=error_message,
        )
        return await self._walker.push(transaction_id, body)

    # -- the application -----------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._log_middleware, self._faults_middleware]
        )
        for path in ("/authentication/token", "/Authentication/token"):
            app.router.add_post(path, self._token)
        for path in ("/orders/v2/submit", "/orders/v2/Submit"):
            app.router.add_post(path, self._submit)
            app.router.add_post(path + "/async", self._enqueue)
        app.router.add_get("/orders/{id}", self._order)
        app.router.add_get("/_sandbox/stats", self._stats)
        ReferenceRoutes(
            authorized=self._authorized,
            error=_error,
            orders=lambda: list(self._orders.values()),
        ).register(app)
        app.router.add_post("/_sandbox/webhooks", self._add_webhook)
        app.router.add_delete("/_sandbox/webhooks", self._remove_webhook)
        return app

    @web.middleware
    async def _log_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """One DEBUG line per request (``sips-async sandbox -v`` shows them)."""
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            logger.debug(
                "%s %s -> %d (%.1f ms)",
                request.method,
                request.path,
                status,
                (time.perf_counter() - started) * 1000,
            )

    @web.middleware
    async def _faults_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if request.path.startswith("/_sandbox/"):
            return await handler(request)
        cfg = self.config
        self._requests += 1
        if cfg.latency > 0:
            await asyncio.sleep(cfg.latency)
        if chance(self._rng, cfg.error_rate):
            # Refused before the body is read: nothing recorded, retry is safe.
            self._faults["error"] += 1
            return _error(
                request,
                503,
                "SERVICE_UNAVAILABLE",
                "The service is temporarily unavailable. Try again later.",
            )
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            return _error(request, 404, "BAD_REQUEST_ERROR", "No such endpoint.")
        if chance(self._rng, cfg.drop_rate):
            # The request was handled; its answer is lost with the connection.
            self._faults["drop"] += 1
            transport = request.transport
            if transport is not None:
                transport.close()
        return response

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        expires = self._tokens.get(token.strip())
        return expires is not None and time.monotonic() < expires

    async def _token(self, request: web.Request) -> web.Response:
        cfg = self.config
        try:
            if request.content_type == _JSON:
                doc = msgspec.json.decode(await request.read())
                fields = doc if isinstance(doc, dict) else {}
            else:
                fields = dict(await request.post())
        except (msgspec.DecodeError, ValueError):
            return _error(request, 400, "BAD_REQUEST_ERROR", "Unreadable request body.")
        client_id = str(fields.get("client_id") or "")
        client_secret = str(fields.get("client_secret") or "")
        if not (
            hmac.compare_digest(client_id.encode(), cfg.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), cfg.client_secret.encode())
        ):
            return _unauthorized(request)
        if fields.get("grant_type") != "client_credentials":
            return _error(
                request,
                400,
                "BAD_REQUEST_ERROR",
                "grant_type must be client_credentials.",
            )
        now = time.monotonic()
        for stale in [t for t, expires in self._tokens.items() if expires <= now]:
            del self._tokens[stale]
        token = secrets.token_urlsafe(32)
        self._tokens[token] = now + cfg.token_lifetime
        self._tokens_issued += 1
        # SRS's schema prints the lifetimes as "int32" strings.
        lifetime = str(max(1, math.ceil(cfg.token_lifetime)))
        return _json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            },
        )

    async def _submit(self, request: web.Request) -> web.Response:
        return await self._place(request, queued=False)

    async def _enqueue(self, request: web.Request) -> web.Response:
        return await self._place(request, queued=True)

    async def _place(self, request: web.Request, *, queued: bool) -> web.Response:
        if not self._authorized(request):
            return _unauthorized(request)
        try:
            order = decode_order(await request.read())
        except SipsValidationError as exc:
            return _error(request, 400, "BAD_REQUEST_ERROR", exc.description)
        # SRS's QA is reported to take shipToSequenceNumber for the job account.
        missing = missing_fields(order, body="minimal")
        if missing:
            return _error(
                request,
                400,
                "FieldsMissingFromRequestBody",
                "Required fields missing: " + ", ".join(missing),
            )
        rejection = self._business_rules(order.branch_code)
        if rejection is not None and not queued:
            return _error(request, 400, "Orders_GeneralError", rejection)
        # An unknown branch is rejected by webhook (above); the silent drops
        # are for orders SRS's queue takes, then loses.
        dropped = (
            drop_reasons(order)
            if queued and rejection is None and self.config.silent_drops
            else ()
        )
        record = self._record(
            order, queued=queued, rejection=rejection, dropped=dropped
        )
        if queued:
            return _json(
                200,
                {
                    "message": "Order Queued",
                    "transactionID": record.transaction_id,
                    "orderID": record.queue_id,
                    "queueID": record.queue_id,
                },
            )
        return _json(
            200,
            {
                "message": "Order Submitted",
                "transactionID": record.transaction_id,
                "orderID": str(record.erp_id),
                "queueID": None,
            },
        )

    def _business_rules(self, branch_code: str | None) -> str | None:
        branch = (branch_code or "").strip().upper()
        if branch in self.config.branches:
            return None
        known = ", ".join(self.config.branches)
        return (
            f"Branch '{branch_code}' is not a branch this account can order from. "
            f"Known branches: {known}."
        )

    def _record(
        self,
        order: OrderRequest,
        *,
        queued: bool,
        rejection: str | None,
        dropped: tuple[str, ...] = (),
    ) -> OrderRecord:
        """Record an order (once per transactionID) and schedule its updates."""
        txn = order.transaction_id
        self._transactions[txn] += 1
        existing = self._orders.get(txn)
        if existing is not None:
            # The same transactionID again: the same order, no second walk.
            logger.info("transactionID %s received again", txn)
            return existing
        erp_id = _FIRST_ERP_ID + len(self._orders)
        customer = order.customer_code or ""
        customer_id = self._customers.setdefault(customer, len(self._customers) + 1)
        record = OrderRecord(
            order=order,
            erp_id=erp_id,
            queue_id=str(uuid.uuid4()) if queued else None,
            customer_id=customer_id,
            rejection=rejection,
            dropped=dropped,
        )
        if not queued:
            record.advance("Placed")
        self._orders[txn] = record
        self._by_id[str(erp_id)] = record
        if record.queue_id is not None:
            self._by_id[record.queue_id] = record
        steps: tuple[Step, ...]
        if dropped:
            # Queued, then lost downstream: no webhook ever (U2 items 1-2).
            self._dropped[txn] = dropped
            logger.info("dropping order %s silently: %s", txn, "; ".join(dropped))
            steps = ()
        elif rejection is not None:
            steps = REJECTED_STEPS
        else:
            steps = QUEUED_STEPS if queued else SUBMITTED_STEPS
        self._walker.plan(record, steps)
        self._walker.start(record)
        return record

    async def _order(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _unauthorized(request)
        order_id = request.match_info["id"].strip()
        if not (_NUMERIC.fullmatch(order_id) or _GUID.fullmatch(order_id)):
            return _error(request, 404, "BAD_REQUEST_ERROR", "ID is not a valid ID.")
        record = self._by_id.get(order_id.lstrip("0") or "0") or self._by_id.get(
            order_id.lower()
        )
        if record is None or not record.visible:
            return _error(
                request, 404, "BAD_REQUEST_ERROR", "The id provided does not exist."
            )
        return _json(200, sales_order_document(record))

    async def _stats(self, request: web.Request) -> web.Response:
        return _json(200, self.stats())

    async def _webhook_body(self, request: web.Request) -> str | web.Response:
        """The ``url`` of a ``{"url": ...}`` body, or the error answer."""
        try:
            doc = msgspec.json.decode(await request.read())
        except msgspec.DecodeError:
            doc = None
        url = doc.get("url") if isinstance(doc, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _error(
                request,
                400,
                "BAD_REQUEST_ERROR",
                'Send {"url": "http://..."} (an http:// or https:// URL).',
            )
        return url

    async def _add_webhook(self, request: web.Request) -> web.Response:
        url = await self._webhook_body(request)
        if isinstance(url, web.Response):
            return url
        try:
            self.add_webhook(url)
        except SipsConfigError as exc:
            return _error(request, 409, "BAD_REQUEST_ERROR", str(exc))
        logger.info("webhook registered (%d in all)", len(self._registered))
        return _json(201, {"registered": True, "webhooks": len(self._registered)})

    async def _remove_webhook(self, request: web.Request) -> web.Response:
        url = await self._webhook_body(request)
        if isinstance(url, web.Response):
            return url
        removed = self.remove_webhook(url)
        return _json(200, {"removed": removed, "webhooks": len(self._registered)})


async def serve(
    cfg: SandboxConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ready: Callable[[Sandbox], Any] | None = None,
) -> None:
    """Run a sandbox until cancelled (what ``sips-async sandbox`` runs).

    Prints nothing; the address is logged on ``sips_async.sandbox`` at INFO.

    Args:
        cfg: the sandbox's behaviour.
        host: loopback interface to bind.
        port: TCP port (0: a free one).
        ready: called with the running :class:`Sandbox` once it listens
            (to learn its URL when ``port`` is 0).
    """
    async with Sandbox(cfg, host=host, port=port) as sandbox:
        if ready is not None:
            ready(sandbox)
        await asyncio.Event().wait()

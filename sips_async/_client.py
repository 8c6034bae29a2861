"""SipsClient: wires transport, auth, retries, orders and the webhook receiver."""

from __future__ import annotations

import contextlib
import enum
from types import TracebackType
from typing import Self

import aiohttp

from ._auth import TokenManager
from ._branches import DEFAULT_REFERENCE_TTL, BranchesResource
from ._clock import SYSTEM_CLOCK, Clock
from ._codec import SubmitBody
from ._config import (
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SUBMIT_TIMEOUT,
    DEFAULT_TIMEOUT,
    Endpoints,
    RetryConfig,
    WebhookConfig,
)
from ._customers import CustomersResource
from ._invoices import InvoicesResource
from ._orders import OrdersResource
from ._poll import PollConfig
from ._products import ProductsResource
from ._retry import Requester
from ._transport import Transport
from .errors import SipsClientClosedError, SipsConfigError
from .stores import Store, open_store
from .webhooks import Tracker, WebhookReceiver

__all__ = ["SipsClient"]


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


def _positive(name: str, value: float) -> float:
    if not value > 0:
        raise SipsConfigError(f"{name} must be positive, got {value!r}")
    return float(value)


class SipsClient:
    """An asyncio client for SRS's Integration Partner Services.

    Construction does no I/O; the HTTP session, the token and the webhook
    receiver start in ``async with`` (or :meth:`open`) and stop in
    :meth:`aclose`.

    Args:
        client_id: issued by SRS.
        client_secret: issued by SRS; never logged or shown in a repr.
        base_url: the SIPS host (QA by default) or a sandbox URL.
        webhook: a :class:`WebhookConfig` to start an embedded receiver, a
            :class:`WebhookReceiver` you serve yourself (mounted in your app),
            or ``None`` for no webhooks (``PendingOrder.wait()`` then raises,
            unless ``poll`` is given: it then works by polling alone).
        session: your own ``aiohttp.ClientSession``; it is used as is and
            never closed by the client.
        retry: the retry policy (:class:`RetryConfig`).
        endpoints: request paths, when SRS's differ from the defaults.
        timeout: seconds per attempt of ordinary calls.
        submit_timeout: seconds per attempt of a synchronous submit.
        connect_timeout: seconds to open a connection.
        max_connections: connection pool size (an owned session only).
        store: where orders and updates are kept: a
            :class:`~sips_async.stores.Store` or a URL (``memory://``, the
            default; ``sqlite:///orders.db``; ``redis://host:6379/0``). With
            a :class:`WebhookReceiver` of your own, give it the store instead.
        submit_body: ``"documented"`` (default) sends every key of SRS's
            Submit V2 reference page, ``""`` where the order has nothing;
            ``"minimal"`` sends only the keys the order sets (one
            integrator's QA contract, which leaves out ``price``,
            ``shipTo.name`` and ``jobAccountNumber``).
        reference_ttl: seconds ``branches.active_products`` answers from
            its cache.
        clock: for tests: the time source of token expiry, the retry budget
            and retry waits, an object with ``monotonic()`` and an async
            ``sleep(seconds)``; a fake one lets a test run retries without
            waiting. The real clock by default.
        poll: a :class:`PollConfig` to ask SRS about waited orders that had
            no update for ``poll.after`` seconds (``GET /orders/{id}`` or
            Order List by PO), at most every ``poll.every`` seconds; ``None``
            (default): never on its own. ``orders.reconcile()`` works either
            way.

    Example::

        async with SipsClient(
            client_id=os.environ["SIPS_CLIENT_ID"],
            client_secret=os.environ["SIPS_CLIENT_SECRET"],
            webhook=WebhookConfig(port=8080, secret=os.environ["HOOK_SECRET"]),
        ) as client:
            pending = await client.orders.enqueue(order)
            ack = await pending.wait(timeout=60)
    """

    __slots__ = (
        "_owns_receiver",
        "_owns_tracker",
        "_receiver",
        "_state",
        "_tracker",
        "_transport",
        "branches",
        "customers",
        "invoices",
        "orders",
        "products",
    )

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        base_url: str = DEFAULT_BASE_URL,
        webhook: WebhookConfig | WebhookReceiver | None = None,
        session: aiohttp.ClientSession | None = None,
        retry: RetryConfig | None = None,
        endpoints: Endpoints | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        submit_timeout: float = DEFAULT_SUBMIT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        store: Store | str | None = None,
        submit_body: SubmitBody = "documented",
        reference_ttl: float = DEFAULT_REFERENCE_TTL,
        clock: Clock = SYSTEM_CLOCK,
        poll: PollConfig | None = None,
    ) -> None:
        if not client_id or not client_id.strip():
            raise SipsConfigError("client_id is required")
        if not client_secret or not client_secret.strip():
            raise SipsConfigError("client_secret is required")
        if not base_url.startswith(("http://", "https://")):
            raise SipsConfigError("base_url must start with http:// or https://")
        if max_connections < 1:
            raise SipsConfigError("max_connections must be at least 1")
        if poll is not None and not isinstance(poll, PollConfig):
            raise SipsConfigError("poll takes a PollConfig(after=..., every=...)")
        timeout = _positive("timeout", timeout)
        endpoints = endpoints or Endpoints()
        self._transport = Transport(
            base_url=base_url,
            session=session,
            max_connections=max_connections,
            connect_timeout=_positive("connect_timeout", connect_timeout),
        )
        auth = TokenManager(
            client_id=client_id,
            client_secret=client_secret,
            path=endpoints.token,
            transport=self._transport,
            timeout=timeout,
            clock=clock,
        )
        if isinstance(webhook, WebhookReceiver) and store is not None:
            raise SipsConfigError(
                "store= is for the client's own receiver: pass it to your "
                "WebhookReceiver(store=...) instead"
            )
        if isinstance(webhook, WebhookConfig):
            self._receiver: WebhookReceiver | None = WebhookReceiver(
                webhook, store=store
            )
            self._owns_receiver = True
        else:
            self._receiver = webhook
            self._owns_receiver = False
        # Without a receiver the store still keeps the outbox: every order
        # is written before it leaves, and outstanding() sees it.
        self._owns_tracker = self._receiver is None
        self._tracker = (
            self._receiver.tracker
            if self._receiver is not None
            else self._own_tracker(open_store(store or "memory://"), poll)
        )
        #: Order calls: ``submit``, ``enqueue``, ``get``, ``track``,
        #: ``outstanding``.
        requester = Requester(
            transport=self._transport,
            auth=auth,
            retry=retry or RetryConfig(),
            clock=clock,
        )
        #: Customers: ``validate``, ``get``, ``order_templates``.
        self.customers = CustomersResource(
            requester=requester, endpoints=endpoints, timeout=timeout
        )
        #: Branches: ``locations``, ``for_customer``, ``active_products``.
        self.branches = BranchesResource(
            requester=requester, endpoints=endpoints, timeout=timeout, ttl=reference_ttl
        )
        #: Products: ``price``, ``catalog``.
        self.products = ProductsResource(
            requester=requester, endpoints=endpoints, timeout=timeout
        )
        #: Invoices: ``list``, ``get``, ``pdf``.
        self.invoices = InvoicesResource(
            requester=requester, endpoints=endpoints, timeout=timeout
        )
        #: Order calls: ``submit``, ``enqueue``, ``get``, ``track``, ``check``,
        #: ``list``.
        self.orders = OrdersResource(
            requester=requester,
            branches=self.branches,
            body=submit_body,
            endpoints=endpoints,
            timeout=timeout,
            submit_timeout=_positive("submit_timeout", submit_timeout),
            tracker=self._tracker,
            tracker_shared=self._receiver is not None and not self._owns_receiver,
            poll=poll,
        )
        self._state = _State.NEW

    @staticmethod
    def _own_tracker(store: Store, poll: PollConfig | None) -> Tracker:
        # With no receiver, waiters are fed by polling, or by a shared store
        # (Redis) whose other instances receive SRS's webhooks.
        shared = bool(getattr(store, "shared", False))
        return Tracker(store, fed=poll is not None or shared)

    def __repr__(self) -> str:
        hook = f" webhook={self.webhook_url_safe}" if self._receiver else ""
        base = self._transport.base_url
        return f"<SipsClient {self._state.value} base_url={base!r}{hook}>"

    @property
    def webhook_url_safe(self) -> str | None:
        """``webhook_url`` with the secret masked, for logs and displays."""
        return self._receiver.safe_url if self._receiver is not None else None

    @property
    def webhook_url(self) -> str | None:
        """The full URL SRS must POST to (secret segment included), once bound."""
        return self._receiver.url if self._receiver is not None else None

    @property
    def receiver(self) -> WebhookReceiver | None:
        """The webhook receiver in use, if any."""
        return self._receiver

    @property
    def is_open(self) -> bool:
        """Whether the client is open for calls."""
        return self._state is _State.OPEN

    async def open(self) -> Self:
        """Open the session and start the embedded receiver (``async with`` does it)."""
        if self._state is _State.OPEN:
            return self
        if self._state is _State.CLOSED:
            raise SipsClientClosedError("a closed SipsClient cannot be reopened")
        async with contextlib.AsyncExitStack() as stack:
            await self._transport.open()
            stack.push_async_callback(self._transport.aclose)
            if self._receiver is not None and self._owns_receiver:
                await self._receiver.start()
                stack.push_async_callback(self._receiver.aclose)
            else:
                await self._tracker.open()
            stack.pop_all()
        self._state = _State.OPEN
        return self

    async def aclose(self) -> None:
        """Close everything the client owns; idempotent.

        Every ``wait()`` still pending on an order of this client is woken
        with :class:`~sips_async.errors.SipsClientClosedError`. A session or a
        receiver passed in by the caller stays open for its other users.
        """
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        try:
            await self.orders.close_polls()
            if self._receiver is not None and self._owns_receiver:
                await self._receiver.aclose()
            elif self._owns_tracker:
                await self._tracker.close()
            else:
                self.orders.close_handed_out()
        finally:
            await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

"""Configuration objects and defaults (frozen, validated on construction)."""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from typing import Final, Literal

from .errors import SipsConfigError

__all__ = [
    "DEFAULT_BASE_URL",
    "Endpoints",
    "RetryConfig",
    "WebhookConfig",
]

#: SRS's QA/staging host (srs-api.md 1); production is a separate host.
DEFAULT_BASE_URL: Final = "https://services-qa.roofhub.pro"
DEFAULT_TIMEOUT: Final = 30.0
#: Synchronous submits go straight to SRS's ERP and can be slow (srs-api.md 3.1).
DEFAULT_SUBMIT_TIMEOUT: Final = 60.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_MAX_CONNECTIONS: Final = 100
DEFAULT_MAX_BODY: Final = 64 * 1024
#: RFC 3986 "unreserved": what a URL path segment carries unescaped.
_URL_SAFE: Final = re.compile(r"[A-Za-z0-9._~-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoints:
    """Request paths on the SIPS host; all configurable, defaults per DESIGN.md."""

    token: str = "/authentication/token"
    submit: str = "/orders/v2/submit"
    enqueue: str = "/orders/v2/submit/async"
    order: str = "/orders/{id}"
    #: Order List (srs-api.md 3.3).
    order_list: str = "/orders/List"
    #: Customers (srs-api.md 3.7, 6).
    validate_customer: str = "/customers/validate/"
    customer: str = "/customers/{customerCode}"
    order_templates: str = "/customers/v2/orderTemplates/{customerCode}"
    #: Branches (srs-api.md 3.0, 6).
    branch_locations: str = "/branches/v2/branchLocations"
    customer_branch_locations: str = (
        "/branches/v2/customerBranchLocations/{customerCode}"
    )
    active_branch_products: str = "/branches/v2/activeBranchProducts/{branchCode}"
    #: Products (srs-api.md 6).
    price: str = "/products/v2/price"
    catalog: str = "/products/v2/catalog"
    #: Invoices (srs-api.md 3.6); SRS has not published the PDF path: a guess.
    invoices_list: str = "/invoices/list"
    invoice: str = "/invoices/{invoiceNumber}"
    invoice_pdf: str = "/invoices/{invoiceNumber}/pdf"

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if not getattr(self, name).startswith("/"):
                raise SipsConfigError(f"endpoint {name!r} must start with '/'")
        for name, placeholder in _PLACEHOLDERS.items():
            if placeholder not in getattr(self, name):
                raise SipsConfigError(f"endpoint {name!r} must contain {placeholder!r}")


#: The path parameter each templated endpoint must contain.
_PLACEHOLDERS: Final = {
    "order": "{id}",
    "customer": "{customerCode}",
    "order_templates": "{customerCode}",
    "customer_branch_locations": "{customerCode}",
    "active_branch_products": "{branchCode}",
    "invoice": "{invoiceNumber}",
    "invoice_pdf": "{invoiceNumber}",
}


SubmitRetry = Literal["safe", "always", "never"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryConfig:
    """How failed requests are retried.

    Delays grow exponentially from ``initial_delay`` up to ``max_delay`` with
    full jitter (a uniform draw between 0 and the cap); a ``Retry-After``
    answer replaces the draw, capped at ``max_retry_after``. Retries stop
    after ``max_tries`` attempts in all or ``max_time`` seconds counted from
    the call's start (first attempt included), whichever comes first; a wait
    is cut to the time left, and a ``Retry-After`` longer than the time left
    ends the call.

    ``submit`` is the policy for the two order-placing calls, which SRS does
    not promise to deduplicate:

    * ``"safe"`` (default): re-send only when the order provably did not
      reach SRS: the connection could not be opened, the token request before
      it failed, or SRS answered 503 or 429, the two statuses HTTP defines for
      a request refused before it was handled. Anything else (500, 502, 504,
      a reset or timeout after sending) may have placed the order and is
      raised for you to check before re-sending.
    * ``"always"``: retry those too, reusing the same ``transactionID``.
    * ``"never"``: never re-send an order.
    """

    max_tries: int = 3
    max_time: float = 60.0
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    submit: SubmitRetry = "safe"

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise SipsConfigError("max_tries must be at least 1")
        if self.max_time <= 0 or self.initial_delay < 0 or self.max_delay < 0:
            raise SipsConfigError("retry times must be positive")
        if self.submit not in ("safe", "always", "never"):
            raise SipsConfigError("submit must be 'safe', 'always' or 'never'")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    """Where and how the embedded webhook receiver listens.

    SRS signs nothing, so at least one guard is required unless
    ``insecure=True`` is given explicitly:

    * ``secret``: a shared secret SRS sends back either as the last path
      segment of the URL registered with it (``client.webhook_url`` is that
      URL) or in an ``X-SIPS-Webhook-Secret`` header; compared in constant
      time.
    * ``signing_secrets``: HMAC-SHA256 keys in the Standard Webhooks scheme
      (``webhook-id``/``webhook-timestamp``/``webhook-signature``, or the
      ``svix-*`` spellings), several for rotation; for relays and the
      sandbox. Each is base64, ``whsec_`` prefix and padding optional,
      decoded exactly as the ``standardwebhooks`` and ``svix`` libraries do.
    * ``allowed_ips``: networks allowed to post. ``trusted_proxies`` are the
      proxies whose ``X-Forwarded-For`` is believed. A list that admits
      everyone (``0.0.0.0/0``, ``::/0``) is no guard, and is logged at WARNING.

    Attributes:
        host: interface to bind.
        port: TCP port; 0 picks a free one (read it from ``webhook_url``).
        path: URL path SRS posts to.
        public_url: the URL SRS reaches this receiver at, when it differs
            from the bound address (behind a proxy or tunnel).
        max_body_size: bodies larger than this (after decompression) are
            refused with 413; a larger ``Content-Length`` is refused unread.
        tolerance: seconds a signed timestamp may differ from now.
        max_unclaimed: orders this SDK never sent or tracked whose updates
            the default in-memory store keeps (oldest dropped first, with a
            WARNING); a store passed in has its own ``max_unknown``.
        header_timeout: seconds a connection has, once it starts a request,
            to send the request line and headers; then it is closed.
        body_timeout: seconds to receive the whole body (408 after).
        keepalive_timeout: seconds an idle connection is kept open.
        max_connections: connections served at once; at the cap, the
            connection idle or stuck in its headers the longest is closed to
            make room (a new one is refused only when every connection is
            busy). ``None``: from the process's file-descriptor limit (half
            of what accept bursts leave; 320 for the common 1024, at most
            1024), so a flood cannot exhaust the descriptors.

    The three timeouts and the cap hold when the receiver listens itself
    (``start()``, ``SipsClient``, ``sips-async listen``); mounted in your
    own aiohttp app, your server's settings apply, except ``body_timeout``.
    """

    host: str = "127.0.0.1"
    port: int = 0
    path: str = "/srs/webhook"
    secret: str | None = field(default=None, repr=False)
    signing_secrets: tuple[str, ...] = field(default=(), repr=False)
    tolerance: float = 300.0
    allowed_ips: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    max_body_size: int = DEFAULT_MAX_BODY
    public_url: str | None = None
    max_unclaimed: int = 10_000
    insecure: bool = False
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    keepalive_timeout: float = 15.0
    max_connections: int | None = None

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise SipsConfigError("webhook path must start with '/'")
        if not 0 <= self.port <= 65535:
            raise SipsConfigError("webhook port must be 0..65535")
        if self.secret is not None and (
            len(self.secret) < 16 or not _URL_SAFE.fullmatch(self.secret)
        ):
            # It travels as a URL path segment: '%', '?', '#', '/' or a space
            # would never arrive as written, and every post would be 401.
            raise SipsConfigError(
                "webhook secret must be at least 16 characters of letters, "
                "digits, '-', '.', '_' or '~' (it is a URL path segment; "
                "secrets.token_urlsafe(24) makes one)"
            )
        if isinstance(self.signing_secrets, str):  # type: ignore[unreachable]
            raise SipsConfigError("signing_secrets takes a sequence of secrets")
        object.__setattr__(self, "signing_secrets", tuple(self.signing_secrets))
        if any(not s for s in self.signing_secrets):
            raise SipsConfigError("signing secrets must be non-empty")
        from .webhooks._guard import signing_key

        for secret in self.signing_secrets:
            signing_key(secret)  # raises SipsConfigError, never echoing it
        for name in ("header_timeout", "body_timeout", "keepalive_timeout"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise SipsConfigError(f"{name} must be a positive number of seconds")
        if self.max_connections is not None and self.max_connections < 1:
            raise SipsConfigError("max_connections must be at least 1 (or None)")
        if self.max_body_size < 1 or self.max_unclaimed < 0 or self.tolerance <= 0:
            raise SipsConfigError("max_body_size, max_unclaimed, tolerance invalid")
        for name in ("allowed_ips", "trusted_proxies"):
            value = tuple(getattr(self, name))
            for net in value:
                try:
                    ipaddress.ip_network(net, strict=False)
                except ValueError as exc:
                    raise SipsConfigError(f"{name}: {net!r} is not a network") from exc
            object.__setattr__(self, name, value)

    @property
    def admits_everyone(self) -> bool:
        """Whether ``allowed_ips`` holds a network of every address (``/0``)."""
        return any(
            ipaddress.ip_network(net, strict=False).prefixlen == 0
            for net in self.allowed_ips
        )

    @property
    def guarded(self) -> bool:
        """Whether any guard is configured (an allow-everyone list is none)."""
        return bool(
            self.secret
            or self.signing_secrets
            or (self.allowed_ips and not self.admits_everyone)
        )

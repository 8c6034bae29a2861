"""The exceptions ``sips_async`` raises.

Everything derives from :class:`SipsError`::

    SipsError
    ├── SipsConfigError (ValueError)            bad settings, found before any I/O
    ├── SipsClientClosedError (RuntimeError)    used after aclose(); wakes waiters
    ├── SipsAPIError                            SRS answered with an error
    │   ├── SipsValidationError (ValueError)    400, or bad input caught locally
    │   │   ├── FieldsMissingError              FieldsMissingFromRequestBody
    │   │   └── OrderCheckError                 check=True found problems
    │   ├── SipsAuthError                       401 after one token refresh, 403
    │   ├── SipsNotFoundError                   404
    │   ├── SipsRateLimitError                  429 (retried, Retry-After honoured)
    │   ├── SipsServerError                     5xx or GeneralError (retried)
    │   └── OrderProcessingError                Orders_GeneralError (never retried)
    ├── SipsConnectionError                     no answer: refused, reset, DNS
    │   └── SipsTimeoutError (TimeoutError)     no answer in time
    ├── SipsResponseError                       an answer we cannot read
    ├── SipsStoreError                          the order store failed (I/O)
    ├── OrderRejectedError                      SRS rejected a queued order (webhook)
    └── OrderWaitTimeout (TimeoutError)         a wait() deadline passed

No exception message, ``repr`` or attribute ever holds a token or secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import OrderProblem, OrderUpdate

__all__ = [
    "FieldsMissingError",
    "OrderCheckError",
    "OrderProcessingError",
    "OrderRejectedError",
    "OrderWaitTimeout",
    "SipsAPIError",
    "SipsAuthError",
    "SipsClientClosedError",
    "SipsConfigError",
    "SipsConnectionError",
    "SipsError",
    "SipsNotFoundError",
    "SipsRateLimitError",
    "SipsResponseError",
    "SipsServerError",
    "SipsStoreError",
    "SipsTimeoutError",
    "SipsValidationError",
]


class SipsError(Exception):
    """Root of every exception raised by ``sips_async``.

    Attributes:
        transaction_id: set on every error ``submit``/``enqueue`` raise after
            the order was written to the store: the order's ``transactionID``,
            to look it up (``client.orders.track()``) instead of re-sending.
        maybe_placed: set with it: ``False`` only when the SDK can prove SRS
            never got (or refused) the request; ``True`` means SRS may have
            placed the order, which then stays outstanding in the store.
    """

    transaction_id: str | None = None
    maybe_placed: bool | None = None


class SipsConfigError(SipsError, ValueError):
    """Raised when the client or receiver is configured wrongly."""


class SipsClientClosedError(SipsError, RuntimeError):
    """Raised when a closed client is used, and into waiters it wakes on close."""


class SipsAPIError(SipsError):
    """Raised when SRS answers a request with an error.

    Attributes:
        status: the HTTP status, or ``None`` when the error was found locally.
        code: SRS's error code (``GeneralError``, ``Orders_GeneralError``,
            ``AUTHENTICATION_ERROR``...) when the body carried one.
        description: the human-readable text from the body.
        source: the URL or place the error refers to.
        raw: the response body as received (may be empty).
        method: the HTTP method of the request.
        path: the request path (never the query string or credentials).
        retry_after: seconds the server asked us to wait, if it said.
    """

    def __init__(
        self,
        description: str,
        *,
        status: int | None = None,
        code: str | None = None,
        source: str | None = None,
        raw: bytes = b"",
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.description = description
        self.status = status
        self.code = code
        self.source = source
        self.raw = raw
        self.method = method
        self.path = path
        self.retry_after = retry_after
        super().__init__(self._summary())

    def _summary(self) -> str:
        head = []
        if self.method and self.path:
            head.append(f"{self.method} {self.path}")
        if self.status is not None:
            head.append(f"HTTP {self.status}")
        if self.code:
            head.append(self.code)
        prefix = " ".join(head)
        return f"{prefix}: {self.description}" if prefix else self.description

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"description={self.description!r})"
        )


class SipsValidationError(SipsAPIError, ValueError):
    """Raised for a 400 answer, or when an order fails local checks.

    A locally found error has ``status`` ``None`` and names the offending
    field in ``field_path`` (JSON path such as ``$.orderLineItemDetails[0]``);
    nothing was sent.
    """

    def __init__(
        self,
        description: str,
        *,
        field_path: str | None = None,
        status: int | None = None,
        code: str | None = None,
        source: str | None = None,
        raw: bytes = b"",
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.field_path = field_path
        super().__init__(
            description,
            status=status,
            code=code,
            source=source,
            raw=raw,
            method=method,
            path=path,
            retry_after=retry_after,
        )


class FieldsMissingError(SipsValidationError):
    """Raised when required fields are missing (``FieldsMissingFromRequestBody``).

    ``fields`` names every missing field by its wire name and path, e.g.
    ``("customerCode", "orderLineItemDetails[0].uom")``.
    """

    def __init__(
        self,
        description: str,
        *,
        fields: tuple[str, ...] = (),
        status: int | None = None,
        code: str | None = "FieldsMissingFromRequestBody",
        source: str | None = None,
        raw: bytes = b"",
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.fields = fields
        super().__init__(
            description,
            status=status,
            code=code,
            source=source,
            raw=raw,
            method=method,
            path=path,
            retry_after=retry_after,
        )


class OrderCheckError(SipsValidationError):
    """Raised by ``submit``/``enqueue`` with ``check=True`` when the check fails.

    ``problems`` holds every problem :meth:`OrdersResource.check` found
    (field path, message, suggestion); nothing was sent.
    """

    def __init__(self, problems: tuple[OrderProblem, ...]) -> None:
        self.problems = problems
        super().__init__(
            f"SRS would refuse or silently drop this order ({len(problems)} "
            "problem(s)): " + "; ".join(str(p) for p in problems),
            field_path=problems[0].field if problems else None,
        )


class SipsAuthError(SipsAPIError):
    """Raised when SRS refuses our credentials (401 after one refresh, or 403)."""


class SipsNotFoundError(SipsAPIError):
    """Raised when the requested resource does not exist (404)."""


class SipsRateLimitError(SipsAPIError):
    """Raised when SRS keeps answering 429 after every retry."""


class SipsServerError(SipsAPIError):
    """Raised for 5xx answers and ``GeneralError`` after the retries ran out."""


class OrderProcessingError(SipsAPIError):
    """Raised for ``Orders_GeneralError``: SRS could not process the order.

    Never retried. Keep ``code``, ``description``, ``source`` and ``raw`` for
    SRS support; they hold everything SRS returned.
    """


class SipsConnectionError(SipsError):
    """Raised when no answer came back: connection refused, reset, DNS failure.

    Attributes:
        method: the HTTP method of the request.
        path: the request path.
        sent: ``False`` when the request provably never left this machine
            (the connection could not be opened); ``True`` when it may have
            reached SRS.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        sent: bool = True,
    ) -> None:
        self.method = method
        self.path = path
        self.sent = sent
        where = f"{method} {path}: " if method and path else ""
        super().__init__(f"{where}{message}")


class SipsTimeoutError(SipsConnectionError, TimeoutError):
    """Raised when SRS did not answer within the configured timeout."""


class SipsResponseError(SipsError):
    """Raised when a successful answer cannot be decoded into its model."""


class SipsStoreError(SipsError):
    """Raised when the order store (SQLite, Redis) cannot read or write.

    The webhook receiver answers 503 for an update it could not store, so
    SRS delivers it again; ``enqueue`` raises it before anything is sent.
    """


class OrderRejectedError(SipsError):
    """Raised by ``PendingOrder.wait()`` when SRS rejects a queued order.

    ``update`` is the :class:`~sips_async.OrderUpdate` that said so.
    """

    def __init__(self, update: OrderUpdate) -> None:
        self.update = update
        reason = update.error_code or update.event_status or update.event_type
        super().__init__(
            f"order {update.transaction_id or update.order_id} rejected by SRS "
            f"({update.event_type}: {reason})"
        )


class OrderWaitTimeout(SipsError, TimeoutError):
    """Raised when a wait deadline passes; the order stays tracked.

    ``transaction_id`` names the order, so a later ``client.orders.track()``
    can pick it up again.
    """

    def __init__(self, transaction_id: str, timeout: float | None) -> None:
        self.transaction_id = transaction_id
        self.timeout = timeout
        super().__init__(
            f"no outcome for order {transaction_id} within {timeout} s; "
            "it is still tracked"
        )

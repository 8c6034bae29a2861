"""sips_async: an asyncio SDK for SRS Distribution's Integration Partner Services.

Submit orders to SRS synchronously or through its queue, and await the
order-status webhooks SRS posts back::

    async with SipsClient(client_id=..., client_secret=...,
                          webhook=WebhookConfig(secret=...)) as client:
        pending = await client.orders.enqueue(order)
        ack = await pending.wait(timeout=60)
"""

from __future__ import annotations

from ._client import SipsClient
from ._config import Endpoints, RetryConfig, WebhookConfig
from ._pending import PendingOrder
from ._poll import PollConfig, ReconciledOrder, ReconcileReport
from ._version import __version__
from .errors import (
    FieldsMissingError,
    OrderCheckError,
    OrderProcessingError,
    OrderRejectedError,
    OrderWaitTimeout,
    SipsAPIError,
    SipsAuthError,
    SipsClientClosedError,
    SipsConfigError,
    SipsConnectionError,
    SipsError,
    SipsNotFoundError,
    SipsRateLimitError,
    SipsResponseError,
    SipsServerError,
    SipsStoreError,
    SipsTimeoutError,
    SipsValidationError,
    WebhookVerificationError,
)
from .models import (
    ContactAddress,
    CustomerContactInfo,
    LineItem,
    OrderProblem,
    OrderRequest,
    OrderStatus,
    OrderUpdate,
    PoDetails,
    PriceItem,
    SalesOrder,
    ShipTo,
    SubmitResult,
)
from .stores import MemoryStore, SqliteStore, Store, open_store
from .webhooks import WebhookReceiver, sign_headers

__all__ = [
    "ContactAddress",
    "CustomerContactInfo",
    "Endpoints",
    "FieldsMissingError",
    "LineItem",
    "MemoryStore",
    "OrderCheckError",
    "OrderProblem",
    "OrderProcessingError",
    "OrderRejectedError",
    "OrderRequest",
    "OrderStatus",
    "OrderUpdate",
    "OrderWaitTimeout",
    "PendingOrder",
    "PoDetails",
    "PollConfig",
    "PriceItem",
    "ReconcileReport",
    "ReconciledOrder",
    "RetryConfig",
    "SalesOrder",
    "ShipTo",
    "SipsAPIError",
    "SipsAuthError",
    "SipsClient",
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
    "SqliteStore",
    "Store",
    "SubmitResult",
    "WebhookConfig",
    "WebhookReceiver",
    "WebhookVerificationError",
    "__version__",
    "open_store",
    "sign_headers",
]


def __getattr__(name: str) -> object:
    # ``RedisStore`` needs the optional ``redis`` extra: imported on first use,
    # so ``import sips_async`` works without it (not in ``__all__`` for that).
    if name == "RedisStore":
        from .stores import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

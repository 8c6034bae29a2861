"""The public names of ``sips_async``: exactly DESIGN.md's contract and extras."""

from __future__ import annotations

import importlib
import inspect

import sips_async
import sips_async.errors

#: DESIGN.md "Public API (contract)" and "Errors".
CONTRACT = {
    "SipsClient",
    "WebhookConfig",
    "WebhookReceiver",
    "PendingOrder",
    "OrderRequest",
    "SubmitResult",
    "SalesOrder",
    "OrderUpdate",
    "OrderStatus",
    "SipsError",
    "SipsAPIError",
    "SipsValidationError",
    "FieldsMissingError",
    "SipsAuthError",
    "SipsNotFoundError",
    "SipsServerError",
    "SipsConnectionError",
    "SipsTimeoutError",
    "OrderProcessingError",
    "OrderRejectedError",
    "OrderWaitTimeout",
}
#: Public too, beyond the contract's list.
EXTRAS = {
    "__version__",
    "ContactAddress",
    "CustomerContactInfo",
    "LineItem",
    "OrderCheckError",
    "OrderProblem",
    "PriceItem",
    "PoDetails",
    "ShipTo",
    "Endpoints",
    "RetryConfig",
    "PollConfig",
    "ReconcileReport",
    "ReconciledOrder",
    "MemoryStore",
    "Store",
    "sign_headers",
    "SipsClientClosedError",
    "SipsConfigError",
    "SipsRateLimitError",
    "SipsResponseError",
    "SipsStoreError",
    "WebhookVerificationError",
    "SqliteStore",
    "open_store",
}


def test_all_is_exactly_the_public_names() -> None:
    assert CONTRACT.isdisjoint(EXTRAS)
    assert len(sips_async.__all__) == len(set(sips_async.__all__))
    assert set(sips_async.__all__) == CONTRACT | EXTRAS


def test_every_name_in_all_is_importable() -> None:
    module = importlib.import_module("sips_async")
    for name in sips_async.__all__:
        assert getattr(module, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from sips_async import *", namespace)
    assert set(sips_async.__all__) <= set(namespace)


def test_every_public_class_and_function_is_in_all() -> None:
    public = {
        name
        for name, value in vars(sips_async).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
    }
    assert public, "nothing found: the check itself is broken"
    assert public <= set(sips_async.__all__), public - set(sips_async.__all__)


def test_every_exception_is_exported_and_rooted_at_sips_error() -> None:
    for name in sips_async.errors.__all__:
        cls = getattr(sips_async.errors, name)
        assert issubclass(cls, sips_async.SipsError), name
        assert getattr(sips_async, name) is cls, name


def test_version_is_a_string() -> None:
    assert isinstance(sips_async.__version__, str)
    assert sips_async.__version__[0].isdigit()


def test_redis_store_is_reached_from_the_top_level_lazily() -> None:
    from sips_async.stores import RedisStore

    assert sips_async.RedisStore is RedisStore
    assert "RedisStore" not in sips_async.__all__  # star-import needs no extra

"""Whether a failed order request may still have placed the order (a pure policy).

SRS does not say whether it deduplicates ``transactionID``, so an order
whose request may have reached SRS must be looked up, not re-sent. The SDK
answers "not placed" only where it can prove it.
"""

from __future__ import annotations

from .errors import (
    OrderProcessingError,
    SipsAPIError,
    SipsConnectionError,
    SipsRateLimitError,
)

__all__ = ["maybe_placed"]


def maybe_placed(exc: BaseException) -> bool:
    """``False`` only when SRS provably did not place the order despite ``exc``.

    Provably not placed: the connection was never opened (``sent=False``), a
    token failure before sending, an error found locally, a 4xx answer (SRS
    read the request and refused it), ``Orders_GeneralError``, and a 503 or
    429, which SRS answers before handling the request. Everything else (a
    500 after placing, a reset or timeout after sending, an answer that
    cannot be read) may have placed it.
    """
    if isinstance(exc, SipsConnectionError):
        return exc.sent
    if isinstance(exc, OrderProcessingError | SipsRateLimitError):
        return False
    if isinstance(exc, SipsAPIError):
        status = exc.status
        if status is None or status == 503:
            return False
        return not 400 <= status < 500
    return True

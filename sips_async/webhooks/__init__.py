"""The webhook side: guard -> decode -> tracker -> waiters.

SRS posts order updates here; the tracker records them through a
:class:`~sips_async.stores.Store` and wakes the
:class:`~sips_async.PendingOrder` waiting on each order.
"""

from __future__ import annotations

from ..stores import MemoryStore, Store
from ._guard import SECRET_HEADER, sign_headers, verify_signature
from ._receiver import WebhookReceiver
from ._tracker import Tracker, UpdateCallback

__all__ = [
    "SECRET_HEADER",
    "MemoryStore",
    "Store",
    "Tracker",
    "UpdateCallback",
    "WebhookReceiver",
    "sign_headers",
    "verify_signature",
]

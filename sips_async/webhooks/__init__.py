"""The webhook side: receiver, guards, tracker and store.

SRS posts order updates here; the tracker records them through a
:class:`Store` and wakes the :class:`~sips_async.PendingOrder` waiting on
each order.
"""

from __future__ import annotations

from ._guard import SECRET_HEADER, sign_headers, verify_signature
from ._receiver import WebhookReceiver
from ._store import MemoryStore, Store
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

"""The webhook side: guard -> decode -> tracker, and the receiver serving it.

SRS posts order updates here; the tracker records them through a
:class:`~sips_async.stores.Store` and wakes the
:class:`~sips_async.PendingOrder` waiting on each order. Outside aiohttp,
:func:`verify` checks a Standard Webhooks (or svix) signature and
:meth:`WebhookReceiver.process` runs the whole path.
"""

from __future__ import annotations

from ..errors import WebhookVerificationError
from ..stores import MemoryStore, Store
from ._guard import SECRET_HEADER, sign_headers, verify, verify_signature
from ._receiver import WebhookAnswer, WebhookReceiver
from ._tracker import Tracker, UpdateCallback

__all__ = [
    "SECRET_HEADER",
    "MemoryStore",
    "Store",
    "Tracker",
    "UpdateCallback",
    "WebhookAnswer",
    "WebhookReceiver",
    "WebhookVerificationError",
    "sign_headers",
    "verify",
    "verify_signature",
]

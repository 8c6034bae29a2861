"""A fake SIPS server on loopback that behaves like SRS, for demos and tests.

It issues tokens, takes synchronous and queued orders, serves the seed's
order-details document, answers errors in the seed's shape, POSTs order
updates back to a webhook URL, and injects faults on request: latency, 503s,
dropped connections, expired tokens, replayed and reordered webhooks.

Example::

    from sips_async.sandbox import Sandbox, SandboxConfig

    async with Sandbox(SandboxConfig(seed=1)) as sb:
        async with SipsClient(client_id="sandbox", client_secret="sandbox-secret",
                              base_url=sb.url,
                              webhook=WebhookConfig(secret=hook_secret)) as client:
            sb.webhook_url = client.webhook_url
            pending = await client.orders.enqueue(order)
            await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
        assert sb.stats().transactions[order.transaction_id] == 1
"""

from __future__ import annotations

from ._config import SandboxConfig
from ._server import Sandbox, serve
from ._stats import SandboxStats, WebhookRecord

__all__ = ["Sandbox", "SandboxConfig", "SandboxStats", "WebhookRecord", "serve"]

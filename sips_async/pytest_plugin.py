"""pytest plugin: run your own tests against the bundled SIPS sandbox.

Installed with the package (entry point ``pytest11``); needs pytest-asyncio.
Fixtures, each fresh per test:

* ``sips_sandbox``: a running :class:`~sips_async.sandbox.Sandbox`;
  configure it with ``@pytest.mark.sips_sandbox(error_rate=0.1, ...)``
  (any :class:`~sips_async.sandbox.SandboxConfig` field).
* ``sips_client``: an open :class:`~sips_async.SipsClient` against the
  sandbox, with an embedded receiver the sandbox posts its updates to.
* ``sips_webhook``: a :class:`~sips_async.testing.WebhookPusher` aimed at
  ``sips_client``'s receiver, to deliver chosen, replayed or out-of-order
  updates.

Example::

    async def test_my_flow(sips_client, sips_webhook):
        pending = await sips_client.orders.enqueue(order)
        await sips_webhook.send(transaction_id=pending.transaction_id,
                                event_type="OA", status="Rejected")
        with pytest.raises(OrderRejectedError):
            await pending.wait(timeout=5)
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

__all__ = ["sips_client", "sips_sandbox", "sips_webhook"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``sips_sandbox`` marker."""
    config.addinivalue_line(
        "markers",
        "sips_sandbox(**config): SandboxConfig fields for the sips_sandbox fixture",
    )


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - only without pytest-asyncio

    def _needs_asyncio() -> None:
        pytest.fail("the sips_async fixtures need pytest-asyncio installed")

    @pytest.fixture
    def sips_sandbox() -> None:
        """Unavailable: needs pytest-asyncio."""
        _needs_asyncio()

    @pytest.fixture
    def sips_client() -> None:
        """Unavailable: needs pytest-asyncio."""
        _needs_asyncio()

    @pytest.fixture
    def sips_webhook() -> None:
        """Unavailable: needs pytest-asyncio."""
        _needs_asyncio()

else:
    from ._client import SipsClient
    from ._config import RetryConfig, WebhookConfig
    from .sandbox import Sandbox, SandboxConfig
    from .testing import WebhookPusher

    # The definitions below replace the fallbacks above (hence the ignores).
    @pytest_asyncio.fixture
    async def sips_sandbox(  # type: ignore[misc]
        request: pytest.FixtureRequest,
    ) -> AsyncIterator[Sandbox]:
        """A running sandbox; ``@pytest.mark.sips_sandbox(...)`` configures it."""
        marker = request.node.get_closest_marker("sips_sandbox")
        options: dict[str, Any] = dict(marker.kwargs) if marker else {}
        async with Sandbox(SandboxConfig(**options)) as sandbox:
            yield sandbox

    @pytest_asyncio.fixture
    async def sips_client(  # type: ignore[misc]
        sips_sandbox: Sandbox,
    ) -> AsyncIterator[SipsClient]:
        """An open client on the sandbox whose receiver the sandbox posts to."""
        config = sips_sandbox.config
        async with SipsClient(
            client_id=config.client_id,
            client_secret=config.client_secret,
            base_url=sips_sandbox.url,
            webhook=WebhookConfig(secret=secrets.token_urlsafe(24)),
            retry=RetryConfig(initial_delay=0.01, max_delay=0.1),
        ) as client:
            sips_sandbox.webhook_url = client.webhook_url
            yield client

    @pytest_asyncio.fixture
    async def sips_webhook(  # type: ignore[misc]
        sips_client: SipsClient,
    ) -> AsyncIterator[WebhookPusher]:
        """Posts chosen updates to ``sips_client``'s receiver."""
        url = sips_client.webhook_url
        assert url is not None
        pusher = WebhookPusher(url)
        try:
            yield pusher
        finally:
            await pusher.aclose()

"""pytest plugin: run your own tests against the bundled SIPS sandbox.

Installed with the package (entry point ``pytest11``); needs pytest-asyncio.
Fixtures, each fresh per test and living on the test's own event loop
(``asyncio_default_test_loop_scope`` or ``@pytest.mark.asyncio(loop_scope=
...)``: function, module, session... all work):

* ``sips_sandbox``: a running :class:`~sips_async.sandbox.Sandbox`;
  configure it with ``@pytest.mark.sips_sandbox(error_rate=0.1, ...)``
  (any :class:`~sips_async.sandbox.SandboxConfig` field).
* ``sips_client``: an open :class:`~sips_async.SipsClient` against the
  sandbox, with an embedded receiver the sandbox posts its updates to.
* ``sips_webhook``: a :class:`~sips_async.testing.WebhookPusher` aimed at
  ``sips_client``'s receiver, to deliver chosen, replayed or out-of-order
  updates.

In pytest-asyncio's default strict mode mark the tests
(``@pytest.mark.asyncio``) or set ``asyncio_mode = "auto"``. Example::

    async def test_my_flow(sips_client, sips_webhook):
        pending = await sips_client.orders.enqueue(order)
        await sips_webhook.send(transaction_id=pending.transaction_id,
                                event_type="OA", status="Rejected")
        with pytest.raises(OrderRejectedError):
            await pending.wait(timeout=5)
"""

from __future__ import annotations

import secrets
import types
from collections.abc import AsyncIterator, Callable
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
    import asyncio

    from ._client import SipsClient
    from ._config import RetryConfig, WebhookConfig
    from .sandbox import Sandbox, SandboxConfig
    from .testing import WebhookPusher

    _LOOP_SCOPES = ("function", "class", "module", "package", "session")

    def _test_loop_scope(request: pytest.FixtureRequest) -> str:
        """The loop scope of the test asking (marker, then ini, then function)."""
        marker = request.node.get_closest_marker("asyncio")
        scope = None
        if marker is not None:
            scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
        if not scope:
            scope = request.config.getini("asyncio_default_test_loop_scope")
        return str(scope) if scope in _LOOP_SCOPES else "function"

    def _on_test_loop(name: str, request: pytest.FixtureRequest) -> Any:
        """The fixture ``name`` run on the same event loop as the test."""
        return request.getfixturevalue(f"_{name}_{_test_loop_scope(request)}")

    async def _sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
        marker = request.node.get_closest_marker("sips_sandbox")
        options: dict[str, Any] = dict(marker.kwargs) if marker else {}
        async with Sandbox(SandboxConfig(**options)) as sandbox:
            yield sandbox

    async def _client(sips_sandbox: Sandbox) -> AsyncIterator[SipsClient]:
        sandbox = sips_sandbox
        config = sandbox.config
        async with SipsClient(
            client_id=config.client_id,
            client_secret=config.client_secret,
            base_url=sandbox.url,
            webhook=WebhookConfig(secret=secrets.token_urlsafe(24)),
            retry=RetryConfig(initial_delay=0.01, max_delay=0.1),
        ) as client:
            sandbox.webhook_url = client.webhook_url
            yield client

    async def _webhook(sips_client: SipsClient) -> AsyncIterator[WebhookPusher]:
        url = sips_client.webhook_url
        assert url is not None
        pusher = WebhookPusher(url, receiver_loop=asyncio.get_running_loop())
        try:
            yield pusher
        finally:
            await pusher.aclose()

    def _variant(name: str, impl: Callable[..., Any], scope: Any) -> None:
        # A copy of the function: pytest-asyncio keeps the loop scope on it.
        copy = types.FunctionType(
            impl.__code__, impl.__globals__, f"_{name}_{scope}", None, None
        )
        copy.__annotations__ = dict(impl.__annotations__)
        copy.__doc__ = impl.__doc__
        try:
            fixture = pytest_asyncio.fixture(
                copy, name=f"_{name}_{scope}", loop_scope=scope
            )
        except TypeError:  # pragma: no cover - pytest-asyncio < 0.24: one loop
            fixture = pytest_asyncio.fixture(copy, name=f"_{name}_{scope}")
        globals()[f"_{name}_{scope}"] = fixture

    # One function-scoped variant per loop scope: each test gets fresh
    # objects, living on the event loop its own code runs on.
    for _scope in _LOOP_SCOPES:
        _variant("sips_sandbox", _sandbox, _scope)
        _variant("sips_client", _client, _scope)
        _variant("sips_webhook", _webhook, _scope)

    # The definitions below replace the fallbacks above (hence the ignores).
    @pytest.fixture
    def sips_sandbox(request: pytest.FixtureRequest) -> Sandbox:
        """A running sandbox; ``@pytest.mark.sips_sandbox(...)`` configures it."""
        sandbox: Sandbox = _on_test_loop("sips_sandbox", request)
        return sandbox

    @pytest.fixture
    def sips_client(request: pytest.FixtureRequest) -> SipsClient:
        """An open client on the sandbox whose receiver the sandbox posts to."""
        client: SipsClient = _on_test_loop("sips_client", request)
        return client

    @pytest.fixture
    def sips_webhook(request: pytest.FixtureRequest) -> WebhookPusher:
        """Posts chosen updates to ``sips_client``'s receiver."""
        pusher: WebhookPusher = _on_test_loop("sips_webhook", request)
        return pusher

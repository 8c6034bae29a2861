"""Shared fixtures. Every server here is real and bound to 127.0.0.1, port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests._fake_sips import FakeSips

pytest_plugins = ["pytester"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSips]:
    """A fake SIPS host (token and asynchronous submit) on 127.0.0.1."""
    async with FakeSips() as server:
        yield server


def pytest_sessionfinish(session: object, exitstatus: object) -> None:
    """Stop the session's redis-server (tests/_redis_server.py), if one ran."""
    from tests._redis_server import stop_shared

    stop_shared()

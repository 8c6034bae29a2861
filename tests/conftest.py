"""Shared fixtures. Every server here is real and bound to 127.0.0.1, port 0."""

from __future__ import annotations

pytest_plugins = ["pytester"]


def pytest_sessionfinish(session: object, exitstatus: object) -> None:
    """Stop the session's redis-server (tests/_redis_server.py), if one ran."""
    from tests._redis_server import stop_shared

    stop_shared()

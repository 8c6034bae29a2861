"""Shared fixtures. Every server here is real and bound to 127.0.0.1, port 0."""

from __future__ import annotations

pytest_plugins = ["pytester"]

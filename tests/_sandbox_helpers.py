"""Helpers for the sandbox tests: a capturing webhook receiver and client knobs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web
from multidict import CIMultiDict

from sips_async import RetryConfig

SANDBOX_ID = "sandbox"
SANDBOX_SECRET = "sandbox-secret"
#: Retries fast enough for tests, patient enough for a 50 % fault rate.
FAST_RETRY = RetryConfig(max_tries=30, initial_delay=0.001, max_delay=0.005)


@dataclass
class Hit:
    """One POST the capturing receiver got."""

    headers: CIMultiDict[str]
    body: bytes


@dataclass
class CaptureReceiver:
    """A bare webhook endpoint that records every POST.

    It answers the statuses of ``answers`` in turn, then 200.
    """

    answers: Iterable[int] = ()
    hits: list[Hit] = field(default_factory=list)
    _answers: Iterator[int] = field(default_factory=lambda: iter(()))
    _runner: web.AppRunner | None = None
    _url: str | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        """The URL to give the sandbox."""
        assert self._url is not None
        return self._url

    async def handle(self, request: web.Request) -> web.Response:
        """Record the POST and answer the next scripted status."""
        body = await request.read()
        async with self._changed:
            self.hits.append(Hit(CIMultiDict(request.headers), body))
            self._changed.notify_all()
        status = next(self._answers, 200)
        return web.json_response({"ok": 200 <= status < 300}, status=status)

    async def wait_hits(self, count: int) -> list[Hit]:
        """Return once at least ``count`` POSTs arrived."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.hits) >= count)
        return self.hits

    async def __aenter__(self) -> Self:
        self._answers = iter(self.answers)
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._url = f"http://{host}:{port}/hook"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

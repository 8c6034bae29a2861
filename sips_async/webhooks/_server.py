"""Serving the receiver: connection bounds and a quiet server log.

Anyone can open a TCP connection, so when the receiver listens itself:

* a connection that starts a request has ``header_timeout`` seconds to finish
  its request line and headers, an idle one is closed after
  ``keepalive_timeout`` (the body has ``body_timeout``, enforced by the
  handler);
* at most ``max_connections`` are open at once; at the cap, the connection
  idle or stuck in its headers the longest is closed to make room, so a flood
  of slow connections cannot keep SRS's deliveries out (nor exhaust the
  process's file descriptors). A new connection is refused only when every
  open one is busy with a request.

:class:`QuietServerLog` turns aiohttp's ERROR-with-traceback for each malformed
request (whose text may hold the request line, and so the secret path) into
one WARNING line per kind of error per interval, naming only the kind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

__all__ = [
    "ConnectionPool",
    "GuardedSite",
    "QuietServerLog",
    "default_backlog",
    "default_max_connections",
]

_IDLE: Final = 0
_HEAD: Final = 1
_BUSY: Final = 2


def _fd_limit() -> int | None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return None
    return int(soft)


def default_backlog() -> int:
    """The listen backlog: 128, or a quarter of a small descriptor limit.

    asyncio accepts up to ``backlog`` connections per wake-up, each a new
    descriptor, and a new connection reaches the pool (which may close an
    older one) two loop iterations later: up to three bursts can be open
    beside the pool's connections, and must fit in the descriptor limit.
    """
    soft = _fd_limit()
    return 128 if soft is None else max(1, min(128, soft // 4))


def default_max_connections() -> int:
    """Half the descriptors three accept bursts leave, at most 1024.

    256 when the limit is unknown; with the common soft limit of 1024, 320.
    """
    soft = _fd_limit()
    if soft is None:
        return 256
    return max(1, min(1024, (soft - 3 * default_backlog()) // 2))


class _Connection(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection; tracks its phase."""

    __slots__ = ("_inner", "_pool", "phase", "since", "transport")

    def __init__(self, inner: asyncio.Protocol, pool: ConnectionPool) -> None:
        self._inner: asyncio.Protocol | None = inner
        self._pool = pool
        self.transport: asyncio.BaseTransport | None = None
        self.phase = _IDLE
        self.since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if not self._pool.admit(self):
            self._inner = None
            transport.close()  # nothing was written: closes at once
            return
        assert self._inner is not None
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        if inner is None:
            return
        if self.phase == _IDLE:  # a request starts: its headers are timed
            self.phase, self.since = _HEAD, self._pool.clock()
        inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._pool.remove(self)
        if self._inner is not None:
            self._inner.connection_lost(exc)
            self._inner = None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class ConnectionPool:
    """The open connections of one listening receiver, and their deadlines.

    Deadlines are checked by one sweep timer per pool, running only while
    connections are open (every quarter of the shortest timeout, at most
    every second): a request costs a few attribute writes, no timer.
    """

    __slots__ = (
        "_by_transport",
        "_header_timeout",
        "_keepalive_timeout",
        "_loop",
        "_max",
        "_period",
        "_sweeper",
        "clock",
        "evicted",
        "refused",
        "timed_out",
    )

    def __init__(
        self,
        *,
        max_connections: int,
        header_timeout: float,
        keepalive_timeout: float,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        #: The loop's clock (what the deadlines are in).
        self.clock = self._loop.time
        self._max = max_connections
        self._header_timeout = header_timeout
        self._keepalive_timeout = keepalive_timeout
        self._period = min(1.0, header_timeout / 4, keepalive_timeout / 4)
        self._sweeper: asyncio.TimerHandle | None = None
        self._by_transport: dict[asyncio.BaseTransport, _Connection] = {}
        #: Connections closed to make room, refused at the cap, timed out.
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def __len__(self) -> int:
        return len(self._by_transport)

    def protocol_factory(
        self, inner: Callable[[], asyncio.Protocol]
    ) -> Callable[[], asyncio.Protocol]:
        """Wrap aiohttp's protocol factory so every connection is tracked."""
        return lambda: _Connection(inner(), self)

    def admit(self, conn: _Connection) -> bool:
        if len(self._by_transport) >= self._max:
            victim = min(
                (c for c in self._by_transport.values() if c.phase != _BUSY),
                key=lambda c: c.since,
                default=None,
            )
            if victim is None:
                self.refused += 1
                return False
            self.evicted += 1
            self._close(victim)
        assert conn.transport is not None
        self._by_transport[conn.transport] = conn
        conn.phase, conn.since = _IDLE, self._loop.time()
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self._period, self._sweep)
        return True

    def busy(self, transport: asyncio.BaseTransport | None) -> _Connection | None:
        """A request's headers are in: no deadline here (the body has its own).

        Returns the connection, to hand to :meth:`idle` once answered.
        """
        conn = self._by_transport.get(transport) if transport is not None else None
        if conn is not None:
            conn.phase = _BUSY
        return conn

    def idle(self, conn: _Connection) -> None:
        """A request is answered: the connection may wait for the next one."""
        conn.phase, conn.since = _IDLE, self.clock()

    def remove(self, conn: _Connection) -> None:
        if conn.transport is not None and (
            self._by_transport.get(conn.transport) is conn
        ):
            del self._by_transport[conn.transport]

    def close_waiting(self) -> None:
        """On shutdown: close every connection not busy with a request.

        Requests in flight are left to aiohttp's graceful shutdown.
        """
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._by_transport.values()):
            if conn.phase != _BUSY:
                self._close(conn)

    def _sweep(self) -> None:
        now = self._loop.time()
        head_before = now - self._header_timeout
        idle_before = now - self._keepalive_timeout
        for conn in list(self._by_transport.values()):
            if (conn.phase == _HEAD and conn.since <= head_before) or (
                conn.phase == _IDLE and conn.since <= idle_before
            ):
                self.timed_out += 1
                self._close(conn)
        self._sweeper = (
            self._loop.call_later(self._period, self._sweep)
            if self._by_transport
            else None
        )

    def _close(self, conn: _Connection) -> None:
        self.remove(conn)
        if conn.transport is not None:
            conn.transport.close()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a :class:`ConnectionPool`."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, pool: ConnectionPool
    ) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._pool = pool

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._pool.protocol_factory(server),
            self._host,
            self._port,
            backlog=default_backlog(),
        )

    async def stop(self) -> None:
        await super().stop()
        self._pool.close_waiting()


class QuietServerLog(logging.Filter):
    """At most one line per kind of malformed request per ``interval`` seconds.

    Installed on the logger aiohttp's server writes to. A record carrying an
    HTTP parsing error (a bad request line, header or body encoding) is
    rewritten to one WARNING naming the error's class only: no traceback, no
    request text (it may hold the secret path). Repeats within the interval
    are dropped and counted in the next line. Other records pass unchanged.
    """

    def __init__(
        self, interval: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError | web.RequestPayloadError):
            return True
        kind = type(exc).__name__
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._dropped[kind] = self._dropped.get(kind, 0) + 1
            return False
        self._last[kind] = now
        dropped = self._dropped.pop(kind, 0)
        record.msg = "webhook server: refused a malformed request (%s, HTTP %s)%s"
        record.args = (
            kind,
            getattr(exc, "code", None) or 400,
            f"; {dropped} more of this kind not logged" if dropped else "",
        )
        # aiohttp logs these at ERROR (DEBUG for a first bad method): a
        # stranger's garbage is not our error, so WARNING at most.
        record.levelno = min(record.levelno, logging.WARNING)
        record.levelname = logging.getLevelName(record.levelno)
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True

"""The webhook receiver: an aiohttp application that records SRS's updates.

The data path reads guard -> decode -> tracker: :class:`~._guard.Guard`
decides who may post, :func:`~._decode.decode_event` turns the body into an
:class:`~sips_async.OrderUpdate`, the tracker records it and wakes waiters.
:meth:`WebhookReceiver.process` runs that path for any web framework; the
aiohttp handler is a thin layer over it that reads the body within bounds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Final, NamedTuple, Self

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .._codec import encode
from .._config import WebhookConfig
from ..errors import SipsConfigError, SipsStoreError
from ..stores import MemoryStore, Store, open_store
from ._decode import EventDecodeError, decode_event
from ._guard import TOO_LARGE, Guard, Refusal
from ._server import (
    ConnectionPool,
    GuardedSite,
    QuietServerLog,
    default_max_connections,
)
from ._tracker import Tracker, UpdateCallback

__all__ = ["WebhookAnswer", "WebhookReceiver"]

logger: Final = logging.getLogger("sips_async")
#: Where aiohttp's server messages go when the receiver listens itself.
server_logger: Final = logging.getLogger("sips_async.webhooks.server")

_OK: Final = b'{"ok":true,"duplicate":false}'
_DUPLICATE: Final = b'{"ok":true,"duplicate":true}'
_JSON: Final = "application/json"
_READ_SIZE: Final = 16 * 1024
_ALL_INTERFACES: Final = frozenset({"", "0.0.0.0", "::"})

_SLOW_BODY: Final = Refusal(408, "body not received in time")
_BAD_ENCODING: Final = Refusal(
    400, "body could not be read (framing or Content-Encoding)"
)
#: Refusals before or while reading, after which the rest of the body may
#: still be on the socket: answered, then the connection is closed.
_CLOSE_AFTER: Final = frozenset({400, 408, 413})


class WebhookAnswer(NamedTuple):
    """What to answer a webhook post: status and JSON body.

    From :meth:`WebhookReceiver.process`; the content type is always
    ``application/json``.
    """

    status: int
    body: bytes


def _answer(status: int, reason: str) -> WebhookAnswer:
    return WebhookAnswer(status, encode({"ok": False, "error": reason}))


_NOT_FOUND: Final = _answer(404, "not found")
_NOT_POST: Final = _answer(405, "method not allowed: SRS posts")


class WebhookReceiver:
    """Receives SRS's order-status POSTs and resolves the orders awaiting them.

    Use it four ways:

    * let ``SipsClient(webhook=WebhookConfig(...))`` start it for you;
    * wire it into your own aiohttp app in one call: ``receiver.setup(app)``
      (routes, startup and cleanup), or mount it: ``app.add_subapp("/hooks",
      receiver.app)``, or route to ``receiver.handle`` yourself (add a
      ``{token}`` route after the path if the secret travels in the URL);
    * from any other framework, hand the body to :meth:`process` and answer
      what it returns (``examples/starlette_app.py``);
    * run it alone with ``sips-async listen``.

    Answers: 200 once the update is recorded (also for replays and for
    orders nobody waits on), 400 for a body that is not an SRS event or
    cannot be decompressed, 401 for a bad secret or signature, 403 for an
    address outside the allow-list, 408 for a body that does not arrive in
    ``body_timeout``, 413 for a body over ``max_body_size`` (after
    decompression; refused unread when ``Content-Length`` says so), 415 for
    a body that is not JSON, 503 when the store cannot record the update (SRS
    delivers it again).

    Example::

        receiver = WebhookReceiver(WebhookConfig(secret=os.environ["HOOK_SECRET"]))
        receiver.on_update(lambda update: print(update.status))
        async with receiver:
            print("give SRS this URL:", receiver.url)
            await asyncio.Event().wait()
    """

    __slots__ = (
        "_app",
        "_bound",
        "_cfg",
        "_clock",
        "_guard",
        "_log_filter",
        "_pool",
        "_route",
        "_runner",
        "_serving",
        "_store_down",
        "_token_prefix",
        "tracker",
    )

    def __init__(
        self,
        config: WebhookConfig | None = None,
        *,
        tracker: Tracker | None = None,
        store: Store | str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        cfg = config if config is not None else WebhookConfig()
        if cfg.admits_everyone:
            logger.warning(
                "webhook allowed_ips admits every address (a /0 network): it "
                "guards nothing; list SRS's networks, or use secret="
            )
        if not cfg.guarded and not cfg.insecure:
            raise SipsConfigError(
                "the webhook receiver has no guard: set secret=, signing_secrets= "
                "or allowed_ips= (SRS signs nothing; a /0 network is no guard), "
                "or insecure=True to accept unauthenticated posts on purpose"
            )
        self._cfg = cfg
        self._clock = clock
        self._guard = Guard(cfg)
        # The routes of the receiver's own server (see _add_routes).
        self._route = cfg.path.rstrip("/") or "/"
        self._token_prefix = (
            self._route.rstrip("/") + "/" if cfg.secret is not None else ""
        )
        # Whether the last record failed: an outage is logged once at ERROR
        # (each further 503 at DEBUG), and its end once at WARNING.
        self._store_down = False
        if tracker is None:
            tracker = Tracker(
                open_store(store)
                if store is not None
                else MemoryStore(max_unknown=cfg.max_unclaimed)
            )
        elif store is not None:
            raise SipsConfigError("pass store= or tracker=, not both")
        #: The tracker that records updates and wakes waiters.
        self.tracker = tracker
        self._app: web.Application | None = None
        self._runner: web.ServerRunner | None = None
        self._pool: ConnectionPool | None = None
        self._bound: tuple[str, int] | None = None
        self._serving = False
        self._log_filter = QuietServerLog()

    def __repr__(self) -> str:
        where = f"{self._bound[0]}:{self._bound[1]}" if self._bound else "not listening"
        return f"<WebhookReceiver path={self._cfg.path!r} {where}>"

    @property
    def config(self) -> WebhookConfig:
        """The receiver's configuration."""
        return self._cfg

    @property
    def app(self) -> web.Application:
        """An aiohttp application serving the receiver (mountable as a subapp)."""
        if self._app is None:
            app = web.Application(client_max_size=self._cfg.max_body_size)
            self._add_routes(app, self._cfg.path)
            app.on_startup.append(self._on_startup)
            app.on_cleanup.append(self._on_cleanup)
            self._app = app
        return self._app

    def setup(self, app: web.Application, path: str | None = None) -> None:
        """Wire the receiver into an existing aiohttp app, in one call.

        Adds the POST route at ``path`` (default: the config's ``path``),
        plus its ``{token}`` route when the secret travels in the URL; on the
        app's startup, quiets aiohttp's server log for malformed requests;
        on its cleanup, closes the tracker (waking every waiter)::

            app = web.Application()
            receiver.setup(app)            # POST /srs/webhook[/<secret>]
            web.run_app(app, port=8080)

        Set ``WebhookConfig(public_url=...)``: only you know where SRS
        reaches your app, and ``client.webhook_url`` is ``None`` without it.
        """
        route = path if path is not None else self._cfg.path
        if not route.startswith("/"):
            raise SipsConfigError("the webhook path must start with '/'")
        self._add_routes(app, route)
        app.on_startup.append(self._on_startup)

        async def close_tracker(_: web.Application) -> None:
            await self._on_cleanup(_)
            await self.tracker.close()

        app.on_cleanup.append(close_tracker)

    def _add_routes(self, app: web.Application, path: str) -> None:
        path = path.rstrip("/") or "/"
        app.router.add_post(path, self.handle)
        if self._cfg.secret is not None:
            app.router.add_post(path.rstrip("/") + "/{token}", self.handle)

    async def _on_startup(self, _: web.Application) -> None:
        if not self._serving:
            # Mounted in someone else's server: aiohttp logs malformed
            # requests (request line, so the secret path, included) there.
            logging.getLogger("aiohttp.server").addFilter(self._log_filter)

    async def _on_cleanup(self, _: web.Application) -> None:
        logging.getLogger("aiohttp.server").removeFilter(self._log_filter)

    @property
    def url(self) -> str | None:
        """The URL to register with SRS (secret included), once known."""
        cfg = self._cfg
        if cfg.public_url is not None:
            base = cfg.public_url.rstrip("/")
        elif self._bound is not None:
            host, port = self._bound
            host = f"[{host}]" if ":" in host else host
            base = f"http://{host}:{port}{cfg.path.rstrip('/')}"
        else:
            return None
        return f"{base}/{cfg.secret}" if cfg.secret else base

    @property
    def safe_url(self) -> str | None:
        """:attr:`url` with the secret masked, for logs and displays."""
        url, secret = self.url, self._cfg.secret
        return url.replace(secret, "***") if url and secret else url

    def on_update(self, callback: UpdateCallback) -> UpdateCallback:
        """Call ``callback(update)`` for every new (non-replayed) update.

        Sync or async; an exception in one is logged and affects nothing
        else. Usable as a decorator.
        """
        return self.tracker.on_update(callback)

    # -- serving -----------------------------------------------------------

    async def start(self) -> str:
        """Open the store, listen on ``host``/``port``; return the URL to give SRS."""
        if self._runner is not None:
            raise SipsConfigError("the webhook receiver is already started")
        await self.tracker.open()
        cfg = self._cfg
        self._serving = True
        server_logger.addFilter(self._log_filter)
        # Served by aiohttp's low-level server, not an Application: one or
        # two fixed routes need no router, no app machinery per request
        # (``app`` is still there to mount). No access log: the path may
        # carry the secret.
        server = web.Server(
            self._serve,
            access_log=None,
            keepalive_timeout=cfg.keepalive_timeout,
            logger=server_logger,
        )
        runner = web.ServerRunner(server, handle_signals=False)
        try:
            await runner.setup()
            pool = ConnectionPool(
                max_connections=cfg.max_connections or default_max_connections(),
                header_timeout=cfg.header_timeout,
                keepalive_timeout=cfg.keepalive_timeout,
            )
            site = GuardedSite(runner, cfg.host, cfg.port, pool)
            await site.start()
        except BaseException:
            await runner.cleanup()
            self._serving = False
            server_logger.removeFilter(self._log_filter)
            raise
        self._runner = runner
        self._pool = pool
        address = runner.addresses[0]
        self._bound = (str(address[0]), int(address[1]))
        if cfg.host in _ALL_INTERFACES and cfg.public_url is None:
            logger.warning(
                "webhook receiver listens on all interfaces (%r) and public_url "
                "is not set: the URL it reports names no address SRS can reach; "
                "set WebhookConfig(public_url=...) to the address SRS posts to",
                cfg.host,
            )
        url = self.url
        assert url is not None
        return url

    async def stop(self) -> None:
        """Stop listening (idempotent); waiters are left to the tracker."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            self._pool = None
            self._serving = False
            server_logger.removeFilter(self._log_filter)

    async def aclose(self) -> None:
        """Stop listening and close the tracker (waking every waiter)."""
        await self.stop()
        await self.tracker.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the handler ---------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Handle one POST from SRS (an aiohttp handler you can route to)."""
        return await self._handle(request, request.match_info.get("token"))

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        # The receiver's own server: its routes, matched by hand, and the
        # connection's phase for the pool.
        path = request.path
        token: str | None = None
        if path != self._route:
            prefix = self._token_prefix
            token = path[len(prefix) :] if prefix and path.startswith(prefix) else ""
            if not token or "/" in token:
                return self._response(_NOT_FOUND)
        if request.method != "POST":
            resp = self._response(_NOT_POST)
            resp.headers["Allow"] = "POST"
            return resp
        pool = self._pool
        if pool is None:
            return await self._handle(request, token)
        # Headers are in: the connection's header deadline no longer applies.
        conn = pool.busy(request.transport)
        try:
            return await self._handle(request, token)
        finally:
            if conn is not None:
                pool.idle(conn)

    async def _handle(
        self, request: web.BaseRequest, token: str | None
    ) -> web.StreamResponse:
        # Every webhook runs through here: the usual case (a small body
        # already in, no signature) is written out inline, few calls.
        headers = request.headers
        guard = self._guard
        refusal = guard.check_request(
            headers,
            # The peer's address costs a lookup: only for allowed_ips.
            peer=request.remote if guard.needs_peer else None,
            token=token,
            length=request.content_length,
        )
        if refusal is None:
            content = request.content
            body: bytes | Refusal
            try:
                body = content.read_nowait(_READ_SIZE)
            except (web.RequestPayloadError, HttpProcessingError):
                body = _BAD_ENCODING
            else:
                if not content.at_eof() or len(body) > self._cfg.max_body_size:
                    # More to come (or too much): read it under the caps. The
                    # usual body is in whole already: no coroutine for it.
                    body = await self._read(request, body)
            if type(body) is bytes:
                if guard.signed:  # the request-level checks ran already
                    refusal = guard.check_body(body, headers, now=self._clock())
                if refusal is None:
                    status, answer = await self._record(body)
                    return web.Response(status=status, body=answer, content_type=_JSON)
            else:
                assert isinstance(body, Refusal)
                refusal = body
        if refusal.status in _CLOSE_AFTER:
            # The rest of the body is not wanted: tell aiohttp not to read
            # it after the answer (a broken body would raise there), and
            # close the connection.
            request.content.feed_eof()
            return self._response(self._refuse(refusal), close=True)
        return self._response(self._refuse(refusal))

    async def process(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        peer: str | None = None,
        token: str | None = None,
    ) -> WebhookAnswer:
        """Run one post through guard -> decode -> tracker, in any framework.

        Args:
            body: the request body as received (already decompressed).
            headers: any mapping of the request headers (aiohttp, Starlette,
                a plain dict); repeated ``X-Forwarded-For`` lines are read
                with ``getall``/``getlist`` where the mapping has them.
            peer: the client's address, for ``allowed_ips``.
            token: the last path segment, when the secret travels in the URL.

        Returns:
            the status and JSON body to answer (``application/json``).
        """
        refusal = self._guard.check(
            body, headers, peer=peer, token=token, now=self._clock()
        )
        if refusal is not None:
            return self._refuse(refusal)
        return await self._record(body)

    async def _record(self, body: bytes) -> WebhookAnswer:
        # The guard let it in: decode -> tracker.
        try:
            update = decode_event(body)
        except EventDecodeError as exc:
            return self._refuse(Refusal(400, str(exc)))
        try:
            new = await self.tracker.record(update)
        except SipsStoreError as exc:
            logger.log(
                logging.DEBUG if self._store_down else logging.ERROR,
                "webhook %s %s not stored, answered 503 so SRS delivers it "
                "again: the order store failed: %s",
                update.event_type,
                update.event_id,
                exc,
            )
            self._store_down = True
            return _answer(503, "update not stored; deliver it again")
        if self._store_down:
            self._store_down = False
            logger.warning("the order store works again: webhooks are stored")
        return WebhookAnswer(200, _OK if new else _DUPLICATE)

    @staticmethod
    def _refuse(refusal: Refusal) -> WebhookAnswer:
        logger.info("webhook refused: %d %s", refusal.status, refusal.reason)
        return _answer(refusal.status, refusal.reason)

    @staticmethod
    def _response(answer: WebhookAnswer, *, close: bool = False) -> web.Response:
        resp = web.Response(status=answer.status, body=answer.body, content_type=_JSON)
        if close:
            resp.force_close()
        return resp

    async def _read(self, request: web.BaseRequest, first: bytes) -> bytes | Refusal:
        # Read in pieces whatever the framing (Content-Length, chunked,
        # compressed): the cap holds on the decoded bytes, wherever the
        # receiver is mounted (a parent app's client_max_size is not ours).
        # ``first`` is what was in already (``read_nowait``).
        cap = self._cfg.max_body_size
        content = request.content
        try:
            if len(first) > cap:
                return TOO_LARGE
            if content.at_eof():
                return first
            chunks = [first]
            total = len(first)
            async with asyncio.timeout(self._cfg.body_timeout):
                async for chunk in content.iter_chunked(_READ_SIZE):
                    total += len(chunk)
                    if total > cap:
                        return TOO_LARGE
                    chunks.append(chunk)
        except TimeoutError:
            return _SLOW_BODY
        except (web.RequestPayloadError, HttpProcessingError):
            return _BAD_ENCODING
        return b"".join(chunks)

"""The webhook receiver: an aiohttp application that records SRS's updates."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self

from aiohttp import web

from .._codec import EventDecodeError, decode_event, encode
from .._config import WebhookConfig
from ..errors import SipsConfigError, SipsStoreError
from ..stores import MemoryStore, Store, open_store
from ._guard import (
    SECRET_HEADER,
    client_ip,
    ip_allowed,
    parse_networks,
    secret_matches,
    verify_signature,
)
from ._tracker import Tracker, UpdateCallback

__all__ = ["WebhookReceiver"]

logger: Final = logging.getLogger("sips_async")

_OK: Final = b'{"ok":true,"duplicate":false}'
_DUPLICATE: Final = b'{"ok":true,"duplicate":true}'
_JSON: Final = "application/json"


def _reply(status: int, reason: str) -> web.Response:
    return web.Response(
        status=status, body=encode({"ok": False, "error": reason}), content_type=_JSON
    )


class WebhookReceiver:
    """Receives SRS's order-status POSTs and resolves the orders awaiting them.

    Use it three ways:

    * let ``SipsClient(webhook=WebhookConfig(...))`` start it for you;
    * mount it in your own aiohttp app: ``app.add_subapp("/hooks",
      receiver.app)``, or route to ``receiver.handle`` yourself (add a
      ``{token}`` route after the path if the secret travels in the URL);
    * run it alone with ``sips-async listen``.

    Answers: 200 once the update is recorded (also for replays and for
    orders nobody waits on), 400 for a body that is not an SRS event, 401 for
    a bad secret or signature, 403 for an address outside the allow-list,
    413 for a body over ``max_body_size`` (refused unread), 415 for a body
    that is not JSON, 503 when the store could not keep the update (so SRS
    delivers it again: 2xx only ever means stored).

    Example::

        receiver = WebhookReceiver(WebhookConfig(secret=os.environ["HOOK_SECRET"]))
        receiver.on_update(lambda update: print(update.status))
        async with receiver:
            print("give SRS this URL:", receiver.url)
            await asyncio.Event().wait()
    """

    __slots__ = (
        "_allowed",
        "_app",
        "_bound",
        "_cfg",
        "_clock",
        "_runner",
        "_trusted",
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
        if not cfg.guarded and not cfg.insecure:
            raise SipsConfigError(
                "the webhook receiver has no guard: set secret=, signing_secrets= "
                "or allowed_ips= (SRS signs nothing), or insecure=True to accept "
                "unauthenticated posts on purpose"
            )
        self._cfg = cfg
        self._clock = clock
        self._allowed = parse_networks(cfg.allowed_ips)
        self._trusted = parse_networks(cfg.trusted_proxies)
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
        self._runner: web.AppRunner | None = None
        self._bound: tuple[str, int] | None = None

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
            path = self._cfg.path.rstrip("/") or "/"
            app.router.add_post(path, self.handle)
            if self._cfg.secret is not None:
                app.router.add_post(path.rstrip("/") + "/{token}", self.handle)
            self._app = app
        return self._app

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
        # No access log: the path may carry the secret.
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._cfg.host, self._cfg.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self._bound = (str(address[0]), int(address[1]))
        url = self.url
        assert url is not None
        return url

    async def stop(self) -> None:
        """Stop listening (idempotent); waiters are left to the tracker."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

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
        cfg = self._cfg
        if self._allowed:
            address = client_ip(
                request.remote, request.headers.get("X-Forwarded-For"), self._trusted
            )
            if not ip_allowed(address, self._allowed):
                return self._refuse(403, "address not allowed")
        token = request.match_info.get("token")
        if cfg.secret is not None:
            if not secret_matches(
                token or request.headers.get(SECRET_HEADER), cfg.secret
            ):
                return self._refuse(401, "missing or wrong secret")
        elif token is not None:
            raise web.HTTPNotFound()
        length = request.content_length
        if length is not None and length > cfg.max_body_size:
            return self._refuse(413, "body too large")
        # SRS's content type is not documented: none at all is let through
        # (the body must still decode as JSON), a non-JSON one is refused.
        ctype = request.content_type
        if (
            "Content-Type" in request.headers
            and ctype != _JSON
            and not ctype.endswith("+json")
        ):
            return self._refuse(415, "body must be application/json")
        body = await self._read(request, cfg.max_body_size)
        if body is None:
            return self._refuse(413, "body too large")
        if cfg.signing_secrets:
            reason = verify_signature(
                cfg.signing_secrets,
                request.headers,
                body,
                tolerance=cfg.tolerance,
                now=self._clock(),
            )
            if reason is not None:
                return self._refuse(401, reason)
        try:
            update = decode_event(body)
        except EventDecodeError as exc:
            return _reply(400, str(exc))
        try:
            new = await self.tracker.record(update)
        except SipsStoreError as exc:
            # Never 2xx for an update that is not stored: SRS delivers again.
            logger.error("webhook not stored, answered 503: %s", exc)
            return _reply(503, "update could not be stored; deliver it again")
        return web.Response(body=_OK if new else _DUPLICATE, content_type=_JSON)

    @staticmethod
    def _refuse(status: int, reason: str) -> web.Response:
        logger.info("webhook refused: %d %s", status, reason)
        resp = _reply(status, reason)
        if status == 413:
            resp.force_close()  # the body was not read; do not reuse the socket
        return resp

    @staticmethod
    async def _read(request: web.Request, cap: int) -> bytes | None:
        if request.content_length is not None:
            return await request.read()
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.content.iter_chunked(16 * 1024):
            total += len(chunk)
            if total > cap:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

"""RedisStore: orders and updates in Redis, shared by several processes or hosts.

Every write is one Lua script, so it is atomic on the server: correlate,
drop a replay, append, link SRS's ids, apply the bounds and ``PUBLISH`` the
change happen in one step, and two instances racing on one order cannot
split its history or record a replay twice.

Group commit: the scripts queued while one round trip is in flight go out
together in the next (one pipeline), and the ``record()`` calls among them
in ONE call of the record script, which runs each update as its own step
(one that fails is answered with its error, the others are kept), answers
each caller on its own and publishes one message for the lot. A caller's
``record()`` returns only once that call has come back.

Keys (``P`` is the prefix, ``K`` an order key)::

    P o:K    hash    the order row (known, state, created, po, ids, final_at)
    P u:K    zset    replay marker -> arrival number (arrival order)
    P b:K    hash    replay marker -> stored update
    P l:K    set     SRS ids linked to K
    P a:ID   string  SRS id -> K
    P seq    counter arrival numbers (one for the whole prefix, so merged
                     histories keep arrival order)
    P open / P unknown / P finished   zsets: outstanding orders (by creation),
                     orders never seen here (oldest first), finished orders
                     (by final_at)

Changes go out on one channel, ``P changes`` (a message is the list of
changes one write made); each process holds ONE
subscription to it (not one per order), hears the changes other processes
make, and ignores its own (it told its listeners when the write returned).
After the subscription is lost and back, listeners hear
``Change(EVERYTHING, reload=True)``: whatever was published meanwhile is
re-read from the store.

A finished order's keys get a TTL of ``retention`` when its final update is
recorded; a clock-driven sweep in every write drops (and logs) those past
their retention sooner when ``clock`` runs ahead. Orders not final never
expire. Redis Cluster is not supported (scripts touch keys they compute).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import hashlib
import itertools
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec

try:
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.client import PubSub
    from redis.asyncio.connection import AbstractConnection, parse_url
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import NoScriptError, RedisError, ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "RedisStore needs the redis extra: pip install 'sips-async[redis]'"
    ) from exc

from ..errors import SipsConfigError, SipsStoreError
from ..models import OrderUpdate
from ._base import (
    DEFAULT_MAX_UNKNOWN,
    DEFAULT_MAX_UPDATES,
    DEFAULT_RETENTION,
    EVERYTHING,
    OUTSTANDING_STATES,
    Change,
    Listeners,
    OrderState,
    Recorded,
    TrackedOrder,
    decode_update,
    encode_update,
    log_over_cap,
    logger,
    opens_finished,
    order_key,
    replay_key,
)

__all__ = ["RedisStore"]

_SCHEMES: Final = ("redis", "rediss", "unix")
_PAGE: Final = 500
#: Writes sent in one pipeline (one round trip) at most.
_BATCH: Final = 256
#: Bytes of updates in one call of the record script at most (more go in
#: the next call of the same pipeline): big webhooks do not make one huge
#: argument, nor one script that holds Redis for long.
_GROUP_BYTES: Final = 1 << 20
#: Own writes whose answer was lost, remembered so that their published
#: change still reaches the local listeners.
_LOST_MAX: Final = 1024
_BACKOFF_MIN: Final = 0.05
_BACKOFF_MAX: Final = 2.0
#: Errors that say "Redis is unreachable" (a transition worth logging).
_DOWN_ERRORS: Final = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    asyncio.TimeoutError,
)

_OUTSTANDING_LUA: Final = ", ".join(f"[{s.value!r}] = true" for s in OUTSTANDING_STATES)

# -- scripts -------------------------------------------------------------------
# ARGV[1] is always the prefix. Numbers travel as text (repr of a float), so
# Lua never rounds them.

_PRELUDE: Final = (
    """
local P = ARGV[1]
local function rk(k) return P .. 'o:' .. k end
local function uk(k) return P .. 'u:' .. k end
local function bk(k) return P .. 'b:' .. k end
local function lk(k) return P .. 'l:' .. k end
local function ak(id) return P .. 'a:' .. id end
local UNKNOWN, FINISHED = P .. 'unknown', P .. 'finished'
local OPEN, SEQ = P .. 'open', P .. 'seq'
local OUTSTANDING = {"""
    + _OUTSTANDING_LUA
    + """}

local function drop(k)
  for _, id in ipairs(redis.call('SMEMBERS', lk(k))) do
    if redis.call('GET', ak(id)) == k then redis.call('DEL', ak(id)) end
  end
  redis.call('DEL', rk(k), uk(k), bk(k), lk(k))
  redis.call('ZREM', UNKNOWN, k)
  redis.call('ZREM', FINISHED, k)
  redis.call('ZREM', OPEN, k)
end

local function sweep(horizon)
  local gone = redis.call('ZRANGEBYSCORE', FINISHED, '-inf', horizon, 'LIMIT', 0, 100)
  for _, k in ipairs(gone) do drop(k) end
  return gone
end

local function history(k)
  local out = {}
  for i, m in ipairs(redis.call('ZRANGE', uk(k), 0, -1)) do
    out[i] = redis.call('HGET', bk(k), m)
  end
  return out
end

local function expire_all(k, ttl)
  if ttl == '0' then return end
  redis.call('EXPIRE', rk(k), ttl)
  redis.call('EXPIRE', uk(k), ttl)
  redis.call('EXPIRE', bk(k), ttl)
  redis.call('EXPIRE', lk(k), ttl)
  for _, id in ipairs(redis.call('SMEMBERS', lk(k))) do
    if redis.call('GET', ak(id)) == k then redis.call('EXPIRE', ak(id), ttl) end
  end
end

local function index(k)
  local r = redis.call('HMGET', rk(k), 'known', 'state', 'final_at', 'seen')
  if r[1] == '1' and not r[3] and OUTSTANDING[r[2]] then
    redis.call('ZADD', OPEN, r[4], k)
  else
    redis.call('ZREM', OPEN, k)
  end
end

-- "<instance> <write id>" LF <msgpack list of changes>: a process skips its
-- own, undecoded. A change: {k = key, r = reload, u = {bodies}} (u optional).
local function publish(inst, wid, changes)
  local head = inst .. ' ' .. wid .. '\\n'
  redis.call('PUBLISH', P .. 'changes', head .. cmsgpack.pack(changes))
end

-- Tie SRS id `id` to order `k`; move the orphan `order:<id>` in (arrival
-- order kept by the arrival numbers). True if any update moved. `final`:
-- whether `k` is finished (nil: look it up).
local function link(k, id, ttl, final)
  local a = ak(id)
  if redis.call('GET', a) == k then return false end
  redis.call('SET', a, k)
  redis.call('SADD', lk(k), id)
  local orphan = 'order:' .. id
  local moved = false
  if orphan ~= k and redis.call('EXISTS', rk(orphan)) == 1 then
    local items = redis.call('ZRANGE', uk(orphan), 0, -1, 'WITHSCORES')
    for i = 1, #items, 2 do
      local m = items[i]
      if not redis.call('ZSCORE', uk(k), m) then
        redis.call('ZADD', uk(k), items[i + 1], m)
        redis.call('HSET', bk(k), m, redis.call('HGET', bk(orphan), m))
        moved = true
      end
    end
    drop(orphan)
  end
  if final == nil then final = redis.call('HEXISTS', rk(k), 'final_at') == 1 end
  if final then expire_all(k, ttl) end
  return moved
end
"""
)

# ARGV[2]: msgpack [instance, write id, max_updates, max_unknown, ttl, records];
# a record: [fallback key, look up alias, SRS order id, link, replay marker,
# body, final, now, horizon] (flags are booleans, times text). Each record is
# its own step, in order: one that fails is answered with its error and the
# others still run. ONE publish for all of them, after the last. Answer:
# msgpack, per record [1 new / 0 replay / 2 over the cap, key, merged,
# unknown orders dropped, finished orders swept] or [-1, error text].
_RECORD: Final = (
    _PRELUDE
    + """
local function record(r, max_updates, max_unknown, ttl)
  local key = r[1]
  if r[2] then
    local alias = redis.call('GET', ak(r[3]))
    if alias then key = alias end
  end
  local swept = sweep(r[9])
  local row = rk(key)
  local f = redis.call('HMGET', row, 'known', 'order_id', 'final_at')
  local known, final = f[1], f[3] ~= false
  local dropped = {}
  if not known then
    redis.call('HSET', row, 'known', '0', 'seen', r[8])
    redis.call('ZADD', UNKNOWN, redis.call('INCR', SEQ), key)
    local excess = redis.call('ZCARD', UNKNOWN) - max_unknown
    if excess > 0 then
      for _, k in ipairs(redis.call('ZRANGE', UNKNOWN, 0, excess)) do
        if k ~= key and #dropped < excess then
          drop(k)
          table.insert(dropped, k)
        end
      end
    end
    known = '0'
  end
  local u = uk(key)
  -- Added unless a replay; taken out again if over the cap.
  if redis.call('ZADD', u, 'NX', redis.call('INCR', SEQ), r[5]) == 0 then
    return {0, key, false, dropped, swept}
  end
  if redis.call('ZCARD', u) > max_updates then
    redis.call('ZREM', u, r[5])
    return {2, key, false, dropped, swept}
  end
  redis.call('HSET', bk(key), r[5], r[6])
  if r[7] and known == '1' and not final then
    redis.call('HSET', row, 'final_at', r[8])
    redis.call('ZADD', FINISHED, r[8], key)
    redis.call('ZREM', OPEN, key)
    expire_all(key, ttl)
    final = true
  end
  local merged = false
  if r[4] then
    if known == '1' and f[2] ~= r[3] then
      redis.call('HSET', row, 'order_id', r[3])
    end
    merged = link(key, r[3], ttl, final)
  end
  return {1, key, merged, dropped, swept}
end

local h = cmsgpack.unpack(ARGV[2])
local out, changes = {}, {}
for i, r in ipairs(h[6]) do
  local ok, res = pcall(record, r, h[3], h[4], h[5])
  if ok then
    out[i] = res
    if res[1] == 1 then
      table.insert(changes, {k = res[2], r = res[3], u = {r[6]}})
    end
  else
    if type(res) == 'table' then res = res.err or 'script error' end
    out[i] = {-1, tostring(res)}
  end
end
if #changes > 0 then publish(h[1], h[2], changes) end
return cmsgpack.pack(out)
"""
)

# ARGV: 2 key, 3 po ('' for none), 4 state, 5 now, 6 horizon, 7 'adopt'/'begin'
_BEGIN: Final = (
    _PRELUDE
    + """
local key = ARGV[2]
local swept = sweep(ARGV[6])
local row = rk(key)
local known = redis.call('HGET', row, 'known')
if known == '1' then
  if ARGV[7] == 'adopt' then return {history(key), swept} end
  redis.call('HSET', row, 'state', ARGV[4])
  if ARGV[3] ~= '' then redis.call('HSET', row, 'po', ARGV[3]) end
else
  if known then redis.call('ZREM', UNKNOWN, key) end
  redis.call('HSET', row, 'known', '1', 'state', ARGV[4], 'created', ARGV[5],
             'seen', ARGV[5])
  if ARGV[3] ~= '' then redis.call('HSET', row, 'po', ARGV[3]) end
end
index(key)
return {history(key), swept}
"""
)

# ARGV: 2 instance, 3 write id, 4 key, 5 state, 6 order id, 7 queue id,
# 8 error, 9 has error ('1'), 10 now, 11 ttl
_SETTLE: Final = (
    _PRELUDE
    + """
local key = ARGV[4]
local row = rk(key)
local known = redis.call('HGET', row, 'known')
if known ~= '1' then
  if known then redis.call('ZREM', UNKNOWN, key) end
  redis.call('HSET', row, 'known', '1', 'created', ARGV[10], 'seen', ARGV[10])
  redis.call('HDEL', row, 'po')
end
redis.call('HSET', row, 'state', ARGV[5])
if ARGV[6] ~= '' and redis.call('HEXISTS', row, 'order_id') == 0 then
  redis.call('HSET', row, 'order_id', ARGV[6])
end
if ARGV[7] ~= '' then redis.call('HSET', row, 'queue_id', ARGV[7]) end
if ARGV[9] == '1' then
  redis.call('HSET', row, 'error', ARGV[8])
else
  redis.call('HDEL', row, 'error')
end
index(key)
local merged = false
if ARGV[6] ~= '' and link(key, ARGV[6], ARGV[11]) then merged = true end
if ARGV[7] ~= '' and link(key, ARGV[7], ARGV[11]) then merged = true end
-- Placed synchronously, or provably never sent: nothing more will settle
-- it, so its retention starts now (as a final update's does).
if (ARGV[5] == 'placed' or ARGV[5] == 'failed')
    and redis.call('HEXISTS', row, 'final_at') == 0 then
  redis.call('HSET', row, 'final_at', ARGV[10])
  redis.call('ZADD', FINISHED, ARGV[10], key)
  redis.call('ZREM', OPEN, key)
  expire_all(key, ARGV[11])
end
if merged then publish(ARGV[2], ARGV[3], {{k = key, r = true}}) end
return merged and 1 or 0
"""
)

# ARGV: 2 key
_HISTORY: Final = _PRELUDE + "\nreturn history(ARGV[2])\n"

# ARGV: 2 min score (inclusive), 3 entries at that score to skip, 4 page size
_OUTSTANDING: Final = (
    _PRELUDE
    + """
local items = redis.call('ZRANGEBYSCORE', OPEN, ARGV[2], '+inf', 'WITHSCORES',
                         'LIMIT', tonumber(ARGV[3]), tonumber(ARGV[4]))
local out = {}
for i = 1, #items, 2 do
  local k = items[i]
  local f = redis.call('HMGET', rk(k), 'state', 'created', 'po', 'order_id',
                       'queue_id', 'error', 'final_at')
  table.insert(out, {k, items[i + 1], f[1], f[2], f[3], f[4], f[5], f[6], f[7]})
end
return out
"""
)

_SOURCES: Final = {
    "record": _RECORD,
    "begin": _BEGIN,
    "settle": _SETTLE,
    "history": _HISTORY,
    "outstanding": _OUTSTANDING,
}
_SHA: Final = {
    name: hashlib.sha1(
        source.encode(), usedforsecurity=False
    ).hexdigest()  # what Redis names it by
    for name, source in _SOURCES.items()
}

_ROW_FIELDS: Final = (
    "known",
    "state",
    "created",
    "po",
    "order_id",
    "queue_id",
    "error",
    "final_at",
)


class _Message(msgspec.Struct, frozen=True):
    """A change as published (after its writer's line): key, new updates, reload."""

    k: str
    r: bool = False
    u: tuple[str, ...] = ()


#: A published message is a list of changes: one write (a batch of records).
_message_decoder: Final = msgspec.msgpack.Decoder(tuple[_Message, ...])
_pack: Final = msgspec.msgpack.Encoder().encode
_unpack: Final = msgspec.msgpack.Decoder().decode

#: One record as the record script takes it (see ``_RECORD``).
_RecordArgs = tuple[str, bool, str, bool, str, str, bool, str, str]
#: A queued call: script, its arguments, its write id, who waits for it.
_Call = tuple[str, Any, str | None, asyncio.Future[Any]]


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _row(key: str, fields: Sequence[Any]) -> TrackedOrder:
    state, created, po, order_id, queue_id, error, final_at = map(_text, fields)
    assert state is not None and created is not None
    return TrackedOrder(
        transaction_id=key,
        state=OrderState(state),
        created_at=_utc(float(created)),
        po_number=po,
        order_id=order_id,
        queue_id=queue_id,
        error=error,
        final_at=None if final_at is None else _utc(float(final_at)),
    )


def _shown_url(url: str) -> tuple[str, list[str]]:
    """``url`` without credentials or query (safe to show), and the secrets in it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise SipsConfigError(
            f"not a Redis URL ({scheme}://...): use redis://host:6379/0, "
            "rediss://... or unix:///path/redis.sock"
        )
    secrets = [s for s in (parts.password, parts.username) if s]
    try:
        options = parse_url(url)
    except (ValueError, TypeError) as exc:
        raise SipsConfigError(
            f"bad Redis URL {scheme}://... ({type(exc).__name__})"
        ) from None
    for name in ("password", "username"):
        value = options.get(name)
        if isinstance(value, str) and value:
            secrets.append(value)
    if scheme == "unix":
        if not parts.path:
            raise SipsConfigError("unix:// Redis URL names no socket path")
        return f"unix://{parts.path}", secrets
    try:
        host = parts.hostname or "localhost"
        port = parts.port
    except ValueError:
        raise SipsConfigError(f"bad Redis URL {scheme}://... (port)") from None
    where = f"[{host}]" if ":" in host else host
    if port is not None:
        where += f":{port}"
    return f"{scheme}://{where}{parts.path}", secrets


class RedisStore(Listeners):
    """A :class:`~sips_async.stores.Store` in Redis, for several processes.

    Args:
        url: ``redis://[user:password@]host:6379/0``, ``rediss://...`` (TLS)
            or ``unix:///path/redis.sock``. The password never appears in a
            repr, a log line or an error.
        prefix: put before every key and the change channel, so several
            apps can share one Redis (and must not share a prefix unless
            they share their orders).
        retention: seconds a finished order is kept after its final update
            (its keys' TTL).
        max_unknown: orders never seen here whose updates are kept.
        max_updates: updates kept per order.
        clock: seconds since the epoch (a seam for tests).
        timeout: seconds any one Redis call may take (connect, read, or
            waiting for a free connection) before it raises
            :class:`~sips_async.SipsStoreError`.
        max_connections: connections kept to Redis (plus one for the
            subscription).

    Use one store per process: it holds one subscription to the change
    channel however many orders are waited on.

    Example::

        store = RedisStore("redis://redis.internal:6379/0", prefix="acme:")
        async with SipsClient(..., store=store) as client: ...
    """

    #: Changes other processes make reach this store's listeners: a client
    #: with no receiver of its own is woken by the instances that have one.
    shared = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "sips:",
        retention: float = DEFAULT_RETENTION,
        max_unknown: int = DEFAULT_MAX_UNKNOWN,
        max_updates: int = DEFAULT_MAX_UPDATES,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
        max_connections: int = 32,
    ) -> None:
        super().__init__()
        if not isinstance(url, str):
            raise SipsConfigError("RedisStore url must be a string")
        self._shown, self._secrets = _shown_url(url.strip())
        if not isinstance(prefix, str):
            raise SipsConfigError("RedisStore prefix must be a string")
        if math.isnan(retention) or retention < 0:
            raise SipsConfigError(f"retention must be >= 0 seconds, got {retention}")
        if max_unknown < 0 or max_updates < 1:
            raise SipsConfigError("max_unknown must be >= 0 and max_updates >= 1")
        if not timeout > 0 or max_connections < 1:
            raise SipsConfigError("timeout must be > 0 and max_connections >= 1")
        self._url = url.strip()
        self.prefix = prefix
        self._channel = f"{prefix}changes"
        self._retention = float(retention)
        self._ttl = "0" if math.isinf(retention) else str(max(1, math.ceil(retention)))
        self._max_unknown = max_unknown
        self._max_updates = max_updates
        self._clock = clock
        self._timeout = float(timeout)
        self._max_connections = max_connections
        self._instance = uuid.uuid4().hex
        self._mark = f"{self._instance} ".encode()
        self._writes = itertools.count()
        self._lost: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._pool: BlockingConnectionPool | None = None
        #: The writer's own connection (one round trip in flight at a time).
        self._conn: AbstractConnection | None = None
        self._client: Redis | None = None
        self._sha: dict[str, str] = {}
        self._queue: list[_Call] = []
        self._writer: asyncio.Task[None] | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False
        self._listener: asyncio.Task[None] | None = None
        self._down = False

    def __repr__(self) -> str:
        state = "open" if self._client is not None else "closed"
        return f"<RedisStore {self._shown} prefix={self.prefix!r} {state}>"

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        if self._client is not None:
            return
        if self._closed:
            raise SipsStoreError(f"Redis store {self._shown} is closed")
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._client is None:
                await self._connect()

    async def _connect(self) -> None:
        pool = BlockingConnectionPool.from_url(
            self._url,
            max_connections=self._max_connections + 1,
            timeout=self._timeout,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), 0),  # a write is never sent twice
        )
        client = Redis(connection_pool=pool)
        subscribed = asyncio.Event()
        listener: asyncio.Task[None] | None = None
        try:
            await self._guard(client.ping())
            listener = asyncio.get_running_loop().create_task(
                self._listen(client, subscribed)
            )
            waiter = asyncio.ensure_future(subscribed.wait())
            await asyncio.wait(
                {waiter, listener},
                timeout=self._timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            waiter.cancel()
            if not subscribed.is_set():
                raise SipsStoreError(
                    f"Redis store {self._shown}: could not subscribe to changes"
                )
            if self._closed:  # close() came while connecting
                raise SipsStoreError(f"Redis store {self._shown} is closed")
        except BaseException:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            await client.aclose()
            await pool.disconnect()
            raise
        self._pool, self._client = pool, client
        self._listener = listener

    async def close(self) -> None:
        self._closed = True
        await opens_finished(self._opening)
        writer = self._writer
        if writer is not None:
            await asyncio.gather(writer, return_exceptions=True)
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        client, self._client = self._client, None
        pool, self._pool = self._pool, None
        conn, self._conn = self._conn, None
        if conn is not None and pool is not None:
            await pool.release(conn)
        if client is not None:
            await client.aclose()
        if pool is not None:
            await pool.disconnect()

    # -- errors and transitions --------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return f"{type(exc).__name__}: {text}"

    def _went_down(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            logger.warning(
                "Redis store %s unreachable (%s); store calls fail until it is back",
                self._shown,
                self._describe(exc),
            )

    def _came_up(self) -> None:
        if self._down:
            self._down = False
            logger.warning("Redis store %s reachable again", self._shown)

    async def _guard(self, call: Any, wids: Sequence[str | None] = ()) -> Any:
        """Await ``call``; a Redis failure becomes :class:`SipsStoreError`."""
        try:
            result = await call
        except _DOWN_ERRORS as exc:
            for wid in wids:
                if wid is not None:
                    # Maybe written and published: hear our own message after all.
                    self._lost[wid] = None
            while len(self._lost) > _LOST_MAX:
                self._lost.popitem(last=False)
            self._went_down(exc)
            raise SipsStoreError(
                f"Redis store {self._shown}: {self._describe(exc)}"
            ) from None
        except RedisError as exc:
            raise SipsStoreError(
                f"Redis store {self._shown}: {self._describe(exc)}"
            ) from None
        self._came_up()
        return result

    async def _run(self, name: str, args: Any, wid: str | None) -> Any:
        """Run script ``name``: queued, and sent with the others queued meanwhile."""
        if self._client is None:
            await self.open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((name, args, wid, future))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        # One pipeline in flight; whatever queues meanwhile goes in the next
        # one: a burst of webhooks costs one round trip per batch, not each.
        # Records queued next to each other go in ONE script call (one
        # command to pack, one answer to parse, one message published).
        while self._queue:
            batch, self._queue = self._queue[:_BATCH], self._queue[_BATCH:]
            # (script, its arguments, write id, who waits for it)
            groups: list[tuple[str, Any, str | None, list[asyncio.Future[Any]]]] = []
            size = 0  # bytes of updates in the last group
            for name, args, wid, future in batch:
                if name != "record":
                    groups.append((name, args, wid, [future]))
                    continue
                size += len(args[5])
                if groups and groups[-1][0] == "record" and size <= _GROUP_BYTES:
                    groups[-1][1].append(args)
                    groups[-1][3].append(future)
                else:
                    groups.append((name, [args], self._next_write(), [future]))
                    size = len(args[5])
            calls = [
                (name, self._records(wid, args) if name == "record" else args)
                for name, args, wid, _ in groups
            ]
            wids = [wid for _, _, wid, _ in groups]
            try:
                results = await self._guard(self._pipeline(calls), wids)
                for (name, _, _, futures), result in zip(groups, results, strict=True):
                    self._answer(name, futures, result)
            except Exception as exc:
                error = (
                    exc
                    if isinstance(exc, SipsStoreError)
                    else SipsStoreError(
                        f"Redis store {self._shown}: {self._describe(exc)}"
                    )
                )
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error)

    def _records(
        self, wid: str | None, records: list[_RecordArgs]
    ) -> list[str | bytes]:
        """The record script's arguments for ``records``, written as ``wid``."""
        packed = (
            self._instance,
            wid,
            self._max_updates,
            self._max_unknown,
            self._ttl,
            records,
        )
        return [self.prefix, _pack(packed)]

    def _failure(self, text: str) -> SipsStoreError:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return SipsStoreError(f"Redis store {self._shown}: {text}")

    def _answer(
        self, name: str, futures: list[asyncio.Future[Any]], result: Any
    ) -> None:
        """Give each caller of one script call its own answer (or error)."""
        if isinstance(result, Exception):
            error = self._failure(self._describe(result))
            for future in futures:
                if not future.done():
                    future.set_exception(error)
            return
        if name != "record":
            if not futures[0].done():
                futures[0].set_result(result)
            return
        answers = _unpack(result)
        if not isinstance(answers, list) or len(answers) != len(futures):
            raise SipsStoreError(
                f"Redis store {self._shown}: the record script gave "
                f"{type(answers).__name__} for {len(futures)} records"
            )
        for future, answer in zip(futures, answers, strict=True):
            if future.done():
                continue
            if answer[0] == -1:
                future.set_exception(self._failure(str(answer[1])))
            else:
                future.set_result(answer)

    async def _pipeline(self, calls: list[tuple[str, list[str | bytes]]]) -> list[Any]:
        """Each script call's answer (or its error), in one round trip."""
        client = self._client
        if client is None:
            raise SipsStoreError(f"Redis store {self._shown} is closed")
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(2):  # a second time after loading scripts Redis lacked
            commands = []
            for i in todo:
                name, args = calls[i]
                sha = self._sha.get(name) or _SHA[name]
                commands.append(("EVALSHA", sha, 0, *args))
            answers = await self._send(commands)
            missing = []
            for i, answer in zip(todo, answers, strict=True):
                results[i] = answer
                if isinstance(answer, NoScriptError):
                    missing.append(i)  # not run: safe to send again
            if not missing:
                break
            for name in {calls[i][0] for i in missing}:
                self._sha[name] = await client.script_load(_SOURCES[name])
            todo = missing
        return results

    async def _send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` at once on the writer's connection; their replies.

        An error reply is returned in its place. Any other failure drops the
        connection (its replies are lost) and raises; the next round trip
        takes a fresh one. Only the writer task calls this: one at a time.
        """
        pool = self._pool
        if pool is None:
            raise SipsStoreError(f"Redis store {self._shown} is closed")
        conn = self._conn
        if conn is None:
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            self._conn = conn
        try:
            # As the pool does on every hand-out: a link that dropped while
            # idle (a restarted server) is reconnected before anything is sent.
            await pool.ensure_connection(conn)
            await conn.send_packed_command(
                conn.pack_commands(commands), check_health=False
            )
            answers: list[Any] = []
            for _ in commands:
                try:
                    answers.append(await conn.read_response())
                except ResponseError as exc:
                    answers.append(exc)
            return answers
        except BaseException:
            self._conn = None
            await conn.disconnect(nowait=True)
            await pool.release(conn)
            raise

    def _next_write(self) -> str:
        return str(next(self._writes))

    def _log_drops(self, unknown: Sequence[Any], finished: Sequence[Any]) -> None:
        for key in unknown:
            logger.warning(
                "dropped updates of unknown order %s (more than %d unknown orders)",
                _text(key),
                self._max_unknown,
            )
        for key in finished:
            logger.warning(
                "dropped finished order %s (kept %g s after its final update)",
                _text(key),
                self._retention,
            )

    # -- change notification -----------------------------------------------------

    async def _listen(self, client: Redis, subscribed: asyncio.Event) -> None:
        """Hold the one subscription; reconnect with backoff; catch up after."""
        delay = _BACKOFF_MIN
        first = True
        while True:
            pubsub: PubSub = client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                pinged = False
                while True:
                    message = await pubsub.get_message(timeout=self._timeout)
                    if message is None:
                        if pinged:  # no answer to the PING either: a dead link
                            raise RedisTimeoutError("no answer from Redis")
                        await pubsub.ping()
                        pinged = True
                        continue
                    pinged = False
                    kind = message.get("type")
                    if kind == "subscribe":
                        delay = _BACKOFF_MIN
                        self._came_up()
                        subscribed.set()
                        if not first:
                            # Whatever was published meanwhile is lost: re-read.
                            self._lost.clear()
                            self.notify(Change(EVERYTHING, reload=True))
                        first = False
                    elif kind == "message":
                        self._heard(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._went_down(exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX)

    def _heard(self, data: bytes) -> None:
        writer, _, body = data.partition(b"\n")
        if writer.startswith(self._mark):
            wid = writer[len(self._mark) :].decode()
            if wid not in self._lost:
                return  # told the listeners when the write returned
            del self._lost[wid]
        try:
            changes = [
                Change(m.k, tuple(decode_update(u) for u in m.u), reload=m.r)
                for m in _message_decoder.decode(body)
            ]
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            logger.warning("ignored a malformed change on %s: %s", self._channel, exc)
            return
        for change in changes:
            self.notify(change)

    # -- orders ----------------------------------------------------------------

    async def begin(
        self,
        transaction_id: str,
        *,
        po_number: str | None = None,
        state: OrderState = OrderState.SENDING,
    ) -> list[OrderUpdate]:
        return await self._begin(transaction_id, po_number, state, "begin")

    async def adopt(self, transaction_id: str) -> list[OrderUpdate]:
        return await self._begin(transaction_id, None, OrderState.TRACKED, "adopt")

    async def _begin(
        self, key: str, po_number: str | None, state: OrderState, mode: str
    ) -> list[OrderUpdate]:
        now = self._clock()
        bodies, swept = await self._run(
            "begin",
            [
                self.prefix,
                key,
                po_number or "",
                state.value,
                repr(now),
                repr(now - self._retention),
                mode,
            ],
            None,
        )
        self._log_drops((), swept)
        return [decode_update(body) for body in bodies]

    async def settle(
        self,
        transaction_id: str,
        state: OrderState,
        *,
        order_id: str | None = None,
        queue_id: str | None = None,
        error: str | None = None,
    ) -> None:
        wid = self._next_write()
        merged = await self._run(
            "settle",
            [
                self.prefix,
                self._instance,
                wid,
                transaction_id,
                state.value,
                order_id or "",
                queue_id or "",
                error or "",
                "0" if error is None else "1",
                repr(self._clock()),
                self._ttl,
            ],
            wid,
        )
        if merged:
            self.notify(Change(transaction_id, reload=True))

    async def get(self, transaction_id: str) -> TrackedOrder | None:
        await self.open()
        assert self._client is not None
        values = await self._guard(
            self._client.hmget(f"{self.prefix}o:{transaction_id}", _ROW_FIELDS)
        )
        if _text(values[0]) != "1":
            return None
        return _row(transaction_id, values[1:])

    async def outstanding(self) -> AsyncIterator[TrackedOrder]:
        score, skip = "-inf", 0
        while True:
            rows = await self._run(
                "outstanding", [self.prefix, score, str(skip), str(_PAGE)], None
            )
            for values in rows:
                key = _text(values[0])
                if values[2] is None or key is None:
                    continue  # dropped between the index and the row
                yield _row(key, values[2:])
            if len(rows) < _PAGE:
                return
            last = _text(rows[-1][1]) or "-inf"
            same = sum(1 for values in rows if _text(values[1]) == last)
            if last == score:
                skip += same
            else:
                score, skip = last, same

    # -- updates ---------------------------------------------------------------

    async def record(self, update: OrderUpdate) -> Recorded:
        tx, srs = update.transaction_id, update.order_id
        now = self._clock()
        args: _RecordArgs = (
            order_key(update, None),
            tx is None and srs is not None,
            srs or "",
            tx is not None and srs is not None,
            replay_key(update),
            encode_update(update).decode(),
            update.is_final,
            repr(now),
            repr(now - self._retention),
        )
        status, key, merged, unknown, finished = await self._run("record", args, None)
        self._log_drops(unknown, finished)
        if status == 2:
            log_over_cap(update, key, self._max_updates)
        if status != 1:
            return Recorded(key, False)
        self.notify(Change(key, (update,), reload=merged))
        return Recorded(key, True)

    async def history(self, key: str) -> list[OrderUpdate]:
        bodies = await self._run("history", [self.prefix, key], None)
        return [decode_update(body) for body in bodies]

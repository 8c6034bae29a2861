"""``sips-async listen --store URL`` (and ``SIPS_STORE``): listeners sharing Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sips_async.cli import main
from sips_async.stores import RedisStore
from tests._fake_sips import post
from tests._redis_server import shared_server
from tests.factories import HOOK_SECRET, event_body


@contextlib.asynccontextmanager
async def listener(argv: list[str], env: dict[str, str]) -> AsyncIterator[str]:
    """``sips-async listen`` in a subprocess; yields the URL it listens on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sips_async",
        "listen",
        "--port",
        "0",
        *argv,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SIPS_WEBHOOK_SECRET": HOOK_SECRET, **env},
    )
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            while True:
                line = (await proc.stderr.readline()).decode()
                assert line, "listen exited"
                if "listening on " in line:
                    break
        yield line.split("listening on ", 1)[1].strip().replace("***", HOOK_SECRET)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_two_listeners_on_one_redis_see_one_history() -> None:
    url = shared_server().url
    store = RedisStore(url)  # the default prefix, as the listeners use
    await store.open()
    try:
        await store.begin("txn-cli-redis")
        body = event_body(transaction_id="txn-cli-redis", event_id="cli-1")
        async with (
            listener(["--store", url], {}) as first,
            listener([], {"SIPS_STORE": url}) as second,
            aiohttp.ClientSession() as session,
        ):
            one = await post(session, first, body)
            assert (one.status, one.body["duplicate"]) == (200, False)
            # SRS's redelivery lands on the other instance: a replay there.
            two = await post(session, second, body)
            assert (two.status, two.body["duplicate"]) == (200, True)
        history = await store.history("txn-cli-redis")
        assert [u.event_id for u in history] == ["cli-1"]
    finally:
        await store.close()


def test_listen_with_a_bad_store_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["listen", "--port", "0", "--insecure", "--store", "mysql://u:pw@x/db"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown store" in err
    assert "pw@" not in err
    assert "Traceback" not in err

"""The pytest plugin, as a partner's own test suite would use it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sips_async.testing import WebhookPusher

USER_TESTS = """
import pytest

from sips_async import OrderRejectedError, OrderStatus
from sips_async.models import OrderRequest, LineItem


def order() -> OrderRequest:
    return OrderRequest(source_system="USER", customer_code="DEMO001",
                        branch_code="BRRIV", job_account_number=78,
                        order_line_item_details=[LineItem(product_id=40112, quantity=1,
                                                          uom="BD")])


@pytest.mark.sips_sandbox(step_delay=0.001)
async def test_enqueue_reaches_delivered(sips_client, sips_sandbox):
    pending = await sips_client.orders.enqueue(order())
    done = await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
    assert done.transaction_id == pending.transaction_id
    assert sips_sandbox.stats().transactions[pending.transaction_id] == 1


async def test_pushed_updates(sips_client, sips_webhook):
    pending = await sips_client.orders.track("user-txn-1")
    assert await sips_webhook.send(transaction_id="user-txn-1", event_type="OU",
                                   status="Processed") == 200
    assert await sips_webhook.replay() == 200
    assert await sips_webhook.send_older(transaction_id="user-txn-1",
                                         event_type="OU", status="Placed") == 200
    assert pending.status == OrderStatus.PROCESSED
    assert [u.status for u in pending.history] == [OrderStatus.PROCESSED,
                                                   OrderStatus.PLACED]
    await sips_webhook.send(transaction_id="user-txn-2", event_type="OA",
                            status="Rejected")
    with pytest.raises(OrderRejectedError):
        await (await sips_client.orders.track("user-txn-2")).wait(timeout=5)
"""


def test_fixtures_work_in_a_users_suite(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\n"
        "asyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


README = Path(__file__).parent.parent / "README.md"


def readme_example() -> tuple[str, str]:
    """The README's pytest example: its TOML block and its Python block."""
    text = README.read_text()
    block = text.split("<!-- pytest example -->", 1)[1]
    block = block.split("<!-- end pytest example -->", 1)[0]
    toml = block.split("```toml", 1)[1].split("```", 1)[0]
    python = block.split("```python", 1)[1].split("```", 1)[0]
    return toml, python


def test_the_readme_example_passes_as_pasted(pytester: pytest.Pytester) -> None:
    toml, python = readme_example()
    pytester.makefile(".toml", pyproject=toml)
    pytester.makepyfile(test_readme=python)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_without_the_mode_line_pytest_asyncio_refuses(
    pytester: pytest.Pytester,
) -> None:
    # Why the README shows the line: strict mode skips an unmarked async test.
    _, python = readme_example()
    pytester.makefile(
        ".toml",
        pyproject="[tool.pytest.ini_options]\n"
        'asyncio_default_fixture_loop_scope = "function"\n',
    )
    pytester.makepyfile(test_readme=python)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    result.assert_outcomes(passed=0, failed=1)


LOOP_SCOPED = """
import pytest

from sips_async import OrderStatus
from sips_async.models import LineItem, OrderRequest

{mark}


def order() -> OrderRequest:
    return OrderRequest(source_system="USER", customer_code="DEMO001",
                        branch_code="BRRIV", job_account_number=78,
                        order_line_item_details=[LineItem(product_id=40112, quantity=1,
                                                          uom="BD")])


@pytest.mark.sips_sandbox(step_delay=0.001)
async def test_walks_to_delivered(sips_client, sips_sandbox):
    pending = await sips_client.orders.enqueue(order())
    await pending.wait_for(OrderStatus.DELIVERED, timeout=10)
    assert len(sips_sandbox.stats().transactions) == 1


async def test_pushes_and_replays(sips_client, sips_webhook, sips_sandbox):
    pending = await sips_client.orders.enqueue(order())
    await pending.wait(timeout=10)
    assert await sips_webhook.send(transaction_id=pending.transaction_id,
                                   event_type="OU", status="Processed") == 200
    assert await sips_webhook.replay() == 200
    assert len(sips_sandbox.stats().transactions) == 1  # a fresh sandbox per test
"""


def test_fixtures_work_at_any_loop_scope(pytester: pytest.Pytester) -> None:
    # Session loop by default; one module marked module, one marked function.
    pytester.makeini(
        "[pytest]\n"
        "asyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "asyncio_default_test_loop_scope = session\n"
        "filterwarnings = error\n"
    )
    pytester.makepyfile(
        test_session=LOOP_SCOPED.format(mark=""),
        test_module=LOOP_SCOPED.format(
            mark='pytestmark = pytest.mark.asyncio(loop_scope="module")'
        ),
        test_function=LOOP_SCOPED.format(
            mark='pytestmark = pytest.mark.asyncio(loop_scope="function")'
        ),
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


async def test_pusher_refuses_a_receiver_on_another_loop() -> None:
    other = asyncio.new_event_loop()
    try:
        pusher = WebhookPusher("http://127.0.0.1:9/hook", receiver_loop=other)
        with pytest.raises(RuntimeError, match="another event loop"):
            await pusher.send(transaction_id="t")
        await pusher.aclose()
    finally:
        other.close()


async def test_pusher_times_out_on_a_receiver_that_never_answers() -> None:
    accepted = asyncio.Event()
    finished = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # never answers; returns when the pusher gives up
        writer.close()
        await writer.wait_closed()
        finished.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pusher = WebhookPusher(f"http://127.0.0.1:{port}/hook", timeout=0.2)
    try:
        with pytest.raises(TimeoutError):
            await pusher.send(transaction_id="t")
        assert accepted.is_set()
    finally:
        await pusher.aclose()
        await finished.wait()  # the connection is closed on both sides
        server.close()
        await server.wait_closed()

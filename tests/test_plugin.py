"""The pytest plugin, as a partner's own test suite would use it."""

from __future__ import annotations

import pytest

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

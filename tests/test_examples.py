"""Every example runs with no arguments against the bundled sandbox."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "quickstart.py": ["queued:", "acknowledged: OA", "delivered:"],
    "sync_submit.py": [
        "Order Submitted",
        "missing fields: sourceSystem",
        "Orders_GeneralError",
    ],
    "get_order.py": ["status: Placed", "unknown id: BAD_REQUEST_ERROR"],
    "embed_in_aiohttp_app.py": ["delivered via my own server:"],
    "listener_service.py": ["3 orders delivered"],
    "checked_order.py": [
        "customer DEMO001: valid=True",
        "branch BRRIV, job account 78",
        "price: $131.00 per SQ",
        "check found: jobAccountNumber: 1 is SRS's placeholder",
        "check found: orderLineItemDetails[0].option:",
        "check found: orderLineItemDetails[0].uom: 'EACH' is not a unit",
        "placed and acknowledged: OA Accepted",
        "orders the sandbox dropped: 0",
    ],
    # a real uvicorn server on 127.0.0.1, port picked by the OS
    "starlette_app.py": ["delivered via Starlette:"],
    "poll_only.py": [
        "acknowledged by a poll:",
        "delivered: Delivered (source=poll)",
        "reconciled: True Delivered",
        "still outstanding: 0",
    ],
}


def test_every_example_is_listed() -> None:
    found = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert found == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_example_runs(name: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPS_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / name),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    for needle in EXPECTED[name]:
        assert needle in text, (needle, text)

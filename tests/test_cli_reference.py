"""``sips-async customers validate``, ``branches`` and ``products price``, as
real subprocesses against a sandbox on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator

import pytest

from sips_async.cli import main
from sips_async.sandbox import Sandbox

from ._sandbox_helpers import SANDBOX_ID, SANDBOX_SECRET


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox() as sandbox:
        yield sandbox


async def cli(sb: Sandbox, *argv: str, key: str | None = None) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "SIPS_CLIENT_ID": SANDBOX_ID,
        "SIPS_CLIENT_SECRET": SANDBOX_SECRET,
        "SIPS_BASE_URL": sb.url,
    }
    env.pop("SIPS_INTEGRATION_KEY", None)
    if key is not None:
        env["SIPS_INTEGRATION_KEY"] = key
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sips_async",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_customers_validate(sb: Sandbox) -> None:
    code, out, _ = await cli(sb, "customers", "validate", "DEMO001", key="DEMO001-KEY")
    assert code == 0
    assert out.strip() == "DEMO001: valid (validIndicator='Y') Demo Roofing LLC"
    code, out, _ = await cli(sb, "customers", "validate", "HOLD001", "--json")
    assert code == 1  # SRS says no: a script can tell
    doc = json.loads(out)
    assert doc["valid"] is False and doc["validIndicator"] == "N"
    assert doc["customerId"] == 46227


async def test_branches_three_ways(sb: Sandbox) -> None:
    code, out, _ = await cli(sb, "branches")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["BRRIV", "WSGRA", "DEMO"]
    code, out, _ = await cli(sb, "branches", "--customer", "DEMO001", "--json")
    assert code == 0
    doc = json.loads(out)
    assert [a["jobAccountNumber"] for a in doc[0]["jobAccounts"]] == [78, 79]
    code, out, _ = await cli(sb, "branches", "--products", "BRRIV")
    assert code == 0
    assert (
        "75664  CertainTeed Presidential Solaris Shingles  Country Gray [SQ/BD" in out
    )


async def test_products_price(sb: Sandbox) -> None:
    code, out, err = await cli(
        sb,
        "products",
        "price",
        "--customer",
        "DEMO001",
        "--branch",
        "BRRIV",
        "--job-account",
        "78",
        "--item",
        "75664:30:SQ:Country Gray",
        "--item",
        "55001:1:RL",
    )
    assert code == 0, err
    first, second = out.splitlines()
    assert "$131.00" in first and "per SQ" in first
    assert "Please call branch for product pricing" in second
    code, out, _ = await cli(
        sb,
        "products",
        "price",
        "--customer=DEMO001",
        "--branch=BRRIV",
        "--job-account=78",
        "--item=55001:1:RL",
        "--json",
    )
    (line,) = json.loads(out)
    assert line["price"] == 0 and line["callBranch"] is True


_PRICE = ["products", "price", "--customer", "D", "--branch", "B", "--job-account", "7"]


@pytest.mark.parametrize(
    ("item", "message"),
    [("x:1:SQ", "whole numbers"), ("1:SQ", "PRODUCT_ID:QUANTITY:UOM")],
)
def test_a_bad_item_is_a_usage_error(
    item: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([*_PRICE, "--item", item])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["customers"], "customers validate"),
        (["products"], "products price"),
        (["branches", "--customer", "A", "--products", "B"], "not both"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIPS_CLIENT_ID", "x")
    monkeypatch.setenv("SIPS_CLIENT_SECRET", "y")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1

"""``sips-async reconcile`` (a real subprocess on a real SQLite store) and
``sips-async demo --lose``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from sips_async import PoDetails, SipsClient
from sips_async.cli import main
from sips_async.sandbox import Sandbox, SandboxConfig

from ._sandbox_helpers import FAST_RETRY, SANDBOX_ID, SANDBOX_SECRET
from .factories import make_order


async def reconcile_cli(
    store: str, base_url: str, *extra: str
) -> tuple[int | None, str, str]:
    env = {
        **os.environ,
        "SIPS_CLIENT_ID": SANDBOX_ID,
        "SIPS_CLIENT_SECRET": SANDBOX_SECRET,
        "SIPS_BASE_URL": base_url,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sips_async",
        "reconcile",
        "--store",
        store,
        *extra,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode, out.decode(), err.decode()


async def test_reconcile_command_reports_and_settles_a_store(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'orders.db'}"
    async with Sandbox(SandboxConfig(step_delay=0.005)) as sb:
        async with SipsClient(
            client_id=SANDBOX_ID,
            client_secret=SANDBOX_SECRET,
            base_url=sb.url,
            store=store,
            retry=FAST_RETRY,
        ) as client:
            placed = [
                await client.orders.enqueue(
                    make_order(po_details=PoDetails(po_number=f"CLI-{i}"))
                )
                for i in range(3)
            ]
            dropped = await client.orders.enqueue(
                make_order(job_account_number=1, po_details=None)
            )
        await sb.wait_idle()

        code, out, err = await reconcile_cli(store, sb.url, "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert (doc["resolved"], doc["pending"], doc["not_found"], doc["failed"]) == (
            3,
            0,
            1,
            0,
        )
        resolved = doc["orders"]["resolved"]
        assert {r["transaction_id"] for r in resolved} == {
            p.transaction_id for p in placed
        }
        assert {r["po_number"] for r in resolved} == {"CLI-0", "CLI-1", "CLI-2"}
        assert doc["orders"]["not_found"][0]["transaction_id"] == (
            dropped.transaction_id
        )
        assert "reconciled 4/4" in err
        assert SANDBOX_SECRET not in out + err

        # The store was settled: only the dropped order is left to ask about.
        code, out, err = await reconcile_cli(store, sb.url)
        assert code == 0, err
        assert f"not_found {dropped.transaction_id}" in out
        assert out.strip().endswith(
            "1 outstanding: 0 resolved, 0 pending, 1 not found, 0 failed"
        )


def test_reconcile_refuses_a_bad_store_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIPS_CLIENT_ID", "someone")
    monkeypatch.setenv("SIPS_CLIENT_SECRET", "cli-secret-value-123")
    assert main(["reconcile", "--store", "ftp://nowhere"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "cli-secret-value-123" not in err
    assert main(["reconcile", "--store", "memory://", "--concurrency", "0"]) == 2


def test_demo_lose_recovers_every_order_by_polling(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["demo", "--orders", "12", "--lose", "0.5", "--seed", "5"]
    code = main([*argv, "--step-delay", "0.005", "--error-rate", "0", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = json.loads(out.splitlines()[-2])
    assert summary["final"] == summary["delivered"] == 12
    assert 0 < summary["recovered_by_polling"] <= 12
    assert main(["demo", "--lose", "1.5"]) == 2

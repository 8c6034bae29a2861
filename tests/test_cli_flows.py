"""The CLI as a new user meets it: the sandbox/listen/submit processes working
together, ``trigger``, human ``listen`` lines, ``--help``, flag names in errors.

Processes are real subprocesses; their ports are read from their output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from sips_async import WebhookConfig, WebhookReceiver
from sips_async.cli import build_parser, main
from sips_async.models import OrderUpdate
from sips_async.sandbox import Sandbox, SandboxConfig
from sips_async.webhooks import SECRET_HEADER

from .factories import HOOK_SECRET, event_body

ORDER = {
    "sourceSystem": "CLI",
    "customerCode": "DEMO001",
    "jobAccountNumber": 78,
    "branchCode": "BRRIV",
    "orderLineItemDetails": [
        {"productId": 75664, "option": "Country Gray", "quantity": 1, "uom": "SQ"}
    ],
}
SIGNING = "whsec_" + "c2lwcy1hc3luYy10cmlnZ2VyLXRlc3Qta2V5"


class Proc:
    """A ``python -m sips_async`` subprocess whose output lines are read as needed."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: dict[str, list[str]] = {"stdout": [], "stderr": []}

    async def line(self, stream: str, needle: str) -> str:
        """The first (further) line of ``stream`` containing ``needle``."""
        reader: asyncio.StreamReader = getattr(self.proc, stream)
        while True:
            raw = await reader.readline()
            if not raw:
                raise AssertionError(
                    f"{stream} ended before {needle!r}: {self.seen[stream]}"
                )
            text = raw.decode()
            self.seen[stream].append(text)
            if needle in text:
                return text

    async def stop(self) -> tuple[int, str, str]:
        """SIGTERM, then the exit code and the rest of stdout and stderr."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = await self.proc.communicate()
        return (
            await self.proc.wait(),
            "".join(self.seen["stdout"]) + out.decode(),
            "".join(self.seen["stderr"]) + err.decode(),
        )


@asynccontextmanager
async def cli(*argv: str, env: dict[str, str] | None = None) -> AsyncIterator[Proc]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sips_async",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        yield Proc(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sandbox_listen_and_submit_as_three_processes(tmp_path: Path) -> None:
    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps(ORDER))
    clean = {"SIPS_CLIENT_ID": "", "SIPS_CLIENT_SECRET": "", "SIPS_WEBHOOK_SECRET": ""}
    async with asyncio.timeout(60):
        async with cli("sandbox", "--port", "0", "--step-delay", "0.01", "-v") as sb:
            line = await sb.line("stderr", "sandbox listening on ")
            sandbox_url = line.split("sandbox listening on ", 1)[1].strip()
            async with cli("listen", "--port", "0", "--sandbox", sandbox_url) as ls:
                await ls.line("stderr", "registered with the sandbox")
                submit = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "sips_async",
                    "submit",
                    str(order_file),
                    "--sandbox",
                    sandbox_url,
                    "--queue",
                    "--wait",
                    "--json",
                    "--timeout",
                    "20",
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env={**os.environ, **clean},
                )
                out, err = await submit.communicate()
                assert submit.returncode == 0, err.decode()
                doc = json.loads(out)  # exactly one JSON document
                txn = doc["transactionID"]
                assert doc["message"] == "Order Queued"
                assert doc["queueID"] == doc["orderID"]
                assert doc["queued"] is True
                assert doc["acknowledgement"]["eventType"] == "OA"
                assert doc["acknowledgement"]["transactionID"] == txn
                # The separate listener saw the same order walk to Delivered.
                delivered = await ls.line("stdout", "Delivered")
                assert f"txn={txn}" in delivered
                assert "(final)" in delivered
                code, listened, listen_err = await ls.stop()
            assert code == 0
            assert any(f"txn={txn}" in x and "OA" in x for x in listened.splitlines())
            assert "Traceback" not in listen_err
            code, _, sandbox_err = await sb.stop()
    assert code == 0
    # -v after the subcommand: the sandbox logged each request.
    assert "POST /_sandbox/webhooks -> 201" in sandbox_err
    assert "POST /orders/v2/submit/async -> 200" in sandbox_err
    assert "DELETE /_sandbox/webhooks -> 200" in sandbox_err


async def test_listen_prints_a_human_line_per_update_and_refusal() -> None:
    env = {"SIPS_WEBHOOK_SECRET": HOOK_SECRET}
    async with asyncio.timeout(30), cli("listen", "--port", "0", env=env) as ls:
        line = await ls.line("stderr", "listening on ")
        url = line.split("listening on ", 1)[1].strip().replace("/***", "")
        body = event_body(
            transaction_id="txn-human-1", event_type="OU", status="Placed"
        )
        async with aiohttp.ClientSession() as http:
            headers = {SECRET_HEADER: HOOK_SECRET, "Content-Type": "application/json"}
            async with http.post(url, data=body, headers=headers) as resp:
                assert resp.status == 200
            update = await ls.line("stdout", "txn=txn-human-1")
            headers[SECRET_HEADER] = "wrong-secret-0123456789"
            async with http.post(url, data=body, headers=headers) as resp:
                assert resp.status == 401
            refusal = await ls.line("stdout", "refused")
            async with http.post(url, data=b"[1]", headers={"Content-Type": "text/x"}):
                pass
            other = await ls.line("stdout", "refused")
        code, _, err = await ls.stop()
    assert "OU" in update and "Placed" in update and "order=35818786" in update
    assert "refused 401: missing or wrong secret" in refusal
    assert "refused 401" in other  # the secret is checked before the type
    assert HOOK_SECRET not in update + refusal + err
    assert code == 0


async def test_trigger_posts_signed_updates_and_a_duplicate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[OrderUpdate] = []
    cfg = WebhookConfig(secret=HOOK_SECRET, signing_secrets=(SIGNING,))
    async with WebhookReceiver(cfg) as receiver:
        receiver.on_update(seen.append)
        url = receiver.url
        assert url is not None
        base = url.rsplit("/", 1)[0]  # without the secret segment
        argv = ["trigger", "duplicate", base, "--secret", HOOK_SECRET]
        code = await asyncio.to_thread(
            main, [*argv, "--signing-secret", SIGNING, "--transaction-id", "t-dup"]
        )
        out = capsys.readouterr().out.splitlines()
        assert code == 0
        assert len(out) == 2 and all("HTTP 200" in x for x in out)
        assert '"duplicate":false' in out[0] and '"duplicate":true' in out[1]
        # A second run is a new event (its own eventId), not a replay.
        argv = ["trigger", "OU", base, "--secret", HOOK_SECRET]
        code = await asyncio.to_thread(
            main, [*argv, "--signing-secret", SIGNING, "--transaction-id", "t-dup"]
        )
        assert code == 0
        assert '"duplicate":false' in capsys.readouterr().out
        code = await asyncio.to_thread(
            main,
            ["trigger", "rejected", url, "--signing-secret", SIGNING, "--json"],
        )
        doc = json.loads(capsys.readouterr().out)
        assert code == 0 and doc["status"] == 200
        # Random, so separate trigger processes never collide as replays.
        assert re.fullmatch(r"evt-[0-9a-f]{16}", doc["eventId"])
        # Unsigned: the receiver refuses it and trigger says so in its exit code.
        code = await asyncio.to_thread(main, ["trigger", "DU", url])
        assert code == 1
        assert "HTTP 401" in capsys.readouterr().out
    assert [(u.transaction_id, u.event_type) for u in seen] == [
        ("t-dup", "OU"),
        ("t-dup", "OU"),
        (doc["transactionID"], "OA"),
    ]
    assert seen[2].rejected and seen[2].error_code == "Orders_GeneralError"


async def test_trigger_to_nothing_is_one_line(
    capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    code = await asyncio.to_thread(
        main, ["trigger", "OA", f"http://127.0.0.1:{unused_tcp_port}/hook"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot post" in err and "Traceback" not in err


async def test_get_874_works_on_a_fresh_sandbox(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with Sandbox() as sb:
        code = await asyncio.to_thread(main, ["get", "874", "--sandbox", sb.url])
        out = capsys.readouterr().out
        assert code == 0, out
        assert out.startswith("order 874 ")
        assert "status:   Delivered" in out
        code = await asyncio.to_thread(main, ["get", "875", "--sandbox", sb.url])
        assert code == 1
        assert "SipsNotFoundError" in capsys.readouterr().err


async def test_sandbox_delivers_to_every_registered_webhook() -> None:
    async with (
        Sandbox(SandboxConfig(step_delay=0.001)) as sb,
        aiohttp.ClientSession() as http,
    ):
        receivers = [
            WebhookReceiver(WebhookConfig(secret=HOOK_SECRET)) for _ in range(2)
        ]
        got: list[asyncio.Queue[OrderUpdate]] = [asyncio.Queue(), asyncio.Queue()]
        for receiver, queue in zip(receivers, got, strict=True):
            receiver.on_update(queue.put_nowait)
            await receiver.start()
        try:
            hooks = sb.url + "/_sandbox/webhooks"
            for receiver in receivers:
                async with http.post(hooks, json={"url": receiver.url}) as resp:
                    assert resp.status == 201
            async with http.post(hooks, json={"url": "ftp://x"}) as resp:
                assert resp.status == 400
            async with http.post(hooks, data=b"{nope") as resp:
                assert resp.status == 400
            await sb.push("txn-fan", "OU", "Processed")
            for queue in got:
                assert (await queue.get()).transaction_id == "txn-fan"
            async with http.delete(hooks, json={"url": receivers[0].url}) as resp:
                assert (await resp.json())["removed"] is True
            await sb.push("txn-fan", "DU", "Delivered")
            assert (await got[1].get()).event_type == "DU"
            assert got[0].empty()
            assert len(sb.stats().webhooks) == 3
        finally:
            for receiver in receivers:
                await receiver.aclose()


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_option_has_help_and_shows_its_default(name: str) -> None:
    parser = _subcommands()[name]
    text = parser.format_help()
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{name} {action.option_strings} has no help text"
        if action.default not in (None, False, [], argparse.SUPPRESS) and not (
            isinstance(action, argparse._HelpAction)
        ):
            assert f"(default: {action.default})" in " ".join(text.split()), (
                f"{name} {action.option_strings} hides its default"
            )


def test_verbose_is_accepted_after_the_subcommand() -> None:
    parser = build_parser()
    args = parser.parse_args(["-v", "sandbox", "--port", "0", "-vv"])
    assert args.verbose + args.sub_verbose == 3


def test_logging_is_configured_once_and_still_propagates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = logging.getLogger("sips_async")
    before = len(log.handlers)
    for _ in range(3):
        main(["listen", "--port", "0"])  # fails fast: no guard
    capsys.readouterr()
    assert len(log.handlers) <= before + 1
    assert log.propagate is True


def test_listen_without_guard_names_the_flags(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIPS_WEBHOOK_SECRET", raising=False)
    assert main(["listen", "--port", "0"]) == 2
    err = capsys.readouterr().err
    for flag in ("--secret", "SIPS_WEBHOOK_SECRET", "--insecure", "--signing-secret"):
        assert flag in err
    assert "insecure=True" not in err and "secret=" not in err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["listen", "--port", "0", "--secret", "short"], "--secret"),
        (["listen", "--port", "0", "--insecure", "--allow-ip", "x"], "--allow-ip"),
        (["listen", "--port", "0", "--insecure", "--path", "x"], "--path"),
        (["sandbox", "--port", "0", "--error-rate", "2"], "--error-rate"),
        (["sandbox", "--port", "0", "--step-delay", "-1"], "--step-delay"),
        (["trigger", "OA", "ftp://x"], "URL"),
    ],
)
def test_config_errors_use_flag_names(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and flag in err
    for python_name in ("allowed_ips", "error_rate", "step_delay", "webhook path"):
        assert python_name not in err


async def test_submit_wait_rejected_prints_one_document_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps({**ORDER, "branchCode": "NOPE"}))
    argv = ["submit", str(order_file), "--queue", "--wait", "--timeout", "10"]
    async with Sandbox(SandboxConfig(step_delay=0.001)) as sb:
        code = await asyncio.to_thread(main, [*argv, "--sandbox", sb.url, "--json"])
        out, err = capsys.readouterr()
        assert code == 1
        doc = json.loads(out)
        assert doc["acknowledgement"]["rejected"] is True
        assert doc["acknowledgement"]["transactionID"] == doc["transactionID"]
        assert "OrderRejectedError" in err
        code = await asyncio.to_thread(main, [*argv, "--sandbox", sb.url])
        out, _ = capsys.readouterr()
        assert code == 1
        assert out.splitlines()[-1] == "rejected: OA Rejected"
        assert sb.stats().orders == 2


def test_listen_with_an_unreachable_sandbox_names_the_flag(
    capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}"
    assert main(["listen", "--port", "0", "--insecure", "--sandbox", url]) == 2
    err = capsys.readouterr().err
    assert f"--sandbox {url}: cannot reach it" in err
    assert "Traceback" not in err

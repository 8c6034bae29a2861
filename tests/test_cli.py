"""The ``sips-async`` command: bad input gives a clear error and exit code.

In-process runs go through ``main(argv)``; ``listen`` runs as a real
subprocess receiving a real POST.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from sips_async.cli import main
from sips_async.webhooks import SECRET_HEADER

from .factories import HOOK_SECRET, event_body


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIPS_CLIENT_ID", "someone")
    monkeypatch.setenv("SIPS_CLIENT_SECRET", "cli-secret-value-123")
    monkeypatch.setenv("SIPS_BASE_URL", f"http://127.0.0.1:{closed_port()}")


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "order.json"
    path.write_text(text)
    return str(path)


GOOD_ORDER = json.dumps(
    {
        "sourceSystem": "CLI",
        "customerCode": "DEMO001",
        "jobAccountNumber": 1,
        "branchCode": "BRRIV",
        "orderLineItemDetails": [{"productId": 75664, "quantity": 1, "uom": "SQ"}],
    }
)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("sips-async 0.")


def test_no_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([], capsys)
    assert code == 2
    assert "usage" in err


def test_submit_missing_file(
    tmp_path: Path, creds: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["submit", str(tmp_path / "nope.json")], capsys)
    assert code == 2
    assert "no such file" in err
    assert "Traceback" not in err


def test_submit_bad_json(
    tmp_path: Path, creds: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["submit", write(tmp_path, "{not json")], capsys)
    assert code == 2
    assert "not valid JSON" in err


def test_submit_lists_every_missing_field(
    tmp_path: Path, creds: None, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.dumps({"customerCode": "X", "orderLineItemDetails": [{"uom": "SQ"}]})
    code, _, err = run(["submit", write(tmp_path, body)], capsys)
    assert code == 2
    for field in (
        "sourceSystem",
        "jobAccountNumber",
        "branchCode",
        "orderLineItemDetails[0].productId",
        "orderLineItemDetails[0].quantity",
    ):
        assert field in err
    assert "customerCode" not in err


def test_submit_wrong_type_names_path(
    tmp_path: Path, creds: None, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.loads(GOOD_ORDER)
    body["jobAccountNumber"] = "one"
    code, _, err = run(["submit", write(tmp_path, json.dumps(body))], capsys)
    assert code == 2
    assert "$.jobAccountNumber" in err


def test_submit_without_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SIPS_CLIENT_ID", "SIPS_CLIENT_SECRET", "SIPS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = run(["submit", write(tmp_path, GOOD_ORDER)], capsys)
    assert code == 2
    assert "SIPS_CLIENT_ID" in err
    assert "SIPS_CLIENT_SECRET" in err


def test_submit_wait_needs_queue(
    tmp_path: Path, creds: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["submit", write(tmp_path, GOOD_ORDER), "--wait"], capsys)
    assert code == 2
    assert "--queue" in err


def test_submit_unreachable_server_is_one_line(
    tmp_path: Path, creds: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["submit", write(tmp_path, GOOD_ORDER)], capsys)
    assert code == 1
    assert "SipsConnectionError" in err
    assert "Traceback" not in err
    assert "cli-secret-value-123" not in out + err


def test_get_bad_id(creds: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["get", "../etc/passwd"], capsys)
    assert code == 2
    assert "order id" in err


def test_get_without_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SIPS_CLIENT_ID", raising=False)
    monkeypatch.delenv("SIPS_CLIENT_SECRET", raising=False)
    code, _, err = run(["get", "874"], capsys)
    assert code == 2
    assert "missing credentials" in err


def test_listen_refuses_without_guard(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["listen", "--port", "0"], capsys)
    assert code == 2
    assert "insecure" in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["listen", "--port", "0", "--secret", "short"], "16 characters"),
        (["listen", "--port", "0", "--insecure", "--allow-ip", "nonsense"], "network"),
        (["listen", "--port", "70000", "--insecure"], "0..65535"),
        (["listen", "--port", "0", "--insecure", "--forward", "ftp://x"], "http://"),
        (["sandbox", "--port", "-1"], "0..65535"),
        (["demo", "--orders", "0"], "at least 1"),
    ],
)
def test_bad_arguments(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code, _, err = run(argv, capsys)
    except SystemExit as exc:  # argparse's own usage errors
        code, err = int(exc.code or 0), capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


async def _read_line(stream: asyncio.StreamReader, needle: str) -> str:
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError(f"stream ended before {needle!r}")
        line = raw.decode()
        if needle in line:
            return line


async def test_listen_subprocess_receives_update_end_to_end() -> None:
    forwarded: asyncio.Queue[bytes] = asyncio.Queue()

    async def collect(request: web.Request) -> web.Response:
        forwarded.put_nowait(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/collect", collect)
    collector = web.AppRunner(app, access_log=None)
    await collector.setup()
    await web.TCPSite(collector, "127.0.0.1", 0).start()
    forward_url = f"http://127.0.0.1:{collector.addresses[0][1]}/collect"
    env = {**os.environ, "SIPS_WEBHOOK_SECRET": HOOK_SECRET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sips_async",
        "listen",
        "--port",
        "0",
        "--forward",
        forward_url,
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            line = await _read_line(proc.stderr, "listening on ")
            assert HOOK_SECRET not in line
            url = line.split("listening on ", 1)[1].strip().replace("/***", "")
            body = event_body(
                transaction_id="txn-cli-1", event_type="DU", status="Delivered"
            )
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    url,
                    data=body,
                    headers={
                        SECRET_HEADER: HOOK_SECRET,
                        "Content-Type": "application/json",
                    },
                ) as resp:
                    assert resp.status == 200
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as resp:
                    assert resp.status == 401
            printed = json.loads(await proc.stdout.readline())
            assert printed["transactionID"] == "txn-cli-1"
            assert printed["eventType"] == "DU"
            assert printed["status"] == "Delivered"
            assert printed["final"] is True
            assert await forwarded.get() == body
            proc.send_signal(signal.SIGTERM)
            rest = await proc.stdout.read()
            code = await proc.wait()
            err = (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await collector.cleanup()
    assert code == 0
    assert forwarded.empty()  # the refused post was not forwarded
    assert rest == b""  # only accepted updates are printed
    assert "stopped" in err
    assert "refused 401: missing or wrong secret" in err  # --json: on stderr
    assert "Traceback" not in err

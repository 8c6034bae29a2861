"""``sips-async demo --crash``: the service is killed mid-run and comes back.

The parent runs the sandbox (SRS) and the display. The service (client,
webhook receiver and a durable store) runs in a child process: it enqueues
every order and follows their updates, reporting each as a JSON line. Once
about a third of the updates are in, the parent kills it with SIGKILL, then
starts a new one on the same port and store; it picks up every outstanding
order with ``client.orders.outstanding()`` while the sandbox redelivers what
got no 2xx. The summary compares what the sandbox was answered 2xx for with
what the store holds: nothing lost, nothing recorded twice.

Run the child alone with ``python -m sips_async._demo_crash`` (arguments as
:func:`_child_main` parses them; secrets come from the environment).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from collections import Counter
from typing import Any, Final, TextIO

from ._client import SipsClient
from ._config import RetryConfig, WebhookConfig
from ._demo_view import STAGES, LiveView, Row, fit, summary_table, terminal_width
from .models import OrderStatus
from .sandbox import Sandbox, SandboxConfig
from .stores import SqliteStore, open_store

__all__ = ["run_crash_demo"]

#: Sandbox redeliveries: long enough to outlast a restart of the service.
_RETRIES: Final = 12
_STAGE_OF: Final = {
    OrderStatus.PLACED: 2,
    OrderStatus.PROCESSED: 3,
    OrderStatus.SHIPMENT_CREATED: 4,
    OrderStatus.DELIVERED: 5,
}
_SECRET_ENV: Final = "SIPS_DEMO_HOOK_SECRET"
_CLIENT_SECRET_ENV: Final = "SIPS_DEMO_CLIENT_SECRET"


# -- the child: the partner's service ------------------------------------------------


def _emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def _follow(index: int, pending: Any) -> None:
    async for update in pending.updates():
        _emit(
            i=index,
            tx=pending.transaction_id,
            type=update.event_type,
            status=str(update.status) if update.status is not None else None,
            accepted=update.accepted,
            final=update.is_final,
        )


async def _child(args: argparse.Namespace) -> None:
    from ._demo import sample_order

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with SipsClient(
        client_id=args.client_id,
        client_secret=os.environ[_CLIENT_SECRET_ENV],
        base_url=args.sandbox,
        webhook=WebhookConfig(port=args.port, secret=os.environ[_SECRET_ENV]),
        retry=RetryConfig(initial_delay=0.05, max_delay=0.5),
        store=args.store,
    ) as client:
        _emit(url=client.webhook_url)
        tasks = []
        if args.resume:
            async for pending in client.orders.outstanding():
                po = next((u.po_number for u in pending.history if u.po_number), "")
                index = int(po.rsplit("-", 1)[-1]) - 1 if po else -1
                tasks.append(asyncio.create_task(_follow(index, pending)))
            _emit(resumed=len(tasks))
        else:
            gate = asyncio.Semaphore(args.concurrency)

            async def place(index: int) -> None:
                async with gate:
                    pending = await client.orders.enqueue(sample_order(index + 1))
                _emit(i=index, tx=pending.transaction_id, enqueued=True)
                await _follow(index, pending)

            tasks = [asyncio.create_task(place(i)) for i in range(args.orders)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _child_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sips_async._demo_crash")
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--resume", action="store_true")
    asyncio.run(_child(parser.parse_args(argv)))


# -- the parent: SRS and the display -------------------------------------------------


class _Service:
    """One child process and the JSON lines it prints."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        raw = await self.proc.stdout.readline()
        if not raw:
            return None
        try:
            parsed: dict[str, Any] = json.loads(raw)
        except ValueError:
            return {}
        return parsed

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await self.proc.wait()


async def _start(
    sandbox: Sandbox, store: str, secret: str, args: list[str]
) -> tuple[_Service, str]:
    env = {**os.environ, _SECRET_ENV: secret}
    env[_CLIENT_SECRET_ENV] = sandbox.config.client_secret
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sips_async._demo_crash",
        "--sandbox",
        sandbox.url,
        "--store",
        store,
        "--client-id",
        sandbox.config.client_id,
        *args,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    service = _Service(proc)
    async with asyncio.timeout(60):
        first = await service.line()
    if not first or "url" not in first:
        await service.stop(signal.SIGKILL)
        raise RuntimeError("the demo service did not start")
    return service, str(first["url"])


class _Progress:
    def __init__(self, orders: int) -> None:
        self.orders = orders
        self.stage = [-1] * orders
        self.tx: dict[str, int] = {}
        self.final: set[str] = set()
        self.updates = 0
        self.started = time.perf_counter()

    def take(self, event: dict[str, Any]) -> None:
        tx = str(event.get("tx"))
        index = self.tx.get(tx, event.get("i"))
        if not isinstance(index, int) or not 0 <= index < self.orders:
            return
        self.tx[tx] = index
        if event.get("enqueued"):
            self.stage[index] = max(self.stage[index], 0)
            return
        self.updates += 1
        stage = 1 if event.get("accepted") else -1
        status = OrderStatus.parse(event.get("status"))
        if isinstance(status, OrderStatus):
            stage = max(stage, _STAGE_OF.get(status, -1))
        self.stage[index] = max(self.stage[index], stage)
        if event.get("final"):
            self.final.add(tx)

    def bars(self, width: int, note: str) -> list[str]:
        from ._demo_view import progress_lines

        reached = [sum(1 for s in self.stage if s >= i) for i in range(len(STAGES))]
        extra = [("service", note), ("elapsed", f"{self.elapsed():.1f} s")]
        return progress_lines(reached, self.orders, width=width, extra=extra)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


async def _pump(
    service: _Service,
    progress: _Progress,
    view: LiveView,
    width: int,
    note: str,
    until: Any,
) -> bool:
    """Read the service's events until ``until(progress)``; False if it exited."""
    while not until(progress):
        event = await service.line()
        if event is None:
            return False
        progress.take(event)
        view.draw(progress.bars(width, note))
    return True


async def run_crash_demo(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the crash demo described by the parsed ``demo`` arguments."""
    out = out or sys.stdout
    width = terminal_width(out)
    store_url = args.store or "sqlite:///sips-demo.db"
    store = open_store(store_url)
    if not isinstance(store, SqliteStore):
        out.write(
            "--crash needs a durable store on this machine: --store sqlite:///demo.db\n"
        )
        return 2
    if store.path.exists():
        out.write(f"--store file {store.path} exists: give a new file for the demo\n")
        return 2
    orders = args.orders
    secret = secrets.token_urlsafe(24)
    # No 5xx on enqueue here: the fault on show is the service's crash.
    config = SandboxConfig(
        error_rate=0.0,
        duplicate_rate=args.duplicate_rate,
        reorder_rate=args.reorder_rate,
        step_delay=args.step_delay if args.step_delay is not None else 0.05,
        webhook_retries=_RETRIES,
        seed=args.seed,
    )
    view = LiveView(out, lines=len(STAGES) + 3)
    progress = _Progress(orders)
    expected = orders * 5  # OA and four statuses per delivered order
    killed_at = resumed = 0
    finished = False
    async with Sandbox(config, host="127.0.0.1", port=0) as sandbox:
        first, url = await _start(
            sandbox,
            store_url,
            secret,
            ["--orders", str(orders), "--concurrency", str(args.concurrency)],
        )
        sandbox.webhook_url = url
        port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
        head = f"sips-async demo --crash: {orders} orders, store {store_url}"
        out.write(fit(head, width - 1) + "\n")
        try:
            async with asyncio.timeout(args.timeout):
                await _pump(
                    first,
                    progress,
                    view,
                    width,
                    "running",
                    lambda p: p.updates >= expected // 3 and len(p.tx) == orders,
                )
                killed_at = progress.updates
                await first.stop(signal.SIGKILL)
                note = f"  service killed (SIGKILL) after {killed_at} updates"
                view.write(fit(note, width - 1))
                second, _ = await _start(
                    sandbox, store_url, secret, ["--port", port, "--resume"]
                )
                try:
                    while True:
                        event = await second.line()
                        if event is None or "resumed" in event:
                            break
                        progress.take(event)
                    resumed = int((event or {}).get("resumed", 0))
                    view.write(
                        fit(
                            f"  restarted: {resumed} outstanding orders picked up",
                            width - 1,
                        )
                    )
                    await _pump(
                        second,
                        progress,
                        view,
                        width,
                        "restarted",
                        lambda p: len(p.final) >= orders,
                    )
                    await sandbox.wait_idle()
                    finished = True
                finally:
                    await second.stop()
        except TimeoutError:
            finished = False
        finally:
            await first.stop(signal.SIGKILL)
            view.finish(progress.bars(width, "stopped"))
        stats = sandbox.stats()
    acked = {
        (r.transaction_id, r.event_id)
        for r in stats.webhooks
        if r.ok and r.transaction_id is not None
    }
    await store.open()
    try:
        kept: Counter[tuple[str | None, str]] = Counter()
        final = 0
        for tx in progress.tx:
            history = await store.history(tx)
            kept.update((tx, u.event_id) for u in history)
            final += any(u.is_final for u in history)
    finally:
        await store.close()
    lost = len(acked - set(kept))
    twice = sum(1 for n in kept.values() if n > 1)
    rows = [
        Row("orders", str(orders)),
        Row("at a final status", str(final)),
        Row("killed after (updates)", str(killed_at)),
        Row("picked up after restart", str(resumed)),
        Row("updates answered 2xx", str(len(acked))),
        Row("updates in the store", str(len(kept))),
        Row("updates lost", str(lost)),
        Row("recorded twice", str(twice)),
        Row("run time", f"{progress.elapsed():.1f} s"),
    ]
    out.write(summary_table(rows, width=width - 1) + "\n")
    ok = finished and final == orders and lost == 0 and twice == 0
    verdict = "every order final, 0 updates lost" if ok else "INCOMPLETE"
    out.write(fit(verdict, width - 1) + "\n")
    out.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        _child_main()

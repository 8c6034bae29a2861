"""Process harness: worker processes, bounded load loops, statistics.

A :class:`Worker` is a process started with the *spawn* method. It runs one
event loop (asyncio or uvloop) for its whole life and hosts one *role*: an
object built from a ``"module:Class"`` path with a config dict. The role's
``start()`` answer (a server's port, say) is sent back once the role is up;
after that the parent sends commands (``name``, ``args``) and gets one dict
back per command. The worker exits on ``stop`` or when the parent goes away
(the pipe closes), so no process outlives a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import math
import multiprocessing
import statistics
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Final, Protocol

import msgspec

from sips_async import OrderRequest
from sips_async._codec import documented_wire
from tests.factories import make_order

__all__ = [
    "bare_body",
    "OrderClient",
    "GcTimer",
    "Options",
    "Role",
    "Spec",
    "Trial",
    "Worker",
    "available_loops",
    "interleave",
    "median",
    "percentile",
    "run_load",
    "server_loop",
    "workers",
]

_SPAWN = multiprocessing.get_context("spawn")

#: A worker to start: ``(role_path, loop, config)``.
Spec = tuple[str, str, dict[str, Any]]

#: Longest any single command may take before the run is abandoned.
COMMAND_TIMEOUT = 180.0


class Role(Protocol):
    """What a worker process hosts."""

    async def start(self) -> dict[str, Any]:
        """Set up (bind servers...); the answer goes back to the parent."""
        ...

    async def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """Run one command from the parent."""
        ...

    async def close(self) -> None:
        """Release everything before the process exits."""
        ...


def available_loops() -> list[str]:
    """``asyncio``, plus ``uvloop`` when it is importable."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ["asyncio"]
    return ["asyncio", "uvloop"]


def server_loop() -> str:
    """The loop for servers and load generators: the fastest available."""
    return available_loops()[-1]


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if name != "asyncio":
        raise ValueError(f"unknown loop {name!r}")
    return None


def _recv(conn: Connection) -> Any:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


async def _serve(conn: Connection, role_path: str, config: dict[str, Any]) -> None:
    module_name, _, class_name = role_path.partition(":")
    factory = getattr(importlib.import_module(module_name), class_name)
    role: Role = factory(config)
    try:
        conn.send(("ok", await role.start()))
        loop = asyncio.get_running_loop()
        while True:
            message = await loop.run_in_executor(None, _recv, conn)
            if message is None or message[0] == "stop":
                return
            name, args = message
            try:
                answer = await role.command(name, args)
            except Exception:
                conn.send(("error", traceback.format_exc()))
            else:
                conn.send(("ok", answer))
    finally:
        await role.close()


def _worker_main(
    conn: Connection, role_path: str, loop: str, config: dict[str, Any]
) -> None:
    try:
        with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
            runner.run(_serve(conn, role_path, config))
    except Exception:
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
    except KeyboardInterrupt:
        pass


class Worker:
    """One spawned process hosting one role on one event loop."""

    def __init__(
        self, role_path: str, *, loop: str, config: dict[str, Any] | None = None
    ) -> None:
        self.role_path = role_path
        self.loop = loop
        self._conn, child = _SPAWN.Pipe()
        self._process = _SPAWN.Process(
            target=_worker_main,
            args=(child, role_path, loop, config or {}),
            name=f"bench:{role_path.rsplit(':', 1)[-1]}:{loop}",
            daemon=True,
        )
        self._process.start()
        child.close()
        self.info: dict[str, Any] = {}

    def ready(self) -> dict[str, Any]:
        """Wait for the role to be up; return its ``start()`` answer."""
        self.info = self._answer()
        return self.info

    def call(self, name: str, **args: Any) -> dict[str, Any]:
        """Run a command in the worker and return its answer."""
        self._conn.send((name, args))
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        if not self._conn.poll(COMMAND_TIMEOUT):
            raise TimeoutError(f"{self._process.name}: no answer")
        try:
            status, value = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"{self._process.name} exited") from None
        if status != "ok":
            raise RuntimeError(f"{self._process.name} failed:\n{value}")
        answer: dict[str, Any] = value
        return answer

    def stop(self) -> None:
        """Ask the worker to exit; terminate it (this one process) if it hangs."""
        with contextlib.suppress(OSError):
            self._conn.send(("stop", {}))
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        self._conn.close()


@contextlib.contextmanager
def workers(specs: Sequence[Spec]) -> Iterator[list[Worker]]:
    """Start workers ``(role_path, loop, config)`` in parallel; stop them after."""
    started: list[Worker] = []
    try:
        for role_path, loop, config in specs:
            started.append(Worker(role_path, loop=loop, config=config))
        for worker in started:
            worker.ready()
        yield started
    finally:
        for worker in started:
            worker.stop()


def interleave(
    sides: dict[str, Callable[[], dict[str, Any]]],
    *,
    rounds: int,
    warmup: int,
    log: Callable[[str], None] = print,
) -> dict[str, list[dict[str, Any]]]:
    """Run one trial per side per round, alternating the order of sides.

    The first ``warmup`` rounds are run and discarded. Returns each side's
    trials in round order, so trial ``i`` of every side is one comparable pair.
    """
    names = list(sides)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            trial = sides[name]()
            if index >= warmup:
                results[name].append(trial)
        label = "warm-up" if index < warmup else f"round {index - warmup + 1}"
        log(
            f"    {label}: "
            + ", ".join(_brief(n, results, index >= warmup) for n in names)
        )
    return results


def _brief(name: str, results: dict[str, list[dict[str, Any]]], kept: bool) -> str:
    if not kept or not results[name]:
        return name
    trial = results[name][-1]
    if "rate" in trial:
        return f"{name} {trial['rate']:,.0f}/s"
    return f"{name} {trial.get('per_order', 0.0):,.0f} B/order"


def median(values: Sequence[float]) -> float:
    """The median (``nan`` for no values)."""
    return statistics.median(values) if values else math.nan


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values, ``q`` in [0, 1]."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class GcTimer:
    """Wall time spent in the cyclic garbage collector between start and stop."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._since = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._since = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._since

    def start(self) -> None:
        """Start timing collections."""
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        """Stop timing collections."""
        gc.callbacks.remove(self._callback)


@dataclass(frozen=True, slots=True)
class Trial:
    """One timed run of a load loop."""

    ops: int
    wall: float
    cpu: float
    gc: float
    p50: float
    p99: float

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers for the pipe and the JSON file (seconds, per op)."""
        return {
            "ops": self.ops,
            "wall": self.wall,
            "rate": self.ops / self.wall if self.wall > 0 else 0.0,
            "cpu_per_op": self.cpu / self.ops if self.ops else math.nan,
            "gc_per_op": self.gc / self.ops if self.ops else math.nan,
            "p50": self.p50,
            "p99": self.p99,
        }


async def run_load(
    op: Callable[[int], Awaitable[object]],
    *,
    ops: int,
    concurrency: int,
    deadline: float = 120.0,
) -> Trial:
    """Warm up, then run ``op(0..ops-1)`` with ``concurrency`` workers.

    The warm-up runs ``concurrency`` operations at once (numbered from
    ``ops`` on) so every pooled connection is open before the clock starts.
    The timed loop stops after ``ops`` operations, or raises at ``deadline``.
    """
    async with asyncio.timeout(deadline):
        await asyncio.gather(*(op(ops + i) for i in range(concurrency)))
        latencies = [0.0] * ops
        next_index = 0

        async def worker() -> None:
            nonlocal next_index
            clock = time.perf_counter
            while next_index < ops:
                index = next_index
                next_index += 1
                started = clock()
                await op(index)
                latencies[index] = clock() - started

        collector = GcTimer()
        collector.start()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        collector.stop()
    latencies.sort()
    return Trial(
        ops=ops,
        wall=wall,
        cpu=cpu,
        gc=collector.seconds,
        p50=percentile(latencies, 0.50),
        p99=percentile(latencies, 0.99),
    )


@dataclass(frozen=True, slots=True)
class Options:
    """How long to run: a full run or the ``--quick`` smoke run."""

    quick: bool = False

    @property
    def rounds(self) -> int:
        """Measured rounds (pairs) per comparison.

        Nine in a full run: a single trial's throughput moves by 20-30% on
        this 2-core VM, so the median of five pairs still moved by 0.1-0.2
        between runs of the same code.
        """
        return 2 if self.quick else 9

    @property
    def processes(self) -> int:
        """Fresh processes per side for a deterministic measure (bytes)."""
        return 2 if self.quick else 3

    @property
    def warmup(self) -> int:
        """Discarded rounds before the measured ones."""
        return 1

    def size(self, full: int, quick: int) -> int:
        """An operation count for this kind of run."""
        return quick if self.quick else full


class OrderClient:
    """A client role that places orders: ``run`` is the side under test.

    The ``run`` command builds ``ops + concurrency`` fresh orders (one
    warm-up per worker) before timing and hands them to :meth:`run`.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    async def start(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        return None

    async def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name != "run":
            raise ValueError(f"unknown command {name!r}")
        ops: int = args["ops"]
        concurrency: int = args["concurrency"]
        orders = [make_order() for _ in range(ops + concurrency)]
        return await self.run(args["url"], orders, ops, concurrency)

    async def run(
        self, url: str, orders: list[OrderRequest], ops: int, concurrency: int
    ) -> dict[str, Any]:
        """Run ``ops`` operations over ``orders`` at ``concurrency``."""
        raise NotImplementedError


_bare_encoder: Final = msgspec.json.Encoder()


def bare_body(order: OrderRequest) -> bytes:
    """The Submit V2 body a hand-written client sends: every documented key.

    The same bytes as the SDK's ``encode_order`` (SRS's reference page marks
    every key required), built without the SDK's checks, so the baselines
    send what the SDK sends.
    """
    return _bare_encoder.encode(documented_wire(msgspec.to_builtins(order)))

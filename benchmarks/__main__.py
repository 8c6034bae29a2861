"""``python -m benchmarks [NAME ...] [--quick]``: run, print, store, document."""

from __future__ import annotations

import argparse
import io
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Final

from . import ingest, memory, redis_store, roundtrip, scaling, submit
from ._harness import Options
from ._report import Outcome, write_json, write_markdown

BENCHMARKS: Final[dict[str, Callable[[Options], Outcome]]] = {
    "submit": submit.run,
    "ingest": ingest.run,
    "roundtrip": roundtrip.run,
    "memory": memory.run,
    "redis": redis_store.run,
    "scaling": scaling.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks (all by default); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="sips_async side by side with bare aiohttp (see BENCHMARKS.md).",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short smoke run (CI): small counts, 2 pairs; BENCHMARKS.md untouched",
    )
    parser.add_argument(
        "--no-markdown",
        action="store_true",
        help="do not rewrite BENCHMARKS.md after a full run",
    )
    ns = parser.parse_args(args)
    names: list[str] = ns.names or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    opts = Options(quick=ns.quick)
    command = shlex.join(["python", "-m", "benchmarks", *args])
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    for name in names:
        print(f"[{name}]", flush=True)
        t0 = time.perf_counter()
        outcome = BENCHMARKS[name](opts)
        seconds = time.perf_counter() - t0
        path = write_json(outcome, command=command, quick=opts.quick, seconds=seconds)
        outcomes.append(outcome)
        print(outcome.console())
        print(f"({seconds:.0f} s; results in {path})\n", flush=True)
    if not opts.quick and not ns.no_markdown:
        print(f"wrote {write_markdown()}")
    print("Targets:")
    for outcome in outcomes:
        for target in outcome.targets:
            print(f"  {outcome.name} {target.line()}")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

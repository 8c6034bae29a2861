"""Results: medians and ratios, targets, JSON files and BENCHMARKS.md.

Every benchmark returns an :class:`Outcome`: Markdown tables already
formatted, the targets with their measured values, and the raw trials. The
same tables are printed on the console, stored in
``benchmarks/results/NAME.json`` and rendered into ``BENCHMARKS.md``.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from ._harness import median

__all__ = [
    "RESULTS",
    "ROOT",
    "Outcome",
    "Table",
    "Target",
    "machine",
    "ratios",
    "render_markdown",
    "summarize",
    "write_json",
]

ROOT: Final = Path(__file__).resolve().parent.parent
RESULTS: Final = ROOT / "benchmarks" / "results"
MARKDOWN: Final = ROOT / "BENCHMARKS.md"
ORDER: Final = ("submit", "ingest", "roundtrip", "scaling", "memory", "redis")

#: Per-trial figures summarized as medians.
METRICS: Final = ("rate", "p50", "p99", "cpu_per_op", "gc_per_op")


def summarize(trials: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Median of each metric over a side's trials."""
    return {
        key: median([float(t[key]) for t in trials if key in t])
        for key in METRICS
        if any(key in t for t in trials)
    }


def ratios(
    sdk: Sequence[dict[str, Any]], base: Sequence[dict[str, Any]], key: str
) -> list[float]:
    """SDK/baseline per pair (trial ``i`` of each side ran in the same round)."""
    return [float(a[key]) / float(b[key]) for a, b in zip(sdk, base, strict=True)]


def ms(seconds: float) -> str:
    """Seconds as milliseconds."""
    return f"{seconds * 1000:.2f}"


def us(seconds: float) -> str:
    """Seconds as microseconds."""
    return f"{seconds * 1e6:.0f}"


def ratio(values: Sequence[float]) -> str:
    """Median ratio, with the range over pairs."""
    if not values:
        return "-"
    return f"{median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


@dataclass(frozen=True, slots=True)
class Target:
    """One target: ``value`` compared with ``limit``."""

    label: str
    value: float
    limit: float
    at_least: bool
    #: What value and limit are in ("x": a ratio to the baseline; "ms").
    unit: str = "x"

    @property
    def passed(self) -> bool:
        """Whether the measured value meets the target."""
        if math.isnan(self.value):
            return False
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def line(self) -> str:
        """``label: value (target) PASS|FAIL``."""
        sign = ">=" if self.at_least else "<="
        verdict = "PASS" if self.passed else "FAIL"
        unit = self.unit if self.unit == "x" else f" {self.unit}"
        limit = f"{sign} {self.limit:.2f}{unit}"
        return f"{self.label}: {self.value:.2f}{unit} (target {limit}) {verdict}"


@dataclass(slots=True)
class Table:
    """A formatted table."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def markdown(self) -> str:
        """The table in GitHub Markdown."""
        lines = [
            "| " + " | ".join(self.headers) + " |",
            "|" + "|".join(" --- " for _ in self.headers) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass(slots=True)
class Outcome:
    """What one benchmark produced."""

    name: str
    title: str
    method: str
    tables: list[Table]
    targets: list[Target]
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def console(self) -> str:
        """Tables, notes and PASS/FAIL lines for the terminal."""
        parts = [f"== {self.name}: {self.title}"]
        for table in self.tables:
            parts += [f"-- {table.title}", table.markdown()]
        parts += self.notes
        parts += [target.line() for target in self.targets]
        return "\n".join(parts)


def machine() -> dict[str, str]:
    """Where the benchmarks ran."""
    info = {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    for dist in ("aiohttp", "msgspec", "httpx", "uvloop", "backoff", "sips-async"):
        try:
            info[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            info[dist] = "not installed"
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return "unknown"
    return f"{pages / 2**30:.1f} GiB"


def write_json(outcome: Outcome, *, command: str, quick: bool, seconds: float) -> Path:
    """Store one outcome with its run's metadata; return the file."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{outcome.name}{'-quick' if quick else ''}.json"
    doc = {
        "command": command,
        "quick": quick,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "machine": machine(),
        "outcome": asdict(outcome),
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


_INTRO: Final = """\
# Benchmarks

`sips_async` side by side with the same work written by hand on bare aiohttp
(and httpx), all on loopback. Regenerate with `python -m benchmarks` (about
{minutes} min here); `python -m benchmarks --quick` is the short smoke run CI
uses, with no thresholds. The method is in `benchmarks/__init__.py` and each
benchmark's module docstring (repeated below); in short:

- every party runs in its own process (spawned): the loopback aiohttp server
  and one client process per side, so sides never share an event loop;
- sides run interleaved against the same server process (a discarded warm-up
  round, then nine rounds `A B C`, `C B A`, ...); each round gives one ratio
  SDK/baseline; tables show per-side medians and the median ratio with its
  range over the rounds in parentheses (every pair is in the JSON files);
- every trial runs a fixed number of operations with a fixed number of
  concurrent workers, after one warm-up operation per worker;
- CPU is `time.process_time()` of the process under test per operation, GC the
  part of it spent in the cyclic garbage collector;
- the servers and load generators use uvloop when it is importable; the
  client side runs on both asyncio and uvloop.

Ratios are SDK/baseline: above 1.00 the SDK is faster for throughput; below
1.00 it is faster (or smaller) for latency, CPU and memory.
"""


_KEEP_START: Final = (
    "<!-- analysis: hand-written, kept when the tables are regenerated -->"
)
_KEEP_END: Final = "<!-- /analysis -->"
_KEEP_EMPTY: Final = f"{_KEEP_START}\n## Analysis\n\n(none yet)\n{_KEEP_END}"


def _kept_analysis() -> str:
    """The hand-written analysis block of the current BENCHMARKS.md, if any."""
    if MARKDOWN.exists():
        text = MARKDOWN.read_text()
        start, end = text.find(_KEEP_START), text.find(_KEEP_END)
        if 0 <= start < end:
            return text[start : end + len(_KEEP_END)]
    return _KEEP_EMPTY


def _plain(docstring: str) -> str:
    """A module docstring as Markdown: Sphinx roles become code spans."""
    return re.sub(r":\w+:`~?(?:[\w.]+\.)?(\w+)`", r"`\1`", docstring)


def render_markdown() -> str:
    """BENCHMARKS.md from the latest full result of every benchmark."""
    docs = [doc for name in ORDER if (doc := _load(name)) is not None]
    if not docs:
        raise FileNotFoundError("no full benchmark results to render")
    total = sum(float(doc["seconds"]) for doc in docs)
    parts = [_INTRO.format(minutes=max(1, round(total / 60)))]
    info = docs[0]["machine"]
    parts.append("## Machine\n")
    parts += [f"- {key}: {value}" for key, value in info.items()]
    commands = sorted({doc["command"] for doc in docs})
    parts.append("\n## Command\n")
    parts += [f"    {command}" for command in commands]
    parts.append("\n## Targets\n")
    parts.append("| benchmark | target | measured | limit | result |")
    parts.append("| --- | --- | --- | --- | --- |")
    for doc in docs:
        outcome = doc["outcome"]
        for target in outcome["targets"]:
            t = Target(**target)
            sign = ">=" if t.at_least else "<="
            unit = t.unit if t.unit == "x" else f" {t.unit}"
            parts.append(
                f"| {outcome['name']} | {t.label} | {t.value:.2f}{unit} "
                f"| {sign} {t.limit:.2f}{unit} | {'PASS' if t.passed else 'FAIL'} |"
            )
    parts.append("\n" + _kept_analysis())
    for doc in docs:
        outcome = doc["outcome"]
        parts.append(f"\n## {outcome['name']}: {outcome['title']}\n")
        parts.append(_plain(outcome["method"]).strip() + "\n")
        parts.append(
            f"Run: `{doc['command']}`, finished {doc['finished']}, "
            f"{doc['seconds']:.0f} s.\n"
        )
        for table in outcome["tables"]:
            parts.append(f"**{table['title']}**\n")
            parts.append(Table(**table).markdown() + "\n")
        parts += [f"- {note}" for note in outcome["notes"]]
    return "\n".join(parts).rstrip() + "\n"


def write_markdown() -> Path:
    """Rewrite BENCHMARKS.md; return its path."""
    MARKDOWN.write_text(render_markdown())
    return MARKDOWN

"""How ``sips-async demo`` draws itself: progress bars and the summary table.

Rendering only; :mod:`sips_async._demo` runs the orders. Every line is cut
to the terminal's width minus one column, so a redraw never wraps and never
stacks: on a terminal the block of bars is redrawn in place with ANSI
cursor moves (stdlib only); elsewhere (a pipe, a file, CI) it is printed once,
at the end. Narrow terminals lose the bars first, then the labels shrink.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TextIO

__all__ = [
    "STAGES",
    "LiveView",
    "Row",
    "fit",
    "progress_lines",
    "summary_table",
    "terminal_width",
]

#: The stages an order goes through, in order; one bar each.
STAGES: Final = (
    "enqueued",
    "acknowledged (OA)",
    "Placed",
    "Processed",
    "Shipment Created",
    "Delivered",
)
#: Widest a line gets, even on a wide terminal (keeps the bars readable).
MAX_WIDTH: Final = 80
_UP: Final = "\x1b[{}F"  # cursor to the start of the line n rows up
_CLEAR: Final = "\x1b[2K"  # erase the whole line


def terminal_width(out: TextIO) -> int:
    """Columns to draw in: the terminal's (or ``COLUMNS``), at most 80."""
    columns = 0
    if "COLUMNS" in os.environ:
        try:
            columns = int(os.environ["COLUMNS"])
        except ValueError:
            columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(out.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = shutil.get_terminal_size((MAX_WIDTH, 24)).columns
    return max(10, min(MAX_WIDTH, columns))


def fit(text: str, width: int) -> str:
    """``text`` cut to fit ``width`` columns, with ``~`` where it was cut."""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "~"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the summary table."""

    name: str
    value: str


def _bar(done: int, total: int, cells: int) -> str:
    filled = cells * done // max(1, total)
    return "[" + "#" * filled + "-" * (cells - filled) + "]"


def progress_lines(
    reached: Sequence[int],
    total: int,
    *,
    width: int,
    extra: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """One bar per stage (``reached[i]`` orders got to ``STAGES[i]``), then extras.

    Each line is at most ``width - 1`` columns; below about 40 columns the
    bars are dropped and only the counts stay.
    """
    usable = width - 1
    label = max(len(s) for s in STAGES)
    count = len(f"{total}/{total}")
    cells = min(40, usable - 2 - label - 1 - 2 - 1 - count)
    lines = []
    for name, done in zip(STAGES, reached, strict=True):
        tally = f"{done}/{total}".rjust(count)
        if cells >= 8:
            line = f"  {name:<{label}} {_bar(done, total, cells)} {tally}"
        else:
            line = f"  {name} {tally}"
        lines.append(fit(line, usable))
    for name, value in extra:
        lines.append(fit(f"  {name:<{label}} {value}", usable))
    return lines


def summary_table(rows: Sequence[Row], *, width: int = MAX_WIDTH) -> str:
    """A two-column ASCII table (cut to ``width`` if it has to be)."""
    name_w = max(len(r.name) for r in rows)
    value_w = max(10, *(len(r.value) for r in rows))
    line = "+-" + "-" * name_w + "-+-" + "-" * value_w + "-+"
    body = [f"| {r.name:<{name_w}} | {r.value:>{value_w}} |" for r in rows]
    return "\n".join(fit(x, width) for x in [line, *body, line])


def _can_redraw(out: TextIO, lines: int) -> bool:
    try:
        if not out.isatty() or os.environ.get("TERM") == "dumb":
            return False
        return os.get_terminal_size(out.fileno()).lines > lines
    except (AttributeError, OSError, ValueError):
        return False


class LiveView:
    """Draws a block of lines, redrawn in place on a terminal.

    Args:
        out: where to write.
        live: redraw in place; by default, on a terminal that understands
            cursor moves (not ``TERM=dumb``) and is more than ``lines`` rows
            tall. Otherwise only :meth:`finish` writes the block.
        lines: the height of the block to be drawn.
    """

    def __init__(
        self, out: TextIO, *, live: bool | None = None, lines: int = 0
    ) -> None:
        self._out = out
        if live is None:
            live = _can_redraw(out, lines)
        self.live = live
        self._drawn = 0

    def write(self, text: str) -> None:
        """Write lines above the live block (header, notes)."""
        self._out.write(text if text.endswith("\n") else text + "\n")
        self._out.flush()

    def draw(self, lines: Sequence[str]) -> None:
        """Redraw the block (a no-op when not live)."""
        if self.live:
            self._paint(lines)

    def finish(self, lines: Sequence[str]) -> None:
        """Draw the block one last time; later output goes below it."""
        if self.live:
            self._paint(lines)
        else:
            self.write("\n".join(lines))
        self._drawn = 0

    def _paint(self, lines: Sequence[str]) -> None:
        parts = [_UP.format(self._drawn)] if self._drawn else []
        parts.extend(f"{_CLEAR}{line}\n" for line in lines)
        self._out.write("".join(parts))
        self._out.flush()
        self._drawn = len(lines)

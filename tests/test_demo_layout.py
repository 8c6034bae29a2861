"""``sips-async demo`` in a terminal: 80 columns, bars redrawn in place.

The demo runs in a real pseudo-terminal of the given size; a small terminal
emulator replays what it wrote (cursor moves, line erases, wrapping at the
right margin) so the tests see the screen a person would.
"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from sips_async._demo_view import STAGES, LiveView, fit, progress_lines
from sips_async.cli import main

_CSI = re.compile(r"\x1b\[(\d*)([A-Za-z])")


class Screen:
    """The rows a terminal ``width`` columns wide would show after ``data``."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.rows: list[list[str]] = [[]]
        self.row = 0
        self.col = 0
        self.longest = 0  # the widest line written before any wrap

    def _put(self, char: str) -> None:
        if self.col >= self.width:  # auto-wrap: a line too wide stacks
            self._newline()
        line = self.rows[self.row]
        line.extend(" " * (self.col - len(line) + 1))
        line[self.col] = char
        self.col += 1

    def _newline(self) -> None:
        self.row += 1
        self.col = 0
        while len(self.rows) <= self.row:
            self.rows.append([])

    def feed(self, data: str) -> None:
        pos = 0
        while pos < len(data):
            match = _CSI.match(data, pos)
            if match:
                n = int(match.group(1) or 1)
                kind = match.group(2)
                if kind in "FA":
                    self.row = max(0, self.row - n)
                    if kind == "F":
                        self.col = 0
                elif kind == "K":
                    self.rows[self.row] = self.rows[self.row][: self.col]
                pos = match.end()
                continue
            char = data[pos]
            if char == "\n":
                self._newline()
            elif char == "\r":
                self.col = 0
            else:
                self._put(char)
            pos += 1

    def text(self) -> list[str]:
        return ["".join(r).rstrip() for r in self.rows]


def run_in_terminal(width: int, *argv: str, rows: int = 40) -> tuple[int, str]:
    """Run ``sips-async`` in a pty ``width`` x ``rows``; return code and output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, width, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sips_async", *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.parametrize("width", [80, 50, 30])
def test_demo_fits_the_terminal_and_never_stacks(width: int) -> None:
    code, raw = run_in_terminal(width, "demo", "--fast", "--orders", "12")
    screen = Screen(width)
    screen.feed(raw)
    rows = [r for r in screen.text() if r]
    assert code == 0, raw
    assert "\x1b[" in raw  # it did redraw in place
    assert "all orders reached a final status".startswith(rows[-1].rstrip("~"))
    # Header (3), one bar per stage, 3 extra lines, table (12), the verdict.
    assert len(rows) == 3 + len(STAGES) + 3 + 12 + 1, "\n".join(rows)
    delivered = next(r for r in rows if r.lstrip().startswith("Delivered"))
    assert delivered.endswith("12/12")
    if width >= 50:
        assert "[####" in delivered
    # No line written is wider than the terminal (each stays under it).
    written = re.sub(r"\x1b\[\d*[A-Za-z]", "", raw).split("\n")
    assert max(len(line) for line in written) <= width - 1


def test_a_terminal_too_short_for_the_bars_gets_them_once() -> None:
    code, raw = run_in_terminal(80, "demo", "--fast", "--orders", "3", rows=8)
    assert code == 0, raw
    assert "\x1b[" not in raw
    assert raw.count("Delivered ") == 1


def test_demo_without_a_terminal_prints_the_bars_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["demo", "--fast", "--orders", "5", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert sum(1 for x in lines if x.lstrip().startswith("Delivered")) == 1
    assert re.search(r"\|\s*delivered\s*\|\s*5 \|", out)


def test_default_demo_lasts_long_enough_to_follow() -> None:
    started = time.monotonic()
    code, raw = run_in_terminal(80, "demo", "--orders", "2", "--error-rate", "0")
    elapsed = time.monotonic() - started
    assert code == 0, raw
    # 5 webhook steps 0.5 s apart: a person sees the bars move.
    assert elapsed >= 2.5
    assert raw.count("\x1b[2K  Delivered") >= 10  # redrawn many times


def test_progress_lines_degrade_below_the_bar_width() -> None:
    for width in range(10, 81):
        lines = progress_lines([3, 2, 1, 0, 0, 0], 10, width=width)
        assert all(len(x) <= width - 1 for x in lines), width
    assert "[" not in progress_lines([1] * 6, 10, width=30)[0]
    assert fit("abcdef", 4) == "abc~"


def test_live_view_moves_up_by_the_block_it_drew() -> None:
    out = io.StringIO()
    view = LiveView(out, live=True)
    view.draw(["a", "b"])
    view.draw(["c", "d"])
    screen = Screen(20)
    screen.feed(out.getvalue())
    assert [r for r in screen.text() if r] == ["c", "d"]


def test_readme_capture_matches_the_demo() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("<!-- demo capture -->", 2)[1]
    lines = [x for x in block.splitlines() if x and not x.startswith("```")]
    assert max(len(x) for x in lines) <= 80
    for stage in STAGES:
        assert any(x.lstrip().startswith(stage) for x in lines), stage
    assert "all orders reached a final status" in block

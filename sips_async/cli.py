"""The ``sips-async`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ._version import __version__

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sips-async``."""
    parser = argparse.ArgumentParser(
        prog="sips-async",
        description="SRS Integration Partner Services from the command line.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit code."""
    build_parser().parse_args(argv)
    return 0

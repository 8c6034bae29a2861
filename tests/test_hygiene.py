"""The suite's own guard rails: a leaked aiohttp session fails its test."""

from __future__ import annotations

from pathlib import Path

import pytest

LEAKY_TEST = """
import gc

import aiohttp


async def test_leaks_a_session():
    session = aiohttp.ClientSession()
    del session
    gc.collect()
"""


def test_unclosed_session_fails_the_test(pytester: pytest.Pytester) -> None:
    # Run with this project's own pytest configuration.
    config = Path(__file__).resolve().parent.parent / "pyproject.toml"
    pytester.makefile(".toml", pyproject=config.read_text())
    tests = pytester.mkdir("tests")
    (tests / "test_leak.py").write_text(LEAKY_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Unclosed client session*"])

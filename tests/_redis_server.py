"""A real ``redis-server`` (the Debian package) on a unix socket, for tests.

:func:`require_redis_server` skips a test when the binary is missing, except
in CI (``CI=true``), where a missing server fails the test: CI installs it
(``.ci/run``), so its absence is a broken set-up, never a reason to skip.

:func:`shared_server` is one server for the whole session (tests use their
own key prefix on it); :class:`RedisServer` starts one of your own (for a
test that stops or restarts it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

__all__ = [
    "RedisServer",
    "own_server",
    "require_redis_server",
    "shared_server",
    "stop_shared",
]

#: Seconds a server may take to answer PING after its start.
START_DEADLINE: Final = 20.0


def require_redis_server() -> str:
    """The path of ``redis-server``; skip (or, in CI, fail) when it is missing."""
    path = shutil.which("redis-server")
    if path is None:
        message = (
            "redis-server is not installed (apt-get install redis-server); "
            ".ci/run installs it"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def ping(sock: Path, timeout: float = 1.0) -> bool:
    """Whether a server answers PING on ``sock`` (RESP, no client library)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(sock))
            conn.sendall(b"PING\r\n")
            answer = conn.recv(64)
            # A server with a password answers -NOAUTH: it is up all the same.
            return answer.startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` in ``directory``, on ``directory/redis.sock``.

    ``args`` are more server options (``("--requirepass", "pw")``).

    ``persist=True`` turns the append-only file on (``appendfsync always``),
    so a :meth:`restart` keeps every acknowledged write.
    """

    def __init__(
        self, directory: Path, *, persist: bool = False, args: tuple[str, ...] = ()
    ) -> None:
        self.directory = directory
        self.persist = persist
        self.args = args
        self.sock = directory / "redis.sock"
        self.log = directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def start(self) -> None:
        binary = require_redis_server()
        args = [
            binary,
            "--port",
            "0",
            "--unixsocket",
            str(self.sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.log),
            "--save",
            "",
            "--daemonize",
            "no",
            "--appendonly",
            "yes" if self.persist else "no",
        ]
        if self.persist:
            args += ["--appendfsync", "always"]
        args += self.args
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_DEADLINE
        while not ping(self.sock):
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited at start:\n{tail}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server not up after {START_DEADLINE} s")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop the server (SIGTERM to its pid, SIGKILL if it lingers)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextlib.contextmanager
    def running(self) -> Iterator[RedisServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


@contextlib.contextmanager
def own_server(
    *, persist: bool = False, args: tuple[str, ...] = ()
) -> Iterator[RedisServer]:
    """A server of the caller's own in a short temp dir, stopped on exit."""
    # Not pytest's tmp_path: a unix socket path must stay under ~107 bytes.
    with tempfile.TemporaryDirectory(prefix="sips-redis-") as tmp:
        server = RedisServer(Path(tmp), persist=persist, args=args)
        with server.running():
            yield server


_shared: RedisServer | None = None
_shared_dir: tempfile.TemporaryDirectory[str] | None = None


def shared_server() -> RedisServer:
    """The session's server, started on first use; see :func:`stop_shared`."""
    global _shared, _shared_dir
    require_redis_server()
    if _shared is None or _shared.process is None:
        # A short path: a unix socket path is limited to ~107 bytes.
        _shared_dir = tempfile.TemporaryDirectory(prefix="sips-redis-")
        server = RedisServer(Path(_shared_dir.name))
        server.start()
        _shared = server
    return _shared


def stop_shared() -> None:
    """Stop the session's server, if one was started (conftest, at the end)."""
    global _shared, _shared_dir
    if _shared is not None:
        _shared.stop()
        _shared = None
    if _shared_dir is not None:
        _shared_dir.cleanup()
        _shared_dir = None

"""A real `callbook serve` for each test.

The binary comes from ``CALLBOOK_BIN`` (default: the repository's
``target/debug/callbook``). It runs on a free loopback port with its embedded
provisioning (campaign ``demo``) and the built-in calendar emulator, so no
network and no credentials are involved.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TOKEN = "pipecat-test-token-0123456789"


@dataclass
class Server:
    """A running callbook."""

    base_url: str
    ws_url: str
    token: str
    version: str
    log: Path
    proc: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary() -> str:
    path = Path(os.environ.get("CALLBOOK_BIN", REPO / "target" / "debug" / "callbook"))
    if not path.is_absolute():
        path = REPO / path
    if not path.exists():
        pytest.fail(f"callbook binary not found at {path} (set CALLBOOK_BIN)")
    return str(path)


@pytest.fixture
def callbook_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """Start `callbook serve`, wait for /healthz, stop it after the test.

    ``@pytest.mark.callbook_args(...)`` adds arguments to `serve`.
    """
    marker = request.node.get_closest_marker("callbook_args")
    extra = [str(a) for a in marker.args] if marker else []
    port = _free_port()
    log = tmp_path / "callbook.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOOK_")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [_binary(), "serve", "--listen", f"127.0.0.1:{port}", "--auth-token", TOKEN, "--emulator", *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        version = _wait_healthy(proc, base, log)
        yield Server(base, f"ws://127.0.0.1:{port}/v1/calls", TOKEN, version, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Shown by pytest only when the test failed.
        print(f"--- callbook log ({log}) ---")
        print(log.read_text(errors="replace")[-6000:])


def _wait_healthy(proc: subprocess.Popen[bytes], base: str, log: Path) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"callbook exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as resp:
                body = resp.read().decode()
                try:
                    health = json.loads(body)
                    return str(health.get("version") or health.get("protocol") or "")
                except (ValueError, AttributeError):
                    return body
        except OSError:
            time.sleep(0.05)
    pytest.fail("callbook did not answer /healthz within 20 s")

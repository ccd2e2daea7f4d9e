"""Running Troth as a user would: the `troth` command and a real `troth serve` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def troth(*args: str, db: Path | None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the `troth` command line (with `--db db` unless None) in a subprocess."""
    result = subprocess.run(
        [sys.executable, "-m", "troth", *args, *(["--db", str(db)] if db else [])],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"troth {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running `troth serve` subprocess."""

    db: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        log = open(self.db.with_suffix(".log"), "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "troth",
                "serve",
                "--db",
                str(self.db),
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(self.db.with_suffix(".log").read_text())
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("troth serve did not become healthy within 60 s")

    def stop(self) -> None:
        """Stop gracefully (SIGINT, as Ctrl-C), waiting for the final commit."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=60)

    def kill(self) -> None:
        """Kill -9: no chance to flush anything."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

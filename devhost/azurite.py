"""Start and stop Azurite (blob, queue, table) from the project's pinned node_modules."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
# Azurite's well-known development account (public, documented; not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_PORTS = (10000, 10001, 10002)  # what UseDevelopmentStorage=true points at


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
    except OSError:
        return False
    return True


def connection_string(blob: int, queue: int, table: int, host: str = "127.0.0.1") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{ACCOUNT};"
    )


@dataclass
class Azurite:
    """One Azurite process with all three services on loopback."""

    blob_port: int
    queue_port: int
    table_port: int
    location: Path | None = None  # None: in-memory persistence
    process: subprocess.Popen | None = None
    _errors: IO[bytes] | None = None

    @classmethod
    def on_free_ports(cls, location: Path | None = None) -> Azurite:
        return cls(free_port(), free_port(), free_port(), location)

    @property
    def ports(self) -> tuple[int, int, int]:
        return (self.blob_port, self.queue_port, self.table_port)

    @property
    def connection_string(self) -> str:
        return connection_string(*self.ports)

    def start(self, timeout: float = 30.0) -> Azurite:
        binary = ROOT / "node_modules" / ".bin" / "azurite"
        if not binary.exists():
            raise RuntimeError(f"Azurite is not installed at {binary}: run `npm ci` (make does this).")
        args = [
            str(binary),
            "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
            "--disableTelemetry", "--silent", "--skipApiVersionCheck",
        ]  # fmt: skip
        if self.location is None:
            args.append("--inMemoryPersistence")
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.location)]
        # Its own session, so stopping it also stops anything it spawned, and Ctrl-C reaches only us.
        # Errors go to a file, not a pipe, so a chatty Azurite can never block on a full pipe.
        self._errors = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._errors, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while not all(port_open(p) for p in self.ports):
            if self.process.poll() is not None:
                self._errors.seek(0)
                err = self._errors.read().decode(errors="replace")
                raise RuntimeError(f"Azurite exited with code {self.process.returncode}: {err.strip()[:500]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Azurite did not open ports {self.ports} within {timeout:.0f} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
        finally:
            self._errors.close()

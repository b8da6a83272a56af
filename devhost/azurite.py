"""Start and stop Azurite (blob, queue, table) from the project's pinned node_modules.

Two modes: plain HTTP with the well-known account key (`UseDevelopmentStorage=true`), or, with a certificate,
HTTPS with `--oauth basic`, where Azurite accepts bearer tokens for storage (it checks a token's audience, issuer
and lifetime, not its signature) as well as the key: what an app with an identity and no key needs to be tried.
"""

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


def make_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for `host` (and localhost), valid for a day: (certificate PEM, key PEM). The
    certificate is its own CA, so a client trusts it by naming the PEM in REQUESTS_CA_BUNDLE / SSL_CERT_FILE."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "azurite-cert.pem", folder / "azurite-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Azurite:
    """One Azurite process with all three services on loopback; HTTPS with OAuth when given a certificate."""

    blob_port: int
    queue_port: int
    table_port: int
    location: Path | None = None  # None: in-memory persistence
    certificate: tuple[Path, Path] | None = None  # (cert PEM, key PEM): HTTPS and `--oauth basic`
    process: subprocess.Popen | None = None
    _errors: IO[bytes] | None = None

    @classmethod
    def on_free_ports(cls, location: Path | None = None, certificate: tuple[Path, Path] | None = None) -> Azurite:
        return cls(free_port(), free_port(), free_port(), location, certificate)

    @property
    def ports(self) -> tuple[int, int, int]:
        return (self.blob_port, self.queue_port, self.table_port)

    @property
    def connection_string(self) -> str:
        if self.certificate is not None:
            return connection_string(*self.ports).replace("http://", "https://").replace("=http;", "=https;")
        return connection_string(*self.ports)

    def service_url(self, service: str) -> str:
        """The endpoint of "blob", "queue" or "table", as `AzureWebJobsStorage__<service>ServiceUri` takes it."""
        port = {"blob": self.blob_port, "queue": self.queue_port, "table": self.table_port}[service]
        scheme = "https" if self.certificate is not None else "http"
        return f"{scheme}://127.0.0.1:{port}/{ACCOUNT}"

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
        if self.certificate is not None:
            args += ["--cert", str(self.certificate[0]), "--key", str(self.certificate[1]), "--oauth", "basic"]
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

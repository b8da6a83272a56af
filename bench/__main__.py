"""`make bench`: measure the app against the physical floor on this machine and write docs/benchmarks.md.

Every timed figure is reported next to a baseline measured in the same run (a bare azure-data-tables point
read on the same Azurite; importing the app's three main dependencies alone), so the ratios carry over to
other machines better than the milliseconds do. Counts (storage round trips, Azure DevOps requests) do not
depend on machine speed at all. Azure DevOps is the loopback fake of devtools/fakes; storage is real Azurite.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _environment(connection_string: str) -> None:
    """This process and the hosts it starts talk to the bench's own Azurite, with tables of their own."""
    os.environ.update(
        {
            "AzureWebJobsStorage": connection_string,
            "TABLE_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
            "SECRETS_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }
    )
    os.environ.pop("STORAGE_CONNECTION_STRING", None)
    from shared.settings import reset_settings

    reset_settings()


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "node": node,
        "azurite": "3.35.0 (in memory)",
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer samples and integrations (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()

    from bench import counts, domain_check, import_time, outbound, report, sentry, webhook
    from devhost.azurite import Azurite
    from devtools.fakes import FakeAzureDevOps, FakeSentry

    started = time.monotonic()
    results: dict[str, dict] = {"machine": machine()}
    print("import time ...", flush=True)
    results["import"] = import_time.measure(5 if args.quick else 15)
    azurite = Azurite.on_free_ports().start()
    try:
        _environment(azurite.connection_string)
        with FakeAzureDevOps() as fake:
            print("webhook acknowledgement ...", flush=True)
            results["webhook"] = webhook.measure(fake, samples=200 if args.quick else 1000)
            print("round trips and requests ...", flush=True)
            results["counts"] = counts.measure(fake)
            print("outbound ...", flush=True)
            results["outbound"] = outbound.measure(fake, samples=100 if args.quick else 400)
            print("Sentry App ...", flush=True)
            with FakeSentry() as fake_sentry:
                results["sentry"] = sentry.measure(fake, fake_sentry, samples=200 if args.quick else 1000)
            print("domain_check ...", flush=True)
            results["domain_check"] = domain_check.measure(fake, total=1000 if args.quick else 10_000)
    finally:
        azurite.stop()
    results["seconds"] = {"total": time.monotonic() - started}
    text = report.render(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"written to {args.out} in {results['seconds']['total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

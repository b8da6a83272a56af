"""`python -m devhost [--azurite]`: run the app locally, as `func start` would."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from werkzeug.serving import make_server

from devhost.azurite import DEFAULT_PORTS, Azurite, port_open
from devhost.config import load_local_settings

log = logging.getLogger("devhost")


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--app-dir", type=Path, default=Path.cwd(), help="folder of function_app.py and host.json")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="HTTP port (default: local.settings.json Host.LocalHttpPort, or 7071)")
    parser.add_argument(
        "--azurite",
        action="store_true",
        help="start Azurite on its default ports (data in .azurite/) unless one is already listening",
    )
    parser.add_argument(
        "--azurite-ports",
        default=",".join(map(str, DEFAULT_PORTS)),
        help="blob,queue,table ports for --azurite (default %(default)s, what UseDevelopmentStorage=true uses)",
    )
    args = parser.parse_args(argv)
    ports = tuple(int(p) for p in args.azurite_ports.split(","))
    if len(ports) != 3:
        parser.error("--azurite-ports takes three ports: blob,queue,table")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per invocation comes from the host
    logging.getLogger("azure").setLevel(logging.WARNING)

    app_dir = args.app_dir.resolve()
    load_local_settings(app_dir)
    port = args.port or _local_http_port(app_dir)
    # Both explicitly: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)

    azurite: Azurite | None = None
    host = None
    server = None
    try:
        if args.azurite:
            if all(port_open(p) for p in ports):
                log.info("Azurite is already listening on %s; using it", ports)
            else:
                azurite = Azurite(*ports, location=app_dir / ".azurite").start()
                log.info("Started Azurite on 127.0.0.1 ports %s (data in .azurite/)", ports)
        from devhost.host import FunctionHost  # imports the app, after the settings are in the environment

        host = FunctionHost(app_dir)
        server = make_server(args.host, port, host, threaded=True)
        host.start()
        for entry in host.functions.values():
            detail = {
                "http": f"http://{args.host}:{port}/{host.config.route_prefix}/{getattr(entry.trigger, 'route', '')}",
                "timer": f"schedule {host.schedules.get(entry.name)}",
                "queue": f"queue {host.queue_names.get(entry.name)}",
            }.get(entry.kind, "")
            log.info("Function %s [%s] %s", entry.name, entry.kind, detail)
        log.info("Serving on http://%s:%d (Ctrl-C to stop)", args.host, port)
        server.serve_forever()  # returns on Ctrl-C or SIGTERM (werkzeug catches the KeyboardInterrupt)
    except KeyboardInterrupt:
        pass
    finally:
        log.info("Stopping")
        # A second Ctrl-C or SIGTERM must not cut the clean-up short and leave Azurite behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if server is not None:
            server.server_close()
        if host is not None:
            host.stop()
        if azurite is not None:
            azurite.stop()
    return 0


def _local_http_port(app_dir: Path) -> int:
    path = app_dir / "local.settings.json"
    if path.exists():
        port = (json.loads(path.read_text()).get("Host") or {}).get("LocalHttpPort")
        if port:
            return int(port)
    return 7071


if __name__ == "__main__":
    sys.exit(main())
